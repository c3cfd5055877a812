import Foundation
import XCTest

/// scripts/scale-model.py on a made-up preset whose step times, gradient ranges and batch norm reductions are
/// round numbers, against the model's formulas worked by hand (docs/performance.md, "The model").
final class ScaleModelScriptTests: XCTestCase {
    private static let mi = 1_048_576

    /// "toy" at per-rank batches 2, 4, 8: compute (forward + backward) 60, 100, 180 ms, SGD 10 ms, 3 Mi floats
    /// handed over as 2 Mi then 1 Mi, two batch norm reductions per step.
    private func benchFile() throws -> URL {
        func line(batch: Int, phases: (Int, Int, Int), ready: (Int, Int)) -> String {
            """
            {"arch":"toy","batch_size":\(batch),"threads":1,"parameters":\(3 * Self.mi),\
            "phases_ms":{"extractor_forward":\(phases.0),"heads":\(phases.1),"extractor_backward":\(phases.2),"optimizer":10},\
            "gradient_ready":[{"ms":\(ready.0),"floats":\(2 * Self.mi)},{"ms":\(ready.1),"floats":\(Self.mi)}],\
            "statistics_allreduces_per_step":2}
            """
        }
        let dir = TestPaths.temporaryDirectory("scale-model")
        let url = dir.appendingPathComponent("bench.jsonl")
        try [line(batch: 2, phases: (20, 20, 20), ready: (30, 50)), line(batch: 4, phases: (30, 40, 30), ready: (50, 80)),
             line(batch: 8, phases: (60, 60, 60), ready: (90, 150))].joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private func model(_ arguments: [String]) throws -> [[String: Any]] {
        let file = try benchFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/scale-model.py").path
        let result = try runTool("/usr/bin/env", ["python3", script, "--compute", file.path, "--links", "10", "--efficiency", "1",
                                                   "--json"] + arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try result.stdout.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    private func link(_ row: [String: Any]) throws -> [String: Double] {
        try XCTUnwrap((row["links"] as? [[String: Double]])?.first)
    }

    /// n = 4, 10 Gb/s (β = 1.25e9 B/s), α₂ = 100 µs, no overlap:
    /// ring = 3 α₂ + 1.5 · 12,582,912 B / β = 0.3 + 15.0994944 ms; three small reductions of ⌈log₂ 4⌉ α₂ = 0.6 ms;
    /// step = 100 + 0.6 + 15.3994944 + 10 ms; 32 images; efficiency 110 ms / step.
    func testWeakScalingWithoutOverlap() throws {
        let rows = try model(["--ranks", "4", "--scaling", "weak", "--per-rank-batch", "4", "--alpha-us", "100", "--overlap", "none"])
        XCTAssertEqual(rows.count, 1)
        let l = try link(rows[0])
        let step = 0.100 + 0.0006 + 0.0153994944 + 0.010
        XCTAssertEqual(l["allreduce_ms"]!, 15.3994944, accuracy: 1e-9)
        XCTAssertEqual(l["step_ms"]!, 1000 * step, accuracy: 1e-9)
        XCTAssertEqual(l["images_per_s"]!, 32 / step, accuracy: 1e-9)
        XCTAssertEqual(l["efficiency"]!, 0.110 / step, accuracy: 1e-12)
        XCTAssertEqual(rows[0]["global_batch"] as? Int, 16)

        // Every core busy: compute and SGD × 1.1, communication unchanged; the reference stays one rank alone.
        let busy = try model(["--ranks", "4", "--scaling", "weak", "--per-rank-batch", "4", "--alpha-us", "100", "--overlap", "none",
                              "--busy-factor", "1.1"])
        let slower = 0.110 + 0.0006 + 0.0153994944 + 0.011
        XCTAssertEqual(try link(busy[0])["step_ms"]!, 1000 * slower, accuracy: 1e-9)
        XCTAssertEqual(try link(busy[0])["efficiency"]!, 0.110 / slower, accuracy: 1e-12)
    }

    /// Buckets of 8 MiB: the 2 Mi-float range is ready at 50 + 0.6 ms and fills one bucket (10.3663296 ms on the
    /// link, done at 60.9663296 ms); the last 1 Mi floats go when backward ends at 100.6 ms and take 5.3331648 ms.
    func testBucketsOverlapTheFirstBucketWithBackward() throws {
        let rows = try model(["--ranks", "4", "--scaling", "weak", "--per-rank-batch", "4", "--alpha-us", "100",
                              "--overlap", "buckets", "--bucket-mb", "8"])
        let l = try link(rows[0])
        XCTAssertEqual(l["exposed_ms"]!, 5.3331648, accuracy: 1e-9)
        XCTAssertEqual(l["step_ms"]!, 100.6 + 5.3331648 + 10, accuracy: 1e-9)
    }

    /// Global batch 8: n = 2 computes batch 4, n = 4 batch 2, n = 3 does not divide it and is left out; α₂ = 0.
    /// Half-width gradients (--gradient-bytes 2) halve the bandwidth term.
    func testStrongScalingAndHalfWidthGradients() throws {
        let rows = try model(["--ranks", "2,3,4", "--scaling", "strong", "--global-batch", "8", "--alpha-us", "0", "--overlap", "none"])
        XCTAssertEqual(rows.compactMap { $0["ranks"] as? Int }, [2, 4])
        XCTAssertEqual(rows.compactMap { $0["per_rank_batch"] as? Int }, [4, 2])
        let two = 0.1 + 0.0100663296 + 0.01, four = 0.06 + 0.0150994944 + 0.01
        XCTAssertEqual(try link(rows[0])["step_ms"]!, 1000 * two, accuracy: 1e-9)
        XCTAssertEqual(try link(rows[0])["efficiency"]!, 0.19 / (2 * two), accuracy: 1e-12)
        XCTAssertEqual(try link(rows[1])["efficiency"]!, 0.19 / (4 * four), accuracy: 1e-12)
        XCTAssertEqual(try link(rows[1])["images_per_s"]!, 16 / four, accuracy: 1e-9)

        let half = try model(["--ranks", "2", "--scaling", "strong", "--global-batch", "8", "--alpha-us", "0", "--overlap", "none",
                              "--gradient-bytes", "2"])
        XCTAssertEqual(try link(half[0])["allreduce_ms"]!, 5.0331648, accuracy: 1e-9)
    }

    /// --accumulate 2: two passes (200 ms), five small reductions (2 × 2 of batch norm + the losses: 1 ms), one
    /// allreduce and one SGD; 2 × 4 × 4 = 32 source images. With buckets the first bucket is ready at
    /// 100 (first pass) + 50 + 1 ms, the rest at 201 ms and takes 5.3331648 ms. --overlap both gives the two.
    func testAccumulationAndBothOverlaps() throws {
        let rows = try model(["--ranks", "4", "--scaling", "weak", "--per-rank-batch", "4", "--alpha-us", "100",
                              "--overlap", "both", "--bucket-mb", "8", "--accumulate", "2"])
        let l = try link(rows[0])
        let none = 0.2 + 0.001 + 0.0153994944 + 0.01, buckets = 0.201 + 0.0053331648 + 0.01
        XCTAssertEqual(rows[0]["global_batch"] as? Int, 32)
        XCTAssertEqual(l["step_ms"]!, 1000 * none, accuracy: 1e-9)
        XCTAssertEqual(l["efficiency"]!, 0.21 / none, accuracy: 1e-12)
        XCTAssertEqual(l["overlap_step_ms"]!, 1000 * buckets, accuracy: 1e-9)
        XCTAssertEqual(l["overlap_images_per_s"]!, 64 / buckets, accuracy: 1e-9)
    }

    func testMarkdownTableAndOneLineErrors() throws {
        let file = try benchFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/scale-model.py").path
        let table = try runTool("/usr/bin/env", ["python3", script, "--compute", file.path, "--scaling", "weak", "--per-rank-batch", "4"])
        XCTAssertEqual(table.status, 0, table.stderr)
        let lines = table.stdout.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("**toy, weak scaling") == true, table.stdout)
        XCTAssertEqual(lines.filter { $0.hasPrefix("| ") }.count, 1 + 6, "header and n = 2 … 64")

        let missing = try runTool("/usr/bin/env", ["python3", script, "--compute", file.path, "--scaling", "weak", "--per-rank-batch", "16"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertEqual(missing.stderr, "scale-model.py: error: no bench line for toy at batch 16\n")
    }
}
