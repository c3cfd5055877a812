import Foundation
import XCTest
@testable import DANN

final class DataSamplingTests: XCTestCase {
    /// The documented generator re-implemented in Python (the twin a PyTorch script would use).
    func testPermutationMatchesPythonTwin() throws {
        let cases: [(n: Int, seed: UInt64, epoch: Int, stream: UInt64)] = [
            (10, 0, 0, 0), (1000, 42, 3, 1), (73257, 1 << 63 | 5, 7, 0),
        ]
        let script = """
        M = (1 << 64) - 1
        def perm(n, seed, epoch, stream):
            state = seed ^ ((0xD1B54A32D192ED03 * (2 * epoch + stream + 1)) & M)
            p = list(range(n))
            for i in range(n - 1, 0, -1):
                state = (state + 0x9E3779B97F4A7C15) & M
                z = state
                z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
                z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
                z ^= z >> 31
                j = z % (i + 1)
                p[i], p[j] = p[j], p[i]
            return p
        for n, seed, epoch, stream in [\(cases.map { "(\($0.n), \($0.seed), \($0.epoch), \($0.stream))" }.joined(separator: ", "))]:
            print(' '.join(map(str, perm(n, seed, epoch, stream))))
        """
        let lines = try DataFixtures.python(script).split(separator: "\n")
        XCTAssertEqual(lines.count, cases.count)
        for (c, line) in zip(cases, lines) {
            let ours = SampleOrder.permutation(n: c.n, seed: c.seed, epoch: c.epoch, stream: c.stream, shuffle: true)
            XCTAssertEqual(ours, line.split(separator: " ").map { Int($0)! }, "n=\(c.n) seed=\(c.seed)")
        }
        XCTAssertEqual(SampleOrder.permutation(n: 5, seed: 9, epoch: 2, stream: 0, shuffle: false), [0, 1, 2, 3, 4])
        XCTAssertNotEqual(SampleOrder.permutation(n: 100, seed: 9, epoch: 0, stream: 0, shuffle: true),
                          SampleOrder.permutation(n: 100, seed: 9, epoch: 0, stream: 1, shuffle: true))
    }

