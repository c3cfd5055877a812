import Foundation
import XCTest
@testable import DANN

/// How an mpirun job of `dann-dist train` ends: a killed rank ends the job, SIGTERM to rank 0 checkpoints
/// and exits 0 with a resume line, an error on any rank prints its reason once; and what the ranks print.
final class DistributedFailureTests: XCTestCase {
    func testKilledRankEndsTheJobNonZeroWithinTenSeconds() throws {
        let out = TestPaths.temporaryDirectory("dist-kill")
        defer { try? FileManager.default.removeItem(at: out) }
        let job = try MPIJob(ranks: 2, try distributedTrainArguments(out: out, steps: 100_000) + ["--verbose-ranks"])
        defer { job.cleanUp() }
        XCTAssertTrue(job.waitForStderr("[rank 1] step 2/", timeout: 120), job.stderr)
        let victim = try XCTUnwrap(job.rankPIDs[1], job.stderr)
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        let killed = Date()
        let ended = job.waitForExit(timeout: 10)
        XCTAssertTrue(ended, "the job outlived a killed rank by 10 s")
        if ended {
            XCTAssertNotEqual(job.status, 0)
            print("job ended \(String(format: "%.2f", Date().timeIntervalSince(killed))) s after SIGKILL of rank 1")
        }
    }

