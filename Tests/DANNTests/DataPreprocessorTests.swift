import XCTest
@testable import DANN

final class DataPreprocessorTests: XCTestCase {
    private func random(_ count: Int, channels: Int, side: Int, downscale: DownscaleRule = .nearest) -> RawImages {
        var rng = SampleOrder.SplitMix64(state: 99)
        let pixels = (0..<count * channels * side * side).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return RawImages(count: count, channels: channels, height: side, width: side, pixels: pixels,
                         labels: [UInt8](repeating: 0, count: count), downscale: downscale)
    }

    /// Exact comparison reported as a count, so a failure does not print thousands of floats.
    private func assertSame(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        XCTAssertEqual(zip(a, b).filter { $0 != $1 }.count, 0, "values differ", file: file, line: line)
    }

    private func run(_ raw: RawImages, size: Int, normalize: Bool = false, index: Int = 1) -> [Float] {
        var out = [Float](repeating: .nan, count: 3 * size * size)
        Preprocessor(inputSize: size, normalize: normalize).write(raw, index: index, into: &out)
        return out
    }

    /// Naive reference: value of output (c, y, x) from a source lookup closure.
    private func expected(size: Int, normalize: Bool = false, _ value: (Int, Int, Int) -> UInt8?) -> [Float] {
        var out: [Float] = []
        for c in 0..<3 { for y in 0..<size { for x in 0..<size {
            let v = Float(value(c, y, x) ?? 0) / 255
            out.append(normalize ? (v - 0.5) / 0.5 : v)
        } } }
        return out
    }

    func testMNISTGreyReplicatedAndPadded() {
        let raw = random(2, channels: 1, side: 28)
        let px = { (y: Int, x: Int) in raw.pixels[784 + y * 28 + x] }
        assertSame(run(raw, size: 28), expected(size: 28) { _, y, x in px(y, x) })
        assertSame(run(raw, size: 32), expected(size: 32) { _, y, x in
            (2..<30).contains(y) && (2..<30).contains(x) ? px(y - 2, x - 2) : nil })
        assertSame(run(raw, size: 32, normalize: true), expected(size: 32, normalize: true) { _, y, x in
            (2..<30).contains(y) && (2..<30).contains(x) ? px(y - 2, x - 2) : nil })
        XCTAssertEqual(run(raw, size: 32, normalize: true)[0], -1, "padding is black before normalising")
    }

    func testSVHNNearestResize() {
        let raw = random(2, channels: 3, side: 32)
        let px = { (c: Int, y: Int, x: Int) in raw.pixels[3072 + c * 1024 + y * 32 + x] }
        assertSame(run(raw, size: 32), expected(size: 32) { c, y, x in px(c, y, x) })
        // floor(i·32/28) computed in floating point, independently of the integer formula.
        let src = { (i: Int) in Int((Double(i) * 32.0 / 28.0).rounded(.down)) }
        XCTAssertEqual(src(27), 30)
        assertSame(run(raw, size: 28), expected(size: 28) { c, y, x in px(c, src(y), src(x)) })
        assertSame(run(raw, size: 28, normalize: true), expected(size: 28, normalize: true) { c, y, x in px(c, src(y), src(x)) })
    }

    func testMNISTMCentreCrop() {
        let raw = random(2, channels: 3, side: 32, downscale: .centreCrop)
        let px = { (c: Int, y: Int, x: Int) in raw.pixels[3072 + c * 1024 + y * 32 + x] }
        assertSame(run(raw, size: 28), expected(size: 28) { c, y, x in px(c, y + 2, x + 2) })
        assertSame(run(raw, size: 32), expected(size: 32) { c, y, x in px(c, y, x) })
    }

    /// On real data, the crop puts MNIST-M's digit on MNIST's grid. MNIST-M inverts the background patch
    /// inside the digit's mask (SOURCES.md), so un-inverting inside the true MNIST mask lowers the image's
    /// total variation a lot, while the mask shifted by 2 px (what a wrong crop would give) raises it.
    func testMNISTMCropAlignsWithMNIST() throws {
        let count = 20
        let mnistM = try MNISTMDataset(split: .test, source: .archive(DataFixtures.mnistMArchive())).load(indices: Array(0..<count))
        let mnist = try openDataset(.mnist, .test, dataDir: DataFixtures.repository).0.load(indices: Array(0..<count))
        let crop = Preprocessor(inputSize: 28, normalize: false)
        func variation(_ v: [Float]) -> Double {
            var tv = 0.0
            for c in 0..<3 { for y in 0..<28 { for x in 0..<28 {
                let i = c * 784 + y * 28 + x
                if x < 27 { tv += Double(abs(v[i] - v[i + 1])) }
                if y < 27 { tv += Double(abs(v[i] - v[i + 28])) }
            } } }
            return tv
        }
        var ratio = [0.0, 0.0]
        for n in 0..<count {
            var m = [Float](repeating: 0, count: 3 * 784), g = m
            crop.write(mnistM, index: n, into: &m)
            crop.write(mnist, index: n, into: &g)
            for (k, shift) in [0, 2].enumerated() {
                var u = m
                for y in 0..<28 { for x in 0..<28 {
                    let sy = y - shift, sx = x - shift
                    guard sy >= 0, sx >= 0, g[sy * 28 + sx] > 0 else { continue }
                    for c in 0..<3 { u[c * 784 + y * 28 + x] = 1 - m[c * 784 + y * 28 + x] }
                } }
                ratio[k] += variation(u) / variation(m) / Double(count)
            }
        }
        XCTAssertLessThan(ratio[0], 0.8, "un-inverting inside the aligned mask lowers the variation")
        XCTAssertGreaterThan(ratio[1], 1.0, "a mask off by 2 px raises it")
    }
}
