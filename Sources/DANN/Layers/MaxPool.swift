/// Max pooling over channel-major planes; remembers each output's argmax for the backward pass.
/// Planes are independent, so the threads split them.
public final class MaxPool: Layer {
    public let geometry: ConvGeometry
    /// Applies the preceding ReLU to the pooled values (see `Sequential.fuseReLUIntoPooling`).
    public var rectifies = false
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
        let inPlane = geometry.planeSize, outPlane = geometry.outPlaneSize, rectifies = rectifies
        Parallel.forRanges(batch * geometry.channels, work: batch * inputSize) { planes in
            let p0 = planes.lowerBound
            MaxPoolKernel.forward(x + p0 * inPlane, planes: planes.count, geometry: geometry,
                                  output: y + p0 * outPlane, argmax: arg + p0 * outPlane, rectify: rectifies)
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        let arg = argmax.pointer, inPlane = geometry.planeSize, outPlane = geometry.outPlaneSize
        let gate: UnsafePointer<Float>? = rectifies ? UnsafePointer(output.pointer) : nil
        Parallel.forRanges(batch * geometry.channels, work: batch * inputSize) { planes in
            let p0 = planes.lowerBound
            MaxPoolKernel.backward(dy + p0 * outPlane, argmax: arg + p0 * outPlane, planes: planes.count, geometry: geometry,
                                   gradInput: dx + p0 * inPlane, gate: gate.map { $0 + p0 * outPlane })
        }
        return UnsafePointer(dx)
    }
}
