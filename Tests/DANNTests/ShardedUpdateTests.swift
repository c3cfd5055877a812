import XCTest
@testable import DANN

/// The pieces of `--allreduce shared` (docs/design.md §3.12) that one process can check: the shards tile the
/// arena on cache lines, optimizers stepping one shard each (or updating block by block) take exactly the
/// whole-arena step, and the shard's sum over ranks is formed in rank order.
final class ShardedUpdateTests: XCTestCase {
    func testShardsTileTheArenaOnCacheLines() {
        for size in 1...9 {
            for count in [0, 7, 16, 100, 1000, 1_000_003, 33_372_108] {
                let shards = (0..<size).map { NodeSharedMemory.shard($0, of: size, count: count) }
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, count)
                for r in 1..<size {
                    XCTAssertEqual(shards[r].lowerBound, shards[r - 1].upperBound, "\(count) in \(size): contiguous")
                    XCTAssertEqual(shards[r].lowerBound % 16, 0, "\(count) in \(size): shard \(r) starts a cache line")
                }
                // Balanced: each within a cache line of count/size (the last takes the remainder too).
                for shard in shards {
                    XCTAssertLessThanOrEqual(abs(shard.count - count / size), 16 + count % size, "\(count) in \(size): \(shard)")
                }
            }
        }
    }

    /// Three optimizers, one per shard (as three ranks would hold them), over three steps give the parameters
    /// and state of one optimizer stepping the whole arena, bit for bit; each leaves the others' shards alone.
    func testOptimizersSteppingOneShardEachTakeTheWholeStep() {
        let n = 1003, ranks = 3
        var rng = TestRandom(21)
        let start = rng.floats(n), grads = (0..<3).map { _ in rng.floats(n) }
        let makers: [(String, () -> Optimizer)] = [
            ("sgd", { SGD(count: n, momentum: 0.9, weightDecay: 1e-3) }),
            ("adam", { Adam(count: n, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-3) }),
        ]
        for (name, make) in makers {
            let whole = make()
            var reference = start
            for g in grads { whole.step(parameters: &reference, gradients: g, learningRate: 0.05) }

            var sharded = start
            for r in 0..<ranks {
                let shard = NodeSharedMemory.shard(r, of: ranks, count: n), optimizer = make()
                var w = start
                for g in grads { optimizer.step(parameters: &w, gradients: g, learningRate: 0.05, range: shard) }
                XCTAssertEqual(Array(w[..<shard.lowerBound]), Array(start[..<shard.lowerBound]), "\(name) rank \(r): below its shard")
                XCTAssertEqual(Array(w[shard.upperBound...]), Array(start[shard.upperBound...]), "\(name) rank \(r): above its shard")
                sharded.replaceSubrange(shard, with: w[shard])
                for ((_, mine), (_, all)) in zip(optimizer.stateBuffers, whole.stateBuffers) {
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: mine.pointer + shard.lowerBound, count: shard.count)),
                                   Array(UnsafeBufferPointer(start: all.pointer + shard.lowerBound, count: shard.count)), "\(name) rank \(r): state")
                }
            }
            XCTAssertEqual(sharded, reference, name)
            XCTAssertNotEqual(reference, start, name)
        }
    }

    /// `update` over blocks, in any order, and then one count is the step: what `--allreduce shared` does
    /// while each block's sum is in L1.
    func testBlockUpdatesThenOneCountTakeTheStep() {
        let n = 1003
        var rng = TestRandom(8)
        let start = rng.floats(n), grads = (0..<3).map { _ in rng.floats(n) }
        for make in [{ SGD(count: n, momentum: 0.9, weightDecay: 1e-3) as Optimizer },
                     { Adam(count: n, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-3) as Optimizer }] {
            let whole = make(), blocks = make()
            var reference = start, w = start
            for g in grads {
                whole.step(parameters: &reference, gradients: g, learningRate: 0.05)
                for low in stride(from: 0, to: n, by: 100).reversed() {
                    blocks.update(parameters: &w, gradients: g, learningRate: 0.05, range: low..<min(n, low + 100))
                }
                blocks.stepsTaken += 1
            }
            XCTAssertEqual(w, reference, "\(type(of: whole))")
            XCTAssertEqual(blocks.stepsTaken, 3)
        }
    }

    /// ((g₀ + g₁) + g₂) in Float, element by element, over the range only: the naive loop's bits.
    func testShardSumAddsTheRanksInOrder() {
        let n = 1003, range = 5..<998
        var rng = TestRandom(4)
        // Magnitudes spread over 2⁻¹⁰ … 2¹⁰, so that another order of the additions rounds differently.
        var terms: [[Float]] = []
        for _ in 0..<3 {
            let values = rng.floats(n), exponents = rng.floats(n, -10, 10)
            terms.append(zip(values, exponents).map { value, exponent in value * Float(exp2(Double(exponent))) })
        }
        var out = [Float](repeating: -7, count: n)
        terms[0].withUnsafeBufferPointer { a in
            terms[1].withUnsafeBufferPointer { b in
                terms[2].withUnsafeBufferPointer { c in
                    SharedArenas.sum([a.baseAddress!, b.baseAddress!, c.baseAddress!], range: range, into: &out)
                }
            }
        }
        for i in 0..<n {
            let expected = range.contains(i) ? (terms[0][i] + terms[1][i]) + terms[2][i] : -7
            XCTAssertEqual(out[i].bitPattern, expected.bitPattern, "element \(i)")
        }
        let reordered = range.filter { i in
            let other: Float = terms[0][i] + (terms[1][i] + terms[2][i])
            return other != out[i]
        }
        XCTAssertFalse(reordered.isEmpty, "the data tells the orders apart")
    }

    /// An optimizer given state memory (the one node-shared copy of §3.12) keeps its state there, as many buffers
    /// as its kind says, and steps exactly as one with buffers of its own.
    func testOptimizerStateInGivenMemoryStepsAsOwnBuffers() {
        let n = 1003
        var rng = TestRandom(5)
        let start = rng.floats(n), grads = (0..<3).map { _ in rng.floats(n) }
        for kind in OptimizerKind.allCases {
            var config = TrainingConfig()
            config.optimizer = kind
            config.weightDecay = 1e-3
            let memory = (0..<kind.stateBufferCount).map { _ -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                p.initialize(repeating: 0, count: n)
                return p
            }
            defer { memory.forEach { $0.deallocate() } }
            let own = makeOptimizer(config, count: n), given = makeOptimizer(config, count: n, state: OptimizerState(buffers: memory))
            XCTAssertEqual(own.stateBuffers.count, kind.stateBufferCount, "\(kind)")
            XCTAssertEqual(given.stateBuffers.map { $0.buffer.pointer }, memory, "\(kind): the state lives in the given memory")
            var a = start, b = start
            for g in grads {
                own.step(parameters: &a, gradients: g, learningRate: 0.05)
                given.step(parameters: &b, gradients: g, learningRate: 0.05)
            }
            XCTAssertEqual(a, b, "\(kind)")
            XCTAssertNotEqual(a, start, "\(kind)")
            for ((_, x), pointer) in zip(own.stateBuffers, memory) {
                XCTAssertEqual(Array(UnsafeBufferPointer(start: x.pointer, count: n)), Array(UnsafeBufferPointer(start: pointer, count: n)), "\(kind) state")
            }
        }
    }
}
