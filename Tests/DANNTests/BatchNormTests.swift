import Foundation
import XCTest
@testable import DANN

/// Batch normalisation against a naive Double reference written from PyTorch's definition (biased variance
/// to normalise, unbiased into the running variance, ε = 1e-5, momentum 0.1), with each domain of the batch
/// normalised on its own; backward against central finite differences of that reference.
final class BatchNormTests: XCTestCase {
    /// The naive reference on the layer's own layout ([C][N][plane], or [N][C] for rows).
    static func reference(_ x: [Double], gamma: [Double], beta: [Double], channels: Int, batch: Int, plane: Int,
                          channelMajor: Bool, sourceRows: Int) -> (y: [Double], means: [[Double]], variances: [[Double]]) {
        let imageMajor = channelMajor ? Naive.channelToImageMajor(x, n: batch, c: channels, plane: plane) : x
        let r = Naive.batchNorm(imageMajor, n: batch, c: channels, plane: plane, gamma: gamma, beta: beta, sourceRows: sourceRows)
        return (channelMajor ? Naive.imageToChannelMajor(r.y, n: batch, c: channels, plane: plane) : r.y, r.means, r.variances)
    }

    func checkGradients(channelMajor: Bool, sourceRows: Int, backwardRows: Int? = nil,
                        file: StaticString = #filePath, line: UInt = #line) {
        // 11 pixels a plane: one eight-lane block of the plane loops and a scalar tail.
        let (c, n, plane) = channelMajor ? (3, 5, 11) : (4, 6, 1)
        var rng = TestRandom(channelMajor ? 21 : 22)
        // An offset mean per channel: the variance must survive it (no E[x²] − E[x]² cancellation).
        let x = rng.floats(n * c * plane).enumerated().map { $0.element * 2 + 3 }
        let norm = BatchNorm(channels: c, layout: channelMajor ? .channelMajor(plane: plane) : .rows)
        let context = ForwardContext(training: true, domains: DomainSplit(localSource: sourceRows, globalSource: sourceRows,
                                                                           globalTarget: n - sourceRows))
        let reference: LayerReference = { x, p in
            Self.reference(x, gamma: p[0], beta: p[1], channels: c, batch: n, plane: plane, channelMajor: channelMajor,
                           sourceRows: sourceRows).y
        }
        check(norm, batch: n, input: x, params: [rng.floats(c, 0.5, 1.5), rng.floats(c)], context: context,
              backwardRows: backwardRows, reference: reference, file: file, line: line)
    }

    func testBatchNorm2dPerDomainGradients() { checkGradients(channelMajor: true, sourceRows: 2) }
    func testBatchNorm2dOneDomainGradients() { checkGradients(channelMajor: true, sourceRows: 5) }
    func testBatchNorm1dPerDomainGradients() { checkGradients(channelMajor: false, sourceRows: 3) }
    /// The label classifier's backward: over the source rows alone, the target rows carrying no loss.
    func testBatchNorm1dBackwardOverSourceRows() { checkGradients(channelMajor: false, sourceRows: 3, backwardRows: 3) }

