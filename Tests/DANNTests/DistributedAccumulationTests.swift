import Foundation
import XCTest
@testable import DANN

/// `--accumulate` and `--allreduce-dtype` under mpirun (docs/design.md §3.10–§3.11): K passes per step at 2 and
/// 3 ranks train the one-pass weights in both allreduce modes, and a 16-bit exchange stays near Float32.
final class DistributedAccumulationTests: XCTestCase {
    /// `seed` (it has dropout, keyed by the sample's place in the step's K·B), 32 + 32 images per step.
    private func seedArguments(out: URL, batch: Int, accumulate: Int, steps: Int = 2) throws -> [String] {
        ["train", "--arch", "seed", "--steps", String(steps), "--batch-size", String(batch), "--accumulate", String(accumulate),
         "--limit-source", "256", "--limit-target", "256", "--checkpoint-every", "1000", "--threads", "1", "--eval-every", "100000",
         "--data", try distributedTrainingData(), "--source", "mnist", "--target", "mnist", "--seed", "11", "--out", out.path]
    }

    /// --batch-size 16 --accumulate 2 at 2 ranks (buckets of 1 MB, so buckets start during the last pass's
    /// backward, and one allreduce) and at 3 ranks (uneven slices 6/5/5 of each pass; buckets, and node memory
    /// with three shards, whose summed gradient the dump gathers) against one process
    /// with --batch-size 32. The tolerances are §3.6's for the same kind of difference (sums over rows split
    /// into parts and added in another order): 1e-5 on the first gradient, 1e-4 on weights (measured far below).
    func testAccumulationAtTwoAndThreeRanksEqualsOneLargeBatch() throws {
        let reference = TestPaths.temporaryDirectory("dacc-ref")
        defer { try? FileManager.default.removeItem(at: reference) }
        let referenceDump = reference.appendingPathComponent("gradient.safetensors").path
        var result = try runMPI(ranks: 1, try seedArguments(out: reference, batch: 32, accumulate: 1) + ["--dump-gradients", referenceDump])
        XCTAssertEqual(result.status, 0, result.stderr)
        let g0 = try floatTensors(SafeTensors.read(path: referenceDump).tensors), w0 = try finalWeights(reference)
        XCTAssertGreaterThan(tensorNorm(g0), 1e-3)

        let cases: [(ranks: Int, flags: [String])] = [(2, ["--allreduce", "buckets", "--bucket-mb", "1"]), (2, ["--allreduce", "single"]),
                                                      (3, ["--allreduce", "buckets", "--bucket-mb", "1"]), (3, ["--allreduce", "shared"])]
        for (ranks, flags) in cases {
            let out = TestPaths.temporaryDirectory("dacc-np\(ranks)")
            defer { try? FileManager.default.removeItem(at: out) }
            let dump = out.appendingPathComponent("gradient.safetensors").path
            result = try runMPI(ranks: ranks, try seedArguments(out: out, batch: 16, accumulate: 2) + flags + ["--dump-gradients", dump])
            XCTAssertEqual(result.status, 0, "np=\(ranks) \(flags): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("2 passes of 16 + 16"), result.stdout)
            let g = try floatTensors(SafeTensors.read(path: dump).tensors), w = try finalWeights(out)
            let gradientError = tensorRelativeError(g, g0), weightError = tensorRelativeError(w, w0)
            print(String(format: "accumulate 2 × 16 at np=%d %@: first gradient relative error %.2e, weights after 2 steps %.2e",
                         ranks, flags.joined(separator: " "), gradientError, weightError))
            XCTAssertLessThanOrEqual(gradientError, 1e-5, "np=\(ranks) \(flags)")
            XCTAssertLessThanOrEqual(weightError, 1e-4, "np=\(ranks) \(flags)")
        }
    }

    /// `small` for 10 steps at 2 ranks: bf16 and fp16 exchanges against Float32. Each rank's gradient element
    /// is rounded to 8 (bf16) or 11 (fp16) significant bits, and the sum once more, so each update is off by
    /// at most about 2⁻⁸ (2⁻¹¹) of its size; the weights must stay within 2⁻⁵ of the distance they travelled
    /// from their start (a loose bound: measured below 1 %), and they must differ (the rounding happened).
    /// With two ranks every MPI algorithm forms round(a + b), so buckets and one allreduce give the same bytes.
    func testHalfPrecisionExchangeStaysNearFloat32() throws {
        func run(_ name: String, _ flags: [String], steps: Int = 10) throws -> (weights: [String: [Float]], bytes: Data) {
            let out = TestPaths.temporaryDirectory("dhalf-\(name)")
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try runMPI(ranks: 2, try distributedTrainArguments(out: out, steps: steps) + ["--bucket-mb", "0.05"] + flags)
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            return (try finalWeights(out), try finalModelBytes(out))
        }
        let start = try run("start", [], steps: 1).weights   // after one f32 step: the distance is counted from there
        let f32 = try run("f32", [])
        let travelled = tensorRelativeError(f32.weights, start)
        XCTAssertGreaterThan(travelled, 1e-4, "the weights moved")
        for dtype in ["bf16", "fp16"] {
            let buckets = try run(dtype, ["--allreduce-dtype", dtype])
            if dtype == "bf16" {
                let single = try run("\(dtype)-single", ["--allreduce-dtype", dtype, "--allreduce", "single"])
                XCTAssertEqual(buckets.bytes, single.bytes, "\(dtype): buckets and one allreduce")
            }
            let error = tensorRelativeError(buckets.weights, f32.weights)
            print(String(format: "%@ exchange at np=2, 10 steps of small: weights vs f32 %.2e (%.2f %% of the distance travelled since step 1, %.2e)",
                         dtype, error, 100 * error / travelled, travelled))
            XCTAssertGreaterThan(error, 0, "\(dtype) rounded something")
            XCTAssertLessThanOrEqual(error, travelled / 32, dtype)
        }
    }
}
