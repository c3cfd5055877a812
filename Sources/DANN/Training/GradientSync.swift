/// Sums the gradient arena over ranks each step: either one in-place allreduce after backward, or
/// fixed-order buckets of at least `bucketFloats` started from `DANNModel.onGradientsReady` while backward
/// continues. Buckets follow the arena in decreasing order, identically on every rank.
///
/// With `--accumulate K` (§3.11) only the step's last pass starts buckets: the earlier passes' backward adds into
/// the arena, and a range is final only once the last pass has added to it. With `--allreduce-dtype bf16|fp16`
/// (§3.10) each range is rounded into a 16-bit staging arena (allocated once, arena-sized) just before its
/// reduction starts, reduced there, and the sums are widened back into the Float arena by `finish`.
///
/// With `--allreduce shared` (§3.12) the arenas are `SharedArenas`: backward publishes how far this rank's
/// gradients are final, `finish` does nothing, and `update` sums and updates blocks as they become final.
public final class GradientSync {
    public let mode: AllreduceMode
    public let dtype: AllreduceDType
    private let communicator: Communicator
    private let shared: SharedArenas?
    private let parameters: UnsafeMutablePointer<Float>
    private let gradients: UnsafeMutablePointer<Float>
    private let count: Int
    private let bucketFloats: Int
    /// The 16-bit copy of the gradients on the wire; nil for Float32 or a single process (no exchange).
    private let staging: AlignedBuffer<UInt16>?
    private var pending: [PendingReduction] = []
    /// The not-yet-started gradient range is [low, high): ranges arrive from the top of the arena down.
    private var low: Int
    private var high: Int
    /// When set, bucket starts are recorded as instants (the trainer's profiler records the wait in `finish`).
    public var timeline: Timeline?
    /// The step being reduced (labels the timeline's events).
    public var step = 0
    /// False during the backward of a pass that is not its step's last: the ranges it reports are not final
    /// yet (a later pass adds to them), so no bucket starts.
    public var isFinalPass = true

    /// `mode`: resolved (not `auto`); `shared`: the arenas `arena` lives in (`shared` on several ranks).
    public init(communicator: Communicator, arena: ParameterArena, mode: AllreduceMode, bucketMegabytes: Double = 25,
                dtype: AllreduceDType = .f32, shared: SharedArenas? = nil) {
        self.communicator = communicator
        precondition(mode != .auto, "GradientSync takes a resolved mode")
        precondition(mode != .shared || communicator.size == 1 || shared?.storage.gradients == arena.gradients,
                     "--allreduce shared: the arena must live in the shared arenas")
        self.mode = mode
        self.dtype = dtype
        self.shared = mode == .shared ? shared : nil
        parameters = arena.parameters
        gradients = arena.gradients
        count = arena.count
        bucketFloats = max(1, Int(bucketMegabytes * 1_048_576) / MemoryLayout<Float>.stride)
        staging = dtype.halfFormat != nil && communicator.size > 1 ? AlignedBuffer<UInt16>(capacity: arena.count) : nil
        low = count
        high = count
        pending.reserveCapacity(64)
    }

    /// Installs the hook on `model` through which backward reports final gradient ranges: buckets start their
    /// reductions, the shared arenas publish how far this rank's gradients are final (none for a single process
    /// or single-call mode).
    public func attach(to model: DANNModel) {
        guard communicator.size > 1 else { model.onGradientsReady = nil; return }
        if let shared {
            model.onGradientsReady = { [unowned self] range in if self.isFinalPass { shared.gradientsFinal(from: range.lowerBound) } }
        } else if mode == .buckets {
            model.onGradientsReady = { [unowned self] range in self.ready(range) }
        } else {
            model.onGradientsReady = nil
        }
    }

    private func ready(_ range: Range<Int>) {
        guard isFinalPass else { return }
        precondition(range.upperBound == low, "gradient ranges must arrive in decreasing arena order")
        low = range.lowerBound
        if high - low >= bucketFloats { startBucket() }
        if let last = pending.last { communicator.progress(last) }
    }

    private func startBucket() {
        timeline?.instant(.bucketStart, step: step, value: high - low)
        if let staging, let format = dtype.halfFormat {
            narrow(low..<high, into: staging.pointer, format: format)
            pending.append(communicator.startAllreduceSum(staging.pointer + low, count: high - low, format: format))
        } else {
            pending.append(communicator.startAllreduceSum(gradients + low, count: high - low))
        }
        high = low
    }

    /// Completes the step's reduction: afterwards every rank holds the summed gradient. With `shared` it does
    /// nothing: `update` sums each block once every rank's backward has made it final.
    public func finish() {
        guard communicator.size > 1, shared == nil else { return }
        if mode == .single {
            if let staging, let format = dtype.halfFormat {
                narrow(0..<count, into: staging.pointer, format: format)
                communicator.allreduceSum(staging.pointer, count: count, format: format)
            } else {
                communicator.allreduceSum(gradients, count: count)
            }
        } else {
            if high > low { startBucket() }
            precondition(low == 0, "backward did not report every gradient range")
            communicator.waitAll(pending)
        }
        // The buckets (or the one call) covered the whole arena, so one pass widens every sum back.
        if let staging, let format = dtype.halfFormat { widen(staging.pointer, format: format) }
        pending.removeAll(keepingCapacity: true)
        low = count
        high = count
    }

    /// Clips (if asked) and takes the optimizer's step on the summed gradient; with `shared`, sums and updates
    /// blocks of the one parameter arena with the other ranks, and returns once all are updated (collective).
    public func update(_ optimizer: Optimizer, learningRate: Float, clipNorm: Double?) {
        if let shared { return shared.update(optimizer, learningRate: learningRate, clipNorm: clipNorm) }
        if let clipNorm { clipGradientNorm(gradients, count: count, maxNorm: clipNorm) }
        optimizer.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
    }

    /// The whole summed gradient after `finish` (collective): the arena itself, or with `shared` a copy summed
    /// from every rank's arena.
    public func summedGradient() -> UnsafePointer<Float> {
        shared?.summedGradient() ?? UnsafePointer(gradients)
    }

    /// Copies rank 0's parameters and optimizer state to every rank (collective): broadcasts, or with `shared`,
    /// where all ranks use rank 0's arena and state, a barrier after which their contents are visible to all, and
    /// the step count.
    public func shareParameters(andStateOf optimizer: Optimizer) {
        if let shared { shared.synchronize() } else { communicator.broadcast(parameters, bytes: count * 4, root: 0) }
        optimizer.broadcastState(over: communicator, buffersShared: shared != nil)
    }

    /// Rounds `gradients[range]` into `staging[range]`, the range split over the compute threads.
    private func narrow(_ range: Range<Int>, into staging: UnsafeMutablePointer<UInt16>, format: HalfFormat) {
        let gradients = gradients
        Parallel.forRanges(in: range) { part in
            HalfFloat.narrow(gradients + part.lowerBound, into: staging + part.lowerBound, count: part.count, format: format)
        }
    }

    /// Widens the whole staging arena back into the gradients.
    private func widen(_ staging: UnsafeMutablePointer<UInt16>, format: HalfFormat) {
        let gradients = gradients
        Parallel.forRanges(count, work: count) { part in
            HalfFloat.widen(staging + part.lowerBound, into: gradients + part.lowerBound, count: part.count, format: format)
        }
    }
}
