import XCTest
@testable import DANN

/// The loop driven through the library with one process: determinism, exact resume, refusal of a foreign
/// checkpoint, the run directory's files read back by other tools.
final class TrainerTests: XCTestCase {
    /// 256 MNIST source images at batch 32 → 8 steps per epoch, so 12 steps cross an epoch boundary.
    func config(_ out: URL, steps: Int = 12, seed: UInt64 = 7) -> TrainingConfig {
        var c = TrainingConfig()
        c.source = .mnist
        c.target = .mnist
        c.dataDir = TestPaths.repositoryData.path
        c.arch = "small"
        c.steps = steps
        c.batchSize = 32
        c.limitSource = 256
        c.limitTarget = 300
        c.seed = seed
        c.out = out.path
        c.evalEvery = 1000
        c.checkpointEvery = 4
        c.threads = 1
        return c
    }

    func train(_ c: TrainingConfig, resume: Bool = false, stopAt: Int? = nil, callbacks: [TrainingCallback] = []) throws -> Trainer.Outcome {
        let trainer = try Trainer(config: c, communicator: SingleProcessCommunicator(), resume: resume)
        trainer.stopAtStep = stopAt
        trainer.callbacks = callbacks
        return try trainer.run()
    }

    func finalModel(_ out: URL) throws -> Data {
        let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
        return try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent("model.safetensors"))
    }

    func testResumeEqualsUninterruptedRunAcrossEpochBoundary() throws {
        let straight = TestPaths.temporaryDirectory("straight"), resumed = TestPaths.temporaryDirectory("resumed")
        XCTAssertEqual(try train(config(straight)), .finished(step: 12))
        // Stop inside the second epoch (step 10) and, separately, exactly at the boundary (step 8).
        for stop in [10, 8] {
            try? FileManager.default.removeItem(at: resumed)
            let outcome = try train(config(resumed), stopAt: stop, callbacks: [RunRecorder(directory: resumed.path)])
            guard case let .interrupted(step, folder) = outcome else { return XCTFail("expected an interruption, got \(outcome)") }
            XCTAssertEqual(step, stop)
            XCTAssertTrue(folder.hasSuffix(CheckpointStore.folderName(step: stop)))
            XCTAssertEqual(try train(config(resumed), resume: true, callbacks: [RunRecorder(directory: resumed.path)]), .finished(step: 12))
            XCTAssertEqual(try finalModel(straight), try finalModel(resumed), "resumed at \(stop)")
        }
        // metrics.csv of the resumed run has each step once.
        let rows = try String(contentsOf: resumed.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.map { Int($0.split(separator: ",")[0])! }, Array(1...12))
    }

    func testSameSeedGivesIdenticalBytesAndAnotherSeedDoesNot() throws {
        let a = TestPaths.temporaryDirectory("a"), b = TestPaths.temporaryDirectory("b"), c = TestPaths.temporaryDirectory("c")
        _ = try train(config(a, steps: 5))
        _ = try train(config(b, steps: 5))
        _ = try train(config(c, steps: 5, seed: 8))
        XCTAssertEqual(try finalModel(a), try finalModel(b))
        XCTAssertNotEqual(try finalModel(a), try finalModel(c))
    }

    func testResumeRefusesACheckpointOfAnotherRun() throws {
        let out = TestPaths.temporaryDirectory("refuse")
        _ = try train(config(out, steps: 4))
        var other = config(out, steps: 4)
        other.source = .mnistM
        XCTAssertThrowsError(try Trainer(config: other, communicator: SingleProcessCommunicator(), resume: true, explicit: ["source"])) { error in
            XCTAssertTrue("\(error)".contains("different run"), "\(error)")
            XCTAssertTrue("\(error)".contains("--source mnist (asked mnist_m)"), "\(error)")
        }
        // Settings not given explicitly come from the checkpoint.
        var bare = TrainingConfig()
        bare.out = out.path
        bare.dataDir = TestPaths.repositoryData.path
        let trainer = try Trainer(config: bare, communicator: SingleProcessCommunicator(), resume: true, explicit: [])
        XCTAssertEqual(trainer.config.arch, "small")
        XCTAssertEqual(trainer.step, 4)
    }

    func testResumeWithoutCheckpointAndInitWithWrongShapesFail() throws {
        let empty = TestPaths.temporaryDirectory("empty")
        XCTAssertThrowsError(try Trainer(config: config(empty), communicator: SingleProcessCommunicator(), resume: true)) {
            XCTAssertTrue("\($0)".contains("no checkpoints/latest"), "\($0)")
        }
        let smallRun = TestPaths.temporaryDirectory("small")
        _ = try train(config(smallRun, steps: 1))
        var c = config(TestPaths.temporaryDirectory("seed-init"), steps: 1)
        c.arch = "seed"
        c.initPath = smallRun.path
        XCTAssertThrowsError(try Trainer(config: c, communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("model.safetensors"), "names the file: \($0)")
        }
    }

    func testNaNLossStopsWithOneLine() throws {
        var c = config(TestPaths.temporaryDirectory("nan"), steps: 12)
        c.lr = 1e12
        XCTAssertThrowsError(try train(c)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("the loss is"), text)
            XCTAssertFalse(text.contains("\n"))
        }
    }

    /// The shipped TensorBoard reader sees every scalar of metrics.csv at the same steps with the same values.
    func testTensorBoardReaderAgreesWithMetricsCSV() throws {
        let out = TestPaths.temporaryDirectory("tb")
        var c = config(out, steps: 6)
        c.evalEvery = 3
        c.limitTarget = 64
        _ = try train(c, callbacks: [RunRecorder(directory: out.path)])
        let script = """
        import csv, json, sys
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            print("SKIP"); sys.exit(0)
        acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0}); acc.Reload()
        rows = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv")))
        checked = 0
        for tag in acc.Tags()["scalars"]:
            events = {e.step: e.value for e in acc.Scalars(tag)}
            expected = {int(r["step"]): float(r[tag]) for r in rows if r[tag] != ""}
            assert set(events) == set(expected), (tag, sorted(events), sorted(expected))
            for step, value in expected.items():
                assert abs(events[step] - value) <= 1e-6 * max(1.0, abs(value)), (tag, step, events[step], value)
                checked += 1
        print(json.dumps({"tags": sorted(acc.Tags()["scalars"]), "checked": checked}))
        """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, out.path])
        if result.stdout.hasPrefix("SKIP") { throw XCTSkip("python tensorboard is not installed (pip install tensorboard)") }
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let tags = try XCTUnwrap(json["tags"] as? [String])
        XCTAssertEqual(Set(tags), ["epoch", "lr", "lambda", "label_loss", "domain_loss", "label_acc", "domain_acc", "mnist_test_acc", "images_per_s"])
        XCTAssertEqual(json["checked"] as? Int, 8 * 6 + 2)
        for plot in ["losses", "schedule", "accuracy"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("plots/\(plot).png").path), plot)
        }
    }

    /// Python's safetensors package reads the checkpoint with the seed's names and PyTorch shapes.
    func testCheckpointReadsInPythonSafetensors() throws {
        let out = TestPaths.temporaryDirectory("st")
        _ = try train(config(out, steps: 1))
        let folder = try XCTUnwrap(try CheckpointStore.latest(in: out.appendingPathComponent("checkpoints").path))
        let script = """
        import json, sys
        try:
            from safetensors.numpy import load_file
        except ImportError:
            print("SKIP"); sys.exit(0)
        m = load_file(sys.argv[1] + "/model.safetensors")
        t = load_file(sys.argv[1] + "/trainer.safetensors")
        print(json.dumps({"model": {k: list(v.shape) for k, v in m.items()}, "dtype": str(m["E.0.weight"].dtype),
                          "step": int(t["step"]), "momentum": sorted(k for k in t if k.startswith("momentum."))}))
        """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, folder])
        if result.stdout.hasPrefix("SKIP") { throw XCTSkip("python safetensors is not installed (pip install safetensors)") }
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let shapes = try XCTUnwrap(json["model"] as? [String: [Int]])
        XCTAssertEqual(shapes["E.0.weight"], [32, 3, 5, 5])
        XCTAssertEqual(shapes["E.3.weight"], [48, 32, 5, 5])
        XCTAssertEqual(shapes["G_c.0.weight"], [100, 768])
        XCTAssertEqual(shapes["G_d.2.weight"], [2, 100])
        XCTAssertEqual(shapes.count, 14)
        XCTAssertEqual(json["dtype"] as? String, "float32")
        XCTAssertEqual(json["step"] as? Int, 1)
        XCTAssertEqual((json["momentum"] as? [String])?.count, 14)
    }
}
