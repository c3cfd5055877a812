#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The arenas of `--allreduce shared` (docs/design.md §3.12) and the step over them. Every rank on the node
/// keeps its gradient arena in its own shared segment; all of them use one parameter arena and one copy of the
/// optimizer's state, in rank 0's segment. Nothing is copied between ranks: the peers' gradients are read where
/// they lie and the updated parameters are already in place.
///
/// The update is shared out dynamically and starts before the slowest rank's backward ends. Each rank publishes,
/// as its backward goes, from where on its gradient arena is final (backward finishes the arena from the top
/// down). A rank whose own backward is done claims blocks of the arena from a counter the ranks share, top block
/// first, waits until every rank's gradients of the block are final, sums the block over the ranks' arenas in
/// rank order and updates it. A rank that finishes early so updates the heads' blocks while a slower one is still
/// in the extractor's backward, instead of waiting at a barrier for it and then updating a fixed half. Who takes a
/// block changes no bit: every sum is ((g₀ + g₁) + g₂) + … and the update is elementwise.
public final class SharedArenas {
    /// The parameters in the arena.
    public let count: Int
    /// The part of the arenas this rank sums and updates when the update needs the whole sum first (clipping).
    public let shard: Range<Int>
    private let gradientSegments: NodeSharedMemory
    private let rootSegment: NodeSharedMemory
    private let communicator: Communicator
    /// Every rank's gradient arena as mapped here, in rank order.
    private let rankGradients: [UnsafePointer<Float>]
    private let control: UpdateControl
    /// Updates taken; tags this rank's published progress, and picks the claim counter (by parity).
    private var round = 0
    /// The whole summed gradient, made only for `summedGradient` (the gradient dump).
    private var summedCopy: FloatBuffer?
    /// Blocks of `claimFloats` this rank's threads summed and updated in the last update (0 with clipping).
    public private(set) var claimsTaken = 0
    /// A block's sum for each compute thread (`blockFloats` each), made on the first update.
    private let scratch = FloatBuffer()

    /// Floats a claim covers: 64 KB of each rank's gradients, summed and updated 4096 at a time while in L1.
    static let claimFloats = 16_384
    static let blockFloats = 4096

    /// Maps the arenas for `count` parameters and `stateBuffers` optimizer state buffers (collective); nil for one
    /// rank, or ranks not all on one node.
    public static func make(_ communicator: Communicator, count: Int, stateBuffers: Int) throws -> SharedArenas? {
        precondition(count < 1 << 32, "the shared arenas tag progress in 32 bits")
        let stride = (count + 15) & ~15
        let rootFloats = stride * (1 + stateBuffers) + UpdateControl.floats(ranks: communicator.size)
        guard let gradients = try NodeSharedMemory.make(communicator, floats: count),
              let root = try NodeSharedMemory.make(communicator, floats: communicator.rank == 0 ? rootFloats : 0) else { return nil }
        return SharedArenas(count: count, stride: stride, stateBuffers: stateBuffers, gradients: gradients, root: root,
                            communicator: communicator)
    }

    private init(count: Int, stride: Int, stateBuffers: Int, gradients: NodeSharedMemory, root: NodeSharedMemory,
                 communicator: Communicator) {
        self.count = count
        gradientSegments = gradients
        rootSegment = root
        self.communicator = communicator
        shard = NodeSharedMemory.shard(gradients.rank, of: gradients.size, count: count)
        rankGradients = (0..<gradients.size).map { UnsafePointer(gradients.segment($0)) }
        let base = root.segment(0)
        optimizerState = OptimizerState(buffers: (0..<stateBuffers).map { base + stride * (1 + $0) })
        control = UpdateControl(UnsafeMutableRawPointer(base + stride * (1 + stateBuffers)), ranks: gradients.size)
    }

    /// Where the model's arenas go (`ParameterArena.Storage`): the one parameter arena and this rank's gradients.
    public var storage: (parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        (rootSegment.segment(0), gradientSegments.own)
    }

    /// The one copy of the optimizer's state, for `makeOptimizer` on every rank.
    public let optimizerState: OptimizerState

    /// Returns when every rank has called it, everything each stored before visible to all (collective).
    public func synchronize() { gradientSegments.synchronize() }

    /// Backward has made this rank's gradients final from arena index `low` up (ranges arrive in decreasing order).
    public func gradientsFinal(from low: Int) {
        control.publish(rank: gradientSegments.rank, round: round, low: low)
    }

