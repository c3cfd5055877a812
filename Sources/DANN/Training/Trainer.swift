import Foundation

/// The training loop (docs/design.md §2–§3): every rank fills its slice of the global batch, computes its share
/// of the gradient, the shares are summed over ranks, and every rank takes the same SGD step. Rank 0 alone
/// reports to the callbacks and writes checkpoints. With `--accumulate K` a step is K such passes whose
/// gradients add up in the arena before the one exchange and update (§3.11).
public final class Trainer {
    public let config: TrainingConfig
    public let communicator: Communicator
    public let model: DANNModel
    public let optimizer: Optimizer
    public let data: DomainBatches
    public let totalSteps: Int
    public private(set) var step = 0
    public var callbacks: [TrainingCallback] = []
    /// Stop (with a checkpoint, as on SIGTERM) once this many steps are done: lets tests interrupt a run.
    public var stopAtStep: Int?
    /// Every rank prints a short line per step to stderr, prefixed `[rank r]` (`--verbose-ranks`).
    public var verboseRanks = false
    /// Where rank 0 writes the Chrome trace of every rank's steps at the end of `run` (`--timeline`).
    public var timelinePath: String?
    /// Where rank 0 writes the summed gradient of the first step this run takes, as safetensors under the
    /// weights' names (a hidden flag for the distributed tests).
    public var gradientDumpPath: String?
    public let threadsPerRank: Int

    private let sync: GradientSync
    private let evaluator: Evaluator
    public let testSets: [DatasetName]
    private let images: FloatBuffer
    private let labels: AlignedBuffer<Int32>
    private let localCount: Int
    private var checkpointsDirectory: String { URL(fileURLWithPath: config.out).appendingPathComponent("checkpoints").path }

    public enum Outcome: Equatable {
        case finished(step: Int)
        case interrupted(step: Int, checkpoint: String)
    }

