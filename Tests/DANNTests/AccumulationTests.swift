import XCTest
@testable import DANN

/// `--accumulate K` in one process (docs/design.md §3.11): K passes of B images make the step one pass of K·B
/// images would (same images, same dropout masks, same loss normalisation), steps and epochs count K·B, the
/// run resumes bit for bit, and batch norm normalises each pass by its own statistics.
final class AccumulationTests: XCTestCase {
    /// A few `seed` steps (the preset with dropout, so the masks' keys are part of what is compared), MNIST both
    /// sides, 256 images each, one BLAS thread, no test sets (evaluation would dominate the time).
    func config(_ out: URL, batch: Int, accumulate: Int, steps: Int = 2, arch: String = "seed") throws -> TrainingConfig {
        var c = TrainingConfig()
        c.source = .mnist
        c.target = .mnist
        c.dataDir = try distributedTrainingData()
        c.arch = arch
        c.steps = steps
        c.batchSize = batch
        c.accumulate = accumulate
        c.limitSource = 256
        c.limitTarget = 256
        c.seed = 11
        c.out = out.path
        c.evalEvery = 1000
        c.checkpointEvery = 1000
        c.threads = 1
        return c
    }

    func train(_ c: TrainingConfig, resume: Bool = false, stopAt: Int? = nil, dump: String? = nil) throws -> Trainer {
        let trainer = try Trainer(config: c, communicator: SingleProcessCommunicator(), resume: resume)
        trainer.stopAtStep = stopAt
        trainer.gradientDumpPath = dump
        _ = try trainer.run()
        return trainer
    }

    /// `--batch-size 16 --accumulate 2` against `--batch-size 32`: the first step's gradient and the weights
    /// after 2 steps. Both runs see the same 32 + 32 images per step with the same dropout masks and the same
    /// 1/32 loss scale, so they differ only in the order Floats are added: the dW GEMM and the bias sums over
    /// 32 rows become two sums over 16 added together. Each such reordering moves a gradient element by a few
    /// Float ulps of the terms (~1e-7 relative); §3.6's 1e-5 on the gradient (for sums split over ranks, the
    /// same kind of reordering) covers it. The weights then differ by lr × those differences, far below
    /// 1e-6 of their norm.
    func testTwoPassesOfBEqualOnePassOfTwoB() throws {
        let one = TestPaths.temporaryDirectory("acc-one"), two = TestPaths.temporaryDirectory("acc-two")
        defer { for url in [one, two] { try? FileManager.default.removeItem(at: url) } }
        let oneDump = one.appendingPathComponent("gradient.safetensors").path
        let twoDump = two.appendingPathComponent("gradient.safetensors").path
        let reference = try train(try config(one, batch: 32, accumulate: 1), dump: oneDump)
        let accumulated = try train(try config(two, batch: 16, accumulate: 2), dump: twoDump)
        XCTAssertEqual(reference.totalSteps, 2)
        XCTAssertEqual(accumulated.totalSteps, 2)

        let g1 = try floatTensors(SafeTensors.read(path: oneDump).tensors), g2 = try floatTensors(SafeTensors.read(path: twoDump).tensors)
        XCTAssertGreaterThan(tensorNorm(g1), 1e-3, "a real gradient")
        let gradientError = tensorRelativeError(g2, g1)
        let w1 = try finalWeights(one), w2 = try finalWeights(two)
        let weightError = tensorRelativeError(w2, w1)
        print(String(format: "accumulate np=1 (seed): first gradient relative error %.2e, weights after 2 steps %.2e", gradientError, weightError))
        XCTAssertLessThanOrEqual(gradientError, 1e-5)
        XCTAssertLessThanOrEqual(weightError, 1e-6)
        // A pass of the wrong images or masks would be far off: the second half of the batch alone differs by O(1).
        let half = TestPaths.temporaryDirectory("acc-half")
        defer { try? FileManager.default.removeItem(at: half) }
        let halfDump = half.appendingPathComponent("gradient.safetensors").path
        _ = try train(try config(half, batch: 16, accumulate: 1, steps: 1), dump: halfDump)
        XCTAssertGreaterThan(tensorRelativeError(try floatTensors(SafeTensors.read(path: halfDump).tensors), g1), 0.1)
    }

