import Foundation
import XCTest
@testable import DANN

/// `dann-dist bench --allreduce` under mpirun: the shape and internal consistency of what it prints (never
/// its timings), and its one-line errors.
final class AllreduceBenchmarkTests: XCTestCase {
    private func report(_ output: String) throws -> [String: Any] {
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one JSON line from rank 0 only: \(output)")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
    }

    private func checkSizes(_ object: [String: Any], ranks n: Int, sizes: [Int]) throws {
        XCTAssertEqual(object["ranks"] as? Int, n)
        XCTAssertEqual(object["local_ranks"] as? Int, n)
        let samples = try XCTUnwrap(object["sizes"] as? [[String: Any]])
        XCTAssertEqual(samples.compactMap { $0["bytes"] as? Int }, sizes)
        for sample in samples {
            let bytes = Double(try XCTUnwrap(sample["bytes"] as? Int))
            let median = try XCTUnwrap(sample["median_s"] as? Double)
            let low = try XCTUnwrap(sample["min_s"] as? Double), high = try XCTUnwrap(sample["max_s"] as? Double)
            XCTAssertGreaterThan(low, 0)
            XCTAssertLessThanOrEqual(low, median)
            XCTAssertLessThanOrEqual(median, high)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(sample["iterations"] as? Int), 1)
            let algbw = try XCTUnwrap(sample["algbw_bytes_per_s"] as? Double)
            XCTAssertEqual(algbw, bytes / median, accuracy: 1e-9 * algbw)
            XCTAssertEqual(try XCTUnwrap(sample["busbw_bytes_per_s"] as? Double), 2 * Double(n - 1) / Double(n) * algbw,
                           accuracy: 1e-9 * algbw)
        }
        let fit = try XCTUnwrap(object["fit"] as? [String: Any])
        XCTAssertEqual(fit["from_bytes"] as? Int, sizes.first)
        try checkFit(fit)
    }

    private func checkFit(_ fit: [String: Any]) throws {
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(fit["alpha_s"] as? Double), 0)
        if let beta = fit["beta_bytes_per_s"] as? Double { XCTAssertGreaterThan(beta, 0) }
    }

    func testSweepAtTwoRanksJSON() throws {
        let result = try runMPI(ranks: 2, ["bench", "--allreduce", "--max-bytes", "65536", "--repetitions", "3",
                                           "--large-bytes", "16384", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try report(result.stdout)
        try checkSizes(object, ranks: 2, sizes: (0...14).map { 4 << $0 })
        let large = try XCTUnwrap(object["fit_large"] as? [String: Any])
        XCTAssertEqual(large["from_bytes"] as? Int, 16384)
        try checkFit(large)
    }

    func testNonBlockingSweepAtThreeRanks() throws {
        let result = try runMPI(ranks: 3, ["bench", "--allreduce", "--nonblocking", "--min-bytes", "1024", "--max-bytes", "4096",
                                           "--repetitions", "2", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try report(result.stdout)
        XCTAssertEqual(object["nonblocking"] as? Bool, true)
        try checkSizes(object, ranks: 3, sizes: [1024, 2048, 4096])
        XCTAssertTrue(object["fit_large"] is NSNull, "no size reaches the default 32 MiB")
    }

    func testTextTableHasARowPerSizeAndTheFit() throws {
        let result = try runMPI(ranks: 2, ["bench", "--allreduce", "--min-bytes", "64", "--max-bytes", "256", "--repetitions", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2 + 3 + 1, result.stdout)
        XCTAssertTrue(lines[0].hasPrefix("allreduce: 2 ranks"), lines[0])
        XCTAssertEqual(lines[2...4].compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }, [64, 128, 256])
        XCTAssertTrue(lines[5].hasPrefix("fit t = α + 2(n−1)/n · bytes / β"), lines[5])

        let split = try runMPI(ranks: 2, ["bench", "--allreduce", "--min-bytes", "64", "--max-bytes", "256", "--repetitions", "2",
                                          "--large-bytes", "128"])
        XCTAssertEqual(split.status, 0, split.stderr)
        XCTAssertTrue(split.stdout.hasSuffix("\n") && split.stdout.split(separator: "\n").last?.hasPrefix("  sizes from 128 bytes up:  α = ") == true,
                      split.stdout)
    }

    /// Two "hosts" in network namespaces, TCP between them (scripts/netns-mpirun.sh); needs root.
    func testSweepOverTCPBetweenNamespaces() throws {
        try requireMPIRun()
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/netns-mpirun.sh").path
        let result = try run("/bin/sh", [script, "2", try executable(), "bench", "--allreduce", "--max-bytes", "4096",
                                          "--repetitions", "2", "--json"],
                             environment: environmentWithoutLauncher(), timeout: 120)
        if result.status != 0, result.stderr.contains("netns") || result.stderr.contains("Operation not permitted") {
            throw XCTSkip("network namespaces unavailable here: \(result.stderr)")
        }
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try report(result.stdout)
        XCTAssertEqual(object["ranks"] as? Int, 2)
        XCTAssertEqual(object["local_ranks"] as? Int, 1, "one rank per namespace: the ranks share no memory")
    }

    func testOneProcessIsOneLineError() throws {
        let result = try ChildProcess.runCLI(["bench", "--allreduce", "--max-bytes", "64"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "dann-dist: error: bench --allreduce needs at least 2 ranks: run it under mpirun -np N (N ≥ 2)\n")
    }

    func testBadFlagsAreOneLineErrors() throws {
        for (arguments, flag) in [(["bench", "--allreduce", "--min-bytes", "6"], "--min-bytes"),
                                  (["bench", "--allreduce", "--max-bytes", "2"], "--max-bytes"),
                                  (["bench", "--allreduce", "--repetitions", "0"], "--repetitions"),
                                  (["bench", "--allreduce", "--large-bytes", "0"], "--large-bytes"),
                                  (["bench", "--nonblocking"], "--nonblocking")] {
            let result = try ChildProcess.runCLI(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("dann-dist: error: ") && result.stderr.contains(flag), result.stderr)
        }
    }
}
