/// Inverted dropout on [N][features] rows. The mask of row r, feature f is a pure function of
/// (seed, step, rowKeys[r], f), so it does not depend on which rank holds the sample.
public final class Dropout: Layer {
    public let inputSize: Int
    public let rate: Float
    private let mask = FloatBuffer()       // 0 or 1/(1−rate) per element of the last training forward
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()
    private var active = false

    public init(size: Int, rate: Float) {
        inputSize = size
        self.rate = rate
    }

    public var outputSize: Int { inputSize }

    /// Whether feature `element` of the row keyed `rowKey` is kept at `step`.
    @inline(__always)
    public static func keeps(seed: UInt64, step: Int, rowKey: UInt64, element: Int, rate: Float) -> Bool {
        let key = CounterRNG.key(seed: seed, UInt64(step), rowKey)
        return CounterRNG.uniform(key: key, element: UInt64(element)) >= rate
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        active = context.training && rate > 0
        guard active else { return x }
        guard let keys = context.rowKeys else { preconditionFailure("Dropout needs row keys in training") }
        let m = mask.reserve(batch * inputSize)
        let y = output.reserve(batch * inputSize)
        let keep = 1 / (1 - rate), rate = rate, size = inputSize, seed = context.seed, step = UInt64(context.step)
        // Each element's mask is a pure function of its key, so rows can go to any thread. The hash (two
        // 64-bit multiplies an element) makes this layer compute-bound, ~10 ns an element on one core.
        Parallel.forRanges(batch, work: batch * size) { rows in
            for r in rows {
                let key = CounterRNG.key(seed: seed, step, keys[r])
                let row = r * size
                for f in 0..<size {
                    let scale: Float = CounterRNG.uniform(key: key, element: UInt64(f)) >= rate ? keep : 0
                    m[row + f] = scale
                    y[row + f] = x[row + f] * scale
                }
            }
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        guard active else { return dy }
        let dx = gradInput.reserve(batch * inputSize)
        Elementwise.multiply(dy, mask.pointer, into: dx, count: batch * inputSize)
        return UnsafePointer(dx)
    }
}
