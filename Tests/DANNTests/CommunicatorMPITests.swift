import Foundation
import XCTest
@testable import DANN

/// Runs the built `dann-dist mpi-selftest` under mpirun with 1–4 ranks (and without mpirun) and checks the
/// JSON line of rank 0 against values computed here from the same rank-dependent patterns.
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
            let result = try runMPI(ranks: ranks, ["mpi-selftest"])
            XCTAssertEqual(result.status, 0, "np=\(ranks): \(result.stderr)")
            try check(try parseLastLine(result.stdout), ranks: ranks, count: 10_007, communicator: "mpi")
        }
    }

    func testChunkedCallsAndUnevenBuckets() throws {
        // Chunks of 97 elements stand in for counts above Int32.max; 7 buckets of uneven length, some of them
        // spanning several chunks.
        let result = try runMPI(ranks: 3, ["mpi-selftest", "--count", "1234", "--chunk", "97", "--buckets", "7"])
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 3, count: 1234, communicator: "mpi")
    }

    func testWithoutMPIRunUsesSingleProcess() throws {
        let result = try run(try executable(), ["mpi-selftest"], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 1, count: 10_007, communicator: "single")
    }

    func testMPISingletonWithoutMPIRun() throws {
        try requireMPIRun()
        let result = try run(try executable(), ["mpi-selftest", "--mpi", "--chunk", "1000"], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 0, result.stderr)
        try check(try parseLastLine(result.stdout), ranks: 1, count: 10_007, communicator: "mpi")
    }

    func testRankBoundToOneCoreGetsOneThread() throws {
        let result = try runMPI(ranks: 1, ["mpi-selftest"], binding: ["--bind-to", "core"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let perRank = try XCTUnwrap(try parseLastLine(result.stdout)["ranks"] as? [[String: Any]])
        XCTAssertEqual(perRank.first?["threads_per_rank"] as? Int, 1)
    }

    func testAbortEndsAllRanksAndPrintsOnce() throws {
        let message = "mpi-selftest: rank 1 aborting as requested"
        // The other ranks wait in a barrier forever, so only a working abort ends the job.
        let result = try runMPI(ranks: 3, ["mpi-selftest", "--abort-rank", "1"], watchFor: message, deadlineAfterMatch: 10)
        XCTAssertFalse(result.timedOut, "mpirun still running 10 s after the abort message")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.stderr.components(separatedBy: message).count - 1, 1, result.stderr)
        XCTAssertFalse(result.stdout.contains(message))
    }

    func testAbortInSingleProcess() throws {
        let result = try run(try executable(), ["mpi-selftest", "--abort-rank", "0"], environment: environmentWithoutLauncher())
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "mpi-selftest: rank 0 aborting as requested\n")
    }

    // MARK: - Running child processes

    private struct RunResult {
        let status: Int32
        let stdout: String
        let stderr: String
        let timedOut: Bool
    }

    private func requireMPIRun() throws {
        guard FileManager.default.isExecutableFile(atPath: mpirunPath) else {
            throw XCTSkip("mpirun not found (install openmpi-bin): MPI communicator tests skipped")
        }
    }

    private var mpirunPath: String {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        return paths.map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/mpirun"
    }

    /// The `dann-dist` built beside this test bundle (same products directory).
    private func executable() throws -> String {
        let candidates = [Bundle(for: Self.self).bundleURL, Bundle.main.bundleURL,
                          URL(fileURLWithPath: CommandLine.arguments[0])]
            .map { $0.deletingLastPathComponent().appendingPathComponent("dann-dist").path }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("dann-dist not built next to the tests (looked at \(candidates)); run swift build first")
            throw XCTSkip("no dann-dist executable")
        }
        return found
    }

    private func environmentWithoutLauncher() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("PMI_") }
    }

    private func runMPI(ranks: Int, _ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        try requireMPIRun()
        var environment = environmentWithoutLauncher()
        // Containers run as root; Open MPI refuses that unless told twice.
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        let launcher = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader"]
            + binding + ["-np", String(ranks), try executable()]
        return try run(mpirunPath, launcher + arguments, environment: environment, watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch)
    }

    /// Runs a command with output to files (children of mpirun inherit them, so nothing can block on a full
    /// pipe); kills it if it outlives `timeout`, or `deadlineAfterMatch` seconds after `watchFor` appears in stderr.
    private func run(_ path: String, _ arguments: [String], environment: [String: String], timeout: Double = 120,
                     watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        let directory = TestPaths.temporaryDirectory("mpi-run")
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout"), errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()

        let started = Date()
        var matchedAt: Date?
        var timedOut = false
        while process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            if let watchFor, matchedAt == nil, let text = try? String(contentsOf: errURL, encoding: .utf8), text.contains(watchFor) {
                matchedAt = Date()
            }
            let overdue = Date().timeIntervalSince(started) > timeout
                || (matchedAt.map { Date().timeIntervalSince($0) > deadlineAfterMatch } ?? false)
            if overdue {
                timedOut = true
                process.terminate()
                process.waitUntilExit()
                break
            }
        }
        process.waitUntilExit()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return RunResult(status: process.terminationStatus, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }

    private func parseLastLine(_ stdout: String) throws -> [String: Any] {
        let line = try XCTUnwrap(stdout.split(separator: "\n").last, "no output")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }
}