    /// Builds everything a run needs; with `resume`, continues from `latest` under `config.out/checkpoints`.
    /// `explicit` names the settings the user gave (TrainingConfig property names): on resume, the others come
    /// from the checkpoint, and an explicit one that changes the run's identity is refused.
    public init(config requested: TrainingConfig, communicator: Communicator, resume: Bool = false,
                explicit: Set<String> = []) throws {
        self.communicator = communicator
        try requested.validate(ranks: communicator.size)
        var config = requested

        // Resume: rank 0 reads the checkpoint; the others get its weights and state by broadcast.
        var resumeFolder: String? = nil
        var snapshotConfig: TrainingConfig? = nil
        if resume {
            let folder = try Trainer.rootResult(communicator) {
                guard let folder = try CheckpointStore.latest(in: URL(fileURLWithPath: requested.out).appendingPathComponent("checkpoints").path) else {
                    throw DANNError.file(requested.out, "--resume: no checkpoints/latest to resume from")
                }
                return folder
            }
            resumeFolder = folder
            let path = URL(fileURLWithPath: folder).appendingPathComponent(TrainerState.fileName).path
            let text = try Trainer.rootResult(communicator) { () -> String in
                let file = try SafeTensors.read(path: path)
                guard let text = file.metadata["config"] else { throw DANNError.file(path, "has no training config") }
                return text
            }
            let saved = try TrainingConfig.fromJSON(text, path: path)
            let merged = try saved.overriding(with: requested, keys: explicit.union(["out", "dataDir"]))
            let differences = saved.runIdentity.filter { merged.runIdentity[$0.key] != $0.value }.keys.sorted()
            guard differences.isEmpty else {
                let list = differences.map { "--\($0) \(saved.runIdentity[$0]!) (asked \(merged.runIdentity[$0]!))" }.joined(separator: ", ")
                throw DANNError.file(folder, "checkpoint belongs to a different run: \(list)")
            }
            snapshotConfig = saved
            config = merged
            try config.validate(ranks: communicator.size)
        }
        self.config = config

        threadsPerRank = defaultThreadsPerRank(localSize: communicator.localSize, override: config.threads)
        BLAS.setThreads(threadsPerRank)

        let arch = try Architecture.named(config.arch).withInputSize(config.inputSize)
        // --allreduce shared (§3.12): the arenas go to node-shared memory, which every rank maps.
        let oneNode = communicator.localSize == communicator.size
        let mode = config.allreduce.resolved(ranks: communicator.size, oneNode: oneNode, dtype: config.allreduceDtype)
        if mode == .shared && !oneNode {
            throw DANNError("--allreduce shared needs every rank on one node (\(communicator.localSize) of \(communicator.size) ranks are on this one); use buckets")
        }
        // If the memory cannot be had (all ranks learn it together), `auto` falls back to buckets.
        var shared: SharedArenas? = nil
        var fallback: String? = nil
        model = try DANNModel(architecture: arch, dropout: Float(config.dropout), arenaStorage: mode == .shared ? { count in
            do {
                shared = try SharedArenas.make(communicator, count: count, stateBuffers: config.optimizer.stateBufferCount)
            } catch let error as DANNError where config.allreduce == .auto {
                fallback = error.message
            }
            return shared?.storage
        } : nil)
        if let fallback, communicator.isRoot {
            FileHandle.standardError.write(Data("note: --allreduce auto uses buckets: \(fallback)\n".utf8))
        }
        model.shareBatchStatistics(over: communicator)
        for (_, norm) in model.batchNorms { norm.runningStatistics = config.runningStats }
        optimizer = makeOptimizer(config, count: model.parameterCount, state: shared?.optimizerState)
        data = try DomainBatches(config: config.dataConfig, globalBatch: config.batchSize, rank: communicator.rank, size: communicator.size,
                                 accumulation: config.accumulate)
        guard data.stepsPerEpoch > 0 else {
            throw DANNError("\(config.source.rawValue) has \(data.sourceCount) training images, fewer than one step's \(config.stepBatch) (--batch-size × --accumulate)")
        }
        guard let total = config.totalSteps(stepsPerEpoch: data.stepsPerEpoch) else {
            throw DANNError("--epochs \(config.epochs) × \(data.stepsPerEpoch) steps per epoch exceeds \(TrainingConfig.maximumSteps) steps")
        }
        totalSteps = total
        sync = GradientSync(communicator: communicator, arena: model.arena, mode: fallback == nil ? mode : .buckets, bucketMegabytes: config.bucketMegabytes,
                            dtype: config.allreduceDtype, shared: shared)
        sync.attach(to: model)
        localCount = data.localSlice.count
        // Chunks no larger than a training step's rows, so evaluation never grows the activation buffers.
        evaluator = Evaluator(dataDir: config.dataDir, datasets: config.source == config.target ? [config.source] : [config.source, config.target],
                              preprocessor: Preprocessor(inputSize: config.inputSize, normalize: config.normalize),
                              communicator: communicator, chunkSize: 2 * localCount)
        testSets = try evaluator.prepare()
        images = FloatBuffer(capacity: 2 * localCount * model.imageSize)
        labels = AlignedBuffer<Int32>(capacity: localCount)

        // Weights: rank 0 initialises, loads --init, or loads the checkpoint; then everyone gets them.
        var counters: [Double] = [0]
        if let folder = resumeFolder, snapshotConfig != nil {
            try Trainer.onRoot(communicator) {
                try ModelFile.load(into: model, from: URL(fileURLWithPath: folder).appendingPathComponent(ModelFile.fileName).path)
                let snapshot = try TrainerState.load(from: URL(fileURLWithPath: folder).appendingPathComponent(TrainerState.fileName).path,
                                                     into: optimizer, model: model)
                counters = [Double(snapshot.step)]
            }
        } else if let initPath = config.initPath {
            try Trainer.onRoot(communicator) { try ModelFile.load(into: model, from: try ModelFile.resolve(initPath)) }
        } else if communicator.isRoot {
            model.initialize(seed: config.seed)
        }
        sync.shareParameters(andStateOf: optimizer)
        model.broadcastRunningStatistics(over: communicator)
        communicator.broadcast(&counters, bytes: 8, root: 0)
        step = Int(counters[0])
        if communicator.isRoot { CheckpointStore.removePartial(in: checkpointsDirectory) }
    }

