/// Temporary: replaced by the evaluator being written on the evalcmd branch.
public final class Evaluator {
    public let datasets: [DatasetName]
    private let slices: [RawImages]
    private let preprocessor: Preprocessor
    private let communicator: Communicator
    private let buffer = FloatBuffer()

    public init(dataDir: String, inputSize: Int, normalize: Bool, datasets: [DatasetName], communicator: Communicator) throws {
        var present: [DatasetName] = [], slices: [RawImages] = []
        for name in datasets where !present.contains(name) {
            if let slice = try loadEvalSlice(name, dataDir: dataDir, rank: communicator.rank, size: communicator.size) {
                present.append(name); slices.append(slice)
            }
        }
        self.datasets = present
        self.slices = slices
        preprocessor = Preprocessor(inputSize: inputSize, normalize: normalize)
        self.communicator = communicator
    }

    public func evaluate(_ model: DANNModel) throws -> [EvalResult] {
        var counts = [Double]()
        let chunk = 250
        for slice in slices {
            var correct = 0
            let x = buffer.reserve(chunk * model.imageSize)
            var start = 0
            while start < slice.count {
                let n = min(chunk, slice.count - start)
                for i in 0..<n { preprocessor.write(slice, index: start + i, into: x + i * model.imageSize) }
                let logits = model.classify(x, count: n)
                for i in 0..<n {
                    var best = 0
                    for c in 1..<10 where logits[i * 10 + c] > logits[i * 10 + best] { best = c }
                    if best == Int(slice.labels[start + i]) { correct += 1 }
                }
                start += n
            }
            counts += [Double(correct), Double(slice.count)]
        }
        communicator.allreduceSum(&counts, count: counts.count)
        return datasets.enumerated().map { EvalResult(dataset: $1, correct: Int(counts[2 * $0]), count: Int(counts[2 * $0 + 1])) }
    }
}
