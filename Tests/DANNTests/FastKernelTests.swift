import XCTest
@testable import DANN

/// The performance paths (chunked convolution, padded im2col, unclamped max-pool windows, SIMD
/// elementwise loops) against naive definitions, on shapes that reach every branch.
final class FastKernelTests: XCTestCase {
    /// A conv split into one-image chunks (dW accumulated over chunks, columns rebuilt in backward) against
    /// the naive Double convolution and its hand-written gradients dW = Σ dy·x, dx = Σ dy·w, db = Σ dy.
    func testChunkedConvAgainstNaive() {
        for (imageMajor, pad, chunk) in [(false, 2, 1), (true, 2, 1), (false, 0, 1), (false, 1, 2 * 3 * 9 * 30)] {
            let (n, c, h, w, o, k) = (3, 3, 6, 5, 4, 3)
            var rng = TestRandom(41)
            let x = rng.floats(n * c * h * w), weight = rng.floats(o * c * k * k), bias = rng.floats(o)
            let conv = Conv2D(inChannels: c, outChannels: o, height: h, width: w, kernel: k, padding: pad,
                              inputIsImageMajor: imageMajor)
            conv.chunkFloats = chunk
            var params = weight + bias, grads = [Float](repeating: .nan, count: params.count)
            let oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1
            let dy = rng.floats(n * o * oh * ow)  // channel-major, as the layer emits
            let (y, dx) = params.withUnsafeMutableBufferPointer { p in grads.withUnsafeMutableBufferPointer { g in
                conv.bind(parameters: [p.baseAddress!, p.baseAddress! + weight.count],
                          gradients: [g.baseAddress!, g.baseAddress! + weight.count])
                let y = Array(UnsafeBufferPointer(start: conv.forward(x, batch: n, context: .inference), count: n * conv.outputSize))
                let dx = Array(UnsafeBufferPointer(start: conv.backward(dy, batch: n, needInputGradient: true)!, count: n * conv.inputSize))
                return (y, dx)
            } }
            // The naive side works image-major in Double.
            let xi = imageMajor ? x.map(Double.init) : Naive.channelToImageMajor(x.map(Double.init), n: n, c: c, plane: h * w)
            let dyi = Naive.channelToImageMajor(dy.map(Double.init), n: n, c: o, plane: oh * ow)
            let ref = Naive.conv(xi, n: n, c: c, h: h, w: w, weight: weight.map(Double.init), bias: bias.map(Double.init),
                                 out: o, k: k, pad: pad)
            XCTAssertLessThan(relativeError(y.map(Double.init), Naive.imageToChannelMajor(ref.y, n: n, c: o, plane: oh * ow)), 1e-5)
            var dW = [Double](repeating: 0, count: weight.count), dB = [Double](repeating: 0, count: o)
            var dX = [Double](repeating: 0, count: x.count)
            for b in 0..<n { for oc in 0..<o { for oy in 0..<oh { for ox in 0..<ow {
                let g = dyi[((b * o + oc) * oh + oy) * ow + ox]
                dB[oc] += g
                for ci in 0..<c { for ky in 0..<k { for kx in 0..<k {
                    let iy = oy + ky - pad, ix = ox + kx - pad
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    let wi = ((oc * c + ci) * k + ky) * k + kx, xIndex = ((b * c + ci) * h + iy) * w + ix
                    dW[wi] += g * xi[xIndex]
                    dX[xIndex] += g * Double(weight[wi])
                } } }
            } } } }
            let dXLayer = imageMajor ? dX : Naive.imageToChannelMajor(dX, n: n, c: c, plane: h * w)
            XCTAssertLessThan(relativeError(grads[..<weight.count].map(Double.init), dW), 1e-5, "dW pad \(pad) chunk \(chunk)")
            XCTAssertLessThan(relativeError(grads[weight.count...].map(Double.init), dB), 1e-5, "db")
            XCTAssertLessThan(relativeError(dx.map(Double.init), dXLayer), 1e-5, "dx pad \(pad) chunk \(chunk)")
        }
    }

