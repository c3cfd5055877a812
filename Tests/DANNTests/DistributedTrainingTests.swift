import Foundation
import XCTest
@testable import DANN

/// `dann-dist train` under mpirun at 1–4 ranks with one global batch: the summed gradient and the weights
/// after 10 steps agree with the single rank's, a seed gives the same bytes twice, and a checkpoint written
/// at 2 ranks resumes at 2 and at 4 ranks to the straight run's weights.
final class DistributedTrainingTests: XCTestCase {
    func testGradientAndWeightsAtTwoThreeFourRanksEqualOneRank() throws {
        var gradients: [Int: [String: [Float]]] = [:]
        var weights: [Int: [String: [Float]]] = [:]
        for ranks in 1...4 {
            let out = TestPaths.temporaryDirectory("dist-np\(ranks)")
            defer { try? FileManager.default.removeItem(at: out) }
            let dump = out.appendingPathComponent("gradient.safetensors").path
            let result = try runMPI(ranks: ranks, distributedTrainArguments(out: out, steps: 10) + ["--dump-gradients", dump])
            XCTAssertEqual(result.status, 0, "np=\(ranks): \(result.stderr)")
            let file = try SafeTensors.read(path: dump)
            XCTAssertEqual(file.metadata["ranks"], String(ranks))
            gradients[ranks] = try floatTensors(file.tensors)
            weights[ranks] = try finalWeights(out)
            XCTAssertEqual(CheckpointStore.steps(in: out.appendingPathComponent("checkpoints").path), Array(1...10))
        }
        let reference = try XCTUnwrap(gradients[1]), referenceWeights = try XCTUnwrap(weights[1])
        // The reference must be a real gradient and the weights must have moved, or equality would prove nothing.
        XCTAssertGreaterThan(tensorNorm(reference), 1e-3)
        XCTAssertEqual(reference.count, 14, "seven layers, weight and bias each")
        for ranks in 2...4 {
            let g = try XCTUnwrap(gradients[ranks]), w = try XCTUnwrap(weights[ranks])
            print(String(format: "np=%d: gradient relative error %.2e, weights after 10 steps %.2e", ranks,
                         tensorRelativeError(g, reference), tensorRelativeError(w, referenceWeights)))
            XCTAssertLessThanOrEqual(tensorRelativeError(g, reference), 1e-5, "gradient at np=\(ranks)")
            XCTAssertLessThanOrEqual(tensorRelativeError(w, referenceWeights), 1e-4, "weights after 10 steps at np=\(ranks)")
            for (name, values) in reference {
                XCTAssertLessThanOrEqual(tensorRelativeError([name: g[name] ?? []], [name: values]), 1e-4, "\(name) at np=\(ranks)")
            }
        }
    }

    /// Three ranks that each update one shard (`--allreduce shared`) with Adam and gradient clipping: the norm is
    /// summed over the shards before any is scaled, so the weights after 6 steps agree with one rank's; and the
    /// clipping did act (without it the weights differ).
    func testClippedAdamOverThreeShardsEqualsOneRank() throws {
        func run(_ ranks: Int, _ flags: [String]) throws -> [String: [Float]] {
            let out = TestPaths.temporaryDirectory("dist-clip-np\(ranks)")
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try runMPI(ranks: ranks, try distributedTrainArguments(out: out, steps: 6) + ["--optimizer", "adam", "--lr", "0.001"] + flags)
            XCTAssertEqual(result.status, 0, "np=\(ranks) \(flags): \(result.stderr)")
            return try finalWeights(out)
        }
        let clip = ["--clip-grad-norm", "0.05"]
        let reference = try run(1, clip), sharded = try run(3, clip + ["--allreduce", "shared"]), unclipped = try run(1, [])
        print(String(format: "adam, clip 0.05, np=3 shared: weights after 6 steps %.2e; unclipped differs by %.2e",
                     tensorRelativeError(sharded, reference), tensorRelativeError(unclipped, reference)))
        XCTAssertLessThanOrEqual(tensorRelativeError(sharded, reference), 1e-4)
        XCTAssertGreaterThan(tensorRelativeError(unclipped, reference), 1e-3, "the clipping changed the steps")
    }

