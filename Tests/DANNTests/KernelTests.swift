import XCTest
@testable import DANN

final class KernelTests: XCTestCase {
    /// ⟨im2col x, y⟩ = ⟨x, col2im y⟩ for both layouts, with padding and stride 2.
    func testIm2ColAndCol2ImAreAdjoint() {
        for (g, imageMajor) in [(ConvGeometry(channels: 3, height: 7, width: 6, kernel: 5, stride: 1, padding: 2), true),
                                (ConvGeometry(channels: 2, height: 9, width: 8, kernel: 3, stride: 2, padding: 1), false),
                                (ConvGeometry(channels: 4, height: 5, width: 5, kernel: 2, stride: 1, padding: 0), false)] {
            let batch = 3
            let strides = imageMajor ? PlaneStrides.imageMajor(g) : .channelMajor(g, batch: batch)
            var rng = TestRandom(21)
            let x = rng.floats(batch * g.channels * g.planeSize)
            let y = rng.floats(g.patchSize * batch * g.outPlaneSize)
            var col = [Float](repeating: .nan, count: y.count)
            var back = [Float](repeating: .nan, count: x.count)
            Im2Col.forward(x, strides: strides, geometry: g, batch: batch, into: &col)
            Im2Col.backward(y, strides: strides, geometry: g, batch: batch, into: &back)
            let lhs = zip(col, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(abs(lhs), 1), "\(g)")
            XCTAssertFalse(col.contains { $0.isNaN }, "every column entry written")
        }
    }

    /// Border patches read zeros for padding: compare a padded im2col with the naive definition.
    func testIm2ColPaddingBorders() {
        let g = ConvGeometry(channels: 1, height: 3, width: 4, kernel: 3, stride: 1, padding: 1)
        let x: [Float] = (1...12).map(Float.init)
        var col = [Float](repeating: .nan, count: g.patchSize * g.outPlaneSize)
        Im2Col.forward(x, strides: .imageMajor(g), geometry: g, batch: 1, into: &col)
        for ky in 0..<3 { for kx in 0..<3 { for oy in 0..<3 { for ox in 0..<4 {
            let iy = oy + ky - 1, ix = ox + kx - 1
            let expected: Float = (iy < 0 || iy >= 3 || ix < 0 || ix >= 4) ? 0 : x[iy * 4 + ix]
            XCTAssertEqual(col[(ky * 3 + kx) * 12 + oy * 4 + ox], expected)
        } } } }
    }

    /// Ties go to the first maximum in row-major window order, as in PyTorch.
    func testMaxPoolTiesPickFirstInWindow() {
        let g = ConvGeometry(channels: 1, height: 4, width: 4, kernel: 2, stride: 2, padding: 0)
        let x: [Float] = [5, 5, 1, 2,
                          5, 5, 2, 2,
                          0, 3, 7, 1,
                          3, 3, 1, 7]
        var y = [Float](repeating: 0, count: 4), arg = [Int32](repeating: -1, count: 4)
        MaxPoolKernel.forward(x, planes: 1, geometry: g, output: &y, argmax: &arg)
        XCTAssertEqual(y, [5, 2, 3, 7])
        XCTAssertEqual(arg, [0, 3, 9, 10])
        let naive = Naive.maxPool(x.map(Double.init), planes: 1, h: 4, w: 4, k: 2, s: 2, pad: 0)
        XCTAssertEqual(arg.map(Int.init), naive.arg)
        // Backward routes every output gradient to its argmax only.
        var dx = [Float](repeating: .nan, count: 16)
        MaxPoolKernel.backward([1, 2, 3, 4], argmax: arg, planes: 1, geometry: g, gradInput: &dx)
        XCTAssertEqual(dx, [1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0])
    }

    /// Padding is −∞: with all-negative inputs the border windows still return an input value, not 0;
    /// on a constant plane every window picks its first in-image cell.
    func testMaxPoolPaddingIsMinusInfinity() {
        let g = ConvGeometry(channels: 1, height: 5, width: 5, kernel: 3, stride: 2, padding: 1)
        var rng = TestRandom(22)
        let x = rng.floats(25, -2, -1)
        var y = [Float](repeating: 0, count: 9), arg = [Int32](repeating: 0, count: 9)
        MaxPoolKernel.forward(x, planes: 1, geometry: g, output: &y, argmax: &arg)
        let naive = Naive.maxPool(x.map(Double.init), planes: 1, h: 5, w: 5, k: 3, s: 2, pad: 1)
        XCTAssertEqual(y.map(Double.init), naive.y)
        XCTAssertTrue(y.allSatisfy { $0 < -1 + 1e-6 })
        let flat = [Float](repeating: 1, count: 25)
        MaxPoolKernel.forward(flat, planes: 1, geometry: g, output: &y, argmax: &arg)
        XCTAssertEqual(arg, [0, 1, 3, 5, 6, 8, 15, 16, 18])
    }

