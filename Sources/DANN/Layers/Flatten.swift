/// Channel-major activations [C][N][HW] to row-major samples [N][C·HW] — PyTorch's (c, h, w) flatten
/// order, so the first linear layer's weights keep PyTorch's layout.
public final class Flatten: Layer {
    public let channels: Int
    public let planeSize: Int
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

    public init(channels: Int, planeSize: Int) {
        self.channels = channels
        self.planeSize = planeSize
    }

    public var inputSize: Int { channels * planeSize }
    public var outputSize: Int { channels * planeSize }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let y = output.reserve(batch * outputSize)
        for c in 0..<channels {
            for n in 0..<batch {
                (y + n * outputSize + c * planeSize).update(from: x + (c * batch + n) * planeSize, count: planeSize)
            }
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        for c in 0..<channels {
            for n in 0..<batch {
                (dx + (c * batch + n) * planeSize).update(from: dy + n * outputSize + c * planeSize, count: planeSize)
            }
        }
        return UnsafePointer(dx)
    }
}