    /// The published SplitMix64 sequence from state 0, and CounterRNG.mix as its single step.
    func testSplitMix64ReferenceOutputs() {
        var rng = SampleOrder.SplitMix64(state: 0)
        XCTAssertEqual([rng.next(), rng.next(), rng.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        XCTAssertEqual(CounterRNG.mix(0), 0xE220_A839_7B1D_CDAF)
    }

    /// Rank slices against a naive dealer: sizes B/N (+1 for r < B mod N), contiguous, in rank order, covering B.
    func testRankSliceAgainstNaive() {
        for b in 0...40 {
            for n in 1...7 {
                var sizes = [Int](repeating: 0, count: n)
                for i in 0..<b { sizes[i % n] += 1 } // dealing round-robin gives the same sizes
                var start = 0
                for r in 0..<n {
                    XCTAssertEqual(rankSlice(globalBatch: b, rank: r, size: n), start ..< start + sizes[r], "B=\(b) N=\(n) r=\(r)")
                    start += sizes[r]
                }
                XCTAssertEqual(start, b)
            }
        }
    }

    private func batches(size: Int, rank: Int, batch: Int = 64, limitTarget: Int? = 50, shuffle: Bool = true,
                         limitSource: Int? = nil) throws -> DomainBatches {
        let config = DataConfig(source: .svhn, target: .mnist, dataDir: try DataFixtures.committedDataDir(), inputSize: 28,
                                normalize: false, limitSource: limitSource, limitTarget: limitTarget, seed: 1234, shuffle: shuffle)
        return try DomainBatches(config: config, globalBatch: batch, rank: rank, size: size)
    }

    /// For N = 1...4 ranks, every step's global batch is the same and each sample appears at most once per
    /// epoch (exactly the first spe·B positions of the epoch's permutation).
    func testShardsAreIndependentOfRankCount() throws {
        let b = 64
        let single = try batches(size: 1, rank: 0)
        XCTAssertEqual(single.sourceCount, 1083)
        XCTAssertEqual(single.stepsPerEpoch, 1083 / 64)
        XCTAssertTrue(single.notes.first?.contains("has no full SVHN: using the 1,083-image bundled sample") == true)
        for epoch in 0..<2 {
            let reference = single.sourceIndices(epoch: epoch)
            XCTAssertEqual(Set(reference).count, single.stepsPerEpoch * b, "no sample twice in an epoch")
            XCTAssertEqual(reference, Array(SampleOrder.permutation(n: 1083, seed: 1234, epoch: epoch, stream: 0, shuffle: true)
                                            .prefix(single.stepsPerEpoch * b)))
            let targetReference = single.targetIndices(epoch: epoch)
            for n in 2...4 {
                let ranks = try (0..<n).map { try batches(size: n, rank: $0) }
                let shards = ranks.map { $0.sourceIndices(epoch: epoch) }
                let targets = ranks.map { $0.targetIndices(epoch: epoch) }
                var rebuilt: [Int] = [], rebuiltTarget: [Int] = []
                for step in 0..<single.stepsPerEpoch {
                    for r in 0..<n {
                        let local = ranks[r].localSlice.count
                        rebuilt += shards[r][step * local ..< (step + 1) * local]
                        rebuiltTarget += targets[r][step * local ..< (step + 1) * local]
                    }
                }
                XCTAssertEqual(rebuilt, reference, "N=\(n) epoch \(epoch)")
                XCTAssertEqual(rebuiltTarget, targetReference, "N=\(n) epoch \(epoch) target")
            }
        }
    }

    /// The target cursor runs on across steps and wraps: with 50 targets and B = 64, every aligned block
    /// of 50 consecutive positions is a full permutation of 0..<50, and consecutive blocks differ.
    func testTargetCursorWraps() throws {
        let single = try batches(size: 1, rank: 0)
        XCTAssertEqual(single.targetCount, 50)
        let stream = single.targetIndices(epoch: 0) + single.targetIndices(epoch: 1)
        let blocks = stride(from: 0, to: stream.count - 50, by: 50).map { Array(stream[$0 ..< $0 + 50]) }
        XCTAssertGreaterThanOrEqual(blocks.count, 40)
        for block in blocks { XCTAssertEqual(block.sorted(), Array(0..<50)) }
        XCTAssertNotEqual(blocks[0], blocks[1])
    }

    func testNoShuffleAndLimit() throws {
        let plain = try batches(size: 1, rank: 0, shuffle: false, limitSource: 200)
        XCTAssertEqual(plain.sourceCount, 200)
        XCTAssertEqual(plain.stepsPerEpoch, 3)
        XCTAssertEqual(plain.sourceIndices(epoch: 5), Array(0..<192))
        XCTAssertEqual(Array(plain.targetIndices(epoch: 0).prefix(60)), Array(0..<50) + Array(0..<10))
        let limited = try batches(size: 1, rank: 0, limitSource: 200)
        XCTAssertEqual(Set(limited.sourceIndices(epoch: 0)).count, 192)
        XCTAssertTrue(limited.sourceIndices(epoch: 0).allSatisfy { $0 < 200 })
        DataFixtures.assertFileError("train_32x32.mat", "fewer than one batch of 64") { try batches(size: 1, rank: 0, limitSource: 63) }
    }

    /// fill() writes exactly the preprocessed images and labels of this rank's slice, across an epoch change.
    func testFillMatchesDirectLoad() throws {
        let ranks = 3, rank = 2, b = 64
        let data = try batches(size: ranks, rank: rank)
        let local = data.localSlice.count
        XCTAssertEqual(data.localSlice, 43 ..< 64)
        let svhn = try SVHNDataset(split: .train, path: DataFixtures.svhnSample)
        let mnist = try openDataset(.mnist, .train, dataDir: DataFixtures.repository).0
        let pre = Preprocessor(inputSize: 28, normalize: false)
        let floats = 3 * 28 * 28
        var src = [Float](repeating: .nan, count: local * floats), tgt = src
        var labels = [Int32](repeating: -1, count: local)
        for step in [data.stepsPerEpoch - 1, data.stepsPerEpoch + 2] {
            try data.fill(step: step, source: &src, labels: &labels, target: &tgt)
            let epoch = step / data.stepsPerEpoch, k = step % data.stepsPerEpoch
            let perm = SampleOrder.permutation(n: 1083, seed: 1234, epoch: epoch, stream: 0, shuffle: true)
            let sourceIdx = data.localSlice.map { perm[k * b + $0] }
            let targetIdx = data.localSlice.map { offset -> Int in
                let t = step * b + offset
                return SampleOrder.permutation(n: 50, seed: 1234, epoch: t / 50, stream: 1, shuffle: true)[t % 50]
            }
            var expectSrc = [Float](repeating: 0, count: local * floats), expectTgt = expectSrc
            let rawS = try svhn.load(indices: sourceIdx), rawT = try mnist.load(indices: targetIdx)
            // The labels as a direct load reads them (DataSVHNTests checks those against the reference decode).
            XCTAssertEqual(labels, rawS.labels.map { Int32($0) })
            for i in 0..<local {
                pre.write(rawS, index: i, into: &expectSrc[i * floats])
                pre.write(rawT, index: i, into: &expectTgt[i * floats])
            }
            XCTAssertTrue(src == expectSrc, "source images differ at step \(step)")
            XCTAssertTrue(tgt == expectTgt, "target images differ at step \(step)")
        }
    }

    /// A split of which an epoch uses at least a quarter is read once and kept whole; the batches are those of
    /// reading every epoch's shard. At one rank (1024 rows an epoch) both the 1083 SVHN images and the 50 MNIST
    /// ones are kept: 2 file passes in 3 epochs instead of 6. At four ranks a rank uses 256 rows an epoch, under a
    /// quarter of SVHN's 1083 (read every epoch) but not of the 50 MNIST images (kept): 3 + 1.
    func testBusySplitsAreReadOnceAndGiveTheSameBatches() throws {
        for (size, rank, expectedLoads) in [(1, 0, 2), (4, 3, 4)] {
            let kept = try batches(size: size, rank: rank), plain = try batches(size: size, rank: rank)
            plain.keepsBusySplits = false
            let local = kept.localSlice.count, floats = 3 * 28 * 28, epochs = 3
            for step in 0 ..< epochs * kept.stepsPerEpoch {
                var s1 = [Float](repeating: 0, count: local * floats), t1 = s1, s2 = s1, t2 = s1
                var l1 = [Int32](repeating: 0, count: local), l2 = l1
                try plain.fill(step: step, source: &s1, labels: &l1, target: &t1)
                try kept.fill(step: step, source: &s2, labels: &l2, target: &t2)
                XCTAssertTrue(s1 == s2 && t1 == t2 && l1 == l2, "np=\(size) step \(step)")
            }
            XCTAssertEqual(plain.fileLoads, 2 * epochs, "np=\(size): a shard per domain and epoch")
            XCTAssertEqual(kept.fileLoads, expectedLoads, "np=\(size)")
        }
    }

    /// Prefetching the next epoch in the background gives the same batches as loading at the epoch change.
    func testPrefetchGivesSameBatches() throws {
        let plain = try batches(size: 2, rank: 1, batch: 256), ahead = try batches(size: 2, rank: 1, batch: 256)
        // Both domains read per epoch (a kept split has nothing to prefetch).
        plain.keepsBusySplits = false
        ahead.keepsBusySplits = false
        ahead.prefetchNextEpoch = true
        let local = plain.localSlice.count, floats = 3 * 28 * 28
        for step in 0 ..< 3 * plain.stepsPerEpoch {
            var s1 = [Float](repeating: 0, count: local * floats), t1 = s1, s2 = s1, t2 = s1
            var l1 = [Int32](repeating: 0, count: local), l2 = l1
            try plain.fill(step: step, source: &s1, labels: &l1, target: &t1)
            try ahead.fill(step: step, source: &s2, labels: &l2, target: &t2)
            XCTAssertTrue(s1 == s2 && t1 == t2 && l1 == l2, "step \(step)")
        }
        XCTAssertEqual(plain.stepsPerEpoch, 4)
    }

    func testEvalSlices() throws {
        let labels = try DataFixtures.gunzip("\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")
        var total = 0
        for r in 0..<3 {
            let slice = try XCTUnwrap(loadEvalSlice(.mnist, dataDir: DataFixtures.repository, rank: r, size: 3))
            XCTAssertEqual(slice.count, r == 0 ? 3334 : 3333)
            XCTAssertEqual(slice.labels, Array(labels[8 + total ..< 8 + total + slice.count]))
            total += slice.count
        }
        XCTAssertEqual(total, 10000)
        XCTAssertNil(try loadEvalSlice(.svhn, dataDir: DataFixtures.committedDataDir(), rank: 0, size: 1), "no SVHN test set is committed")
    }
}
