import XCTest
@testable import DANN

/// `analyze` on a batch-normalised model takes E's features with each domain normalised by its own batch
/// statistics: checked against the naive Double network (training-mode batch norm over one domain, no dropout).
final class DomainFeaturesBatchStatisticsTests: XCTestCase {
    func testBatchStatisticsFeaturesMatchNaiveNetwork() throws {
        let model = try DANNModel(architecture: .smallBN, dropout: 0)
        model.initialize(seed: 8)
        var rng = TestRandom(81)
        let n = 6
        let raw = RawImages(count: n, channels: 3, height: 28, width: 28,
                            pixels: (0..<n * 3 * 28 * 28).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                            labels: [UInt8](repeating: 0, count: n))
        let preprocessor = Preprocessor(inputSize: 28, normalize: false)
        let features = DomainFeatures.extract(model, raw, preprocessor: preprocessor, chunkSize: n, batchStatistics: true)

        var inputs = [Float](repeating: 0, count: n * preprocessor.floatsPerImage)
        inputs.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { preprocessor.write(raw, index: i, into: p.baseAddress! + i * preprocessor.floatsPerImage) }
        }
        let naive = NaiveDANN(model: model, dropout: 0, seed: 0, step: 0)
        let expected = naive.features(inputs.map(Double.init), n: n, rowKeys: [UInt64](repeating: 0, count: n), sourceRows: n)
        XCTAssertEqual(features.count, expected.count)
        XCTAssertLessThan(relativeError(features.map(Double.init), expected), 1e-5)

        // Running statistics (mean 0, variance 1 when fresh) give other features: the switch matters.
        let inference = DomainFeatures.extract(model, raw, preprocessor: preprocessor, chunkSize: n, batchStatistics: false)
        XCTAssertGreaterThan(relativeError(inference.map(Double.init), expected), 1e-2)
    }
}
