/// Rectifier; its backward gates on the forward output.
public final class ReLU: Layer {
    public let inputSize: Int
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

    public init(size: Int) { inputSize = size }

    public var outputSize: Int { inputSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let y = output.reserve(batch * inputSize)
        Elementwise.reluForward(x, y, count: batch * inputSize)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        Elementwise.reluBackward(output: output.pointer, dy, dx, count: batch * inputSize)
        return UnsafePointer(dx)
    }
}
