import ArgumentParser
import DANN
import Foundation

extension DatasetName: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "mnist": self = .mnist
        case "svhn": self = .svhn
        case "mnist_m", "mnist-m", "mnistm": self = .mnistM
        default: return nil
        }
    }
}

extension AllreduceMode: ExpressibleByArgument {}
extension AllreduceDType: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension BatchNorm.RunningStatistics: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a DANN (one process, or every rank of an mpirun job).",
        discussion: "Defaults: SVHN → MNIST from data/ (the bundled SVHN sample when data/svhn holds no full SVHN); every setting not given comes from the task's recipe (README, Recipes; RESULTS.md).")

    @Option(help: "Labelled source dataset: svhn, mnist or mnist_m.") var source: DatasetName?
    @Option(help: "Unlabelled target dataset: mnist, svhn or mnist_m.") var target: DatasetName?
    @Option(name: .customLong("data"), help: "Data directory holding mnist/, svhn/, mnist_m/ (default data; layout: docs/design.md §4.1).") var dataDir: String?
    @Option(help: "Network: seed, small, small-bn or seed-bn.") var arch: String?
    @Option(parsing: .unconditional, help: "Input size: 28 or 32.") var inputSize: Int?
    @Flag(help: "Scale pixels to [-1, 1] instead of [0, 1].") var normalize = false
    @Option(parsing: .unconditional, help: "Epochs over the source set (default: the task's recipe).") var epochs: Int?
    @Option(parsing: .unconditional, help: "Total steps (instead of --epochs).") var steps: Int?
    @Option(parsing: .unconditional, help: "Global source images per forward/backward pass (and as many target images); a step is --accumulate passes.") var batchSize: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Passes per optimizer step (gradient accumulation, default 1): a step trains on K × --batch-size images, as one pass of that many would (batch norm: per-pass statistics). --steps, epochs and every interval count steps.", valueName: "K"))
    var accumulate: Int?
    @Option(parsing: .unconditional, help: "Initial learning rate lr0.") var lr: Double?
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Double?
    @Option(parsing: .unconditional, help: "Weight decay.") var weightDecay: Double?
    @Option(parsing: .unconditional, help: "λ schedule γ.") var gamma: Double?
    @Option(parsing: .unconditional, help: "lr schedule α.") var alpha: Double?
    @Option(parsing: .unconditional, help: "lr schedule β.") var beta: Double?
    @Option(parsing: .unconditional, help: "Dropout rate of the extractor (element or channel dropout, as the network has).") var dropout: Double?
    @Option(parsing: .unconditional, help: "Weight w of the domain loss: L = label loss + w · domain loss.") var domainWeight: Double?
    @Option(parsing: .unconditional, help: "Ceiling of the λ schedule (λ rises from 0 to this).") var lambdaMax: Double?
    @Option(parsing: .unconditional, help: "Rescale the summed gradient to at most this L2 norm before each update.") var clipGradNorm: Double?
    @Option(help: "Update rule: sgd (momentum) or adam (PyTorch's, L2 weight decay).") var optimizer: OptimizerKind?
    @Option(help: "Batch norm's running statistics (used in evaluation) follow: both domains, or the target.")
    var runningStats: BatchNorm.RunningStatistics?
    @Option(name: .customLong("adam-beta1"), parsing: .unconditional, help: "Adam β₁.") var adamBeta1: Double?
    @Option(name: .customLong("adam-beta2"), parsing: .unconditional, help: "Adam β₂.") var adamBeta2: Double?
    @Option(parsing: .unconditional, help: "Adam ε.") var adamEpsilon: Double?
    @Flag(help: "Train on the source labels only (no domain loss).") var sourceOnly = false
    @Option(parsing: .unconditional, help: "Seed for initialisation, sample order and dropout.") var seed: UInt64?
    @Option(help: "Run directory (default runs/<source>-<target>-<timestamp>).") var out: String?
    @Option(parsing: .unconditional, help: "Checkpoint every N steps (default: 10 per run) and at the end.") var checkpointEvery: Int?
    @Option(parsing: .unconditional, help: "Checkpoints to keep.") var keep: Int?
    @Flag(help: "Continue from checkpoints/latest of --out.") var resume = false
    @Option(name: .customLong("init"), help: "Start from the weights of a model.safetensors.") var initPath: String?
    @Flag(inversion: .prefixedNo, help: "Shuffle the samples each epoch (the default), or visit them in file order.") var shuffle: Bool?
    @Option(parsing: .unconditional, help: "Evaluate every N steps (default: 10 per run) and at the end.") var evalEvery: Int?
    @Option(parsing: .unconditional, help: "Compute threads per rank (default: cores per node / ranks per node).") var threads: Int?
    @Option(parsing: .unconditional, help: "Use the first N source training images.") var limitSource: Int?
    @Option(parsing: .unconditional, help: "Use the first N target training images.") var limitTarget: Int?
    @Option(help: "Gradient exchange: shared (ranks on one node sum in shared memory, each updates 1/N of the weights), buckets (allreduce during backward), single (allreduce after backward), or auto (default: shared on one node with f32, else buckets).") var allreduce: AllreduceMode?
    @Option(name: .customLong("bucket-mb"), parsing: .unconditional, help: "Allreduce bucket size in MB.") var bucketMegabytes: Double?
    @Option(name: .customLong("allreduce-dtype"), help: "Gradient exchange precision: f32 (default), or bf16/fp16 (each rank's gradient rounded to 16 bits, half the bytes, sums formed in f32 and rounded to 16 bits; weights stay f32). One process has no exchange and so no rounding.")
    var allreduceDtype: AllreduceDType?
    @Option(parsing: .unconditional, help: ArgumentHelp("Stop with a checkpoint after this many steps, as on SIGTERM.", visibility: .hidden))
    var stopAtStep: Int?
    @Flag(help: "Every rank prints a short line per step to stderr, prefixed [rank r] (otherwise only rank 0 prints).")
    var verboseRanks = false
    @Option(help: ArgumentHelp("Write a Chrome trace (chrome://tracing, Perfetto) of every rank's steps to FILE.", valueName: "FILE"))
    var timeline: String?
    @Option(help: ArgumentHelp("Write the summed gradient of the first step to FILE (safetensors).", visibility: .hidden))
    var dumpGradients: String?

    func validate() throws {
        if epochs != nil && steps != nil { throw ValidationError("give --epochs or --steps, not both") }
    }

    /// The flags that are not settings of the run; every other flag is the TrainingConfig setting of its
    /// property's name (an optional @Option or a Bool @Flag), so a setting's flag is declared once, above.
    static let runFlags: Set<String> = ["resume", "stopAtStep", "verboseRanks", "timeline", "dumpGradients"]

    /// The settings the command line gives, by name, read off the flags' properties. Throws for a flag that is
    /// neither a setting nor a run flag (a programming error that SettingsTests catches first).
    func givenSettings() throws -> [String: any Encodable] {
        var given: [String: any Encodable] = [:]
        for child in Mirror(reflecting: self).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            let name = String(label.dropFirst())
            if Self.runFlags.contains(name) { continue }
            guard TrainingConfig.settingNames.contains(name), let argument = child.value as? SettingArgument else {
                throw DANNError("train's flag property \(name) is neither a TrainingConfig setting (as an optional @Option or a Bool @Flag) nor one of Train.runFlags")
            }
            if let value = argument.givenValue { given[name] = value }
        }
        return given
    }

    /// The config the flags ask for (the task's recipe, then the flags), and the names of the settings they
    /// set explicitly.
    func requestedConfig() throws -> (TrainingConfig, Set<String>) {
        let defaults = TrainingConfig()
        let given = try givenSettings()
        var c = try Recipes.recommended(source: source ?? defaults.source, target: target ?? defaults.target,
                                        dataDir: dataDir ?? defaults.dataDir).setting(given)
        var explicit = Set(given.keys)
        for name in given.keys { explicit.formUnion(TrainingConfig.givenTogether[name] ?? []) }
        if out == nil {
            let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate, .withTime])
            c.out = "runs/\(c.source.rawValue)-\(c.target.rawValue)-\(stamp.replacingOccurrences(of: ":", with: ""))"
        }
        return (c, explicit)
    }

    func run() throws {
        if resume && out == nil { throw ValidationError("--resume needs --out DIR (the run to continue)") }
        let (config, explicit) = try requestedConfig()
        let communicator = makeCommunicator()
        StopSignal.install()
        // mpirun passes SIGUSR1 on to every rank (SIGTERM/SIGINT it answers by killing the job), so
        // `kill -USR1 <mpirun>` is the way to stop a whole job cleanly: treat it as a stop request.
        signal(SIGUSR1) { _ in raise(SIGTERM) }
        // A run that fails before its first step leaves nothing behind that it created.
        let outExisted = FileManager.default.fileExists(atPath: config.out)
        var started: (trainer: Trainer, firstStep: Int)?
        do {
            let trainer = try Trainer(config: config, communicator: communicator, resume: resume, explicit: explicit)
            started = (trainer, trainer.step)
            trainer.stopAtStep = stopAtStep
            trainer.verboseRanks = verboseRanks
            trainer.timelinePath = timeline
            trainer.gradientDumpPath = dumpGradients
            if communicator.isRoot {
                trainer.callbacks = [ProgressPrinter(), RunRecorder(directory: trainer.config.out)]
            }
            let outcome = try trainer.run()
            if communicator.isRoot, case let .interrupted(step, folder) = outcome {
                print("stopped after step \(step); checkpoint \(folder)")
                // --resume takes the data folder from the command line, not the checkpoint (data may move).
                let data = trainer.config.dataDir == TrainingConfig().dataDir ? "" : " --data \(shellQuoted(trainer.config.dataDir))"
                print("resume with: dann-dist train --resume --out \(shellQuoted(trainer.config.out))\(data)")
            }
            // Under mpirun, stdout is a pipe (fully buffered): hand everything over before MPI shuts down.
            fflush(nil)  // every output stream; naming C's stdout is not concurrency-safe in Swift 6
            communicator.finalize()
        } catch {
            var message = (error as? DANNError)?.message ?? "\(error)"
            if let (trainer, firstStep) = started, communicator.isRoot, !outExisted,
               trainer.step == firstStep, FileManager.default.fileExists(atPath: trainer.config.out) {
                if (try? FileManager.default.removeItem(atPath: trainer.config.out)) == nil {
                    message += " (left the run folder \(trainer.config.out))"
                }
            }
            exitWithError(message, communicator: communicator)
        }
    }
}

/// A parsed flag of `train` as the value it gives its setting (nil: the command line does not give it).
protocol SettingArgument {
    var givenValue: (any Encodable)? { get }
}

extension Option: SettingArgument where Value: SettingArgumentValue {
    var givenValue: (any Encodable)? { wrappedValue.givenValue }
}

extension Flag: SettingArgument where Value: SettingArgumentValue {
    var givenValue: (any Encodable)? { wrappedValue.givenValue }
}

protocol SettingArgumentValue {
    var givenValue: (any Encodable)? { get }
}

/// An optional option (`--lr`), or a flag pair (`--shuffle/--no-shuffle`): nil when not given.
extension Optional: SettingArgumentValue where Wrapped: Encodable {
    var givenValue: (any Encodable)? { map { $0 } }
}

/// A plain flag (`--normalize`) gives its setting `true` when present and leaves it alone when absent.
extension Bool: SettingArgumentValue {
    var givenValue: (any Encodable)? { self ? true : nil }
}

/// `text` as one shell word: unchanged when it is plain, else in single quotes.
func shellQuoted(_ text: String) -> String {
    let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "/._-+:=@%,".contains($0) }
    return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
