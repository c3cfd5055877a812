import Foundation

/// Accuracy of one test set, summed over every rank's slice.
public struct EvalResult: Equatable, Sendable {
    public var dataset: DatasetName
    public var correct: Int
    /// Images evaluated (the whole test set once the ranks' counts are summed).
    public var count: Int

    public init(dataset: DatasetName, correct: Int, count: Int) {
        self.dataset = dataset
        self.correct = correct
        self.count = count
    }

    /// correct / count (0 for an empty set).
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : 0 }

    /// The JSON key of `eval --json`: `"<dataset>_test"`.
    public var key: String { "\(dataset.rawValue)_test" }
}

/// Label accuracy of a model on the test sets present under a data directory (docs/design.md §3.8): each rank
/// classifies only its contiguous slice of every test set and the correct counts are summed through the
/// communicator. The trainer calls `evaluate` every `--eval-every` steps, so the slices are read once and
/// kept raw (UInt8, a few MB), and each call reuses one input buffer: after the first call nothing is
/// read from disk and no image-sized memory is allocated.
///
///     let evaluator = Evaluator(dataDir: data, datasets: [target],
///                               preprocessor: Preprocessor(inputSize: 28, normalize: false),
///                               communicator: comm, chunkSize: localBatch)
///     for r in try evaluator.evaluate(model) where comm.isRoot { print(r.key, r.accuracy) }
public final class Evaluator {
    public let dataDir: String
    public let preprocessor: Preprocessor
    public let communicator: Communicator
    /// Images per forward pass. The model's activation buffers grow to fit the largest pass they see, so a
    /// trainer passes its per-rank batch size (or less) to keep evaluation from enlarging them.
    public let chunkSize: Int
    /// The test sets this evaluator looks for, in report order.
    public let candidates: [DatasetName]

    private var slices: [(name: DatasetName, images: RawImages, labels: [Int32])]?
    private let inputs = FloatBuffer()
    private let counts = AlignedBuffer<Double>()

    /// - Parameters:
    ///   - datasets: which test sets to look for (default all three); absent ones are skipped.
    ///   - preprocessor: must match the model's input size and the normalisation it was trained with.
    ///   - communicator: rank r of N evaluates slice r of N; all ranks must call `evaluate` together.
    public init(dataDir: String, datasets: [DatasetName] = DatasetName.allCases, preprocessor: Preprocessor,
                communicator: Communicator, chunkSize: Int = 128) {
        self.dataDir = dataDir
        self.candidates = datasets
        self.preprocessor = preprocessor
        self.communicator = communicator
        self.chunkSize = max(1, chunkSize)
    }

    /// The test sets present under `dataDir` among `datasets` (what `evaluate` will report).
    public static func presentTestSets(dataDir: String, datasets: [DatasetName] = DatasetName.allCases) -> [DatasetName] {
        datasets.filter { name in
            name == .mnistM ? DataPaths.mnistM(dataDir) != nil
                : DataPaths.officialFiles(name, .test, dataDir: dataDir).allSatisfy { FileManager.default.fileExists(atPath: $0) }
        }
    }

    /// Reads this rank's slices now (otherwise the first `evaluate` does). Returns the test sets found.
    @discardableResult
    public func prepare() throws -> [DatasetName] {
        if let slices { return slices.map(\.name) }
        var loaded: [(DatasetName, RawImages, [Int32])] = []
        for name in candidates {
            guard let raw = try loadEvalSlice(name, dataDir: dataDir, rank: communicator.rank, size: communicator.size) else { continue }
            loaded.append((name, raw, raw.labels.map { Int32($0) }))
        }
        slices = loaded
        return loaded.map(\.0)
    }

    /// Correct predictions and images of this rank's slice of each test set, before any summing.
    public func localCounts(_ model: DANNModel) throws -> [EvalResult] {
        guard model.architecture.inputSize == preprocessor.inputSize else {
            throw DANNError("evaluator prepares \(preprocessor.inputSize)×\(preprocessor.inputSize) inputs but the model takes \(model.architecture.inputSize)×\(model.architecture.inputSize)")
        }
        try prepare()
        return slices!.map { slice in
            EvalResult(dataset: slice.name, correct: countCorrect(model, slice.images, slice.labels), count: slice.images.count)
        }
    }

    /// Accuracy on every test set present, counts summed over all ranks (a collective call: every rank
    /// must make it, with the same test sets present).
    public func evaluate(_ model: DANNModel) throws -> [EvalResult] {
        var results = try localCounts(model)
        let buffer = counts.reserve(2 * results.count)
        for (i, r) in results.enumerated() {
            buffer[2 * i] = Double(r.correct)
            buffer[2 * i + 1] = Double(r.count)
        }
        // Counts below 2^53 are exact in Double, so one sum carries both numbers of every set.
        communicator.allreduceSum(buffer, count: 2 * results.count)
        for i in results.indices {
            results[i].correct = Int(buffer[2 * i])
            results[i].count = Int(buffer[2 * i + 1])
        }
        return results
    }

    /// Correct predictions among `images` (internal so tests can check it on a subset).
    func countCorrect(_ model: DANNModel, _ images: RawImages, _ labels: [Int32]) -> Int {
        let floats = preprocessor.floatsPerImage
        let input = inputs.reserve(min(chunkSize, max(1, images.count)) * floats)
        var correct = 0
        var start = 0
        while start < images.count {
            let n = min(chunkSize, images.count - start), first = start, preprocessor = preprocessor
            Parallel.forRanges(n, work: n * floats) { part in
                for i in part { preprocessor.write(images, index: first + i, into: input + i * floats) }
            }
            let logits = model.classify(input, count: n)
            for i in 0..<n where Int32(Self.argmax(logits + i * 10, classes: 10)) == labels[start + i] { correct += 1 }
            start += n
        }
        return correct
    }

    /// Index of the largest value; a tie goes to the first (as `LogSoftmaxNLL` and PyTorch's argmax).
    static func argmax(_ row: UnsafePointer<Float>, classes: Int) -> Int {
        var best = 0
        for c in 1..<classes where row[c] > row[best] { best = c }
        return best
    }
}
