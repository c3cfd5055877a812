/// Channel dropout (PyTorch's `Dropout2d`) on channel-major planes [C][N][plane]: each (sample, channel)
/// plane is kept whole, scaled by 1/(1−rate), or zeroed. As in `Dropout`, the draw is a pure function of
/// (seed, step, the sample's key, channel), so the masks do not depend on the rank count.
public final class Dropout2d: Layer {
    public let channels: Int
    public let plane: Int
    public let rate: Float
    /// Keeps these draws apart from `Dropout`'s, which use elements below 2^40.
    static let elementOffset: UInt64 = 1 << 40
    private let scales = FloatBuffer()     // per (channel, row) of the last training forward
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()
    private var active = false

    public init(channels: Int, plane: Int, rate: Float) {
        self.channels = channels
        self.plane = plane
        self.rate = rate
    }

    public var inputSize: Int { channels * plane }
    public var outputSize: Int { inputSize }

    /// Whether channel `channel` of the sample keyed `rowKey` is kept at `step`.
    public static func keeps(seed: UInt64, step: Int, rowKey: UInt64, channel: Int, rate: Float) -> Bool {
        Dropout.keeps(seed: seed, step: step, rowKey: rowKey, element: Int(elementOffset) + channel, rate: rate)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        active = context.training && rate > 0
        guard active else { return x }
        guard let keys = context.rowKeys else { preconditionFailure("Dropout2d needs row keys in training") }
        let s = scales.reserve(channels * batch)
        let keep = 1 / (1 - rate)
        for n in 0..<batch {
            let key = CounterRNG.key(seed: context.seed, UInt64(context.step), keys[n])
            for c in 0..<channels {
                s[c * batch + n] = CounterRNG.uniform(key: key, element: Dropout2d.elementOffset + UInt64(c)) >= rate ? keep : 0
            }
        }
        let y = output.reserve(batch * inputSize)
        apply(x, into: y, batch: batch)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        guard active else { return dy }
        let dx = gradInput.reserve(batch * inputSize)
        apply(dy, into: dx, batch: batch)
        return UnsafePointer(dx)
    }

    /// Scales plane (c, n) by its mask value; planes are contiguous in channel-major order.
    private func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, batch: Int) {
        let s = scales.pointer
        for k in 0..<channels * batch {
            Elementwise.scale(x + k * plane, by: s[k], into: y + k * plane, count: plane)
        }
    }
}