    func testSIGTERMToRankZeroCheckpointsExitsZeroAndResumesToTheStraightRun() throws {
        let straight = TestPaths.temporaryDirectory("dist-straight"), stopped = TestPaths.temporaryDirectory("dist-term")
        defer { for url in [straight, stopped] { try? FileManager.default.removeItem(at: url) } }
        // One epoch of 30 steps, a checkpoint (with fsync) every step.
        let steps = 30
        let job = try MPIJob(ranks: 2, try distributedTrainArguments(out: stopped, steps: steps, limit: 360) + ["--verbose-ranks"])
        defer { job.cleanUp() }
        // Signalled as soon as it reports its pid (before its first step ends, since that one reads the shard),
        // so the stop comes well before the last step on any machine.
        XCTAssertTrue(job.waitForStderr("[rank 0] pid ", timeout: 120), job.stderr)
        let root = try XCTUnwrap(job.rankPIDs[0], job.stderr)
        XCTAssertEqual(kill(root, SIGTERM), 0)
        XCTAssertTrue(job.waitForExit(timeout: 120), "the job did not stop")
        XCTAssertEqual(job.status, 0, job.stderr)
        let stdout = job.stdout
        let line = try XCTUnwrap(stdout.split(separator: "\n").first { $0.hasPrefix("stopped after step ") }, stdout)
        let stoppedAt = try XCTUnwrap(Int(line.dropFirst("stopped after step ".count).prefix { $0.isNumber }), String(line))
        XCTAssertLessThan(stoppedAt, steps)
        XCTAssertTrue(stdout.contains("resume with: dann-dist train --resume --out \(stopped.path)"), stdout)
        // Both ranks stopped after the same step: the stop flag is reduced with the losses.
        XCTAssertFalse(job.stderr.contains("[rank 1] step \(stoppedAt + 1)/"), job.stderr)
        XCTAssertTrue(job.stderr.contains("[rank 1] step \(stoppedAt)/"), job.stderr)
        let latest = try XCTUnwrap(try CheckpointStore.latest(in: stopped.appendingPathComponent("checkpoints").path))
        XCTAssertEqual(URL(fileURLWithPath: latest).lastPathComponent, CheckpointStore.folderName(step: stoppedAt))

        var result = try runMPI(ranks: 2, ["train", "--resume", "--out", stopped.path, "--data", try distributedTrainingData()])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try runMPI(ranks: 2, try distributedTrainArguments(out: straight, steps: steps, limit: 360))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try finalModelBytes(stopped), try finalModelBytes(straight), "stopped at \(stoppedAt), resumed, vs straight")
    }

    func testSIGUSR1ToMpirunStopsTheJobCleanly() throws {
        let out = TestPaths.temporaryDirectory("dist-usr1")
        defer { try? FileManager.default.removeItem(at: out) }
        let job = try MPIJob(ranks: 2, try distributedTrainArguments(out: out, steps: 100_000) + ["--verbose-ranks"])
        defer { job.cleanUp() }
        XCTAssertTrue(job.waitForStderr("[rank 1] step 2/", timeout: 120), job.stderr)
        XCTAssertEqual(kill(job.process.processIdentifier, SIGUSR1), 0)
        XCTAssertTrue(job.waitForExit(timeout: 120), "the job did not stop")
        XCTAssertEqual(job.status, 0, job.stderr)
        let line = try XCTUnwrap(job.stdout.split(separator: "\n").first { $0.hasPrefix("stopped after step ") }, job.stdout)
        let stoppedAt = try XCTUnwrap(Int(line.dropFirst("stopped after step ".count).prefix { $0.isNumber }))
        let latest = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
        XCTAssertEqual(URL(fileURLWithPath: latest).lastPathComponent, CheckpointStore.folderName(step: stoppedAt))
        XCTAssertTrue(job.stderr.contains("[rank 1] step \(stoppedAt)/") && !job.stderr.contains("[rank 1] step \(stoppedAt + 1)/"), job.stderr)
    }

    func testErrorOnOneRankAbortsTheJobWithOneLine() throws {
        // MPMD launch: rank 1 alone is given a data folder that does not exist.
        let out = TestPaths.temporaryDirectory("dist-error")
        defer { try? FileManager.default.removeItem(at: out) }
        let missing = out.appendingPathComponent("no-such-data").path
        let good = try distributedTrainArguments(out: out, steps: 5)
        var bad = good
        bad[try XCTUnwrap(bad.firstIndex(of: "--data")) + 1] = missing
        let result = try ChildProcess.runMPIRun(["-np", "1", try executable()] + good + [":", "-np", "1", try executable()] + bad)
        XCTAssertNotEqual(result.status, 0)
        let reason = "dann-dist: error: \(missing)/mnist/train-images-idx3-ubyte.gz"
        XCTAssertEqual(occurrences(of: reason, in: result.stdout + result.stderr), 1, result.stderr)
        XCTAssertEqual(occurrences(of: "dann-dist: error:", in: result.stdout + result.stderr), 1, result.stderr)
    }

    func testErrorOnEveryRankOrOnRankZeroIsPrintedOnce() throws {
        let out = TestPaths.temporaryDirectory("dist-error-all")
        defer { try? FileManager.default.removeItem(at: out) }
        // Every rank fails the same way.
        let missing = out.appendingPathComponent("no-such-data").path
        var arguments = try distributedTrainArguments(out: out, steps: 5)
        arguments[try XCTUnwrap(arguments.firstIndex(of: "--data")) + 1] = missing
        var result = try runMPI(ranks: 3, arguments)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(occurrences(of: "dann-dist: error: \(missing)/mnist/train-images-idx3-ubyte.gz", in: result.stdout + result.stderr), 1, result.stderr)
        XCTAssertEqual(occurrences(of: "dann-dist: error:", in: result.stdout + result.stderr), 1, result.stderr)

        // Only rank 0 writes: a run directory that is a file fails there alone.
        let file = out.appendingPathComponent("a-file")
        XCTAssertTrue(FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8)))
        result = try runMPI(ranks: 2, try distributedTrainArguments(out: file, steps: 5))
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(occurrences(of: "dann-dist: error:", in: result.stdout + result.stderr), 1, result.stderr)
        XCTAssertEqual(occurrences(of: file.path, in: result.stderr), 1, result.stderr)
    }

    func testBadFlagsUnderMPIRunArePrintedOnce() throws {
        for arguments in [["train", "--batch-size", "many"], ["train", "--resume"], ["train", "--steps", "3", "--epochs", "2"]] {
            let result = try runMPI(ranks: 3, arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertEqual(occurrences(of: "dann-dist: error:", in: result.stdout + result.stderr), 1, "\(arguments): \(result.stderr)")
        }
    }

    func testOnlyRankZeroPrintsUnlessVerboseRanks() throws {
        let out = TestPaths.temporaryDirectory("dist-quiet"), streams = TestPaths.temporaryDirectory("dist-streams")
        defer { for url in [out, streams] { try? FileManager.default.removeItem(at: url) } }
        // mpirun --output-filename DIR keeps each rank's stdout and stderr in DIR/1/rank.N/.
        func stream(_ rank: Int, _ name: String) -> String {
            (try? String(contentsOf: streams.appendingPathComponent("1/rank.\(rank)/\(name)"), encoding: .utf8)) ?? ""
        }
        let launch = ["--bind-to", "none", "--output-filename", streams.path]
        var result = try runMPI(ranks: 3, try distributedTrainArguments(out: out, steps: 4), binding: launch)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(stream(0, "stdout").contains("│ ranks             │ 3 on "), stream(0, "stdout"))
        XCTAssertTrue(stream(0, "stdout").contains("step 4/4"), stream(0, "stdout"))
        XCTAssertEqual(stream(0, "stderr"), "")
        for rank in 1..<3 {
            XCTAssertEqual(stream(rank, "stdout") + stream(rank, "stderr"), "", "rank \(rank) is silent")
        }

        try FileManager.default.removeItem(at: out)
        try FileManager.default.removeItem(at: streams)
        result = try runMPI(ranks: 3, try distributedTrainArguments(out: out, steps: 4) + ["--verbose-ranks"], binding: launch)
        XCTAssertEqual(result.status, 0, result.stderr)
        for rank in 0..<3 {
            let lines = stream(rank, "stderr").split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.filter { $0.hasPrefix("[rank \(rank)] step ") }.count, 4, "rank \(rank): \(lines)")
            XCTAssertEqual(lines.filter { $0.hasPrefix("[rank \(rank)] pid ") }.count, 1, "rank \(rank): \(lines)")
            XCTAssertEqual(lines.count, 5, "rank \(rank): \(lines)")
            // 12 images over 3 ranks: 4 source and 4 target each.
            XCTAssertTrue(lines.contains { $0.contains("4 source + 4 target images per step") }, "rank \(rank): \(lines)")
            if rank > 0 { XCTAssertEqual(stream(rank, "stdout"), "", "rank \(rank) prints to stderr only") }
        }
    }

    func testStartTableShowsRanksHostsThreadsAndBinding() throws {
        let out = TestPaths.temporaryDirectory("dist-table")
        defer { try? FileManager.default.removeItem(at: out) }
        var arguments = try distributedTrainArguments(out: out, steps: 1)
        arguments.removeSubrange(arguments.firstIndex(of: "--threads")!...(arguments.firstIndex(of: "--threads")! + 1))
        let host = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let allowed = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
            .dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        let cores = ProcessInfo.processInfo.activeProcessorCount

        // Unbound: each of 2 ranks takes half the cores.
        var result = try runMPI(ranks: 2, arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        var row = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.contains("│ ranks") }, result.stdout)
        XCTAssertTrue(row.contains("2 on \(host)×2, \(max(1, cores / 2)) BLAS thread(s) each"), String(row))
        if allowed == (cores > 1 ? "0-\(cores - 1)" : "0") {
            XCTAssertTrue(row.contains("binding: none (each rank may use cpus \(allowed))"), String(row))
        }

        // Bound to a core each: one thread per rank, and the table names each rank's core.
        try FileManager.default.removeItem(at: out)
        result = try runMPI(ranks: 2, arguments, binding: ["--bind-to", "core:overload-allowed"])
        XCTAssertEqual(result.status, 0, result.stderr)
        row = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.contains("│ ranks") }, result.stdout)
        XCTAssertTrue(row.contains("2 on \(host)×2, 1 BLAS thread(s) each"), String(row))
        XCTAssertNotNil(row.range(of: #"binding: r0: cpu \d+, r1: cpu \d+"#, options: .regularExpression), String(row))
    }

    /// A /dev/shm too small for the node-shared arenas (containers often give 64 MB; here a 40 MB tmpfs in a
    /// private mount namespace, against `seed`'s 3 × 127 MB): `auto` says so in one line and trains with
    /// buckets; `--allreduce shared` asked for ends the job with that line as its error, not a SIGBUS.
    func testTooSmallDevShmFallsBackToBucketsOrFailsInOneLine() throws {
        try requireMPIRun()
        let unshare = ["/usr/bin/unshare", "/bin/unshare"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let unshare, try runTool(unshare, ["--mount", "true"]).status == 0 else {
            throw XCTSkip("small /dev/shm test skipped: cannot create a mount namespace here (needs unshare and root)")
        }
        func run(_ flags: [String]) throws -> RunResult {
            let out = TestPaths.temporaryDirectory("dist-shm")
            defer { try? FileManager.default.removeItem(at: out) }
            var arguments = try distributedTrainArguments(out: out, steps: 1) + flags
            arguments[arguments.firstIndex(of: "small")!] = "seed"
            let script = "mount -t tmpfs -o size=40m tmpfs /dev/shm && exec \"$@\""
            return try ChildProcess.run(unshare, ["--mount", "sh", "-c", script, "sh", ChildProcess.mpirunPath]
                                        + ChildProcess.mpirunFlags() + ["-np", "2", try executable()] + arguments,
                                        environment: ChildProcess.mpirunEnvironment())
        }
        let auto = try run([])
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertTrue(auto.stderr.contains("note: --allreduce auto uses buckets: shared memory: cannot reserve 127 MB in /dev/shm"), auto.stderr)
        XCTAssertNotNil(auto.stdout.range(of: #"│ allreduce\s+│ buckets"#, options: .regularExpression), auto.stdout)
        let asked = try run(["--allreduce", "shared"])
        XCTAssertNotEqual(asked.status, 0)
        let errors = asked.stderr.split(separator: "\n").filter { $0.hasPrefix("dann-dist: error:") }
        XCTAssertEqual(errors, ["dann-dist: error: shared memory: cannot reserve 127 MB in /dev/shm: No space left on device"], asked.stderr)
    }

    // MARK: - Helpers

    private func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }
}

/// An mpirun job running in the background (or a script that starts one), its output going to files the
/// test can watch.
final class MPIJob: BackgroundChild {
    convenience init(ranks: Int, _ arguments: [String]) throws {
        try ChildProcess.requireMPIRun()
        try self.init(command: ChildProcess.mpirunPath,
                      ChildProcess.mpirunFlags() + ["-np", String(ranks), try ChildProcess.executable()] + arguments,
                      environment: ChildProcess.mpirunEnvironment())
    }

    init(command path: String, _ arguments: [String], environment: [String: String]) throws {
        try super.init(path, arguments, environment: environment)
    }

    /// The pid of each rank, from the `[rank r] pid P ...` lines of `--verbose-ranks`.
    var rankPIDs: [Int: pid_t] {
        var pids: [Int: pid_t] = [:]
        for line in stderr.split(separator: "\n") where line.hasPrefix("[rank ") && line.contains("] pid ") {
            let words = line.split(separator: " ")
            if words.count > 3, let rank = Int(words[1].dropLast()), let pid = pid_t(words[3]) { pids[rank] = pid }
        }
        return pids
    }

    /// Ends what is left of the job (mpirun, then the ranks this job reported) and removes its files.
    override func cleanUp(grace: Double = 10) {
        let ranks = process.isRunning ? Array(rankPIDs.values) : []
        super.cleanUp(grace: grace)
        for pid in ranks { kill(pid, SIGKILL) }
    }
}
