/// The arenas of `--allreduce shared` (docs/design.md §3.12) and the step over them. Every rank on the node
/// keeps its gradient arena in its own shared segment, and all of them use one parameter arena, in rank 0's
/// segment. After backward (and a barrier) rank r of N sums shard r of the gradient over the ranks' arenas, in
/// rank order, and updates shard r of the one parameter arena; a second barrier ends the step. Nothing is copied
/// between ranks: the peers' gradients are read where they lie and the updated parameters are already in place.
public final class SharedArenas {
    /// The parameters in the arena.
    public let count: Int
    /// The part of the arenas this rank sums and updates.
    public let shard: Range<Int>
    private let gradientSegments: NodeSharedMemory
    private let parameterSegment: NodeSharedMemory
    private let communicator: Communicator
    /// Every rank's gradient arena as mapped here, in rank order.
    private let rankGradients: [UnsafePointer<Float>]
    /// The whole summed gradient, made only for `summedGradient` (the gradient dump).
    private var summedCopy: FloatBuffer?

    /// Maps the arenas for `count` parameters (collective); nil for one rank, or ranks not all on one node.
    public static func make(_ communicator: Communicator, count: Int) throws -> SharedArenas? {
        guard let gradients = try NodeSharedMemory.make(communicator, floats: count),
              let parameters = try NodeSharedMemory.make(communicator, floats: communicator.rank == 0 ? count : 0) else { return nil }
        return SharedArenas(count: count, gradients: gradients, parameters: parameters, communicator: communicator)
    }

    private init(count: Int, gradients: NodeSharedMemory, parameters: NodeSharedMemory, communicator: Communicator) {
        self.count = count
        gradientSegments = gradients
        parameterSegment = parameters
        self.communicator = communicator
        shard = NodeSharedMemory.shard(gradients.rank, of: gradients.size, count: count)
        rankGradients = (0..<gradients.size).map { UnsafePointer(gradients.segment($0)) }
    }

    /// Where the model's arenas go (`ParameterArena.Storage`): the one parameter arena and this rank's gradients.
    public var storage: (parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        (parameterSegment.segment(0), gradientSegments.own)
    }

    /// Returns when every rank has called it, everything each stored before visible to all (collective).
    public func synchronize() { gradientSegments.synchronize() }

    /// The step's update, between the two barriers (collective; every rank's backward must be done, i.e. after
    /// `synchronize`). Without clipping each thread walks its part of the shard in blocks of 4096 parameters,
    /// summing a block and updating it while the sum is still in L1; with clipping the whole shard is summed
    /// first, for the norm (one Double allreduce over the shards).
    public func update(_ optimizer: Optimizer, learningRate: Float, clipNorm: Double?) {
        let (parameters, gradients) = storage
        if let clipNorm {
            sum(shard, into: gradients)
            clipGradientNorm(gradients, shard: shard, maxNorm: clipNorm, over: communicator)
            optimizer.step(parameters: parameters, gradients: gradients, learningRate: learningRate, range: shard)
        } else {
            let block = 4096
            Parallel.forRanges(in: shard) { part in
                for start in stride(from: part.lowerBound, to: part.upperBound, by: block) {
                    let range = start..<min(part.upperBound, start + block)
                    SharedArenas.sum(rankGradients, range: range, into: gradients)
                    optimizer.update(parameters: parameters, gradients: gradients, learningRate: learningRate, range: range)
                }
            }
            optimizer.stepsTaken += 1
        }
        synchronize()   // every shard is updated before any rank's next forward
    }

    /// gradients[range] = Σ over the ranks' arenas, split over the compute threads.
    private func sum(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let sources = rankGradients
        Parallel.forRanges(in: range) { part in SharedArenas.sum(sources, range: part, into: out) }
    }

    /// out[range] = ((g₀ + g₁) + g₂) + … in rank order, eight lanes at a time in a register (`out` may be one of
    /// the sources: each element is read from all before it is written).
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

    /// The whole summed gradient, before the update (collective: no rank may start summing in place while
    /// another still reads its arena). A copy, made for the gradient dump.
    public func summedGradient() -> UnsafePointer<Float> {
        let copy = summedCopy ?? FloatBuffer(capacity: count)
        summedCopy = copy
        sum(0..<count, into: copy.pointer)
        synchronize()
        return UnsafePointer(copy.pointer)
    }

    /// Gives every rank the whole optimizer state, each shard broadcast by the rank that updates it (before a
    /// checkpoint; collective).
    public func gatherState(of optimizer: Optimizer) {
        for (_, buffer) in optimizer.stateBuffers {
            for r in 0..<gradientSegments.size {
                let part = NodeSharedMemory.shard(r, of: gradientSegments.size, count: count)
                communicator.broadcast(buffer.pointer + part.lowerBound, bytes: part.count * 4, root: r)
            }
        }
    }
}