    /// What the run looks like before its first step, for the start table and the logs. Collective: it
    /// gathers every rank's host and CPUs, so every rank must call it, in the same order as other collectives.
    public func gatherRunInfo() -> RunInfo {
        let hosts = communicator.allgather(Array(communicator.hostname.utf8)).map { String(decoding: $0, as: UTF8.self) }
        let cpus = communicator.allgather(Array(cpusAllowedList().utf8)).map { String(decoding: $0, as: UTF8.self) }
        return RunInfo(config: config, totalSteps: totalSteps, stepsPerEpoch: data.stepsPerEpoch, sourceCount: data.sourceCount,
                       targetCount: data.targetCount, parameterCount: model.parameterCount, startStep: step,
                       ranks: communicator.size, hosts: hosts, threadsPerRank: threadsPerRank,
                       binding: bindingDescription(cpus: cpus), allreduce: sync.mode,
                       testSets: testSets, notes: data.notes, outDirectory: config.out)
    }

    /// Runs to `totalSteps` (or until a stop request), evaluating and checkpointing on schedule.
    /// Collective: every rank runs it.
    public func run() throws -> Outcome {
        let info = gatherRunInfo()
        try eachCallback { try $0.runStarted(info) }
        let evalEvery = config.evalEvery > 0 ? config.evalEvery : max(1, totalSteps / 10)
        let checkpointEvery = config.checkpointEvery > 0 ? config.checkpointEvery : max(1, totalSteps / 10)
        let schedules = config.schedules
        let b = config.stepBatch, passes = config.accumulate
        var lastCheckpoint = step
        var domainWatch = DomainAccuracyWatch()
        let firstStep = step
        let timeline = timelinePath.map { _ in
            // Each pass after the first adds a data and a compute span.
            Timeline(capacity: Timeline.capacity(steps: totalSteps - step, bucketsPerStep: model.arena.entries.count + 1 + 2 * (passes - 1)))
        }
        let profiler = StepProfiler(timeline: timeline)
        if timeline != nil {
            communicator.barrier()
            profiler.startClock()
            sync.timeline = timeline
        }
        if verboseRanks {
            printRankLine("pid \(getpid()) on \(communicator.hostname), \(threadsPerRank) BLAS thread(s) (\(BLASKernels.loaded) kernels), cpus \(cpusAllowedList()), "
                          + "\(localCount) source + \(localCount) target images per \(passes > 1 ? "pass, \(passes) passes per step" : "step")")
        }

        while step < totalSteps {
            // Spans are labelled with the step they belong to, 1-based: `label` before `step += 1`.
            let label = step + 1
            let p = Schedules.progress(step: step, totalSteps: totalSteps)
            let lr = schedules.learningRate(progress: p), lambda = schedules.lambda(progress: p)
            let source = images.pointer, target = images.pointer + localCount * model.imageSize
            profiler.startStep()
            sync.step = label
            var r = DANNModel.StepResult()
            for pass in 0..<passes {
                try profiler.measure(.data, step: label) {
                    try data.fill(step: step, pass: pass, source: source, labels: labels.pointer, target: target)
                }
                // Losses are means over the step's K·B images; dropout keys are positions among them.
                let batch = DANNModel.Batch(images: source, labels: labels.pointer, sourceCount: localCount, targetCount: localCount,
                                            globalBatch: b, sliceOffset: data.stepOffsets(pass: pass).lowerBound, passBatch: config.batchSize)
                sync.isFinalPass = pass == passes - 1
                let passResult = profiler.measure(.compute, step: label) {
                    model.computeGradients(batch, lambda: Float(lambda), step: step, seed: config.seed, sourceOnly: config.sourceOnly,
                                           domainWeight: Float(config.domainWeight), accumulate: pass > 0)
                }
                r.labelLoss += passResult.labelLoss
                r.domainLoss += passResult.domainLoss
                r.labelCorrect += passResult.labelCorrect
                r.domainCorrect += passResult.domainCorrect
            }
            profiler.measure(.allreduce, step: label) { sync.finish() }
            if step == firstStep, let path = gradientDumpPath { try dumpGradients(to: path) }
            // The update comes before the losses' allreduce, a blocking collective: with `shared` a rank done with
            // its backward updates while slower ranks finish theirs. A non-finite loss then ends the run before
            // anything is written, so the updated weights go nowhere.
            profiler.measure(.optimizer, step: label) {
                sync.update(optimizer, learningRate: Float(lr), clipNorm: config.clipGradNorm)
            }
            let stopRequested = StopSignal.isRequested || stopAtStep.map { label >= $0 } == true
            let totals = StepStatistics(labelLoss: r.labelLoss, domainLoss: r.domainLoss, labelCorrect: Double(r.labelCorrect),
                                        domainCorrect: Double(r.domainCorrect), stopRequests: stopRequested ? 1 : 0)
                .summed(over: communicator)
            guard totals.labelLoss.isFinite, totals.domainLoss.isFinite else {
                throw DANNError("step \(label): the loss is \(totals.labelLoss.isFinite ? totals.domainLoss : totals.labelLoss) (label \(totals.labelLoss), domain \(totals.domainLoss)); lower --lr or check the data")
            }
            profiler.endStep()
            step += 1
            if verboseRanks {
                printRankLine(String(format: "step %d/%d  local label %.4f domain %.4f  compute %.1f ms  allreduce %.1f ms  step %.1f ms",
                                     step, totalSteps, r.labelLoss, r.domainLoss, profiler.milliseconds(.compute),
                                     profiler.milliseconds(.allreduce), profiler.stepMilliseconds))
            }

            var evaluation: [EvalResult]? = nil
            if step % evalEvery == 0 || step == totalSteps {
                evaluation = try profiler.measure(.evaluate, step: step) { try evaluator.evaluate(model) }
            }
            let seconds = profiler.stepSeconds
            let record = StepRecord(step: step, totalSteps: totalSteps, epoch: (step - 1) / data.stepsPerEpoch + 1,
                                    epochs: (totalSteps + data.stepsPerEpoch - 1) / data.stepsPerEpoch, lr: lr, lambda: lambda,
                                    labelLoss: totals.labelLoss, domainLoss: totals.domainLoss,
                                    labelAccuracy: totals.labelCorrect / Double(b),
                                    domainAccuracy: totals.domainCorrect / Double(config.sourceOnly ? b : 2 * b),
                                    stepSeconds: seconds, imagesPerSecond: Double(config.sourceOnly ? b : 2 * b) / seconds)
            // Callbacks run on rank 0 alone, so only rank 0 has a logging span.
            if communicator.isRoot {
                try profiler.measure(.logging, step: step) {
                    try eachCallback { try $0.stepFinished(record, evaluation: evaluation) }
                    if !config.sourceOnly, let warning = domainWatch.observe(domainAccuracy: record.domainAccuracy, step: step) {
                        try eachCallback { try $0.warning(warning) }
                    }
                }
            }

            if totals.stopRequests > 0 && step < totalSteps {
                let folder = try checkpoint()
                try writeTimeline(timeline)
                try eachCallback { try $0.runFinished(step: step, interrupted: true) }
                return .interrupted(step: step, checkpoint: folder)
            }
            if step % checkpointEvery == 0 || step == totalSteps {
                try profiler.measure(.checkpoint, step: step) { try checkpoint() }
                lastCheckpoint = step
            }
        }
        if lastCheckpoint != step { try checkpoint() }
        try writeTimeline(timeline)
        try eachCallback { try $0.runFinished(step: step, interrupted: false) }
        return .finished(step: step)
    }

