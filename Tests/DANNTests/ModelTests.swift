import XCTest
@testable import DANN

final class ModelTests: XCTestCase {
    func testPresetSizesAndNames() throws {
        let seed = try DANNModel(architecture: .seed)
        XCTAssertEqual(seed.parameterCount, 33_372_108)
        XCTAssertEqual(seed.featureSize, 6272)
        XCTAssertEqual(seed.arena.entries.map(\.name), [
            "E.0.weight", "E.0.bias", "E.3.weight", "E.3.bias", "E.6.weight", "E.6.bias",
            "G_c.0.weight", "G_c.0.bias", "G_c.2.weight", "G_c.2.bias", "G_c.4.weight", "G_c.4.bias",
            "G_d.0.weight", "G_d.0.bias", "G_d.2.weight", "G_d.2.bias", "G_d.4.weight", "G_d.4.bias"])
        XCTAssertEqual(seed.arena.entry("E.3.weight")?.shape, [64, 64, 5, 5])
        XCTAssertEqual(seed.arena.entry("G_c.0.weight")?.shape, [3072, 6272])
        let small = try DANNModel(architecture: .small)
        XCTAssertEqual(small.featureSize, 768)
        // conv 3→32 (2432) + conv 32→48 (38448) + C (76900 + 10100 + 1010) + D (76900 + 202)
        XCTAssertEqual(small.parameterCount, 205_992)
        XCTAssertEqual(small.arena.entries.map(\.name).filter { $0.hasPrefix("G_d") },
                       ["G_d.0.weight", "G_d.0.bias", "G_d.2.weight", "G_d.2.bias"])
    }

    /// The whole model's gradient on a tiny batch against finite differences of the naive Double loss.
    /// E's analytic gradient is ∂label/∂θ − λ·∂domain/∂θ (the reversal), C's ∂label/∂θ, D's ∂domain/∂θ.
    func checkWholeModel(_ arch: Architecture, dropout: Float, coordinatesPerTensor: Int, sourceCount ns: Int = 2,
                         targetCount nt: Int = 1) throws {
        let model = try DANNModel(architecture: arch, dropout: dropout)
        model.initialize(seed: 11)
        // Larger biases than the seed's zeros, so every ReLU and bias path carries gradient.
        var rng = TestRandom(31)
        // Batch-norm scales stay near 1 (γ ≈ 0 would switch the layer off).
        let normScales = Set(model.batchNorms.map { "\($0.name).weight" })
        for e in model.arena.entries where e.shape.count == 1 {
            let p = model.arena.parameter(e)
            let range = normScales.contains(e.name) ? (0.5, 1.5) : (-0.05, 0.05)
            for i in 0..<p.count { p[i] = Float(rng.uniform(range.0, range.1)) }
        }
        let globalBatch = ns
        let images = rng.floats((ns + nt) * model.imageSize, 0, 1)
        let labels: [Int32] = Array([3, 8, 1, 5, 0, 9][0..<ns])
        let lambda: Float = 0.7, step = 5, seed: UInt64 = 9
        let result = images.withUnsafeBufferPointer { img in labels.withUnsafeBufferPointer { lab in
            model.computeGradients(DANNModel.Batch(images: img.baseAddress!, labels: lab.baseAddress!, sourceCount: ns,
                                                   targetCount: nt, globalBatch: globalBatch),
                                   lambda: lambda, step: step, seed: seed)
        } }
        var naive = NaiveDANN(model: model, dropout: dropout, seed: seed, step: step)
        let x64 = images.map(Double.init)
        let (label0, domain0) = naive.losses(images: x64, labels: labels.map(Int.init), sourceCount: ns, targetCount: nt, globalBatch: globalBatch)
        XCTAssertEqual(result.labelLoss, label0, accuracy: 1e-5 * label0)
        XCTAssertEqual(result.domainLoss, domain0, accuracy: 1e-5 * domain0)

        let features0 = naive.sliceFeatures(x64, sourceCount: ns, targetCount: nt, globalBatch: globalBatch)
        func lossPair(_ name: String, _ values: [Double]) -> (Double, Double) {
            var probe = naive
            probe.params[name] = values
            let f = name.hasPrefix("E.") ? probe.sliceFeatures(x64, sourceCount: ns, targetCount: nt, globalBatch: globalBatch) : features0
            return probe.losses(features: f, labels: labels.map(Int.init), sourceCount: ns, targetCount: nt, globalBatch: globalBatch)
        }
        // A bias right before a batch norm cancels out of the loss: its gradient is zero up to Float noise.
        let cancelled = Set(model.batchNorms.map { norm -> String in
            let parts = norm.name.split(separator: ".")
            return "\(parts[0]).\(Int(parts[1])! - 1).bias"
        })
        var skipped = 0, checked = 0
        for entry in model.arena.entries {
            let grad = model.arena.gradient(entry)
            if cancelled.contains(entry.name) {
                XCTAssertLessThan(grad.map { abs($0) }.max()!, 1e-5, "\(entry.name) feeds a batch norm")
                continue
            }
            var indices = [grad.indices.max(by: { abs(grad[$0]) < abs(grad[$1]) })!]
            while indices.count < min(coordinatesPerTensor, entry.count) { indices.append(Int(rng.next() % UInt64(entry.count))) }
            // The loss as the model differentiates it: the reversal makes E descend label − λ·domain.
            let sign = entry.name.hasPrefix("E.") ? -Double(lambda) : 1
            var analytic: [Double] = [], numerics: [Double] = []
            for i in indices {
                guard let d = smoothCentralDifference(at: naive.params[entry.name]!, index: i, { v in
                    let (label, domain) = lossPair(entry.name, v)
                    return label + sign * domain
                }) else { skipped += 1; continue }
                numerics.append(d)
                analytic.append(Double(grad[i]))
            }
            checked += analytic.count
            XCTAssertFalse(analytic.isEmpty, "\(entry.name): every coordinate hit a kink")
            XCTAssertLessThan(relativeError(analytic, numerics), 1e-3, "\(arch.name) \(entry.name): \(analytic) vs \(numerics)")
            XCTAssertGreaterThan(numerics.map(abs).max() ?? 0, 0, "\(entry.name) carries gradient")
        }
        XCTAssertLessThan(skipped, max(2, checked / 5), "too many coordinates on kinks: \(skipped) of \(skipped + checked)")
    }

