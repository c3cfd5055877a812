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
        let (channels, plane, size) = (channels, planeSize, outputSize)
        // Whole samples per thread: each writes its rows contiguously.
        Parallel.forRanges(batch, work: batch * size) { rows in
            for n in rows {
                for c in 0..<channels { (y + n * size + c * plane).update(from: x + (c * batch + n) * plane, count: plane) }
            }
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        let (channels, plane, size) = (channels, planeSize, outputSize)
        Parallel.forRanges(batch, work: batch * size) { rows in
            for n in rows {
                for c in 0..<channels { (dx + (c * batch + n) * plane).update(from: dy + n * size + c * plane, count: plane) }
            }
        }
        return UnsafePointer(dx)
    }
}
