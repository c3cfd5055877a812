/// Rectifier; its backward gates on the forward output.
public final class ReLU: Layer {
    public let inputSize: Int
    /// Set when a max-pooling layer follows and rectifies its own output (`Sequential.fuseReLUIntoPooling`):
    /// this layer then passes values and gradients through unchanged.
    public var deferredToPooling = false
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

    public init(size: Int) { inputSize = size }

    public var outputSize: Int { inputSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        if deferredToPooling { return x }
        let y = output.reserve(batch * inputSize)
        Parallel.forRanges(batch * inputSize, work: batch * inputSize) { r in
            Elementwise.reluForward(x + r.lowerBound, y + r.lowerBound, count: r.count)
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        if deferredToPooling { return dy }
        let dx = gradInput.reserve(batch * inputSize)
        let y = output.pointer
        Parallel.forRanges(batch * inputSize, work: batch * inputSize) { r in
            let i = r.lowerBound
            Elementwise.reluBackward(output: y + i, dy + i, dx + i, count: r.count)
        }
        return UnsafePointer(dx)
    }
}
