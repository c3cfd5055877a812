import ArgumentParser
import DANN
import Foundation

/// `dann-dist eval`: accuracy of a checkpoint on every test set present under the data directory.
/// Runs as one process or under mpirun (each rank classifies its slice; rank 0 prints).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy of a checkpoint on every test set present (mnist, svhn, mnist_m).",
        discussion: """
            Inputs are prepared as in training (docs/design.md §2.2) at the model's input size. A checkpoint whose \
            model.safetensors metadata says "normalize": "true" is evaluated on normalised inputs without \
            needing --normalize.
            """)

    @Option(help: "A model.safetensors, a checkpoint folder, a checkpoints/ folder or a run folder.")
    var checkpoint: String
    @Option(help: "Data directory.") var data = "data"
    @Flag(help: "Print one JSON object: {\"<dataset>_test\": {\"accuracy\": a, \"correct\": c, \"n\": n}, ...}.")
    var json = false
    @Flag(help: "Map inputs to [-1, 1] as training with --normalize did (implied by the checkpoint's metadata).")
    var normalize = false
    @Option(parsing: .unconditional, help: "Compute threads per rank (default: cores on the node / ranks on the node).")
    var threads: Int?

    func run() throws {
        let communicator = makeCommunicator()
        defer { communicator.finalize() }
        do {
            BLAS.setThreads(defaultThreadsPerRank(localSize: communicator.localSize, override: threads))
            let opened = try InferenceCheckpoint.open(checkpoint)
            let model = opened.model
            let normalized = normalize || opened.normalize
            let present = Evaluator.presentTestSets(dataDir: data)
            guard !present.isEmpty else {
                throw DANNError.file(data, "holds no test set (looked for mnist/t10k-*.gz, svhn/test_32x32.mat, mnist_m/; run scripts/download-data.sh)")
            }
            let evaluator = Evaluator(dataDir: data, datasets: present,
                                      preprocessor: Preprocessor(inputSize: model.architecture.inputSize, normalize: normalized),
                                      communicator: communicator)
            let results = try evaluator.evaluate(model)
            guard communicator.isRoot else { return }
            if json {
                print(Self.json(results))
                return
            }
            print("checkpoint \(opened.path) (arch \(model.architecture.name), input \(model.architecture.inputSize), normalize \(normalized ? "on" : "off"))")
            for r in results {
                let key = r.key.padding(toLength: 14, withPad: " ", startingAt: 0)
                print("\(key) accuracy \(String(format: "%.4f", r.accuracy))  (\(r.correct)/\(r.count))")
            }
        } catch {
            // Under mpirun one rank's error must end the job: the others would wait in the allreduce forever.
            exitWithError((error as? DANNError)?.message ?? "\(error)", communicator: communicator)
        }
    }

    /// `{"mnist_test": {"accuracy": 0.9912, "correct": 9912, "n": 10000}, ...}` in report order.
    static func json(_ results: [EvalResult]) -> String {
        let entries = results.map { r in
            "\"\(r.key)\": {\"accuracy\": \(r.accuracy), \"correct\": \(r.correct), \"n\": \(r.count)}"
        }
        return "{" + entries.joined(separator: ", ") + "}"
    }
}
