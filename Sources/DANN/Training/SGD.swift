/// SGD with momentum and weight decay, exactly as `torch.optim.SGD` (dampening 0, no Nesterov):
/// `g = grad + wd·w; v = μ·v + g` (v = g on the first step); `w −= lr·v`, on every parameter.
public final class SGD: Optimizer {
    public var momentum: Float
    public var weightDecay: Float
    public let velocity: FloatBuffer
    public let count: Int
    public var stepsTaken: Int64 = 0
    /// False until the first step: PyTorch initialises the buffer with the first gradient.
    public var hasVelocity: Bool {
        get { stepsTaken > 0 }
        set { stepsTaken = newValue ? max(stepsTaken, 1) : 0 }
    }
    public var stateBuffers: [(prefix: String, buffer: FloatBuffer)] { [("momentum", velocity)] }

    /// `state`: where the velocity lives, if not in a buffer of its own (`OptimizerState`).
    public init(count: Int, momentum: Float = 0.9, weightDecay: Float = 1e-5, state: OptimizerState? = nil) {
        self.count = count
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocity = OptimizerState.buffer(0, of: state, count: count)
    }

    public func update(parameters w: UnsafeMutablePointer<Float>, gradients grad: UnsafePointer<Float>, learningRate: Float,
                       range: Range<Int>) {
        let v = velocity.pointer, mu = momentum, wd = weightDecay, lr = learningRate
        if !hasVelocity {
            for i in range {
                let g = grad[i] + wd * w[i]
                v[i] = g
                w[i] -= lr * g
            }
        } else {
            for i in range {
                let g = grad[i] + wd * w[i]
                let vi = mu * v[i] + g
                v[i] = vi
                w[i] -= lr * vi
            }
        }
    }
}
