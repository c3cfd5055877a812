import Foundation
import XCTest
@testable import DANN

/// Runs the test-only `mpi-selftest` executable (Tests/MPISelfTest) under mpirun with 1–4 ranks (and without
/// mpirun) and checks the JSON line of rank 0 against values computed here from the same rank-dependent patterns.
final class CommunicatorMPITests: XCTestCase {
    // MARK: - Expected values, computed independently of the selftest's code

    private struct Expected {
        let ranks: Int
        let count: Int
        var rankSum: Int { ranks * (ranks + 1) / 2 }
        var floatHead: [Double] { (0..<min(8, count)).map { Double(rankSum * ($0 % 7 + 1)) } }
        var floatChecksum: Double { (0..<count).reduce(0.0) { $0 + Double(rankSum * ($1 % 7 + 1)) } }
        var doubleSums: [Double] {
            let r = (0..<ranks).map(Double.init)
            return [r.reduce(0, +) + 0.25 * Double(ranks), r.map { $0 * $0 }.reduce(0, +), 1e10 * Double(ranks) + r.reduce(0, +)]
        }
        var doubleMax: [Double] { [Double(ranks - 1), 5] }
        var broadcastChecksum: Int { (0..<1000).reduce(0) { $0 + (($1 * 31 + 7) & 0xFF) * ($1 + 1) } }
    }

    private func check(_ report: [String: Any], ranks: Int, count: Int, communicator: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = Expected(ranks: ranks, count: count)
        XCTAssertEqual(report["communicator"] as? String, communicator, file: file, line: line)
        XCTAssertEqual(report["size"] as? Int, ranks, file: file, line: line)
        XCTAssertEqual(report["float_head"] as? [Double], expected.floatHead, file: file, line: line)
        XCTAssertEqual(report["double_sums"] as? [Double], expected.doubleSums, file: file, line: line)
        XCTAssertEqual(report["double_max"] as? [Double], expected.doubleMax, file: file, line: line)

        let perRank = try XCTUnwrap(report["ranks"] as? [[String: Any]], file: file, line: line)
        XCTAssertEqual(perRank.compactMap { $0["rank"] as? Int }, Array(0..<ranks), "allgather keeps rank order", file: file, line: line)
        XCTAssertEqual(perRank.compactMap { $0["local_rank"] as? Int }.sorted(), Array(0..<ranks), "all ranks on this node", file: file, line: line)
        let host = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        for record in perRank {
            let rank = record["rank"] as? Int ?? -1
            XCTAssertEqual(record["local_size"] as? Int, ranks, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["hostname"] as? String, host, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["float_checksum"] as? Double, expected.floatChecksum, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["buckets_equal_blocking"] as? Bool, true, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["broadcast_checksum"] as? Int, expected.broadcastChecksum, "rank \(rank)", file: file, line: line)
            // Ranks run unbound (--bind-to none), so they may use what this process may use.
            let allowed = coresAllowedByAffinity() ?? cores
            XCTAssertEqual(record["threads_per_rank"] as? Int, min(max(1, cores / ranks), allowed), "rank \(rank)", file: file, line: line)
            // Rounded sums: near the exact sum, and the very same bits on every rank (blocking and bucketed).
            XCTAssertLessThanOrEqual(record["rounding_max_relative_error"] as? Double ?? 1, Double(ranks) * 1.2e-7, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["rounding_hash_blocking"] as? String, perRank[0]["rounding_hash_blocking"] as? String, "rank \(rank)", file: file, line: line)
            XCTAssertEqual(record["rounding_hash_bucketed"] as? String, perRank[0]["rounding_hash_bucketed"] as? String, "rank \(rank)", file: file, line: line)
        }
    }

    // MARK: - Tests

    func testSelftestUnderMPIRunWithOneToFourRanks() throws {
        for ranks in 1...4 {
            let result = try runMPI(ranks: ranks, [], program: try selftest())
            XCTAssertEqual(result.status, 0, "np=\(ranks): \(result.stderr)")
            try check(try parseLastLine(result.stdout), ranks: ranks, count: 10_007, communicator: "mpi")
        }
    }

