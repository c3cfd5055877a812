/// Sums the gradient arena over ranks each step: either one in-place allreduce after backward, or
/// fixed-order buckets of at least `bucketFloats` started from `DANNModel.onGradientsReady` while backward
/// continues. Buckets follow the arena in decreasing order, identically on every rank.
public final class GradientSync {
    public let mode: AllreduceMode
    private let communicator: Communicator
    private let gradients: UnsafeMutablePointer<Float>
    private let count: Int
    private let bucketFloats: Int
    private var pending: [PendingReduction] = []
    /// The not-yet-started gradient range is [low, high): ranges arrive from the top of the arena down.
    private var low: Int
    private var high: Int
    /// When set, bucket starts are recorded as instants (the trainer's profiler records the wait in `finish`).
    public var timeline: Timeline?
    /// The step being reduced (labels the timeline's events).
    public var step = 0

    public init(communicator: Communicator, arena: ParameterArena, mode: AllreduceMode, bucketMegabytes: Double = 25) {
        self.communicator = communicator
        self.mode = mode
        gradients = arena.gradients
        count = arena.count
        bucketFloats = max(1, Int(bucketMegabytes * 1_048_576) / MemoryLayout<Float>.stride)
        low = count
        high = count
        pending.reserveCapacity(64)
    }

    /// Installs the bucket hook on `model` (no-op for a single process or single-call mode).
    public func attach(to model: DANNModel) {
        guard mode == .buckets, communicator.size > 1 else { model.onGradientsReady = nil; return }
        model.onGradientsReady = { [unowned self] range in self.ready(range) }
    }

    private func ready(_ range: Range<Int>) {
        precondition(range.upperBound == low, "gradient ranges must arrive in decreasing arena order")
        low = range.lowerBound
        if high - low >= bucketFloats { startBucket() }
        if let last = pending.last { communicator.progress(last) }
    }

    private func startBucket() {
        timeline?.instant(.bucketStart, step: step, value: high - low)
        pending.append(communicator.startAllreduceSum(gradients + low, count: high - low))
        high = low
    }

    /// Completes the step's reduction: afterwards every rank holds the summed gradient.
    public func finish() {
        guard communicator.size > 1 else { return }
        if mode == .single {
            communicator.allreduceSum(gradients, count: count)
        } else {
            if high > low { startBucket() }
            precondition(low == 0, "backward did not report every gradient range")
            communicator.waitAll(pending)
        }
        pending.removeAll(keepingCapacity: true)
        low = count
        high = count
    }
}