    func testSmallModelGradient() throws {
        try checkWholeModel(.small, dropout: 0.5, coordinatesPerTensor: 12)
    }

    /// Per-domain batch statistics, channel dropout and the batch-normalised heads, end to end.
    func testSmallBNModelGradient() throws {
        try checkWholeModel(.smallBN, dropout: 0.5, coordinatesPerTensor: 8, sourceCount: 3, targetCount: 3)
    }

    func testSeedModelGradient() throws {
        try checkWholeModel(.seed, dropout: 0.5, coordinatesPerTensor: 4)
    }

    /// With only target rows the loss is the domain term alone; the extractor's gradient through the GRL must be
    /// −λ times the plain gradient of that loss (finite differences, no reversal), i.e. it pushes E against D.
    func testGradientReversalSignOnExtractor() throws {
        let model = try DANNModel(architecture: .small, dropout: 0)
        model.initialize(seed: 3)
        var rng = TestRandom(41)
        let images = rng.floats(3 * model.imageSize, 0, 1)
        let lambda: Float = 0.4
        images.withUnsafeBufferPointer { img in
            let none = [Int32]()
            none.withUnsafeBufferPointer { lab in
                _ = model.computeGradients(DANNModel.Batch(images: img.baseAddress!, labels: lab.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                                           sourceCount: 0, targetCount: 3, globalBatch: 3),
                                           lambda: lambda, step: 0, seed: 0)
            }
        }
        var naive = NaiveDANN(model: model, dropout: 0, seed: 0, step: 0)
        let x64 = images.map(Double.init)
        for name in ["E.0.weight", "E.3.bias"] {
            let entry = model.arena.entry(name)!
            let grad = model.arena.gradient(entry)
            let original = naive.params[name]!
            var analytic: [Double] = [], numeric: [Double] = []
            for i in 0..<min(8, entry.count) {
                guard let d = smoothCentralDifference(at: original, index: i, { v in
                    naive.params[name] = v
                    return naive.losses(images: x64, labels: [], sourceCount: 0, targetCount: 3, globalBatch: 3).1
                }) else { continue }
                numeric.append(d)
                analytic.append(Double(grad[i]))
            }
            naive.params[name] = original
            XCTAssertGreaterThanOrEqual(analytic.count, 4, "\(name): too many coordinates on kinks")
            XCTAssertLessThan(relativeError(analytic, numeric.map { -Double(lambda) * $0 }), 1e-3, name)
            XCTAssertGreaterThan(relativeError(analytic, numeric), 0.5, "sign must differ from plain descent")
        }
        // Classifier untouched without source rows.
        XCTAssertTrue(model.arena.gradient(model.arena.entry("G_c.0.weight")!).allSatisfy { $0 == 0 })
    }

    /// Source-only drops both domain terms: D's gradient is zero and E's equals the label loss gradient alone.
    func testSourceOnlyIgnoresDomain() throws {
        let model = try DANNModel(architecture: .small, dropout: 0)
        model.initialize(seed: 4)
        var rng = TestRandom(43)
        let images = rng.floats(2 * model.imageSize, 0, 1)
        let labels: [Int32] = [1, 7]
        let r = model.computeGradients(DANNModel.Batch(images: images, labels: labels, sourceCount: 2, targetCount: 0, globalBatch: 2),
                                       lambda: 1, step: 0, seed: 0, sourceOnly: true)
        XCTAssertEqual(r.domainLoss, 0)
        XCTAssertTrue(model.arena.gradient(model.arena.entry("G_d.0.weight")!).allSatisfy { $0 == 0 })
        let naive = NaiveDANN(model: model, dropout: 0, seed: 0, step: 0)
        XCTAssertEqual(r.labelLoss, naive.losses(images: images.map(Double.init), labels: [1, 7], sourceCount: 2, targetCount: 0, globalBatch: 2).0,
                       accuracy: 1e-5)
    }
}