    func testChunkedCallsAndUnevenBuckets() throws {
        // Chunks of 97 elements stand in for counts above Int32.max; 7 buckets of uneven length, some of them
        // spanning several chunks.
        let result = try runMPI(ranks: 3, ["--count", "1234", "--chunk", "97", "--buckets", "7"], program: try selftest())
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 3, count: 1234, communicator: "mpi")
    }

    func testWithoutMPIRunUsesSingleProcess() throws {
        let result = try run(try selftest(), [], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 1, count: 10_007, communicator: "single")
    }

    func testMPISingletonWithoutMPIRun() throws {
        try requireMPIRun()
        let result = try run(try selftest(), ["--mpi", "--chunk", "1000"], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 1, count: 10_007, communicator: "mpi")
    }

    func testRankBoundToOneCoreGetsOneThread() throws {
        let result = try runMPI(ranks: 1, [], binding: ["--bind-to", "core"], program: try selftest())
        XCTAssertEqual(result.status, 0, result.stderr)
        let perRank = try XCTUnwrap(try parseLastLine(result.stdout)["ranks"] as? [[String: Any]])
        XCTAssertEqual(perRank.first?["threads_per_rank"] as? Int, 1)
    }

    func testAbortEndsAllRanksAndPrintsOnce() throws {
        let message = "mpi-selftest: rank 1 aborting as requested"
        // The other ranks wait in a barrier forever, so only a working abort ends the job.
        let result = try runMPI(ranks: 3, ["--abort-rank", "1"], watchFor: message, deadlineAfterMatch: 10, program: try selftest())
        XCTAssertFalse(result.timedOut, "mpirun still running 10 s after the abort message")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.stderr.components(separatedBy: message).count - 1, 1, result.stderr)
        XCTAssertFalse(result.stdout.contains(message))
    }

    func testAbortInSingleProcess() throws {
        let result = try run(try selftest(), ["--abort-rank", "0"], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "mpi-selftest: rank 0 aborting as requested\n")
    }

    /// The 16-bit allreduce of `--allreduce-dtype` at 2, 3 and 4 ranks, for bf16 and fp16, in calls of at most
    /// 997 elements and in 3 buckets. Every rank ends with the same bits (blocking, and bucketed), and rank 0's
    /// sums are checked against the sum of the rounded inputs computed here: the inputs rounded by the
    /// references of HalfFloatTests (Swift's `Float16`; bf16's nearest neighbour), added exactly in Double.
    /// n ranks make n − 1 additions, each rounding a partial sum to 16 bits (≤ ½ ulp of a partial sum, whose
    /// magnitude is at most A = Σ|inputs|), so the error is at most (n − 1)/2 ulp16(A); at 2 ranks the one
    /// addition must give exactly the exact sum rounded once (`roundedReference(Double)`), in both ways of
    /// calling. At 3 and 4 ranks the blocking and the non-blocking algorithms add in different orders, so
    /// their roundings differ (as Float32's do).
    func testHalfPrecisionSumsAtTwoThreeFourRanks() throws {
        let count = 5003
        for format in HalfFormat.allCases {
            for ranks in 2...4 {
                let folder = TestPaths.temporaryDirectory("half-\(format)-\(ranks)")
                defer { try? FileManager.default.removeItem(at: folder) }
                let path = folder.appendingPathComponent("sum.f32").path
                let result = try runMPI(ranks: ranks, ["--count", String(count), "--buckets", "3", "--chunk", "997",
                                                       "--half", format.rawValue, "--half-out", path], program: try selftest())
                XCTAssertEqual(result.status, 0, "\(format) np=\(ranks): \(result.stderr)")
                let perRank = try XCTUnwrap(try parseLastLine(result.stdout)["ranks"] as? [[String: Any]])
                XCTAssertEqual(perRank.count, ranks)
                for record in perRank {
                    XCTAssertEqual(record["half_hash_blocking"] as? String, perRank[0]["half_hash_blocking"] as? String, "\(format) np=\(ranks)")
                    XCTAssertEqual(record["half_hash_bucketed"] as? String, perRank[0]["half_hash_bucketed"] as? String, "\(format) np=\(ranks)")
                    if ranks == 2 { XCTAssertEqual(record["half_bucketed_equals_blocking"] as? Bool, true, "\(format) np=2") }
                }
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                XCTAssertEqual(bytes.count, 2 * 4 * count)
                let widened = bytes.withUnsafeBytes { raw in
                    (0..<2 * count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
                }
                for (way, sums) in [("blocking", Array(widened[..<count])), ("bucketed", Array(widened[count...]))] {
                    var worstInBound = 0.0, withinOneUlp = 0
                    for i in 0..<count {
                        let rounded = (0..<ranks).map { Double(Self.roundedReference(Self.halfPattern(rank: $0, index: i), format)) }
                        let exact = rounded.reduce(0, +), unit = Self.ulp(rounded.reduce(0) { $0 + abs($1) } * 1.01, format)
                        let error = abs(Double(sums[i]) - exact)
                        XCTAssertLessThanOrEqual(error, Double(ranks - 1) / 2 * unit, "\(format) np=\(ranks) \(way) element \(i)")
                        worstInBound = max(worstInBound, error / unit)
                        withinOneUlp += error <= Self.ulp(abs(exact), format) ? 1 : 0
                        if ranks == 2 {
                            XCTAssertEqual(Double(sums[i]), Self.roundedReference(exact, format), "\(format) np=2 \(way) element \(i)")
                        }
                    }
                    print(String(format: "%@ allreduce at np=%d (%@): largest error %.2f ulp16(Σ|x|) (bound %.1f); %.2f %% of sums within 1 ulp16 of the exact sum",
                                 format.rawValue, ranks, way, worstInBound, Double(ranks - 1) / 2, 100 * Double(withinOneUlp) / Double(count)))
                }
            }
        }
    }

    /// `--allreduce shared`'s update (SharedArenas) with one rank slow each round, at 2 and 3 ranks: the slow rank
    /// writes its gradient range by range while the others already claim and update blocks, so blocks are summed as
    /// they become final, by whichever rank claims them. The parameters after 3 rounds of SGD must be, bit for bit,
    /// one optimizer stepping the rank-order sums of mpi-selftest's documented gradients; every block is updated
    /// once (the claims add up); and the ranks that were done first updated most of the blocks.
    func testSharedUpdateWithASlowRankEqualsOneOptimizerOnTheRankOrderSums() throws {
        let count = 200_003, rounds = 3, claims = (count + 16_383) / 16_384
        for ranks in 2...3 {
            let folder = TestPaths.temporaryDirectory("shared-update-\(ranks)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("weights.f32").path
            let result = try runMPI(ranks: ranks, ["--count", "16", "--shared-update", String(count), "--shared-out", path],
                                    program: try selftest())
            XCTAssertEqual(result.status, 0, "np=\(ranks): \(result.stderr)")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            XCTAssertEqual(bytes.count, 4 * count)
            let weights = bytes.withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }

            var reference = (0..<count).map { Float(cos(Double($0) * 0.11)) }
            let optimizer = SGD(count: count, momentum: 0.9, weightDecay: 1e-3)
            for round in 0..<rounds {
                var sum = [Float](repeating: 0, count: count)
                for i in 0..<count {
                    var acc = Self.sharedGradient(rank: 0, round: round, index: i)
                    for r in 1..<ranks { acc += Self.sharedGradient(rank: r, round: round, index: i) }
                    sum[i] = acc
                }
                optimizer.step(parameters: &reference, gradients: sum, learningRate: 0.1)
            }
            let start = (0..<count).map { Float(cos(Double($0) * 0.11)) }
            XCTAssertGreaterThan(zip(reference, start).map { abs($0 - $1) }.max() ?? 0, 1e-3, "the rounds moved the weights")
            let differing = zip(weights, reference).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "np=\(ranks): parameters differing from one optimizer on the rank-order sums")

            let perRank = try XCTUnwrap(try parseLastLine(result.stdout)["ranks"] as? [[String: Any]])
            let taken = try perRank.map { try XCTUnwrap($0["shared_claims"] as? [Int]) }
            for round in 0..<rounds {
                let slow = ranks - 1 - round % ranks
                let byRank = taken.map { $0[round] }
                print("np=\(ranks) round \(round): blocks updated per rank \(byRank) (rank \(slow) slow)")
                XCTAssertEqual(byRank.reduce(0, +), claims, "np=\(ranks) round \(round): every block once")
                XCTAssertLessThan(byRank[slow], claims / 2, "np=\(ranks) round \(round): the ranks done first took the blocks")
            }
        }
    }

    /// Rank r's gradient element i in round k of mpi-selftest's --shared-update (the definition it documents).
    static func sharedGradient(rank: Int, round: Int, index i: Int) -> Float {
        Float(sin(Double(i) * 0.37 + Double(rank) + 10 * Double(round))) * 0.01
    }

    /// Rank r's input i in mpi-selftest's --half pattern (the definition it documents): mixed signs, 2⁻⁶ … 2⁵.
    static func halfPattern(rank: Int, index i: Int) -> Float {
        Float(sin(Double(i) * 0.37 + Double(rank)) * pow(2, Double((i * 7 + rank * 3) % 12 - 6)))
    }

    /// d rounded once to `format` (nearest, ties to even), written out from the format's definition: d's
    /// spacing at its magnitude, d scaled to a whole number of it (exact: a power of two) and rounded.
    static func roundedReference(_ d: Double, _ format: HalfFormat) -> Double {
        let spacing = ulp(abs(d), format)
        return spacing == 0 ? d : (d / spacing).rounded(.toNearestOrEven) * spacing
    }

    /// x rounded to `format` by the references of HalfFloatTests, as a Float.
    static func roundedReference(_ x: Float, _ format: HalfFormat) -> Float {
        switch format {
        case .fp16: Float(Float16(x))
        case .bf16: Float(bitPattern: UInt32(HalfFloatTests.nearestBF16(x)) << 16)
        }
    }

    /// The spacing of `format`'s values at magnitude m > 0 (normal range; fp16 subnormals: 2⁻²⁴).
    static func ulp(_ m: Double, _ format: HalfFormat) -> Double {
        guard m > 0 else { return 0 }
        return switch format {
        case .fp16: pow(2, Double(max(Int(m.exponent), -14) - 10))
        case .bf16: pow(2, Double(Int(m.exponent) - 7))
        }
    }

    private func selftest() throws -> String { try executable("mpi-selftest") }

    private func parseLastLine(_ stdout: String) throws -> [String: Any] {
        let line = try XCTUnwrap(stdout.split(separator: "\n").last, "no output")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }
}
