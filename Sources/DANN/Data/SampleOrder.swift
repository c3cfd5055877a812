/// The global sample order of docs/design.md §3.3 as pure functions, independent of the number of ranks.
///
/// Generator (so a Python twin can reproduce it): SplitMix64 with 64-bit wrapping arithmetic,
///     state += 0x9E3779B97F4A7C15; z = state
///     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31)
/// seeded for (seed, epoch, stream) with state = seed ^ (0xD1B54A32D192ED03 * (2·epoch + stream + 1)).
/// Permutation of n: p = [0, 1, …, n−1]; for i = n−1 down to 1: j = next() % (i + 1); swap p[i], p[j].
public enum SampleOrder {
    /// Stream 0 orders the source set, stream 1 the target set.
    public static let sourceStream: UInt64 = 0, targetStream: UInt64 = 1

    /// SplitMix64 (Steele, Lea & Flood 2014): the state advances by the golden-ratio increment and each
    /// output is `CounterRNG.mix` of the state before the step (mix adds the increment itself).
    public struct SplitMix64: Sendable {
        public var state: UInt64
        public init(state: UInt64) { self.state = state }
        public mutating func next() -> UInt64 {
            let output = CounterRNG.mix(state)
            state &+= 0x9E37_79B9_7F4A_7C15
            return output
        }
    }

    /// The generator for one (seed, epoch, stream).
    public static func generator(seed: UInt64, epoch: Int, stream: UInt64) -> SplitMix64 {
        SplitMix64(state: seed ^ (0xD1B5_4A32_D192_ED03 &* (2 &* UInt64(epoch) &+ stream &+ 1)))
    }

    /// Epoch `epoch`'s order of `n` samples: Fisher–Yates driven by `generator`; identity without shuffle.
    public static func permutation(n: Int, seed: UInt64, epoch: Int, stream: UInt64, shuffle: Bool) -> [Int] {
        var p = Array(0..<n)
        guard shuffle, n > 1 else { return p }
        var rng = generator(seed: seed, epoch: epoch, stream: stream)
        for i in stride(from: n - 1, through: 1, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }

    /// Steps per epoch: floor(N_source / B) (the last partial batch is dropped).
    public static func stepsPerEpoch(sourceCount: Int, globalBatch: Int) -> Int {
        globalBatch > 0 ? sourceCount / globalBatch : 0
    }

    /// Rank `rank` of `size`'s contiguous part of a global batch: B/N samples, one more for r < B mod N.
    public static func rankSlice(globalBatch: Int, rank: Int, size: Int) -> Range<Int> {
        let base = globalBatch / size, extra = globalBatch % size
        let start = rank * base + min(rank, extra)
        return start ..< start + base + (rank < extra ? 1 : 0)
    }

    /// Source positions of global step `step`: epoch s / spe and positions [(s % spe)·B, +B) of its permutation.
    public static func sourcePosition(step: Int, offset: Int, globalBatch: Int, stepsPerEpoch: Int) -> (epoch: Int, position: Int) {
        (step / stepsPerEpoch, (step % stepsPerEpoch) * globalBatch + offset)
    }

    /// Target cursor: t = step·B + offset runs on across epochs; epoch t / N_target, position t mod N_target.
    public static func targetPosition(step: Int, offset: Int, globalBatch: Int, targetCount: Int) -> (epoch: Int, position: Int) {
        let t = step * globalBatch + offset
        return (t / targetCount, t % targetCount)
    }
}

/// Rank r of N's contiguous slice of a global batch of B (offsets within the batch). See `SampleOrder.rankSlice`.
public func rankSlice(globalBatch: Int, rank: Int, size: Int) -> Range<Int> {
    SampleOrder.rankSlice(globalBatch: globalBatch, rank: rank, size: size)
}