    /// Steps count optimizer steps of K·B images: steps per epoch = ⌊N / (K·B)⌋, --epochs multiplies it, and the
    /// step counter of the checkpoints, the metrics and trainer.safetensors counts steps, not passes.
    func testStepsAndEpochsCountKTimesBImages() throws {
        let out = TestPaths.temporaryDirectory("acc-epochs")
        defer { try? FileManager.default.removeItem(at: out) }
        var c = try config(out, batch: 20, accumulate: 3, arch: "small")
        c.steps = nil
        c.epochs = 2
        c.limitSource = 250   // ⌊250 / 60⌋ = 4 steps per epoch; passes of 20 would make 12
        let trainer = try Trainer(config: c, communicator: SingleProcessCommunicator())
        trainer.callbacks = [RunRecorder(directory: out.path)]
        XCTAssertEqual(trainer.data.stepsPerEpoch, 4)
        XCTAssertEqual(trainer.totalSteps, 8)
        XCTAssertEqual(trainer.gatherRunInfo().stepsPerEpoch, 4)
        XCTAssertEqual(try trainer.run(), .finished(step: 8))
        let rows = try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.map { Int($0.split(separator: ",")[0])! }, Array(1...8))
        XCTAssertEqual(rows.map { Int($0.split(separator: ",")[1])! }, [1, 1, 1, 1, 2, 2, 2, 2], "epoch column")
        let state = try SafeTensors.read(path: out.appendingPathComponent("checkpoints/step-00000008/trainer.safetensors").path)
        XCTAssertEqual(state.tensors["step"]?.int64Values, [8])
        XCTAssertEqual(state.tensors["epoch"]?.int64Values, [2])
        XCTAssertEqual(state.tensors["optimizer_steps"]?.int64Values, [8])
        XCTAssertEqual(state.tensors["target_cursor"]?.int64Values, [8 * 60])

