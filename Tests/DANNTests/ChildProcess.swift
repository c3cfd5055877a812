import Foundation
import XCTest

/// The result of a child process run by the tests.
struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool
}

/// Running the built `dann-dist` (alone or under mpirun) and other tools from tests.
final class ChildProcessAnchor {}

enum ChildProcess {


    static func requireMPIRun() throws {
        guard FileManager.default.isExecutableFile(atPath: mpirunPath) else {
            throw XCTSkip("mpirun not found (install openmpi-bin): MPI communicator tests skipped")
        }
    }

    static var mpirunPath: String {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        return paths.map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/mpirun"
    }

    /// The `dann-dist` built beside this test bundle (same products directory).
    static func executable() throws -> String {
        let candidates = [Bundle(for: ChildProcessAnchor.self).bundleURL, Bundle.main.bundleURL,
                          URL(fileURLWithPath: CommandLine.arguments[0])]
            .map { $0.deletingLastPathComponent().appendingPathComponent("dann-dist").path }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("dann-dist not built next to the tests (looked at \(candidates)); run swift build first")
            throw XCTSkip("no dann-dist executable")
        }
        return found
    }

    static func environmentWithoutLauncher() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("PMI_") }
    }

    static func runMPI(ranks: Int, _ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
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
    static func run(_ path: String, _ arguments: [String], environment: [String: String], timeout: Double = 120,
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

    /// The built `dann-dist` alone (no MPI launcher variables), output to files.
    static func runCLI(_ arguments: [String], timeout: Double = 300) throws -> RunResult {
        try run(try executable(), arguments, environment: environmentWithoutLauncher(), timeout: timeout)
    }

    /// Runs a tool to completion with this process's environment.
    static func runTool(_ path: String, _ arguments: [String], timeout: Double = 300) throws -> RunResult {
        try run(path, arguments, environment: ProcessInfo.processInfo.environment, timeout: timeout)
    }
}

extension XCTestCase {
    func requireMPIRun() throws { try ChildProcess.requireMPIRun() }
    var mpirunPath: String { ChildProcess.mpirunPath }
    func executable() throws -> String { try ChildProcess.executable() }
    func environmentWithoutLauncher() -> [String: String] { ChildProcess.environmentWithoutLauncher() }
    func runMPI(ranks: Int, _ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil,
                deadlineAfterMatch: Double = 10) throws -> RunResult {
        try ChildProcess.runMPI(ranks: ranks, arguments, binding: binding, watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch)
    }
    func run(_ path: String, _ arguments: [String], environment: [String: String], timeout: Double = 120,
             watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        try ChildProcess.run(path, arguments, environment: environment, timeout: timeout, watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch)
    }
    func runTool(_ path: String, _ arguments: [String], timeout: Double = 300) throws -> RunResult {
        try ChildProcess.runTool(path, arguments, timeout: timeout)
    }
}

/// A child run whose own peak memory is known: spawned and reaped here with wait4, which returns that one
/// child's rusage (Foundation's Process reaps its children itself and keeps the figure).
struct MeasuredRun {
    let status: Int32
    /// The signal that ended the child (a trap is SIGILL or SIGTRAP), or nil for a normal exit.
    let signal: Int32?
    let stdout: String
    let stderr: String
    let peakRSSBytes: Int

    static func run(_ path: String, _ arguments: [String], environment: [String: String], timeout: Double = 120) throws -> MeasuredRun {
        let directory = TestPaths.temporaryDirectory("measured-run")
        defer { try? FileManager.default.removeItem(at: directory) }
        let outPath = directory.appendingPathComponent("stdout").path, errPath = directory.appendingPathComponent("stderr").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard spawned == 0 else { throw SpawnFailure(message: "posix_spawn \(path): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        let started = Date()
        while wait4(pid, &status, WNOHANG, &usage) == 0 {
            if Date().timeIntervalSince(started) > timeout { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        return MeasuredRun(status: (status >> 8) & 0xff, signal: signaled ? status & 0x7f : nil,
                           stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                           stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                           peakRSSBytes: usage.ru_maxrss * 1024)
    }
}

struct SpawnFailure: Error { let message: String }
