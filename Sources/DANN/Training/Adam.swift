#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam exactly as `torch.optim.Adam` (amsgrad off): weight decay is L2 added to the gradient (not AdamW's
/// decoupled decay), `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`, and with t steps taken
/// `w −= lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)`.
public final class Adam: Optimizer {
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    public let count: Int
    public var stepsTaken: Int64 = 0
    public let firstMoment: FloatBuffer
    public let secondMoment: FloatBuffer
    public var stateBuffers: [(prefix: String, buffer: FloatBuffer)] { [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment)] }

    /// `state`: where the two moments live, if not in buffers of their own (`OptimizerState`).
    public init(count: Int, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0,
                state: OptimizerState? = nil) {
        self.count = count
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoment = OptimizerState.buffer(0, of: state, count: count)
        secondMoment = OptimizerState.buffer(1, of: state, count: count)
    }

    public func update(parameters w: UnsafeMutablePointer<Float>, gradients grad: UnsafePointer<Float>, learningRate: Float,
                       range: Range<Int>) {
        let t = Double(stepsTaken + 1)
        let stepSize = Float(Double(learningRate) / (1 - pow(beta1, t)))
        let correction2 = Float((1 - pow(beta2, t)).squareRoot())
        // 1 − β in Double, then rounded, as PyTorch passes its Python floats (Float(1) − Float(0.999) is off by 5e-5).
        let b1 = Float(beta1), b2 = Float(beta2), c1 = Float(1 - beta1), c2 = Float(1 - beta2)
        let eps = Float(epsilon), wd = Float(weightDecay)
        let m = firstMoment.pointer, v = secondMoment.pointer
        for i in range {
            let g = grad[i] + wd * w[i]
            let mi = b1 * m[i] + c1 * g
            let vi = b2 * v[i] + c2 * g * g
            m[i] = mi
            v[i] = vi
            w[i] -= stepSize * mi / (vi.squareRoot() / correction2 + eps)
        }
    }
}