    /// The step's update (collective), from when this rank's backward is done: afterwards the one parameter arena has
    /// taken the step on the sum of every rank's gradients, and every rank may start the next forward. Without clipping the
    /// ranks' threads claim blocks as the type's comment says; with clipping the whole shard is summed first, for
    /// the norm (one Double allreduce over the shards), each rank then updating its own shard.
    public func update(_ optimizer: Optimizer, learningRate: Float, clipNorm: Double?) {
        let (parameters, gradients) = storage
        gradientsFinal(from: 0)
        if let clipNorm {
            claimsTaken = 0
            synchronize()
            sum(shard, into: gradients)
            clipGradientNorm(gradients, shard: shard, maxNorm: clipNorm, over: communicator)
            optimizer.step(parameters: parameters, gradients: gradients, learningRate: learningRate, range: shard)
        } else {
            let claims = (count + Self.claimFloats - 1) / Self.claimFloats
            let sources = rankGradients, round = round, control = control, count = count
            let taken = Atomic<Int>(0)
            let threads = Parallel.threads, sums = scratch.reserve(threads * Self.blockFloats)
            Parallel.forParts(threads) { t in
                // This thread's block sum, addressed by arena index (`sum - block.lowerBound`).
                let sum = sums + t * Self.blockFloats
                // Claim k is the k-th block from the top: the order in which backward makes them final.
                var claim = control.claim(round: round)
                while claim < claims {
                    let index = claims - 1 - claim
                    let range = index * Self.claimFloats..<min(count, (index + 1) * Self.claimFloats)
                    control.waitUntilFinal(from: range.lowerBound, round: round)
                    for start in Swift.stride(from: range.lowerBound, to: range.upperBound, by: Self.blockFloats) {
                        let block = start..<min(range.upperBound, start + Self.blockFloats)
                        SharedArenas.sum(sources, range: block, into: sum - block.lowerBound)
                        optimizer.update(parameters: parameters, gradients: sum - block.lowerBound, learningRate: learningRate, range: block)
                    }
                    taken.add(1, ordering: .relaxed)
                    claim = control.claim(round: round)
                }
            }
            claimsTaken = taken.load(ordering: .relaxed)
            optimizer.stepsTaken += 1
        }
        // Nobody uses the next round's counter in this one (its last claims ended before the previous round's final
        // barrier), and the barrier below publishes the reset.
        if gradientSegments.rank == 0 { control.resetClaims(round: round + 1) }
        round += 1
        synchronize()   // every block is updated before any rank's next forward
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

    /// The whole summed gradient, once every rank's backward is done (collective: no rank may start summing in
    /// place, as clipping does, while another still reads its arena). A copy, made for the gradient dump.
    public func summedGradient() -> UnsafePointer<Float> {
        let copy = summedCopy ?? FloatBuffer(capacity: count)
        summedCopy = copy
        synchronize()
        sum(0..<count, into: copy.pointer)
        synchronize()
        return UnsafePointer(copy.pointer)
    }
}

/// The few words in rank 0's segment through which the ranks share out an update: for each rank, how far its
/// backward has made its gradients final, and two claim counters used in alternate rounds. Each word has a cache
/// line of its own, so that a rank publishing its progress does not slow the others' claims.
private struct UpdateControl {
    private let base: UnsafeMutablePointer<Atomic<Int>>
    private let ranks: Int
    private static let wordsPerLine = 8

    /// Floats the control words take for `ranks` ranks.
    static func floats(ranks: Int) -> Int {
        (ranks + 2) * wordsPerLine * MemoryLayout<Int>.stride / MemoryLayout<Float>.stride
    }

    /// `memory` reads as zeros: no rank has published anything, and both counters are at 0.
    init(_ memory: UnsafeMutableRawPointer, ranks: Int) {
        base = memory.bindMemory(to: Atomic<Int>.self, capacity: (ranks + 2) * Self.wordsPerLine)
        self.ranks = ranks
    }

    private func word(_ index: Int) -> UnsafeMutablePointer<Atomic<Int>> { base + index * Self.wordsPerLine }

    /// Progress is tagged with the round (+1, so the zeroed word means nothing yet) in the high 32 bits, so that a
    /// rank still at the last round's value reads as having nothing final in this one.
    func publish(rank: Int, round: Int, low: Int) {
        word(rank).pointee.store((round + 1) << 32 | low, ordering: .releasing)
    }

    /// Spins (yielding the core after a while: ranks may outnumber cores) until every rank's gradients from `low`
    /// up are final in `round`.
    func waitUntilFinal(from low: Int, round: Int) {
        let tag = round + 1
        for r in 0..<ranks {
            var spins = 0
            while true {
                let value = word(r).pointee.load(ordering: .acquiring)
                if value >> 32 == tag && value & 0xFFFF_FFFF <= low { break }
                spins += 1
                if spins > 1000 { sched_yield() }
            }
        }
    }

    /// The next unclaimed index of `round`'s blocks (every call returns a new one; past the last, larger ones).
    func claim(round: Int) -> Int {
        word(ranks + (round & 1)).pointee.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func resetClaims(round: Int) {
        word(ranks + (round & 1)).pointee.store(0, ordering: .relaxed)
    }
}
