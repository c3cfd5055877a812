import ArgumentParser
import DANN
import Foundation

/// `dann-dist analyze`: how far E's features have aligned the domains, as a picture and a number.
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Draw E's feature space (PCA) for source and target test images and print the proxy A-distance.",
        discussion: """
            Takes --count evenly spaced images of each domain's test set, computes E's features (inference \
            mode), projects source and target together onto their first two principal components and draws \
            them coloured by domain and by digit (the DANN paper's Figure 4). The proxy A-distance is \
            2(1 - 2e), e the held-out error of a linear (logistic regression) domain classifier trained on \
            half of each domain's features: 2 means separable domains, 0 indistinguishable ones. The domains \
            default to those recorded in the checkpoint's trainer.safetensors, else mnist -> mnist_m.
            """)

    @Option(help: "A model.safetensors, a checkpoint folder, a checkpoints/ folder or a run folder.")
    var checkpoint: String
    @Option(help: "Source test set: mnist, svhn or mnist_m (default: the run's, else mnist).") var source: DatasetName?
    @Option(help: "Target test set: mnist, svhn or mnist_m (default: the run's, else mnist_m).") var target: DatasetName?
    @Option(help: "Data directory.") var data = "data"
    @Option(parsing: .unconditional, help: "Images per domain, evenly spaced over its test set.") var count = 2000
    @Option(help: "PNG to write (default: features.png beside the model file).") var out: String?
    @Flag(help: "Print one JSON object: proxy_a_distance, domain_error, counts, features, explained_variance, png.")
    var json = false
    @Flag(help: "Map inputs to [-1, 1] as training with --normalize did (implied by the checkpoint's metadata).")
    var normalize = false
    @Option(parsing: .unconditional, help: "Compute threads (default: the cores this process may use).") var threads: Int?
    @Flag(help: "Normalise with batch norm's running statistics (as eval does) instead of each domain's own batch statistics (as training does).")
    var runningStatistics = false

    func validate() throws {
        if count < 2 { throw ValidationError("--count must be at least 2, not \(count)") }
    }

    func run() throws {
        BLAS.setThreads(defaultThreadsPerRank(localSize: 1, override: threads))
        let opened = try InferenceCheckpoint.open(checkpoint)
        let model = opened.model
        let inputSize = model.architecture.inputSize
        guard inputSize == 28 || inputSize == 32 else {
            throw DANNError.file(opened.path, "input size \(inputSize) is neither 28 nor 32")
        }
        let recorded = (source == nil || target == nil) ? try RecordedDomains.beside(modelFile: opened.path) : nil
        let preprocessor = Preprocessor(inputSize: inputSize, normalize: normalize || opened.normalize)
        func features(_ name: DatasetName) throws -> DomainFeatures {
            try DomainFeatures(name, dataDir: data, count: count, model: model, preprocessor: preprocessor,
                               batchStatistics: !runningStatistics && !model.batchNorms.isEmpty)
        }
        let analysis = try FeatureSpaceAnalysis(source: try features(source ?? recorded?.source ?? .mnist),
                                                target: try features(target ?? recorded?.target ?? .mnistM))
        let png = out ?? Self.relativeToWorkingDirectory(
            URL(fileURLWithPath: opened.path).deletingLastPathComponent().appendingPathComponent("features.png").path)
        try PNGWriter.write(analysis.figure(name: Self.displayName(checkpoint)), to: png)
        if json {
            print(analysis.json(png: png))
            return
        }
        analysis.summary.forEach { print($0) }
        print("wrote \(png)")
    }

    /// Resolving a checkpoint folder makes its path absolute; below the working directory a relative one reads better.
    static func relativeToWorkingDirectory(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// The checkpoint as the user named it, without a trailing slash, for the figure's title.
    static func displayName(_ path: String) -> String {
        var name = path
        while name.count > 1 && name.hasSuffix("/") { name.removeLast() }
        return name
    }
}
