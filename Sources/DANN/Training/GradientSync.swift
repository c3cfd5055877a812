/// Sums the gradient arena over ranks each step: either one in-place allreduce after backward, or
/// fixed-order buckets of at least `bucketFloats` started from `DANNModel.onGradientsReady` while backward
/// continues. Buckets follow the arena in decreasing order, identically on every rank.
///
/// With `--accumulate K` (§3.11) only the step's last pass starts buckets: the earlier passes' backward adds into
/// the arena, and a range is final only once the last pass has added to it. With `--allreduce-dtype bf16|fp16`
/// (§3.10) each range is rounded into a 16-bit staging arena (allocated once, arena-sized) just before its
/// reduction starts, reduced there, and the sums are widened back into the Float arena by `finish`.
///
/// With `--allreduce shared` (§3.12) the arenas live in node-shared memory: `finish` leaves each rank the sum of
/// its own shard only (read straight from every rank's arena), the optimizer updates that shard, and
/// `shareUpdatedParameters` copies the other ranks' updated shards in.
public final class GradientSync {
    public let mode: AllreduceMode
    public let dtype: AllreduceDType
    /// The part of the arena this rank sums and updates: all of it, except with `shared` on several ranks.
    public let shard: Range<Int>
    private let communicator: Communicator
    private let memory: NodeSharedMemory?
    private let parameters: UnsafeMutablePointer<Float>
    /// `shared`: every rank's gradient arena as mapped here, in rank order.
    private let rankGradients: [UnsafePointer<Float>]
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

    /// `mode`: resolved (not `auto`); `memory`: the node-shared memory that holds `arena` (`shared` on several ranks).
    public init(communicator: Communicator, arena: ParameterArena, mode: AllreduceMode, bucketMegabytes: Double = 25,
                dtype: AllreduceDType = .f32, memory: NodeSharedMemory? = nil) {
        self.communicator = communicator
        precondition(mode != .auto, "GradientSync takes a resolved mode")
        precondition(mode != .shared || communicator.size == 1 || memory != nil, "--allreduce shared without shared memory")
        self.mode = mode
        self.dtype = dtype
        self.memory = mode == .shared ? memory : nil
        shard = self.memory.map { NodeSharedMemory.shard($0.rank, of: $0.size, count: arena.count) } ?? 0..<arena.count
        parameters = arena.parameters
        gradients = arena.gradients
        var rankGradients: [UnsafePointer<Float>] = []
        if let memory = self.memory {
            for r in 0..<memory.size { rankGradients.append(UnsafePointer(memory.segment(r) + (arena.gradients - memory.own))) }
        }
        self.rankGradients = rankGradients
        count = arena.count
        bucketFloats = max(1, Int(bucketMegabytes * 1_048_576) / MemoryLayout<Float>.stride)
        staging = dtype.halfFormat != nil && communicator.size > 1 ? AlignedBuffer<UInt16>(capacity: arena.count) : nil
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

    /// Completes the step's reduction: afterwards every rank holds the summed gradient over `shard`.
    public func finish() {
        guard communicator.size > 1 else { return }
        if let memory {
            memory.synchronize()     // every rank's backward is done
            sumShard()
            return
        }
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

    /// gradients[shard] = Σ over ranks in rank order, ((g₀ + g₁) + g₂) + …, eight lanes at a time in a register
    /// (this rank's own gradient is one of the terms, so the sum cannot build up in place).
    private func sumShard() {
        let sources = rankGradients, gradients = gradients, shard = shard
        Parallel.forRanges(shard.count, work: shard.count) { part in
            GradientSync.sum(sources, range: (shard.lowerBound + part.lowerBound)..<(shard.lowerBound + part.upperBound), into: gradients)
        }
    }

    static func sum(_ sources: [UnsafePointer<Float>], range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        sources.withUnsafeBufferPointer { sources in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                var acc = UnsafeRawPointer(sources[0] + i).loadUnaligned(as: SIMD8<Float>.self)
                for r in 1..<sources.count { acc += UnsafeRawPointer(sources[r] + i).loadUnaligned(as: SIMD8<Float>.self) }
                UnsafeMutableRawPointer(out + i).storeBytes(of: acc, as: SIMD8<Float>.self)
                i += 8
            }
            while i < range.upperBound {
                var acc = sources[0][i]
                for r in 1..<sources.count { acc += sources[r][i] }
                out[i] = acc
                i += 1
            }
        }
    }

    /// After the optimizer has updated this rank's shard: waits for every rank's update and copies the other
    /// shards in, so every rank again holds all the parameters (`shared` only; collective).
    public func shareUpdatedParameters() {
        guard let memory else { return }
        memory.synchronize()
        copyOtherShards(memory, arena: parameters)
    }

    /// Fills the rest of the gradient arena with the other ranks' summed shards, for a caller that needs the whole
    /// summed gradient after `finish` (the gradient dump; `shared` only; collective).
    public func gatherGradients() {
        guard let memory else { return }
        memory.synchronize()
        copyOtherShards(memory, arena: gradients)
    }

    /// Gives every rank the whole optimizer state, each shard from the rank that updated it (before a
    /// checkpoint; `shared` only; collective).
    public func gatherState(of optimizer: Optimizer) {
        guard let memory else { return }
        for (_, buffer) in optimizer.stateBuffers {
            for r in 0..<memory.size {
                let part = NodeSharedMemory.shard(r, of: memory.size, count: count)
                communicator.broadcast(buffer.pointer + part.lowerBound, bytes: part.count * 4, root: r)
            }
        }
    }

    /// Copies every other rank's shard of `arena` (this rank's parameters or gradients) from that rank's segment.
    private func copyOtherShards(_ memory: NodeSharedMemory, arena: UnsafeMutablePointer<Float>) {
        let offset = arena - memory.own
        for r in 0..<memory.size where r != memory.rank {
            let part = NodeSharedMemory.shard(r, of: memory.size, count: count), source = memory.segment(r) + offset
            Parallel.forRanges(part.count, work: part.count) { range in
                (arena + part.lowerBound + range.lowerBound).update(from: source + part.lowerBound + range.lowerBound, count: range.count)
            }
        }
    }

    /// Rounds `gradients[range]` into `staging[range]`, the range split over the compute threads.
    private func narrow(_ range: Range<Int>, into staging: UnsafeMutablePointer<UInt16>, format: HalfFormat) {
        let gradients = gradients
        Parallel.forRanges(range.count, work: range.count) { part in
            let start = range.lowerBound + part.lowerBound
            HalfFloat.narrow(gradients + start, into: staging + start, count: part.count, format: format)
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
