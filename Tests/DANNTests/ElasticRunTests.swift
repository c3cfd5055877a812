import Foundation
import XCTest
@testable import DANN

/// scripts/elastic-run.sh: a rank killed (SIGKILL) in the middle of a run makes the script resume from the last
/// checkpoint, and the run ends with the weights of an uninterrupted one — the same bytes at the same rank count,
/// within 1e-4 after a restart at fewer ranks. Failures a restart cannot help end it at once; the train flags
/// reach every attempt unchanged.
final class ElasticRunTests: XCTestCase {
    var script: String { TestPaths.packageRoot.appendingPathComponent("scripts/elastic-run.sh").path }
    /// Four epochs of 10 steps, a checkpoint every step: a kill after step 3 leaves most of the run to resume.
    let steps = 40

    func testRankKilledMidRunIsRestartedToTheUninterruptedRunsBytes() throws {
        let out = TestPaths.temporaryDirectory("elastic-same-np")
        defer { try? FileManager.default.removeItem(at: out) }
        try superviseAndKillRankOne(out: out, np: 2, npOnRestart: 2)
        XCTAssertEqual(try finalModelBytes(out), try finalModelBytes(try uninterruptedRun()), "restarted at np=2 vs straight at np=2")
    }

    func testRestartAtFewerRanksEndsWithinFloatRoundingOfTheUninterruptedRun() throws {
        let out = TestPaths.temporaryDirectory("elastic-fewer")
        defer { try? FileManager.default.removeItem(at: out) }
        let stdout = try superviseAndKillRankOne(out: out, np: 2, npOnRestart: 1)
        XCTAssertTrue(stdout.contains("│ ranks             │ 1 on "), "the restart ran at one rank: \(stdout)")
        let error = tensorRelativeError(try finalWeights(out), try finalWeights(try uninterruptedRun()))
        print(String(format: "restarted at np=1 vs straight at np=2: relative error %.2e", error))
        XCTAssertLessThanOrEqual(error, 1e-4)
    }

