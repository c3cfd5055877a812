import Foundation

/// The extractor's features for an evenly spaced subset of one test set.
public struct DomainFeatures {
    public let dataset: DatasetName
    /// Images taken (at most the test set's size).
    public let count: Int
    public let featureSize: Int
    /// count × featureSize, row-major.
    public let features: [Float]
    public let labels: [UInt8]
    /// The test-set positions the rows came from.
    public let indices: [Int]

    /// Reads `count` evenly spaced images of `dataset`'s test split under `dataDir` (all of them if it has
    /// fewer) and runs them through E. A missing test set is a one-line file error.
    ///
    /// With `batchStatistics`, batch norm normalises each chunk by its own statistics (one domain per chunk,
    /// dropout off), as training normalised each domain's batch: the features DANN aligned. Otherwise E runs in
    /// inference mode on the running statistics, as `eval` does (one normalisation for both domains).
    public init(_ dataset: DatasetName, dataDir: String, count: Int, model: DANNModel, preprocessor: Preprocessor,
                chunkSize: Int = 256, batchStatistics: Bool = false) throws {
        let (opened, _) = try openDataset(dataset, .test, dataDir: dataDir)
        let indices = Self.evenlySpaced(count, of: opened.count)
        let raw = try opened.load(indices: indices)
        self.dataset = dataset
        self.indices = indices
        self.count = raw.count
        featureSize = model.featureSize
        labels = raw.labels
        features = Self.extract(model, raw, preprocessor: preprocessor, chunkSize: chunkSize, batchStatistics: batchStatistics)
    }

    /// ⌊i·total/count⌋ for i < count: spread over the whole file, so a test set stored in any order
    /// (e.g. grouped by writer or class) is sampled fairly, and the same every run.
    public static func evenlySpaced(_ count: Int, of total: Int) -> [Int] {
        let n = max(0, min(count, total))
        return (0..<n).map { $0 * total / n }
    }

    /// E's features for every image, in chunks so the model's activation buffers stay small.
    static func extract(_ model: DANNModel, _ raw: RawImages, preprocessor: Preprocessor, chunkSize: Int,
                        batchStatistics: Bool) -> [Float] {
        let floats = preprocessor.floatsPerImage, width = model.featureSize
        let chunk = max(1, chunkSize)
        var input = [Float](repeating: 0, count: min(chunk, max(1, raw.count)) * floats)
        var features = [Float](repeating: 0, count: raw.count * width)
        var start = 0
        while start < raw.count {
            let n = min(chunk, raw.count - start)
            input.withUnsafeMutableBufferPointer { input in
                for i in 0..<n { preprocessor.write(raw, index: start + i, into: input.baseAddress! + i * floats) }
                // Training mode only switches batch norm to batch statistics: an opened model has dropout 0.
                let context = batchStatistics ? ForwardContext(training: true, domains: .single(rows: n)) : .inference
                let out = model.extractor.forward(input.baseAddress!, batch: n, context: context)
                features.withUnsafeMutableBufferPointer { features in
                    (features.baseAddress! + start * width).update(from: out, count: n * width)
                }
            }
            start += n
        }
        return features
    }
}
