/// Identity forward; multiplies the gradient by −λ backward, so the feature extractor is pushed to
/// *increase* the domain classifier's loss.
public final class GradientReversal: Layer {
    public let inputSize: Int
    public var lambda: Float = 0
    private let gradInput = FloatBuffer()

    public init(size: Int) { inputSize = size }

    public var outputSize: Int { inputSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> { x }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        Elementwise.scale(dy, by: -lambda, into: dx, count: batch * inputSize)
        return UnsafePointer(dx)
    }
}