    /// Two ranks of two threads each: the shared exchange splits each rank's shard between its threads (103,000
    /// parameters a shard, above the pool's 65,536 minimum), block by block; the weights after 10 steps are one
    /// rank's.
    func testTwoThreadsPerRankThroughSharedMemoryEqualOneRank() throws {
        func run(_ ranks: Int, threads: Int) throws -> [String: [Float]] {
            let out = TestPaths.temporaryDirectory("dist-threads-np\(ranks)")
            defer { try? FileManager.default.removeItem(at: out) }
            var arguments = try distributedTrainArguments(out: out, steps: 10)
            arguments[arguments.firstIndex(of: "--threads")! + 1] = String(threads)
            let result = try runMPI(ranks: ranks, arguments + ["--allreduce", "shared"])
            XCTAssertEqual(result.status, 0, "np=\(ranks) × \(threads): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains(ranks > 1 ? "\(threads) BLAS thread(s) each" : "none (one process)"), result.stdout)
            return try finalWeights(out)
        }
        let reference = try run(1, threads: 1), threaded = try run(2, threads: 2)
        print(String(format: "np=2 × 2 threads, shared: weights after 10 steps %.2e", tensorRelativeError(threaded, reference)))
        XCTAssertLessThanOrEqual(tensorRelativeError(threaded, reference), 1e-4)
    }

    /// Batch norm takes its statistics over the global batch (allreduced sums), so small-bn's weights and
    /// running statistics after 8 steps agree at 1, 2 and 4 ranks; at 4 ranks each holds 3 + 3 of the 12 + 12.
    func testBatchNormWeightsAndRunningStatisticsAtTwoAndFourRanksEqualOneRank() throws {
        var weights: [Int: [String: [Float]]] = [:]
        var tracked: [Int: Int64] = [:]
        for ranks in [1, 2, 4] {
            let out = TestPaths.temporaryDirectory("dist-bn-np\(ranks)")
            defer { try? FileManager.default.removeItem(at: out) }
            var arguments = try distributedTrainArguments(out: out, steps: 8)
            arguments[arguments.firstIndex(of: "small")!] = "small-bn"
            arguments += ["--running-stats", "both"]   // both domains feed the running statistics
            let result = try runMPI(ranks: ranks, arguments)
            XCTAssertEqual(result.status, 0, "np=\(ranks): \(result.stderr)")
            weights[ranks] = try finalWeights(out)
            let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
            let file = try SafeTensors.read(path: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName).path)
            tracked[ranks] = file.tensors["E.1.num_batches_tracked"]?.int64Values?.first
        }
        let reference = try XCTUnwrap(weights[1])
        XCTAssertNotNil(reference["E.1.running_var"], "running statistics are saved")
        XCTAssertEqual(tracked[1], 16, "8 steps, a source and a target batch each")
        // The running mean moved away from its initial zeros, so agreeing on it means something.
        XCTAssertGreaterThan(tensorNorm(["m": reference["E.5.running_mean"] ?? []]), 1e-3)
        for ranks in [2, 4] {
            let w = try XCTUnwrap(weights[ranks])
            print(String(format: "small-bn np=%d: weights and running statistics after 8 steps %.2e", ranks, tensorRelativeError(w, reference)))
            XCTAssertLessThanOrEqual(tensorRelativeError(w, reference), 1e-4, "np=\(ranks)")
            for name in ["E.1.running_mean", "E.5.running_var", "G_c.1.running_mean", "G_d.1.running_var"] {
                XCTAssertLessThanOrEqual(tensorRelativeError([name: w[name] ?? []], [name: reference[name] ?? []]), 1e-4, "\(name) at np=\(ranks)")
            }
            XCTAssertEqual(tracked[ranks], tracked[1])
        }
    }

