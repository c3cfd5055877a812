import XCTest
@testable import DANN

/// scripts/reproduce.sh: the task picks source and target, train flags pass through, a missing full SVHN
/// falls back to the bundled sample with one line, and the final checkpoint is evaluated.
final class ReproduceScriptTests: XCTestCase {
    var script: String { TestPaths.packageRoot.appendingPathComponent("scripts/reproduce.sh").path }

    func testSVHNMNISTRunsTheRecipeOnTheSampleAndEvaluates() throws {
        let data = TestPaths.temporaryDirectory("reproduce-data"), out = TestPaths.temporaryDirectory("reproduce-run")
        defer { for url in [data, out] { try? FileManager.default.removeItem(at: url) } }
        for name in ["mnist", "svhn-sample"] {
            try FileManager.default.createSymbolicLink(at: data.appendingPathComponent(name),
                                                       withDestinationURL: TestPaths.repositoryData.appendingPathComponent(name))
        }
        try FileManager.default.removeItem(at: out)
        var environment = ChildProcess.environmentWithoutLauncher()
        environment["NP"] = "1"
        environment["DANN_DIST"] = try ChildProcess.executable()
        let result = try ChildProcess.run("/bin/bash", [script, "svhn-mnist", "--steps", "2", "--batch-size", "16",
                                                        "--data", data.path, "--out", out.path, "--seed", "4"],
                                          environment: environment, timeout: 300)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("falling back to the bundled sample"), result.stdout)
        XCTAssertTrue(result.stdout.contains("mnist_test") && result.stdout.contains("accuracy"), result.stdout)
        let config = try TrainingConfig.fromJSON(String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8),
                                                 path: "config.json")
        XCTAssertEqual(config.source, .svhn)
        XCTAssertEqual(config.target, .mnist)
        XCTAssertEqual(config.steps, 2)
        XCTAssertEqual(config.seed, 4)
        XCTAssertEqual(config.arch, "small-bn", "the recipe's network")
    }

    func testUnknownTaskIsOneLineAndExitTwo() throws {
        let result = try ChildProcess.runTool("/bin/bash", [script, "mnist-svhn"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("unknown task 'mnist-svhn'"), result.stderr)
    }
}
