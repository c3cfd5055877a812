/// Max pooling over channel-major planes; remembers each output's argmax for the backward pass.
public final class MaxPool: Layer {
    public let geometry: ConvGeometry
    private let output = FloatBuffer()
    private let argmax = IndexBuffer()
    private let gradInput = FloatBuffer()

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int) {
        geometry = ConvGeometry(channels: channels, height: height, width: width, kernel: kernel, stride: stride, padding: padding)
    }

    public var inputSize: Int { geometry.channels * geometry.planeSize }
    public var outputSize: Int { geometry.channels * geometry.outPlaneSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let y = output.reserve(batch * outputSize)
        let arg = argmax.reserve(batch * outputSize)
        MaxPoolKernel.forward(x, planes: batch * geometry.channels, geometry: geometry, output: y, argmax: arg)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        MaxPoolKernel.backward(dy, argmax: argmax.pointer, planes: batch * geometry.channels, geometry: geometry, gradInput: dx)
        return UnsafePointer(dx)
    }
}