    func testRestartsAreCountedAndEachResumesWithTheSameFlags() throws {
        let fake = try FakeTrainer(checkpointThenDie)
        defer { fake.remove() }
        let flagsFor = { (out: URL) in ["--steps", "5", "--seed", "7", "--out", out.path] }
        let flags = flagsFor(fake.out)
        let result = try fake.supervise(["--max-restarts", "2", "--np", "2", "--np-on-restart", "1", "--"] + flags, script: script)
        XCTAssertEqual(result.status, try FakeTrainer.plainMPIRunStatus(checkpointThenDie, flagsFor), result.stderr)
        let calls = fake.calls
        XCTAssertEqual(calls.map(\.ranks), [2, 1, 1], "one attempt and --max-restarts 2 restarts, at --np then --np-on-restart")
        XCTAssertEqual(calls.first?.arguments, ["train"] + flags)
        for call in calls.dropFirst() { XCTAssertEqual(call.arguments, ["train"] + flags + ["--resume"]) }
        let lines = supervisorLines(result.stderr)
        XCTAssertEqual(lines.count, 3, result.stderr)
        XCTAssertTrue(lines[0].hasPrefix("elastic-run: attempt 1 (np 2) failed: rank 0 on ") && lines[0].contains("killed by signal \(SIGKILL)")
                      && lines[0].hasSuffix("restart 1/2: attempt 2 resumes from step-1 with np 1"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("elastic-run: attempt 2 (np 1) failed: ") && lines[1].hasSuffix("restart 2/2: attempt 3 resumes from step-2 with np 1"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("elastic-run: attempt 3 (np 1) failed: ") && lines[2].hasSuffix("not restarted: no restarts left (--max-restarts 2)"), lines[2])
    }

    func testFailureBeforeAnyCheckpointIsNotRestarted() throws {
        let fake = try FakeTrainer("exit 3")
        defer { fake.remove() }
        let flagsFor = { (out: URL) in ["--steps", "5", "--out", out.path] }
        let result = try fake.supervise(["--np", "2", "--"] + flagsFor(fake.out), script: script)
        XCTAssertEqual(result.status, try FakeTrainer.plainMPIRunStatus("exit 3", flagsFor), result.stderr)
        XCTAssertEqual(fake.calls.count, 1)
        XCTAssertEqual(supervisorLines(result.stderr).count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("not restarted: the run wrote no checkpoint to resume from"), result.stderr)
    }

    func testTwoAttemptsInARowWithoutANewCheckpointEndIt() throws {
        // An earlier run's checkpoint to resume from, and a trainer that dies before writing another.
        let fake = try FakeTrainer("kill -9 $$")
        defer { fake.remove() }
        let checkpoints = fake.out.appendingPathComponent("checkpoints")
        try FileManager.default.createDirectory(at: checkpoints.appendingPathComponent("step-5"), withIntermediateDirectories: true)
        try "step-5\n".write(to: checkpoints.appendingPathComponent("latest"), atomically: true, encoding: .utf8)
        let flagsFor = { (out: URL) in ["--resume", "--out", out.path] }
        let flags = flagsFor(fake.out)
        let result = try fake.supervise(["--np", "2", "--max-restarts", "5", "--"] + flags, script: script)
        XCTAssertEqual(result.status, try FakeTrainer.plainMPIRunStatus("kill -9 $$", flagsFor), result.stderr)
        XCTAssertEqual(fake.calls.map(\.arguments), [["train"] + flags, ["train"] + flags], "--resume given once is not added again")
        let lines = supervisorLines(result.stderr)
        XCTAssertEqual(lines.count, 2, result.stderr)
        XCTAssertTrue(lines[0].hasSuffix("restart 1/5: attempt 2 resumes from step-5 with np 2"), lines[0])
        XCTAssertTrue(lines[1].hasSuffix("not restarted: two attempts in a row ended without a new checkpoint"), lines[1])
    }

    func testErrorsDannDistReportsAreNotRestarted() throws {
        let out = TestPaths.temporaryDirectory("elastic-error")
        defer { try? FileManager.default.removeItem(at: out) }
        let missing = out.appendingPathComponent("no-such-data").path
        var noData = try distributedTrainArguments(out: out, steps: 5)
        noData[try XCTUnwrap(noData.firstIndex(of: "--data")) + 1] = missing
        for arguments in [["train", "--batch-size", "many", "--out", out.path], noData] {
            let reference = try runMPI(ranks: 2, arguments)
            XCTAssertNotEqual(reference.status, 0)
            let result = try runSupervisor(["--np", "2", "--max-restarts", "3", "--"] + Array(arguments.dropFirst()))
            XCTAssertEqual(result.status, reference.status, result.stderr)
            let lines = supervisorLines(result.stderr)
            XCTAssertEqual(lines.count, 1, result.stderr)
            XCTAssertTrue(lines.first?.hasSuffix("not restarted: dann-dist reported the error itself, a restart would repeat it") == true, result.stderr)
        }
    }

    func testHelpAndBadOptions() throws {
        var result = try runSupervisor(["--help"])
        XCTAssertEqual(result.status, 0)
        for option in ["--max-restarts N", "--np N", "--np-on-restart K", "MPIRUN_FLAGS", "DANN_DIST"] {
            XCTAssertTrue(result.stdout.contains(option), "help names \(option): \(result.stdout)")
        }
        for (arguments, message) in [(["--max-restarts", "x", "--steps", "2"], "--max-restarts needs an integer ≥ 0, not 'x'"),
                                     (["--np", "0", "--out", "runs/x"], "--np needs an integer ≥ 1, not '0'"),
                                     (["--steps", "2"], "give the run's folder with --out DIR")] {
            result = try runSupervisor(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(message), result.stderr)
        }
    }

    // MARK: - Helpers

    /// Runs the training flags of `distributedTrainArguments` under the script at `np` ranks (restarts at
    /// `npOnRestart`), SIGKILLs rank 1 once a checkpoint of step 3 or later exists, and checks that exactly one
    /// restart happened and resumed a step in the middle of the run. Returns the run's stdout.
    @discardableResult
    private func superviseAndKillRankOne(out: URL, np: Int, npOnRestart: Int) throws -> String {
        try requireMPIRun()
        let flags = Array(try distributedTrainArguments(out: out, steps: steps).dropFirst()) + ["--verbose-ranks"]
        let job = try MPIJob(command: "/bin/bash", [script, "--np", String(np), "--np-on-restart", String(npOnRestart),
                                                    "--max-restarts", "2", "--"] + flags,
                             environment: try supervisorEnvironment())
        defer { job.cleanUp() }
        let checkpointed = try XCTUnwrap(waitForCheckpoint(out, atLeast: 3, job: job, timeout: 120), "no checkpoint of step 3: \(job.stderr)")
        let victim = try XCTUnwrap(job.rankPIDs[1], job.stderr)
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        XCTAssertTrue(job.waitForExit(timeout: 300), "the supervised run did not end: \(job.stderr)")
        XCTAssertEqual(job.status, 0, job.stderr)

        let lines = supervisorLines(job.stderr)
        XCTAssertEqual(lines.count, 1, job.stderr)
        let line = try XCTUnwrap(lines.first)
        XCTAssertTrue(line.hasPrefix("elastic-run: attempt 1 (np \(np)) failed: rank 1 on ") && line.contains("killed by signal \(SIGKILL)"), line)
        XCTAssertTrue(line.contains("restart 1/2: attempt 2 resumes from step-") && line.hasSuffix("with np \(npOnRestart)"), line)
        let stdout = job.stdout
        let resumedAt = try XCTUnwrap(stdout.components(separatedBy: "resuming at ").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) },
                                      stdout)
        XCTAssertTrue((checkpointed..<steps).contains(resumedAt), "resumed at \(resumedAt), killed after checkpoint \(checkpointed)")
        XCTAssertEqual(CheckpointStore.steps(in: out.appendingPathComponent("checkpoints").path).last, steps)
        return stdout
    }

