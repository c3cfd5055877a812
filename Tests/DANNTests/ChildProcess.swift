import Foundation
import XCTest

/// The result of a child process run by the tests.
struct RunResult {
    let status: Int32
    /// Standard output as bytes (gzip, djpeg and python write binary); `stdout` is the same as text.
    let output: Data
    let stderr: String
    let timedOut: Bool
    var stdout: String { String(decoding: output, as: UTF8.self) }
}

/// Running the built `dann-dist` (alone or under mpirun) and other tools from tests.
final class ChildProcessAnchor {}

/// A child started in the background, its stdout and stderr going to files in a folder of its own (the
/// children of mpirun inherit them, so nothing can block on a full pipe), stdin from `stdin` or /dev/null.
/// Every launcher of the tests starts its process here.
class BackgroundChild {
    let process = Process()
    private let directory: URL
    private let outURL: URL, errURL: URL

    init(_ path: String, _ arguments: [String], environment: [String: String], stdin: Data? = nil) throws {
        directory = TestPaths.temporaryDirectory("child")
        outURL = directory.appendingPathComponent("stdout")
        errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        if let stdin {
            let inURL = directory.appendingPathComponent("stdin")
            try stdin.write(to: inURL)
            process.standardInput = try FileHandle(forReadingFrom: inURL)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
    }

    var output: Data { (try? Data(contentsOf: outURL)) ?? Data() }
    var stdout: String { String(decoding: output, as: UTF8.self) }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    var status: Int32 { process.terminationStatus }

    func waitForStderr(_ text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !process.isRunning { return stderr.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// True when the child ended within `timeout` seconds.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return !process.isRunning
    }

    /// Ends the child if it still runs (SIGTERM, then SIGKILL after `grace` seconds) and removes its files.
    func cleanUp(grace: Double = 10) {
        if process.isRunning {
            process.terminate()
            if !waitForExit(timeout: grace) { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

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

    /// The flags of every single-host mpirun in the tests: root allowed (containers run as root), more ranks
    /// than cores, shared memory between the ranks, then `binding`.
    static func mpirunFlags(binding: [String] = ["--bind-to", "none"]) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader"] + binding
    }

    /// This process's environment without an enclosing job's launcher variables, root allowed (Open MPI
    /// refuses root unless told twice).
    static func mpirunEnvironment() -> [String: String] {
        var environment = environmentWithoutLauncher()
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        return environment
    }

    /// The `dann-dist` (or another of the package's executables) built beside this test bundle (same products directory).
    static func executable(_ name: String = "dann-dist") throws -> String {
        let candidates = [Bundle(for: ChildProcessAnchor.self).bundleURL, Bundle.main.bundleURL,
                          URL(fileURLWithPath: CommandLine.arguments[0])]
            .map { $0.deletingLastPathComponent().appendingPathComponent(name).path }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("\(name) not built next to the tests (looked at \(candidates)); run swift build first")
            throw XCTSkip("no \(name) executable")
        }
        return found
    }

    static func environmentWithoutLauncher() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("PMI_") }
    }

    /// `dann-dist` (or `program`) on `ranks` ranks under mpirun with `mpirunFlags`.
    static func runMPI(ranks: Int, _ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil, deadlineAfterMatch: Double = 10,
                       program: String? = nil) throws -> RunResult {
        try runMPIRun(["-np", String(ranks), try program ?? executable()] + arguments, binding: binding, watchFor: watchFor,
                      deadlineAfterMatch: deadlineAfterMatch)
    }

    /// mpirun with `mpirunFlags` and `arguments` as given (an MPMD launch spells its own -np).
    static func runMPIRun(_ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        try requireMPIRun()
        return try run(mpirunPath, mpirunFlags(binding: binding) + arguments, environment: mpirunEnvironment(),
                       watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch)
    }

    /// Runs a command to its end (a `BackgroundChild` waited for); kills it if it outlives `timeout`, or
    /// `deadlineAfterMatch` seconds after `watchFor` appears in its stderr.
    static func run(_ path: String, _ arguments: [String], environment: [String: String], stdin: Data? = nil, timeout: Double = 120,
                    watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        let child = try BackgroundChild(path, arguments, environment: environment, stdin: stdin)
        defer { child.cleanUp() }
        let started = Date()
        var matchedAt: Date?
        var timedOut = false
        while child.process.isRunning {
            Thread.sleep(forTimeInterval: 0.01)
            if let watchFor, matchedAt == nil, child.stderr.contains(watchFor) { matchedAt = Date() }
            if Date().timeIntervalSince(started) > timeout || (matchedAt.map { Date().timeIntervalSince($0) > deadlineAfterMatch } ?? false) {
                timedOut = true
                child.process.terminate()
                break
            }
        }
        child.process.waitUntilExit()
        return RunResult(status: child.status, output: child.output, stderr: child.stderr, timedOut: timedOut)
    }

    /// The built `dann-dist` alone (no MPI launcher variables), output to files.
    static func runCLI(_ arguments: [String], timeout: Double = 300) throws -> RunResult {
        try run(try executable(), arguments, environment: environmentWithoutLauncher(), timeout: timeout)
    }

    /// Runs a tool to completion with this process's environment (`/usr/bin/env` as `path` finds it on PATH).
    static func runTool(_ path: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 300) throws -> RunResult {
        try run(path, arguments, environment: ProcessInfo.processInfo.environment, stdin: stdin, timeout: timeout)
    }
}

extension XCTestCase {
    func requireMPIRun() throws { try ChildProcess.requireMPIRun() }
    var mpirunPath: String { ChildProcess.mpirunPath }
    func executable(_ name: String = "dann-dist") throws -> String { try ChildProcess.executable(name) }
    func environmentWithoutLauncher() -> [String: String] { ChildProcess.environmentWithoutLauncher() }
    func runMPI(ranks: Int, _ arguments: [String], binding: [String] = ["--bind-to", "none"], watchFor: String? = nil,
                deadlineAfterMatch: Double = 10, program: String? = nil) throws -> RunResult {
        try ChildProcess.runMPI(ranks: ranks, arguments, binding: binding, watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch,
                                program: program)
    }
    func run(_ path: String, _ arguments: [String], environment: [String: String], timeout: Double = 120,
             watchFor: String? = nil, deadlineAfterMatch: Double = 10) throws -> RunResult {
        try ChildProcess.run(path, arguments, environment: environment, timeout: timeout, watchFor: watchFor, deadlineAfterMatch: deadlineAfterMatch)
    }
    func runTool(_ path: String, _ arguments: [String], timeout: Double = 300) throws -> RunResult {
        try ChildProcess.runTool(path, arguments, timeout: timeout)
    }
}

/// A child run whose own peak memory is known: wait4 returns one child's rusage. A small python3 forks and
/// execs the child: a child spawned straight from this process would report this process's own peak as its
/// ru_maxrss (Linux keeps the old address space's high-water mark across execve, and posix_spawn's child
/// shares ours until then), while the fork of a ~10 MB python starts from that python's size. The child runs
/// under a 4 GB address-space limit, so a regression fails the test instead of the machine.
struct MeasuredRun {
    let status: Int32
    /// The signal that ended the child (a trap is SIGILL or SIGTRAP), or nil for a normal exit.
    let signal: Int32?
    let stderr: String
    let peakRSSBytes: Int