    /// pad + forwardPadded equals the bounds-checked im2col, and backwardPadded + unpad its adjoint, for
    /// output widths that take each vector-copy branch (3: scalar, 6: two overlapping 4-lane moves,
    /// 14: 8 lanes plus an overlapping tail, 16: exact 8-lane moves).
    func testPaddedIm2ColMatchesBoundsChecked() {
        for (g, imageMajor) in [(ConvGeometry(channels: 2, height: 5, width: 3, kernel: 3, padding: 1), true),
                                (ConvGeometry(channels: 3, height: 6, width: 6, kernel: 5, padding: 2), false),
                                (ConvGeometry(channels: 2, height: 9, width: 14, kernel: 5, padding: 2), false),
                                (ConvGeometry(channels: 1, height: 4, width: 20, kernel: 5, padding: 0), true)] {
            let batch = 3
            let strides = imageMajor ? PlaneStrides.imageMajor(g) : .channelMajor(g, batch: batch)
            var rng = TestRandom(5)
            let x = rng.floats(batch * g.channels * g.planeSize)
            let cols = rng.floats(g.patchSize * batch * g.outPlaneSize)
            var expected = [Float](repeating: .nan, count: cols.count), got = expected
            Im2Col.forward(x, strides: strides, geometry: g, batch: batch, into: &expected)
            var padded = [Float](repeating: .nan, count: Im2Col.paddedCount(geometry: g, batch: batch))
            Im2Col.pad(x, strides: strides, geometry: g, batch: batch, into: &padded)
            Im2Col.forwardPadded(padded, geometry: g, batch: batch, into: &got)
            XCTAssertEqual(got, expected, "\(g)")

            var back = [Float](repeating: .nan, count: x.count), backExpected = back
            Im2Col.backward(cols, strides: strides, geometry: g, batch: batch, into: &backExpected)
            padded = [Float](repeating: .nan, count: padded.count)
            Im2Col.backwardPadded(cols, geometry: g, batch: batch, into: &padded)
            Im2Col.unpad(padded, strides: strides, geometry: g, batch: batch, into: &back)
            XCTAssertLessThan(relativeError(back.map(Double.init), backExpected.map(Double.init)), 1e-6, "\(g)")
        }
    }

    /// Max pooling on small integers (many ties) against the naive first-maximum definition, values and
    /// argmax, for the seed's 3/2/1, the paper's 2/2/0 and an unpadded 3/1/0 (generic window path).
    func testMaxPoolWithTiesAgainstNaive() {
        for (k, s, pad) in [(3, 2, 1), (2, 2, 0), (3, 1, 0), (4, 3, 1)] {
            let (planes, h, w) = (5, 9, 8)
            let g = ConvGeometry(channels: 1, height: h, width: w, kernel: k, stride: s, padding: pad)
            var rng = TestRandom(UInt64(7 + k * 10 + s))
            let x = (0..<planes * h * w).map { _ in Float(rng.next() % 4) - 2 }
            var y = [Float](repeating: .nan, count: planes * g.outPlaneSize), arg = [Int32](repeating: -1, count: y.count)
            MaxPoolKernel.forward(x, planes: planes, geometry: g, output: &y, argmax: &arg)
            let ref = Naive.maxPool(x.map(Double.init), planes: planes, h: h, w: w, k: k, s: s, pad: pad)
            XCTAssertEqual(y.map(Double.init), ref.y, "k\(k) s\(s) p\(pad)")
            let flat = arg.enumerated().map { Int($0.element) + ($0.offset / g.outPlaneSize) * g.planeSize }
            XCTAssertEqual(flat, ref.arg, "k\(k) s\(s) p\(pad)")
        }
    }

    /// The vector loops against scalar definitions, with counts that leave a tail after the 8-lane body.
    func testElementwiseAgainstScalarLoops() {
        var rng = TestRandom(17)
        for count in [1, 7, 8, 29] {
            let x = rng.floats(count), y = rng.floats(count), dy = rng.floats(count)
            var out = [Float](repeating: .nan, count: count)
            Elementwise.reluBackward(output: y, dy, &out, count: count)
            XCTAssertEqual(out, (0..<count).map { y[$0] > 0 ? dy[$0] : 0 })
            Elementwise.reluForward(x, &out, count: count)
            XCTAssertEqual(out, x.map { $0 > 0 ? $0 : 0 })
            Elementwise.multiply(x, y, into: &out, count: count)
            XCTAssertEqual(out, (0..<count).map { x[$0] * y[$0] })
            Elementwise.scale(x, by: -0.5, into: &out, count: count)
            XCTAssertEqual(out, x.map { -0.5 * $0 })
            out = y
            Elementwise.add(x, into: &out, count: count)
            XCTAssertEqual(out, (0..<count).map { y[$0] + x[$0] })
        }
        // Row bias on a strided sub-matrix leaves the columns outside it alone.
        let (rows, length, stride) = (3, 11, 15)
        let m = rng.floats(rows * stride), bias = rng.floats(rows)
        var biased = m
        Elementwise.addRowBias(&biased, bias: bias, rows: rows, length: length, stride: stride)
        XCTAssertEqual(biased, (0..<m.count).map { $0 % stride < length ? m[$0] + bias[$0 / stride] : m[$0] })
        var sums = [Float](repeating: .nan, count: length)
        Elementwise.columnSums(m, rows: 4, cols: length, into: &sums)
        for col in 0..<length {
            XCTAssertEqual(Double(sums[col]), (0..<4).reduce(0.0) { $0 + Double(m[$1 * length + col]) }, accuracy: 1e-5)
        }
    }

    /// With two threads the ranges handed out are disjoint and cover 0..<count, on both threads, many times
    /// in a row (the helper thread must pick up every job).
    func testParallelRangesCoverOnce() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(2)
        let count = 1001
        var visits = [Int32](repeating: 0, count: count)
        visits.withUnsafeMutableBufferPointer { v in
            for _ in 0..<200 {
                Parallel.forRanges(count, work: Parallel.minimumWork) { r in
                    for i in r { v[i] += 1 }
                }
            }
        }
        XCTAssertEqual(Set(visits), [200])
    }
}