    /// Gathers every rank's timeline (collective) and has rank 0 write it.
    private func writeTimeline(_ timeline: Timeline?) throws {
        guard let timeline, let path = timelinePath else { return }
        let hosts = communicator.allgather(Array(communicator.hostname.utf8)).map { String(decoding: $0, as: UTF8.self) }
        let trace = timeline.gatherTrace(communicator, hosts: hosts)
        try Trainer.onRoot(communicator) { try AtomicFile.writeText(trace ?? "", to: path) }
    }

    /// Rank 0 writes the summed gradient arena under the weights' names; a failure ends every rank.
    private func dumpGradients(to path: String) throws {
        let summed = sync.summedGradient()
        try Trainer.onRoot(communicator) {
            let tensors = model.arena.entries.map { entry in
                TensorEntry(name: entry.name, shape: entry.shape, float32: UnsafeBufferPointer(start: summed + entry.offset, count: entry.count))
            }
            try SafeTensors.write(tensors, metadata: ["step": String(step + 1), "ranks": String(communicator.size)], to: path)
        }
    }

    /// One `[rank r]` line on stderr, written in one call so lines of different ranks do not interleave.
    private func printRankLine(_ text: String) {
        FileHandle.standardError.write(Data("[rank \(communicator.rank)] \(text)\n".utf8))
    }