    static func run(_ path: String, _ arguments: [String], environment: [String: String]) throws -> MeasuredRun {
        let directory = TestPaths.temporaryDirectory("measured-run")
        defer { try? FileManager.default.removeItem(at: directory) }
        let errPath = directory.appendingPathComponent("stderr").path
        let script = """
        import os, resource, sys
        exe, err, args = sys.argv[1], sys.argv[2], sys.argv[3:]
        pid = os.fork()
        if pid == 0:
            try:
                resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
                os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
                null = os.open('/dev/null', os.O_RDWR)
                os.dup2(null, 0); os.dup2(null, 1)
                os.execve(exe, [exe] + args, os.environ)
            finally:
                os._exit(127)
        _, status, usage = os.wait4(pid, 0)
        print(os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1, os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, usage.ru_maxrss)
        """
        let result = try ChildProcess.run("/usr/bin/env", ["python3", "-c", script, path, errPath] + arguments, environment: environment)
        let fields = result.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        guard result.status == 0, fields.count == 3 else {
            throw SpawnFailure(message: "the measuring python3 failed: \(result.stdout) \(result.stderr)")
        }
        return MeasuredRun(status: fields[0], signal: fields[1] != 0 ? fields[1] : nil,
                           stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                           peakRSSBytes: Int(fields[2]) * 1024)
    }
}

struct SpawnFailure: Error { let message: String }
