/// Rectifier; its backward gates on the forward output.
public final class ReLU: Layer {
    public let inputSize: Int
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

    public init(size: Int) { inputSize = size }

    public var outputSize: Int { inputSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let y = output.reserve(batch * inputSize)
        Parallel.forRanges(batch * inputSize, work: batch * inputSize) { r in
            Elementwise.reluForward(x + r.lowerBound, y + r.lowerBound, count: r.count)
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        let y = output.pointer
        Parallel.forRanges(batch * inputSize, work: batch * inputSize) { r in
            let i = r.lowerBound
            Elementwise.reluBackward(output: y + i, dy + i, dx + i, count: r.count)
        }
        return UnsafePointer(dx)
    }
}