        // A step larger than the source set is refused with the product named.
        var big = c
        big.accumulate = 13   // 13 × 20 > 250
        XCTAssertThrowsError(try Trainer(config: big, communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("fewer than one step's 13 × 20"), "\($0)")
        }
        XCTAssertEqual(SampleOrder.stepsPerEpoch(sourceCount: 250, globalBatch: 60), 4)
    }

    /// The samples of step s: pass k of rank r reads offsets k·B + (r's slice of B) of the step's K·B, which are
    /// the images a one-pass run with batch K·B reads there, at 1, 2 and 3 ranks, across an epoch change.
    func testPassesReadTheImagesOfOneLargeBatch() throws {
        let data = DataConfig(source: .svhn, target: .mnist, dataDir: try DataFixtures.committedDataDir(), inputSize: 28,
                              normalize: false, limitSource: nil, limitTarget: 50, seed: 99, shuffle: true)
        let large = try DomainBatches(config: data, globalBatch: 96, rank: 0, size: 1)
        XCTAssertEqual(large.stepsPerEpoch, 1083 / 96)
        let floats = 3 * 28 * 28
        var expectSource = [Float](repeating: 0, count: 96 * floats), expectTarget = expectSource
        var expectLabels = [Int32](repeating: 0, count: 96)
        for ranks in 1...3 {
            let batches = try (0..<ranks).map { try DomainBatches(config: data, globalBatch: 32, rank: $0, size: ranks, accumulation: 3) }
            XCTAssertEqual(batches[0].stepsPerEpoch, large.stepsPerEpoch)
            XCTAssertEqual(batches[0].stepBatch, 96)
            for step in [0, large.stepsPerEpoch - 1, large.stepsPerEpoch + 1] {
                try large.fill(step: step, source: &expectSource, labels: &expectLabels, target: &expectTarget)
                var covered = 0
                for (rank, shard) in batches.enumerated() {
                    let local = shard.localSlice.count
                    for pass in 0..<3 {
                        var source = [Float](repeating: .nan, count: local * floats), target = source
                        var labels = [Int32](repeating: -1, count: local)
                        try shard.fill(step: step, pass: pass, source: &source, labels: &labels, target: &target)
                        let offsets = shard.stepOffsets(pass: pass)
                        XCTAssertEqual(offsets.count, local)
                        XCTAssertEqual(offsets.lowerBound, pass * 32 + shard.localSlice.lowerBound)
                        let floatsRange = offsets.lowerBound * floats ..< offsets.upperBound * floats
                        XCTAssertTrue(source == Array(expectSource[floatsRange]), "source, step \(step) rank \(rank)/\(ranks) pass \(pass)")
                        XCTAssertTrue(target == Array(expectTarget[floatsRange]), "target, step \(step) rank \(rank)/\(ranks) pass \(pass)")
                        XCTAssertEqual(labels, Array(expectLabels[offsets]), "labels, step \(step) rank \(rank)/\(ranks) pass \(pass)")
                        covered += local
                    }
                }
                XCTAssertEqual(covered, 96)
            }
        }
    }

    /// A run with --accumulate 2 stopped mid-way resumes to the uninterrupted run's bytes; resuming it with
    /// another --accumulate is refused (the setting is part of the run's identity).
    func testResumeWithAccumulationIsBitExact() throws {
        let straight = TestPaths.temporaryDirectory("acc-straight"), stopped = TestPaths.temporaryDirectory("acc-stopped")
        defer { for url in [straight, stopped] { try? FileManager.default.removeItem(at: url) } }
        func small(_ out: URL) throws -> TrainingConfig {
            var c = try config(out, batch: 16, accumulate: 2, steps: 6, arch: "small")
            c.checkpointEvery = 1
            return c
        }
        _ = try train(try small(straight))
        XCTAssertEqual(try train(try small(stopped), stopAt: 4).step, 4)
        XCTAssertEqual(try train(try small(stopped), resume: true).step, 6)
        XCTAssertEqual(try finalModelBytes(stopped), try finalModelBytes(straight))

        var other = try small(stopped)
        other.accumulate = 1
        XCTAssertThrowsError(try Trainer(config: other, communicator: SingleProcessCommunicator(), resume: true, explicit: ["accumulate"])) {
            XCTAssertTrue("\($0)".contains("--accumulate 2 (asked 1)"), "\($0)")
        }
        // Not repeated on the command line, it comes from the checkpoint.
        var bare = TrainingConfig()
        bare.out = stopped.path
        bare.dataDir = try distributedTrainingData()
        XCTAssertEqual(try Trainer(config: bare, communicator: SingleProcessCommunicator(), resume: true, explicit: []).config.accumulate, 2)
    }

    /// With batch norm each pass is normalised by its own pass's statistics (as PyTorch does under
    /// accumulation): the running statistics take K batches per domain and step (so they move further than a
    /// one-pass run's), and the parameters are not the one-pass run's (whose statistics are over K·B rows).
    func testBatchNormTakesEachPassAsABatch() throws {
        let passes = TestPaths.temporaryDirectory("acc-bn"), whole = TestPaths.temporaryDirectory("acc-bn-whole")
        defer { for url in [passes, whole] { try? FileManager.default.removeItem(at: url) } }
        var c = try config(passes, batch: 16, accumulate: 2, steps: 3, arch: "small-bn")
        c.runningStats = .everyDomain
        _ = try train(c)
        var w = try config(whole, batch: 32, accumulate: 1, steps: 3, arch: "small-bn")
        w.runningStats = .everyDomain
        _ = try train(w)
        let folder = try XCTUnwrap(try CheckpointStore.latest(in: passes.appendingPathComponent("checkpoints").path))
        let model = try SafeTensors.read(path: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName).path)
        XCTAssertEqual(model.tensors["E.1.num_batches_tracked"]?.int64Values, [3 * 2 * 2], "3 steps × 2 passes × 2 domains")
        let (perPass, oneBatch) = (try finalWeights(passes), try finalWeights(whole))
        func parameters(_ tensors: [String: [Float]]) -> [String: [Float]] { tensors.filter { !$0.key.contains("running_") } }
        let error = tensorRelativeError(parameters(perPass), parameters(oneBatch))
        print(String(format: "small-bn, 3 steps of 2 × 16 against 1 × 32: parameters differ by %.2e (relative)", error))
        XCTAssertGreaterThan(error, 1e-6, "per-pass statistics are not the statistics of the whole step")
        XCTAssertLessThan(error, 0.05, "but the same images train nearby weights")
        // The running mean took 6 updates of momentum 0.1 instead of 3: further from its initial zeros.
        XCTAssertGreaterThan(tensorNorm(["m": perPass["E.1.running_mean"] ?? []]), tensorNorm(["m": oneBatch["E.1.running_mean"] ?? []]))
    }
}
