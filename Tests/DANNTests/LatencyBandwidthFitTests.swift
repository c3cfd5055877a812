import XCTest
@testable import DANN

/// The α–β fit against times made from known α and β (the reference is the generating formula, not the fit).
final class LatencyBandwidthFitTests: XCTestCase {
    private let sizes = (0...25).map { 4 << $0 }  // 4 B … 128 MiB, as `bench --allreduce` sweeps

    private func times(alpha: Double, beta: Double, ranks n: Int, noise: (Int) -> Double = { _ in 1 }) -> [(bytes: Int, seconds: Double)] {
        sizes.enumerated().map { i, bytes in (bytes, (alpha + 2 * Double(n - 1) / Double(n) * Double(bytes) / beta) * noise(i)) }
    }

    func testBusFactorIsTheRingsTwoNMinusOneOverN() {
        XCTAssertEqual(LatencyBandwidthFit.busFactor(ranks: 1), 0)
        XCTAssertEqual(LatencyBandwidthFit.busFactor(ranks: 2), 1)
        XCTAssertEqual(LatencyBandwidthFit.busFactor(ranks: 4), 1.5)
        XCTAssertEqual(LatencyBandwidthFit.busFactor(ranks: 64), 126.0 / 64)
    }

    func testExactTimesGiveBackAlphaAndBeta() throws {
        for (alpha, beta, n) in [(2e-6, 5e9, 2), (40e-6, 1.1e9, 2), (15e-6, 3e9, 4), (1e-3, 12.5e9, 64)] {
            let fit = try XCTUnwrap(LatencyBandwidthFit.fit(ranks: n, samples: times(alpha: alpha, beta: beta, ranks: n)))
            XCTAssertEqual(fit.alpha, alpha, accuracy: 1e-9 * alpha, "n \(n)")
            XCTAssertEqual(fit.beta, beta, accuracy: 1e-9 * beta, "n \(n)")
            XCTAssertEqual(fit.seconds(bytes: 133e6, ranks: n), alpha + 2 * Double(n - 1) / Double(n) * 133e6 / beta,
                           accuracy: 1e-12)
        }
    }

    /// ±5 % alternating noise on every point: α and β stay within the noise (plain least squares would let the
    /// 128 MiB point's few milliseconds of noise swamp an α of microseconds).
    func testNoisyTimesStayNearAlphaAndBeta() throws {
        let alpha = 3e-6, beta = 4e9
        let noisy = times(alpha: alpha, beta: beta, ranks: 2) { i in i % 2 == 0 ? 1.05 : 0.95 }
        let fit = try XCTUnwrap(LatencyBandwidthFit.fit(ranks: 2, samples: noisy))
        XCTAssertEqual(fit.alpha, alpha, accuracy: 0.1 * alpha)
        XCTAssertEqual(fit.beta, beta, accuracy: 0.1 * beta)
    }

    func testTimeThatDoesNotGrowGivesInfiniteBeta() throws {
        let flat = sizes.map { ($0, 7e-6) }
        let fit = try XCTUnwrap(LatencyBandwidthFit.fit(ranks: 2, samples: flat))
        XCTAssertEqual(fit.alpha, 7e-6, accuracy: 1e-15)
        XCTAssertEqual(fit.beta, .infinity)
    }

    /// Times proportional to size (a negative free intercept after noise would be unphysical): α = 0.
    func testPureBandwidthGivesZeroAlpha() throws {
        let proportional = times(alpha: 0, beta: 2e9, ranks: 2) { i in i == 0 ? 0.9 : 1 }
        let fit = try XCTUnwrap(LatencyBandwidthFit.fit(ranks: 2, samples: proportional))
        XCTAssertGreaterThanOrEqual(fit.alpha, 0)
        XCTAssertEqual(fit.beta, 2e9, accuracy: 0.05 * 2e9)
    }

    func testNothingToFit() {
        XCTAssertNil(LatencyBandwidthFit.fit(ranks: 2, samples: []))
        XCTAssertNil(LatencyBandwidthFit.fit(ranks: 1, samples: [(4, 1e-6)]))
    }

    func testSweepSizesAndMedian() {
        XCTAssertEqual(AllreduceBenchmark.Options().sizes, sizes)
        XCTAssertEqual(AllreduceBenchmark.Options(minBytes: 8, maxBytes: 40).sizes, [8, 16, 32, 40])
        XCTAssertEqual(AllreduceBenchmark.median(sorted: [1, 2, 9]), 2)
        XCTAssertEqual(AllreduceBenchmark.median(sorted: [1, 2, 4, 9]), 3)
        XCTAssertNotNil(AllreduceBenchmark.Options(minBytes: 6).problem)
        XCTAssertNotNil(AllreduceBenchmark.Options(minBytes: 64, maxBytes: 32).problem)
        XCTAssertNotNil(AllreduceBenchmark.Options(repetitions: 0).problem)
        XCTAssertNil(AllreduceBenchmark.Options().problem)
    }
}