    func testGEMMAgainstNaiveProduct() {
        var rng = TestRandom(23)
        let (m, n, k) = (5, 7, 9)
        let a = rng.floats(k * m), b = rng.floats(n * k)   // A stored transposed (k×m), B transposed (n×k)
        var c = [Float](repeating: 1, count: m * n)
        BLAS.gemm(transA: true, transB: true, m: m, n: n, k: k, alpha: 2, a: a, lda: m, b: b, ldb: k, beta: 0.5, c: &c, ldc: n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(a[p * m + i]) * Double(b[j * k + p]) }
            XCTAssertEqual(Double(c[i * n + j]), 2 * s + 0.5, accuracy: 1e-5)
        } }
    }

    /// The dropout RNG is a pure function of its key, keeps ≈ (1 − rate) of the elements, and changes with the step.
    func testDropoutMaskStatistics() {
        var kept = 0, same = 0
        let count = 200_000
        for e in 0..<count {
            let a = Dropout.keeps(seed: 1, step: 3, rowKey: UInt64(e / 1000), element: e % 1000, rate: 0.5)
            let b = Dropout.keeps(seed: 1, step: 4, rowKey: UInt64(e / 1000), element: e % 1000, rate: 0.5)
            if a { kept += 1 }
            if a == b { same += 1 }
            XCTAssertEqual(a, Dropout.keeps(seed: 1, step: 3, rowKey: UInt64(e / 1000), element: e % 1000, rate: 0.5))
        }
        // Binomial(200000, 0.5): σ ≈ 224, so ±1500 is 6.7σ.
        XCTAssertEqual(Double(kept), Double(count) / 2, accuracy: 1500)
        XCTAssertEqual(Double(same), Double(count) / 2, accuracy: 1500)
    }

    /// The seed's scheme: Kaiming-normal (fan_out) convs, N(0, 0.01²) linears, zero biases.
    func testSeedInitialisationStatistics() throws {
        let model = try DANNModel(architecture: .seed)
        model.initialize(seed: 5)
        for entry in model.arena.entries {
            let (mean, std, _) = statistics(model.arena.parameter(entry))
            switch entry.shape.count {
            case 1: XCTAssertEqual(std, 0, entry.name); XCTAssertEqual(mean, 0, entry.name)
            case 2: XCTAssertEqual(std, 0.01, accuracy: 0.01 * 5 / Double(entry.count).squareRoot() + 1e-5, entry.name)
            default:
                let expected = (2.0 / Double(entry.shape[0] * entry.shape[2] * entry.shape[3])).squareRoot()
                XCTAssertEqual(std, expected, accuracy: expected * 5 / Double(entry.count).squareRoot(), entry.name)
            }
            XCTAssertEqual(mean, 0, accuracy: max(std, 1e-9) * 5 / Double(entry.count).squareRoot(), entry.name)
        }
    }

    /// PyTorch's defaults for `small`: U(±1/√fan_in) for weights and biases (std bound/√3).
    func testPyTorchDefaultInitialisationStatistics() throws {
        let model = try DANNModel(architecture: .small)
        model.initialize(seed: 5)
        let fanIns = ["E.0": 75, "E.3": 800, "G_c.0": 768, "G_c.2": 100, "G_c.4": 100, "G_d.0": 768, "G_d.2": 100]
        for entry in model.arena.entries {
            let layer = entry.name.components(separatedBy: ".").prefix(2).joined(separator: ".")
            let bound = 1 / Double(fanIns[layer]!).squareRoot()
            let (mean, std, maxAbs) = statistics(model.arena.parameter(entry))
            XCTAssertLessThanOrEqual(maxAbs, bound, entry.name)
            if entry.count >= 1000 {
                XCTAssertEqual(std, bound / 3.0.squareRoot(), accuracy: bound * 0.05, entry.name)
                XCTAssertEqual(mean, 0, accuracy: bound * 5 / Double(entry.count).squareRoot(), entry.name)
            }
        }
    }

    private func statistics(_ v: UnsafeMutableBufferPointer<Float>) -> (mean: Double, std: Double, maxAbs: Double) {
        let values = v.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        return (mean, std, values.map(abs).max() ?? 0)
    }
}