    /// The step of the run's latest checkpoint once it is `step` or later and rank 1 has told its pid; nil if the
    /// job ends or `timeout` seconds pass first.
    private func waitForCheckpoint(_ out: URL, atLeast step: Int, job: MPIJob, timeout: Double) -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && job.process.isRunning {
            if let folder = try? CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path),
               let found = Int(URL(fileURLWithPath: folder).lastPathComponent.dropFirst("step-".count)), found >= step,
               job.rankPIDs[1] != nil {
                return found
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    /// The same flags at 2 ranks under a plain mpirun, once for the whole class.
    nonisolated(unsafe) private static var reference: Result<URL, Error>?  // XCTest runs a class's tests one at a time

    private func uninterruptedRun() throws -> URL {
        if let reference = Self.reference { return try reference.get() }
        let reference = Result { () throws -> URL in
            let out = TestPaths.temporaryDirectory("elastic-straight")
            let result = try runMPI(ranks: 2, try distributedTrainArguments(out: out, steps: steps))
            guard result.status == 0 else { throw DANNError("the uninterrupted run failed: \(result.stderr)") }
            return out
        }
        Self.reference = reference
        return try reference.get()
    }

    override class func tearDown() {
        if case let .success(out)? = reference { try? FileManager.default.removeItem(at: out) }
        super.tearDown()
    }

    private func supervisorEnvironment(binary: String? = nil) throws -> [String: String] {
        var environment = environmentWithoutLauncher()
        environment["DANN_DIST"] = try binary ?? executable()
        // Shared memory only, as runMPI launches the reference runs.
        environment["MPIRUN_FLAGS"] = "--mca btl self,vader"
        return environment
    }

    private func runSupervisor(_ arguments: [String], binary: String? = nil) throws -> RunResult {
        try run("/bin/bash", [script] + arguments, environment: try supervisorEnvironment(binary: binary), timeout: 300)
    }

    /// The script's own lines (mpirun's and the ranks' output pass through the same stderr).
    private func supervisorLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("elastic-run: ") }
    }

    /// A fake trainer's step: write checkpoint `step-<call number>`, then die as a killed rank does.
    private var checkpointThenDie: String {
        #"mkdir -p "$out/checkpoints/step-$n" && echo "step-$n" > "$out/checkpoints/latest.tmp" && mv "$out/checkpoints/latest.tmp" "$out/checkpoints/latest"; kill -9 $$"#
    }
}

/// A stand-in for dann-dist, so the script's decisions can be checked in a second: started by mpirun at every
/// rank, rank 0 records its rank count and arguments (one file per call) and then runs `body`, a bash snippet
/// that sees the --out folder as $out and the call's number (1, 2, …) as $n; the other ranks exit 0.
private final class FakeTrainer {
    let folder = TestPaths.temporaryDirectory("elastic-fake")
    /// A run folder with a space in its name: the flags must reach the trainer as the words they were.
    var out: URL { folder.appendingPathComponent("run folder") }
    private var callsFolder: URL { folder.appendingPathComponent("calls") }
    var binary: String { folder.appendingPathComponent("dann-dist").path }

    init(_ body: String) throws {
        try FileManager.default.createDirectory(at: callsFolder, withIntermediateDirectories: true)
        let text = """
            #!/bin/bash
            [ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ] || exit 0
            calls='\(callsFolder.path)'
            n=$(( $(ls "$calls" | wc -l) + 1 ))
            { echo "$OMPI_COMM_WORLD_SIZE"; printf '%s\\n' "$@"; } > "$calls/$n"
            out=; previous=; for word in "$@"; do [ "$previous" = --out ] && out="$word"; previous="$word"; done
            \(body)

            """
        try text.write(toFile: binary, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)
    }

    /// Each call's rank count and arguments, in order.
    var calls: [(ranks: Int, arguments: [String])] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: callsFolder.path)) ?? []).compactMap(Int.init).sorted()
        return names.map { name in
            let lines = ((try? String(contentsOf: callsFolder.appendingPathComponent(String(name)), encoding: .utf8)) ?? "")
                .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            return (Int(lines.first ?? "") ?? 0, Array(lines.dropFirst()))
        }
    }

    func supervise(_ arguments: [String], script: String) throws -> RunResult {
        try ChildProcess.requireMPIRun()
        var environment = ChildProcess.environmentWithoutLauncher()
        environment["DANN_DIST"] = binary
        return try ChildProcess.run("/bin/bash", [script] + arguments, environment: environment, timeout: 120)
    }

    /// The exit status of a plain mpirun (2 ranks) of a fresh fake trainer running `body`: the reference for the
    /// script's own exit status.
    static func plainMPIRunStatus(_ body: String, _ flags: (URL) -> [String]) throws -> Int32 {
        let fake = try FakeTrainer(body)
        defer { fake.remove() }
        return try ChildProcess.runMPIRun(["-np", "2", fake.binary, "train"] + flags(fake.out)).status
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}
