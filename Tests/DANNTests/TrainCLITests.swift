import XCTest

/// `dann-dist train` from outside: every bad flag is one line on stderr and a non-zero exit, before any work.
final class TrainCLITests: XCTestCase {
    func assertOneLineFailure(_ arguments: [String], mentions expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try ChildProcess.runCLI(["train", "--data", TestPaths.repositoryData.path] + arguments, timeout: 120)
        XCTAssertNotEqual(result.status, 0, "\(arguments) should fail", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(expected), "\(arguments): \(result.stderr) lacks '\(expected)'", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
    }

    func testBadFlagsAreOneLine() throws {
        try assertOneLineFailure(["--batch-size", "0"], mentions: "--batch-size must be positive")
        try assertOneLineFailure(["--batch-size", "-3"], mentions: "--batch-size")
        try assertOneLineFailure(["--steps", "0"], mentions: "--steps must be positive")
        try assertOneLineFailure(["--epochs", "-1"], mentions: "--epochs")
        try assertOneLineFailure(["--keep", "0"], mentions: "--keep")
        try assertOneLineFailure(["--dropout", "1.5"], mentions: "--dropout")
        try assertOneLineFailure(["--input-size", "30"], mentions: "--input-size")
        try assertOneLineFailure(["--arch", "resnet"], mentions: "unknown architecture 'resnet'")
        try assertOneLineFailure(["--source", "cifar"], mentions: "'cifar' is invalid for '--source")
        try assertOneLineFailure(["--steps", "3", "--epochs", "2"], mentions: "--epochs or --steps")
        try assertOneLineFailure(["--limit-source", "0"], mentions: "--limit-source")
        try assertOneLineFailure(["--frobnicate"], mentions: "--frobnicate")
        try assertOneLineFailure(["--accumulate", "0"], mentions: "--accumulate must be positive, not 0")
        try assertOneLineFailure(["--accumulate", "-2"], mentions: "--accumulate")
        try assertOneLineFailure(["--accumulate", "two"], mentions: "'two' is invalid for '--accumulate")
        try assertOneLineFailure(["--allreduce-dtype", "f64"], mentions: "'f64' is invalid for '--allreduce-dtype")
        try assertOneLineFailure(["--allreduce", "shared", "--allreduce-dtype", "bf16"], mentions: "--allreduce shared sums Float32")
        try assertOneLineFailure(["--allreduce", "ring"], mentions: "'ring' is invalid for '--allreduce")
    }

    /// `train --help` lists both options with what they do (and that one process does not round).
    func testHelpDescribesAccumulationAndAllreduceDType() throws {
        let result = try ChildProcess.runCLI(["train", "--help"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let help = result.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        for text in ["--accumulate <K>", "gradient accumulation", "--allreduce-dtype", "bf16", "fp16", "no rounding"] {
            XCTAssertTrue(help.contains(text), "help lacks '\(text)': \(result.stdout)")
        }
    }

    func testResumeWithoutCheckpointNamesTheFolder() throws {
        let out = TestPaths.temporaryDirectory("no-ckpt")
        try assertOneLineFailure(["--resume", "--out", out.path], mentions: "\(out.path): --resume: no checkpoints/latest")
    }

    func testInitWithWrongShapesNamesTheFile() throws {
        let run = TestPaths.temporaryDirectory("small-for-init")
        let ok = try ChildProcess.runCLI(["train", "--data", TestPaths.repositoryData.path, "--arch", "small", "--source", "mnist",
                                          "--target", "mnist", "--steps", "1", "--batch-size", "8", "--limit-source", "16",
                                          "--limit-target", "16", "--out", run.path, "--threads", "1"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let model = run.appendingPathComponent("checkpoints/step-00000001/model.safetensors").path
        try assertOneLineFailure(["--arch", "seed", "--source", "mnist", "--target", "mnist", "--init", model, "--steps", "1",
                                  "--out", TestPaths.temporaryDirectory("seed-init").path], mentions: model)
    }

    func testMissingDataNamesTheFile() throws {
        let empty = TestPaths.temporaryDirectory("no-data")
        let result = try ChildProcess.runCLI(["train", "--data", empty.path, "--source", "mnist", "--target", "mnist", "--steps", "1"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(empty.path), result.stderr)
    }
}