    /// Running statistics after one training step (source, then target update) and the inference forward.
    func testRunningStatisticsAndInference() {
        let (c, n, plane, sourceRows) = (2, 4, 5, 1)
        var rng = TestRandom(23)
        let x = rng.floats(n * c * plane).map { $0 * 3 - 1 }
        let gamma = rng.floats(c, 0.5, 1.5), beta = rng.floats(c)
        let norm = BatchNorm(channels: c, layout: .channelMajor(plane: plane))
        var params = gamma + beta, grads = [Float](repeating: 0, count: 2 * c)
        params.withUnsafeMutableBufferPointer { p in grads.withUnsafeMutableBufferPointer { g in
            norm.bind(parameters: [p.baseAddress!, p.baseAddress! + c], gradients: [g.baseAddress!, g.baseAddress! + c])
            let context = ForwardContext(training: true, domains: DomainSplit(localSource: sourceRows, globalSource: sourceRows,
                                                                               globalTarget: n - sourceRows))
            _ = x.withUnsafeBufferPointer { norm.forward($0.baseAddress!, batch: n, context: context) }
        } }
        let ref = Self.reference(x.map(Double.init), gamma: gamma.map(Double.init), beta: beta.map(Double.init), channels: c,
                                 batch: n, plane: plane, channelMajor: true, sourceRows: sourceRows)
        for ch in 0..<c {
            let mean = 0.9 * (0.1 * ref.means[0][ch]) + 0.1 * ref.means[1][ch]
            let variance = 0.9 * (0.9 * 1 + 0.1 * ref.variances[0][ch]) + 0.1 * ref.variances[1][ch]
            XCTAssertEqual(Double(norm.runningMean[ch]), mean, accuracy: 1e-6)
            XCTAssertEqual(Double(norm.runningVariance[ch]), variance, accuracy: 1e-5)
        }
        XCTAssertEqual(norm.batchesTracked, 2)

        params.withUnsafeMutableBufferPointer { p in grads.withUnsafeMutableBufferPointer { g in
            norm.bind(parameters: [p.baseAddress!, p.baseAddress! + c], gradients: [g.baseAddress!, g.baseAddress! + c])
            let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: norm.forward($0.baseAddress!, batch: n, context: .inference), count: x.count)) }
            for ch in 0..<c { for i in 0..<n * plane {
                let k = ch * n * plane + i
                let std: Double = (Double(norm.runningVariance[ch]) + 1e-5).squareRoot()
                let centred: Double = Double(x[k]) - Double(norm.runningMean[ch])
                let expected: Double = centred / std * Double(gamma[ch]) + Double(beta[ch])
                XCTAssertEqual(Double(y[k]), expected, accuracy: 1e-5)
            } }
        } }
    }

    /// `target` and `source` each blend in only their domain's batch statistics, once per step.
    func testRunningStatisticsFollowOneDomain() {
        let (c, n, plane, sourceRows) = (3, 5, 4, 2)
        var rng = TestRandom(25)
        let x = rng.floats(n * c * plane).map { $0 * 2 + 0.5 }
        let ref = Self.reference(x.map(Double.init), gamma: [Double](repeating: 1, count: c), beta: [Double](repeating: 0, count: c),
                                 channels: c, batch: n, plane: plane, channelMajor: true, sourceRows: sourceRows)
        for (choice, domain) in [(BatchNorm.RunningStatistics.target, 1), (.source, 0)] {
            let norm = BatchNorm(channels: c, layout: .channelMajor(plane: plane))
            norm.runningStatistics = choice
            var params = [Float](repeating: 1, count: c) + [Float](repeating: 0, count: c)
            var grads = [Float](repeating: 0, count: 2 * c)
            params.withUnsafeMutableBufferPointer { p in grads.withUnsafeMutableBufferPointer { g in
                norm.bind(parameters: [p.baseAddress!, p.baseAddress! + c], gradients: [g.baseAddress!, g.baseAddress! + c])
                let context = ForwardContext(training: true, domains: DomainSplit(localSource: sourceRows, globalSource: sourceRows,
                                                                                   globalTarget: n - sourceRows))
                _ = x.withUnsafeBufferPointer { norm.forward($0.baseAddress!, batch: n, context: context) }
            } }
            for ch in 0..<c {
                XCTAssertEqual(Double(norm.runningMean[ch]), 0.1 * ref.means[domain][ch], accuracy: 1e-6, "\(choice)")
                XCTAssertEqual(Double(norm.runningVariance[ch]), 0.9 + 0.1 * ref.variances[domain][ch], accuracy: 1e-5, "\(choice)")
            }
            XCTAssertEqual(norm.batchesTracked, 1, "\(choice)")
        }
    }

    /// Two "ranks" on two threads, each holding half of the batch and exchanging sums through `reduceSums`,
    /// normalise exactly as one process holding the whole batch, and their input gradients match it too.
    func testGlobalStatisticsThroughReduceSums() {
        let (c, plane) = (3, 12)   // an eight-lane block and a tail in every plane loop
        var rng = TestRandom(24)
        let whole = rng.floats(4 * c * plane).map { $0 + 0.5 }   // channel-major, rows 0–1 source, 2–3 target
        let dyWhole = rng.floats(4 * c * plane)
        let gamma = rng.floats(c, 0.5, 1.5), beta = rng.floats(c)
        @Sendable func rows(_ x: [Float], _ list: [Int]) -> [Float] {
            var out: [Float] = []
            for ch in 0..<c {
                for n in list { out += x[(ch * 4 + n) * plane..<(ch * 4 + n + 1) * plane] }
            }
            return out
        }
        @Sendable func run(_ norm: BatchNorm, x: [Float], dy: [Float], batch: Int, split: DomainSplit) -> (y: [Float], dx: [Float]) {
            var params = gamma + beta, grads = [Float](repeating: 0, count: 2 * c)
            return params.withUnsafeMutableBufferPointer { p in grads.withUnsafeMutableBufferPointer { g in
                norm.bind(parameters: [p.baseAddress!, p.baseAddress! + c], gradients: [g.baseAddress!, g.baseAddress! + c])
                let count = batch * c * plane
                let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: norm.forward($0.baseAddress!, batch: batch, context: ForwardContext(training: true, domains: split)), count: count)) }
                let dx = dy.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: norm.backward($0.baseAddress!, batch: batch, needInputGradient: true)!, count: count)) }
                return (y, dx)
            } }
        }
        let single = run(BatchNorm(channels: c, layout: .channelMajor(plane: plane)), x: whole, dy: dyWhole, batch: 4,
                         split: DomainSplit(localSource: 2, globalSource: 2, globalTarget: 2))

        // The one process against the formula in Double: dx = γσ⁻¹(dy − mean dy − x̂ · mean(dy·x̂)) per (channel, domain).
        var dxRef = [Double](repeating: 0, count: whole.count)
        for ch in 0..<c {
            for domain in [[0, 1], [2, 3]] {
                let at = domain.flatMap { n in (0..<plane).map { (ch * 4 + n) * plane + $0 } }
                let k = Double(at.count)
                let mean = at.reduce(0.0) { $0 + Double(whole[$1]) } / k
                let variance = at.reduce(0.0) { $0 + (Double(whole[$1]) - mean) * (Double(whole[$1]) - mean) } / k
                let inv = 1 / (variance + 1e-5).squareRoot()
                let xhat = at.map { (Double(whole[$0]) - mean) * inv }
                let meanDy = at.reduce(0.0) { $0 + Double(dyWhole[$1]) } / k
                let meanDyXhat = zip(at, xhat).reduce(0.0) { $0 + Double(dyWhole[$1.0]) * $1.1 } / k
                for (i, index) in at.enumerated() {
                    dxRef[index] = Double(gamma[ch]) * inv * (Double(dyWhole[index]) - meanDy - xhat[i] * meanDyXhat)
                }
            }
        }
        XCTAssertLessThan(relativeError(single.dx.map(Double.init), dxRef), 1e-5, "input gradient against the Double formula")

        // Rank 0 holds source row 0 and target row 2; rank 1 source row 1 and target row 3.
        let exchange = TwoPartySum()
        let mine = [[0, 2], [1, 3]]
        // Each thread writes its own slot under a lock: two unsynchronised writes into one Swift array can
        // lose one of them (a rare nil here crashed a CI run).
        final class Results: @unchecked Sendable {
            private let lock = NSLock()
            private var slots: [(y: [Float], dx: [Float])?] = [nil, nil]
            subscript(r: Int) -> (y: [Float], dx: [Float])? {
                get { lock.lock(); defer { lock.unlock() }; return slots[r] }
                set { lock.lock(); slots[r] = newValue; lock.unlock() }
            }
        }
        let results = Results()
        let group = DispatchGroup()
        for r in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                let norm = BatchNorm(channels: c, layout: .channelMajor(plane: plane))
                norm.reduceSums = { exchange.sum($0, count: $1, party: r) }
                results[r] = run(norm, x: rows(whole, mine[r]), dy: rows(dyWhole, mine[r]), batch: 2,
                                 split: DomainSplit(localSource: 1, globalSource: 2, globalTarget: 2))
                group.leave()
            }
        }
        group.wait()
        for r in 0..<2 {
            let expected = (y: rows(single.y, mine[r]), dx: rows(single.dx, mine[r]))
            guard let result = results[r] else { XCTFail("thread \(r) left no result"); continue }
            XCTAssertLessThan(relativeError(result.y.map(Double.init), expected.y.map(Double.init)), 1e-6)
            XCTAssertLessThan(relativeError(result.dx.map(Double.init), expected.dx.map(Double.init)), 1e-6)
        }
    }
}

/// An allreduce between two threads: each deposits its buffer, and both leave with the elementwise sum.
final class TwoPartySum: @unchecked Sendable {
    private let condition = NSCondition()
    private var deposits: [[Double]?] = [nil, nil]
    private var taken = 0

    func sum(_ buffer: UnsafeMutablePointer<Double>, count: Int, party: Int) {
        condition.lock()
        while taken > 0 { condition.wait() }            // the previous exchange is still being read
        deposits[party] = Array(UnsafeBufferPointer(start: buffer, count: count))
        condition.broadcast()
        while deposits[1 - party] == nil && taken == 0 { condition.wait() }
        let other = deposits[1 - party]!
        for i in 0..<count { buffer[i] += other[i] }
        taken += 1
        if taken == 2 { deposits = [nil, nil]; taken = 0; condition.broadcast() }
        condition.unlock()
    }
}