    func testSameSeedTwiceAtTwoRanksGivesIdenticalBytes() throws {
        var models: [Data] = [], states: [Data] = []
        // One run directory for all three: trainer.safetensors records the config, --out included.
        let out = TestPaths.temporaryDirectory("dist-seed")
        defer { try? FileManager.default.removeItem(at: out) }
        for seed in [5, 5, 6] {
            try FileManager.default.removeItem(at: out)
            let result = try runMPI(ranks: 2, distributedTrainArguments(out: out, steps: 6, seed: seed))
            XCTAssertEqual(result.status, 0, result.stderr)
            let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
            models.append(try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName)))
            states.append(try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(TrainerState.fileName)))
        }
        XCTAssertGreaterThan(models[0].count, 800_000)
        XCTAssertEqual(models[0], models[1], "model.safetensors of two runs with one seed")
        XCTAssertEqual(states[0], states[1], "trainer.safetensors of two runs with one seed")
        XCTAssertNotEqual(models[0], models[2], "another seed trains other weights")
    }

    func testCheckpointFromTwoRanksResumesAtTwoAndFourRanks() throws {
        let straight = TestPaths.temporaryDirectory("dist-straight"), stopped = TestPaths.temporaryDirectory("dist-stopped")
        let atFour = TestPaths.temporaryDirectory("dist-resume4")
        defer { for url in [straight, stopped, atFour] { try? FileManager.default.removeItem(at: url) } }

        var result = try runMPI(ranks: 2, distributedTrainArguments(out: straight, steps: 10))
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try runMPI(ranks: 2, distributedTrainArguments(out: stopped, steps: 10) + ["--stop-at-step", "4"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("stopped after step 4"), result.stdout)
        XCTAssertTrue(result.stdout.contains("resume with: dann-dist train --resume --out \(stopped.path)"), result.stdout)
        XCTAssertEqual(CheckpointStore.steps(in: stopped.appendingPathComponent("checkpoints").path), [1, 2, 3, 4])
        try FileManager.default.removeItem(at: atFour)
        try FileManager.default.copyItem(at: stopped, to: atFour)

        // Same rank count: the very same bytes as the straight run.
        result = try runMPI(ranks: 2, ["train", "--resume", "--out", stopped.path, "--data", try distributedTrainingData()])
        XCTAssertEqual(result.status, 0, result.stderr)
        let straightModel = try finalModelBytes(straight)
        XCTAssertEqual(try finalModelBytes(stopped), straightModel, "resumed at np=2")

        // Another rank count: the same steps up to float rounding.
        result = try runMPI(ranks: 4, ["train", "--resume", "--out", atFour.path, "--data", try distributedTrainingData()])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("resuming at 4"), result.stdout)
        XCTAssertEqual(CheckpointStore.steps(in: atFour.appendingPathComponent("checkpoints").path).last, 10)
        XCTAssertLessThanOrEqual(tensorRelativeError(try finalWeights(atFour), try finalWeights(straight)), 1e-4)
        // The resumed runs did train on from step 4: their weights are not the step-4 weights.
        let step4 = try floatTensors(SafeTensors.read(path: atFour.appendingPathComponent("checkpoints/step-00000004/model.safetensors").path).tensors)
        XCTAssertGreaterThan(tensorRelativeError(try finalWeights(atFour), step4), 1e-3)
    }
}

// MARK: - Helpers shared by the Distributed*Tests files

/// A data folder holding MNIST's training files only (symlinks): with no test set present the runs skip
/// evaluation, which would otherwise dominate a test's time.
private let trainingOnlyData: Result<String, Error> = Result {
    let folder = TestPaths.temporaryDirectory("dist-data").appendingPathComponent("mnist")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        let target = TestPaths.repositoryData.appendingPathComponent("mnist").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: target.path) else { throw XCTSkip("\(target.path) missing") }
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: target)
    }
    return folder.deletingLastPathComponent().path
}

extension XCTestCase {
    func distributedTrainingData() throws -> String { try trainingOnlyData.get() }

    /// A small, fast run: 120 MNIST images each side, global batch 12 (10 steps per epoch), one BLAS thread,
    /// no evaluation (or plots) before the end.
    func distributedTrainArguments(out: URL, steps: Int, seed: Int = 3, limit: Int = 120) throws -> [String] {
        ["train", "--arch", "small", "--steps", String(steps), "--batch-size", "12", "--limit-source", String(limit),
         "--limit-target", String(limit), "--checkpoint-every", "1", "--keep", "20", "--threads", "1", "--eval-every", "100000",
         "--data", try distributedTrainingData(), "--source", "mnist", "--target", "mnist", "--seed", String(seed),
         "--out", out.path]
    }

    /// The F32 tensors (weights, gradients, running statistics); counters such as `num_batches_tracked` are I64.
    func floatTensors(_ tensors: [String: TensorEntry]) throws -> [String: [Float]] {
        tensors.compactMapValues { $0.dtype == "F32" ? $0.float32Values : nil }
    }

    func finalWeights(_ out: URL) throws -> [String: [Float]] {
        let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
        return try floatTensors(SafeTensors.read(path: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName).path).tensors)
    }

    func finalModelBytes(_ out: URL) throws -> Data {
        let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
        return try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName))
    }

    /// Euclidean norm over every tensor, in Double.
    func tensorNorm(_ tensors: [String: [Float]]) -> Double {
        tensors.values.reduce(0) { $0 + $1.reduce(0) { $0 + Double($1) * Double($1) } }.squareRoot()
    }

    /// ‖a − b‖ / ‖b‖ over all tensors; infinite when the names or shapes differ.
    func tensorRelativeError(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        guard Set(a.keys) == Set(b.keys) else { return .infinity }
        var difference = 0.0
        for (name, values) in b {
            guard let other = a[name], other.count == values.count else { return .infinity }
            for i in values.indices { let d = Double(other[i]) - Double(values[i]); difference += d * d }
        }
        let reference = tensorNorm(b)
        return reference > 0 ? difference.squareRoot() / reference : (difference > 0 ? .infinity : 0)
    }
}
