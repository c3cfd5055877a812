import Foundation
import XCTest
@testable import DANN

/// `--timeline FILE`: one Chrome trace with every rank's data, compute, allreduce and optimizer spans per
/// step, bucket starts as instants; and the recorder's encoding on its own.
final class DistributedTimelineTests: XCTestCase {
    private struct Event {
        let name: String, phase: String, pid: Int, step: Int, ts: Double, dur: Double, floats: Int
    }

    private func events(_ path: String) throws -> (events: [Event], root: [String: Any]) {
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let list = try XCTUnwrap(root["traceEvents"] as? [[String: Any]])
        let parsed = try list.map { e -> Event in
            let args = e["args"] as? [String: Any] ?? [:]
            return Event(name: try XCTUnwrap(e["name"] as? String), phase: try XCTUnwrap(e["ph"] as? String),
                         pid: try XCTUnwrap(e["pid"] as? Int), step: args["step"] as? Int ?? -1,
                         ts: (e["ts"] as? NSNumber)?.doubleValue ?? -1, dur: (e["dur"] as? NSNumber)?.doubleValue ?? -1,
                         floats: args["floats"] as? Int ?? 0)
        }
        XCTAssertTrue(list.allSatisfy { ($0["tid"] as? Int) == 0 }, "tid 0 everywhere")
        return (parsed, root)
    }

    func testBucketedRunHasEverySpanPerStepOnEveryRank() throws {
        let out = TestPaths.temporaryDirectory("dist-timeline")
        defer { try? FileManager.default.removeItem(at: out) }
        let trace = out.appendingPathComponent("trace.json").path
        let steps = 5
        // 0.1 MB buckets: several per step for the 206k-parameter small network.
        let result = try runMPI(ranks: 2, try distributedTrainArguments(out: out, steps: steps)
                                + ["--timeline", trace, "--allreduce", "buckets", "--bucket-mb", "0.1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let (all, root) = try events(trace)
        XCTAssertEqual((root["otherData"] as? [String: Any])?["dropped_events"] as? Int, 0)
        // The parameter count, from the checkpoint's tensor shapes.
        let weights = try finalWeights(out)
        let parameters = weights.values.reduce(0) { $0 + $1.count }

        for rank in 0..<2 {
            let mine = all.filter { $0.pid == rank }
            XCTAssertEqual(mine.filter { $0.phase == "M" && $0.name == "process_name" }.count, 1)
            for step in 1...steps {
                let spans = Dictionary(grouping: mine.filter { $0.step == step && $0.phase == "X" }, by: \.name)
                for name in ["data", "compute", "allreduce", "optimizer"] {
                    XCTAssertEqual(spans[name]?.count, 1, "rank \(rank) step \(step) \(name)")
                }
                guard let data = spans["data"]?.first, let compute = spans["compute"]?.first,
                      let reduce = spans["allreduce"]?.first, let optimizer = spans["optimizer"]?.first else { continue }
                // In order, each starting after the previous one ended (µs, 3 decimals).
                XCTAssertLessThanOrEqual(data.ts + data.dur, compute.ts + 0.002, "rank \(rank) step \(step)")
                XCTAssertLessThanOrEqual(compute.ts + compute.dur, reduce.ts + 0.002, "rank \(rank) step \(step)")
                XCTAssertLessThanOrEqual(reduce.ts + reduce.dur, optimizer.ts + 0.002, "rank \(rank) step \(step)")
                XCTAssertTrue([data, compute, reduce, optimizer].allSatisfy { $0.dur >= 0 })
                // The buckets of a step cover every parameter once, and start during backward or at its end.
                let buckets = mine.filter { $0.step == step && $0.phase == "i" && $0.name == "bucket start" }
                XCTAssertEqual(buckets.reduce(0) { $0 + $1.floats }, parameters, "rank \(rank) step \(step)")
                XCTAssertGreaterThan(buckets.count, 1, "0.1 MB buckets split the gradient")
                XCTAssertTrue(buckets.allSatisfy { $0.floats <= parameters && $0.ts >= compute.ts && $0.ts <= reduce.ts + reduce.dur })
            }
            XCTAssertEqual(mine.filter { $0.name == "optimizer" }.map(\.step), Array(1...steps), "rank \(rank)")
        }
        // Rank 0 writes checkpoints (the others wait for its verdict in the same span) and logs alone.
        XCTAssertEqual(all.filter { $0.pid == 0 && $0.name == "checkpoint" }.map(\.step), Array(1...steps))
        XCTAssertEqual(all.filter { $0.pid == 0 && $0.name == "logging" }.map(\.step), Array(1...steps))
        XCTAssertFalse(all.contains { $0.pid == 1 && $0.name == "logging" })
    }

    func testSingleCallRunHasNoBucketInstants() throws {
        let out = TestPaths.temporaryDirectory("dist-timeline-single")
        defer { try? FileManager.default.removeItem(at: out) }
        let trace = out.appendingPathComponent("trace.json").path
        let result = try runMPI(ranks: 3, try distributedTrainArguments(out: out, steps: 3) + ["--timeline", trace, "--allreduce", "single"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let (all, root) = try events(trace)
        XCTAssertEqual((root["otherData"] as? [String: Any])?["ranks"] as? Int, 3)
        XCTAssertFalse(all.contains { $0.name == "bucket start" })
        for rank in 0..<3 {
            XCTAssertEqual(all.filter { $0.pid == rank && $0.name == "allreduce" }.map(\.step), [1, 2, 3], "rank \(rank)")
        }
    }

    func testEncodingRoundTripsAndCountsDroppedEvents() throws {
        let timeline = Timeline(capacity: 3)
        let start = timeline.now()
        timeline.span(.compute, step: 1, since: start)
        timeline.instant(.bucketStart, step: 1, value: 1234)
        timeline.span(.optimizer, step: 1, since: start)
        timeline.span(.data, step: 2, since: start)
        XCTAssertEqual(timeline.count, 3)
        XCTAssertEqual(timeline.dropped, 1)
        // Hand-made events of a second rank: 1.5 µs start, 2.000 ms duration.
        var words: [UInt64] = [1500, 2_000_000, 7, UInt64(Timeline.Phase.allreduce.rawValue), 0, 0]
        let other = words.withUnsafeMutableBytes { [UInt8]($0) }
        let text = Timeline.chromeTrace([timeline.encoded(), other], hosts: ["a", "b\"c"])
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let list = try XCTUnwrap(root["traceEvents"] as? [[String: Any]])
        XCTAssertEqual((root["otherData"] as? [String: Any])?["dropped_events"] as? Int, 1)
        XCTAssertEqual(list.filter { $0["ph"] as? String != "M" }.count, 4)
        let reduce = try XCTUnwrap(list.first { $0["name"] as? String == "allreduce" })
        XCTAssertEqual(reduce["pid"] as? Int, 1)
        XCTAssertEqual((reduce["ts"] as? NSNumber)?.doubleValue, 1.5)
        XCTAssertEqual((reduce["dur"] as? NSNumber)?.doubleValue, 2000)
        XCTAssertEqual((reduce["args"] as? [String: Any])?["step"] as? Int, 7)
        let bucket = try XCTUnwrap(list.first { $0["name"] as? String == "bucket start" })
        XCTAssertEqual(bucket["ph"] as? String, "i")
        XCTAssertEqual((bucket["args"] as? [String: Any])?["floats"] as? Int, 1234)
        let names = list.filter { $0["name"] as? String == "process_name" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        XCTAssertEqual(names, ["rank 0 (a)", "rank 1 (b\"c)"])
    }
}