    /// How the ranks are bound to CPUs, from each rank's affinity mask (`cpus[r]` of rank r).
    private func bindingDescription(cpus: [String]) -> String {
        let all = ProcessInfo.processInfo.activeProcessorCount
        let whole = all > 1 ? "0-\(all - 1)" : "0"
        if Set(cpus).count == 1, cpus[0] == whole { return "none (each rank may use cpus \(whole))" }
        let shown = cpus.enumerated().prefix(8).map { "r\($0.offset): cpu \($0.element)" }.joined(separator: ", ")
        return shown + (cpus.count > 8 ? ", …" : "")
    }

    /// Rank 0 writes model.safetensors + trainer.safetensors; a failure there ends every rank.
    @discardableResult
    func checkpoint() throws -> String {
        let folder = try Trainer.rootResult(communicator) { () -> String in
            let folder = try CheckpointStore.save(in: checkpointsDirectory, step: step, keep: config.keep) { dir in
                try ModelFile.save(model, to: URL(fileURLWithPath: dir).appendingPathComponent(ModelFile.fileName).path,
                                   metadata: ["normalize": String(config.normalize), "step": String(step)])
                try TrainerState.save(model: model, optimizer: optimizer, step: step, stepsPerEpoch: data.stepsPerEpoch,
                                      config: config, to: URL(fileURLWithPath: dir).appendingPathComponent(TrainerState.fileName).path)
            }
            return folder
        }
        try eachCallback { try $0.checkpointSaved(folder, step: step) }
        return folder
    }

    private func eachCallback(_ body: (TrainingCallback) throws -> Void) throws {
        guard communicator.isRoot else { return }
        for callback in callbacks { try body(callback) }
    }

    /// Runs `body` on rank 0 and shares its success or its error message with every rank, so that all ranks
    /// throw the same one-line error together instead of some waiting forever in the next collective.
    static func onRoot(_ communicator: Communicator, _ body: () throws -> Void) throws {
        _ = try rootResult(communicator) { try body(); return "" }
    }

    static func rootResult(_ communicator: Communicator, _ body: () throws -> String) throws -> String {
        var message: [UInt8] = []
        var ok: UInt8 = 1
        if communicator.isRoot {
            do { message = Array(try body().utf8) } catch let error as DANNError {
                ok = 0; message = Array(error.message.utf8)
            } catch {
                // Any other error must reach the other ranks too, or they would wait in the broadcast.
                ok = 0; message = Array("\(error)".utf8)
            }
        }
        guard communicator.size > 1 else {
            if ok == 0 { throw DANNError(String(decoding: message, as: UTF8.self)) }
            return String(decoding: message, as: UTF8.self)
        }
        var header = [Double(ok), Double(message.count)]
        communicator.broadcast(&header, bytes: 16, root: 0)
        if !communicator.isRoot { message = [UInt8](repeating: 0, count: Int(header[1])) }
        if !message.isEmpty { message.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, bytes: $0.count, root: 0) } }
        let text = String(decoding: message, as: UTF8.self)
        if header[0] == 0 { throw DANNError(text) }
        return text
    }
}

/// What the ranks sum after each step: the losses and correct counts of their slices, and how many ranks were
/// asked to stop (so that all stop after the same step). Travels as one [Double] allreduce.
struct StepStatistics: Equatable {
    var labelLoss: Double
    var domainLoss: Double
    var labelCorrect: Double
    var domainCorrect: Double
    var stopRequests: Double
}

extension StepStatistics {
    /// The fields in buffer order.
    var packed: [Double] { [labelLoss, domainLoss, labelCorrect, domainCorrect, stopRequests] }

    init(packed values: [Double]) {
        precondition(values.count == 5, "StepStatistics packs 5 values, not \(values.count)")
        self.init(labelLoss: values[0], domainLoss: values[1], labelCorrect: values[2], domainCorrect: values[3],
                  stopRequests: values[4])
    }

    /// Every field summed over the ranks, in one allreduce (collective).
    func summed(over communicator: Communicator) -> StepStatistics {
        var buffer = packed
        communicator.allreduceSum(&buffer, count: buffer.count)
        return StepStatistics(packed: buffer)
    }
}
