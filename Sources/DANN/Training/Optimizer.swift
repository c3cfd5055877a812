/// Which update rule a run uses (`--optimizer`).
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
    case sgd, adam
}

extension OptimizerKind {
    /// Arena-sized state buffers the rule keeps (SGD's velocity; Adam's two moments).
    public var stateBufferCount: Int {
        switch self {
        case .sgd: 1
        case .adam: 2
        }
    }
}

/// Memory for an optimizer's state buffers that the optimizer does not own: `--allreduce shared` keeps one copy
/// of the state in node-shared memory for all ranks (§3.12), as it does the parameters. The memory must read as
/// zeros (a new shared segment does) and outlive the optimizer.
public struct OptimizerState {
    /// One pointer per state buffer, each to `count` Floats.
    public let buffers: [UnsafeMutablePointer<Float>]

    public init(buffers: [UnsafeMutablePointer<Float>]) { self.buffers = buffers }

    /// State buffer `index`: borrowed from `state`, or a zeroed buffer of its own.
    static func buffer(_ index: Int, of state: OptimizerState?, count: Int) -> FloatBuffer {
        if let state {
            precondition(index < state.buffers.count, "optimizer state buffer \(index) of \(state.buffers.count)")
            return FloatBuffer(borrowing: state.buffers[index], capacity: count)
        }
        let buffer = FloatBuffer(capacity: count)
        buffer.pointer.update(repeating: 0, count: count)
        return buffer
    }
}

/// An update rule over the flat parameter arena. Its state is a few arena-shaped buffers (checkpointed as
/// `<prefix>.<tensor name>` in trainer.safetensors) and the number of steps taken.
public protocol Optimizer: AnyObject {
    /// Parameters updated per step (the arena's length).
    var count: Int { get }
    /// Steps taken so far (0 before the first); part of the state, as the update depends on it.
    var stepsTaken: Int64 { get set }
    /// The state buffers and the name prefix each is saved under.
    var stateBuffers: [(prefix: String, buffer: FloatBuffer)] { get }
    /// Updates `parameters[range]` from `gradients[range]` and the state there, as step `stepsTaken + 1` does,
    /// on the calling thread, without counting the step. The update is elementwise, so a step may be any number
    /// of calls over disjoint ranges (threads, blocks, the shards of several ranks, §3.12) and then one count.
    func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float, range: Range<Int>)
}

extension Optimizer {
    /// One step over `range` (default: the whole arena), split over the compute threads, then counted.
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float,
                     range: Range<Int>? = nil) {
        let range = range ?? 0..<count
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "\(type(of: self)) step over \(range) of \(count) parameters")
        // Memory-bound (five or more streams over the arena), it still gains from a second core's bandwidth.
        Parallel.forRanges(in: range) { part in
            update(parameters: parameters, gradients: gradients, learningRate: learningRate, range: part)
        }
        stepsTaken += 1
    }

    /// Copies rank `root`'s state to every rank; with `buffersShared` (one copy of the buffers for all ranks, §3.12)
    /// only the step count.
    public func broadcastState(over communicator: Communicator, root: Int = 0, buffersShared: Bool = false) {
        guard communicator.size > 1 else { return }
        if !buffersShared {
            for (_, buffer) in stateBuffers { communicator.broadcast(buffer.pointer, bytes: count * 4, root: root) }
        }
        var steps = stepsTaken
        communicator.broadcast(&steps, bytes: 8, root: root)
        stepsTaken = steps
    }
}

/// The optimizer a config asks for, its state in `state` if given (`config.optimizer.stateBufferCount` buffers).
public func makeOptimizer(_ config: TrainingConfig, count: Int, state: OptimizerState? = nil) -> Optimizer {
    switch config.optimizer {
    case .sgd: SGD(count: count, momentum: Float(config.momentum), weightDecay: Float(config.weightDecay), state: state)
    case .adam: Adam(count: count, beta1: config.adamBeta1, beta2: config.adamBeta2, epsilon: config.adamEpsilon,
                     weightDecay: config.weightDecay, state: state)
    }
}

/// Scales the gradient so its global L2 norm is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`
/// (coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Double {
    clipGradientNorm(gradients, shard: 0..<count, maxNorm: maxNorm, over: nil)
}

/// `clipGradientNorm` of a gradient whose ranks each hold one shard of the sums (§3.12): the squares of
/// `gradients[shard]` are summed over `communicator`'s ranks (collective) and only the shard is scaled.
@discardableResult
public func clipGradientNorm(_ gradients: UnsafeMutablePointer<Float>, shard: Range<Int>, maxNorm: Double,
                             over communicator: Communicator?) -> Double {
    // Blocks of 64 squares summed in Float lanes (8 terms a lane), the block sums in Double, as
    // `Elementwise.blockSum` does: a 33M-element norm keeps full precision.
    let g = gradients + shard.lowerBound, count = shard.count
    var total = 0.0, i = 0
    while i + 8 <= count {
        var acc = SIMD8<Float>()
        let end = min(count, i + 64) & ~7
        while i < end {
            let v = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
            acc += v * v
            i += 8
        }
        total += Double(acc.sum())
    }
    while i < count { total += Double(g[i]) * Double(g[i]); i += 1 }
    if let communicator { communicator.allreduceSum(&total, count: 1) }
    let norm = total.squareRoot()
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 { Elementwise.scale(g, by: Float(coefficient), into: g, count: count) }
    return norm
}
