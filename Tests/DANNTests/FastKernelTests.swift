import XCTest
@testable import DANN
import CConvKernels

/// The performance paths (chunked convolution, padded im2col, unclamped max-pool windows, SIMD
/// elementwise loops) against naive definitions, on shapes that reach every branch.
final class FastKernelTests: XCTestCase {
    /// A conv split into one-image chunks (dW accumulated over chunks, columns rebuilt in backward) against
    /// the naive Double convolution and its hand-written gradients dW = Σ dy·x, dx = Σ dy·w, db = Σ dy.
    func testChunkedConvAgainstNaive() {
        for (imageMajor, pad, chunk) in [(false, 2, 1), (true, 2, 1), (false, 0, 1), (false, 1, 2 * 3 * 9 * 30)] {
            checkConvAgainstNaive(n: 3, c: 3, h: 6, w: 5, o: 4, k: 3, pad: pad, imageMajor: imageMajor, chunk: chunk, isa: 0)
        }
    }

    /// The direct kernels (forward, dW, dx of "same" convolutions) at every ISA this CPU
    /// runs, on shapes that reach their branches: partial 48- and 16-pixel blocks, dW pixel blocks of 128–512 (363 pixels:
    /// two or three blocks, the last partial), rows cut across
    /// images, several 128-row panels, k-tiles that overhang K, 1–4 vectors of channels and two channel
    /// blocks, several chunks adding into one dW, in-place and bordered input. Skips (one line) without AVX2.
    func testDirectConvolutionAgainstNaive() throws {
        let hardware = Int(ddk_conv_hardware_isa())
        guard hardware > 0 else { throw XCTSkip("no AVX2/AVX-512 on this CPU: the direct convolution kernels are not used") }
        for isa in 1...hardware {
            for (n, c, side, o, k, pad, imageMajor, chunk) in [
                (3, 16, 9, 16, 5, 2, false, 1 << 20),    // all three direct: K = 400, 243 pixels
                (2, 3, 10, 8, 5, 0, true, 1 << 20),      // the first layer's case: image-major, bordered copy, K = 75
                (3, 3, 11, 32, 5, 2, true, 1 << 20),     // K = 75 dW: 363 pixels, the last block ragged mid-transpose
                (5, 8, 7, 24, 3, 0, false, 8 * 9 * 25),  // in place, one image (25 pixels) per chunk
                (2, 16, 6, 48, 5, 2, false, 1 << 20),    // 3 (AVX2: 2) vectors of channels
                (10, 32, 5, 64, 5, 2, false, 800 * 25),  // 4 vectors, one image per chunk: 10 chunks in 8 dW groups, some adding two
                (2, 16, 5, 128, 5, 2, false, 1 << 20),   // two channel blocks
            ] {
                checkConvAgainstNaive(n: n, c: c, h: side, w: side, o: o, k: k, pad: pad, imageMajor: imageMajor,
                                      chunk: chunk, isa: isa)
            }
        }
    }

    /// Winograd's F(2×2, 5×5) at every ISA this CPU runs (AVX2 with 8-wide, AVX-512 with 16-wide channel blocks),
    /// forward, dW and dx against the Double convolution: "same" layers with even (14) and odd (7, 9) output sides
    /// (the last tile row and column half outside), a valid one (12 → 8) and a wider border than "same" (pad 3), an
    /// image-major input, tile blocks cut across images and left ragged (the GEMM's zero rows), several chunks in
    /// eight dW groups, and 1–4 (AVX2: 1–2) vectors of columns in the register tiles (channel counts 16…128).
    func testWinogradConvolutionAgainstNaive() throws {
        let hardware = Int(ddk_wino_default_isa() > 0 ? ddk_conv_hardware_isa() : 0)
        guard hardware > 0 else { throw XCTSkip("no AVX2/AVX-512 on this CPU: the Winograd kernels are not used") }
        for isa in 1...hardware {
            for (n, c, side, o, pad, imageMajor, chunk) in [
                (3, 16, 14, 16, 2, false, 1 << 20),       // the seed's second layer, narrowed: 49 tiles per image
                (5, 32, 7, 128, 2, false, 32 * 25 * 49),  // the third: odd side, one image per chunk, 2 channel blocks
                (2, 32, 12, 48, 0, false, 1 << 20),       // `small`'s second: valid, 3 vectors of columns
                (4, 16, 9, 64, 3, true, 16 * 25 * 121),   // image-major, wider border, odd side 11
                (10, 64, 5, 16, 2, false, 64 * 25 * 25),  // ten one-image chunks in eight dW groups, some adding two
            ] {
                checkConvAgainstNaive(n: n, c: c, h: side, w: side, o: o, k: 5, pad: pad, imageMajor: imageMajor,
                                      chunk: chunk, isa: 0, winograd: isa)
            }
        }
    }

    private func checkConvAgainstNaive(n: Int, c: Int, h: Int, w: Int, o: Int, k: Int, pad: Int, imageMajor: Bool,
                                       chunk: Int, isa: Int, winograd: Int = 0, file: StaticString = #filePath,
                                       line: UInt = #line) {
        var rng = TestRandom(41)
        let x = rng.floats(n * c * h * w), weight = rng.floats(o * c * k * k), bias = rng.floats(o)
        let conv = Conv2D(inChannels: c, outChannels: o, height: h, width: w, kernel: k, padding: pad,
                          inputIsImageMajor: imageMajor)
        conv.chunkFloats = chunk
        conv.directISA = isa
        conv.winogradISA = winograd
        let label = "c \(c) o \(o) side \(h) k \(k) pad \(pad) chunk \(chunk) isa \(isa) winograd \(winograd)"
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
        XCTAssertLessThan(relativeError(y.map(Double.init), Naive.imageToChannelMajor(ref.y, n: n, c: o, plane: oh * ow)), 1e-5,
                          "y " + label, file: file, line: line)
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
        XCTAssertLessThan(relativeError(grads[..<weight.count].map(Double.init), dW), 1e-5, "dW " + label, file: file, line: line)
        XCTAssertLessThan(relativeError(grads[weight.count...].map(Double.init), dB), 1e-5, "db " + label, file: file, line: line)
        XCTAssertLessThan(relativeError(dx.map(Double.init), dXLayer), 1e-5, "dx " + label, file: file, line: line)
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

    /// `BLAS.gemm` split into row or column blocks over 2 and 3 threads against the single-threaded sgemm, for
    /// every transpose combination, beta 0 and 1, and shapes that leave ragged last blocks: bit for bit (each
    /// element's sum over k keeps its order), except on OpenBLAS's Haswell and Zen kernels, whose result for a
    /// block of C's columns depends on the product's width, and its Cooperlake kernels on an AMD EPYC Zen 4: there
    /// within 1e-6 (docs/design.md §3.9).
    func testSplitGemmMatchesSerialGemm() {
        // OpenBLAS 0.3.21's Haswell and Zen kernels (AMD EPYC Zen 3): every column split tried, at multiples of 12 up
        // to 384, changed some elements, and so did row splits at multiples of 16 that are not multiples of 12. Its
        // Cooperlake kernels, which it loads on a Zen 4 (family 25 model 17): the 611 × 40 × 90 product cut into three row
        // blocks changed elements, into two it did not. The SkylakeX kernels (Xeon) keep the bits.
        let bitExact = !["Haswell", "Zen", "Cooperlake"].contains(BLASKernels.loaded)
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        var rng = TestRandom(99)
        for (m, n, k) in [(48, 1037, 100), (611, 40, 90), (96, 96, 64)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = rng.floats(m * k), b = rng.floats(k * n), c0 = rng.floats(m * n)
                let (lda, ldb) = (ta ? m : k, tb ? k : n)
                for beta: Float in [0, 1] {
                    var serial = c0
                    BLAS.serialGemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                    beta: beta, c: &serial, ldc: n)
                    for threads in [2, 3] {
                        BLAS.setThreads(threads)
                        var split = c0
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                  beta: beta, c: &split, ldc: n)
                        let shape = "\(m)×\(n)×\(k) tA \(ta) tB \(tb) β \(beta) threads \(threads) (\(BLASKernels.loaded))"
                        if bitExact {
                            XCTAssertEqual(split, serial, shape)
                        } else {
                            XCTAssertLessThanOrEqual(relativeError(split.map(Double.init), serial.map(Double.init)), 1e-6, shape)
                        }
                    }
                }
            }
        }
    }

    /// A convolution whose chunks are spread over 1, 2 or 3 threads gives the same output, weight, bias and
    /// input gradients bit for bit (chunks and dW groups do not depend on the thread count), with a chunk
    /// size that makes several chunks and a ragged last one.
    func testConvolutionDoesNotDependOnThreadCount() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        // 4 → 6 channels takes the BLAS paths, 16 → 16 the direct kernels where the CPU has them, and with
        // `winograd` F(2×2, 5×5).
        for (cin, cout, winograd) in [(4, 6, false), (16, 16, false), (16, 16, true)] {
            let (batch, side) = (13, 10)
            var rng = TestRandom(5)
            let x = rng.floats(batch * cin * side * side), w = rng.floats(cout * cin * 25), bias = rng.floats(cout)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                BLAS.setThreads(threads)
                let conv = Conv2D(inChannels: cin, outChannels: cout, height: side, width: side, kernel: 5, padding: 2)
                conv.chunkFloats = cin * 25 * side * side   // one image per chunk: 13 chunks, 8 dW groups
                if !winograd { conv.winogradISA = 0 }
                var params = w + bias, grads = [Float](repeating: .nan, count: params.count)
                let out: [Float] = params.withUnsafeMutableBufferPointer { p in
                    grads.withUnsafeMutableBufferPointer { g in
                        conv.bind(parameters: [p.baseAddress!, p.baseAddress! + w.count], gradients: [g.baseAddress!, g.baseAddress! + w.count])
                        let y = conv.forward(x, batch: batch, context: ForwardContext(training: true))
                        let yv = Array(UnsafeBufferPointer(start: y, count: batch * conv.outputSize))
                        let dy = yv.map { $0 * 0.5 - 0.25 }
                        let dx = conv.backward(dy, batch: batch, needInputGradient: true)!
                        return yv + Array(UnsafeBufferPointer(start: dx, count: x.count))
                    }
                }
                results.append(out + grads)
            }
            XCTAssertEqual(results[1], results[0], "2 threads, \(cin) → \(cout), winograd \(winograd)")
            XCTAssertEqual(results[2], results[0], "3 threads, \(cin) → \(cout), winograd \(winograd)")
            XCTAssertFalse(results[0].contains { $0.isNaN })
        }
    }

    /// The pooling forward against the naive first-maximum pooling: values (rectified when asked) and argmax
    /// (as plane-offset indices). Returns them for a backward check.
    private func checkPoolForward(_ x: [Float], planes: Int, geometry g: ConvGeometry, reference ref: (y: [Double], arg: [Int], oh: Int, ow: Int),
                                  rectify: Bool, label: String, file: StaticString = #filePath, line: UInt = #line)
        -> (y: [Float], arg: [Int32]) {
        var y = [Float](repeating: .nan, count: planes * g.outPlaneSize), arg = [Int32](repeating: -1, count: y.count)
        MaxPoolKernel.forward(x, planes: planes, geometry: g, output: &y, argmax: &arg, rectify: rectify)
        XCTAssertEqual(y.map(Double.init), rectify ? ref.y.map { max($0, 0) } : ref.y, label, file: file, line: line)
        let flat = arg.enumerated().map { Int($0.element) + ($0.offset / g.outPlaneSize) * g.planeSize }
        XCTAssertEqual(flat, ref.arg, label, file: file, line: line)
        return (y, arg)
    }

    /// 3×3 stride-2 windows (the seed networks' pooling) whose rows are wide enough for the eight-wide
    /// path, padded and not (with padding 1 the top row's windows, and for odd heights the bottom row's, are
    /// clipped to two rows), on small integers (ties, and rows of all-negative values under rectify) against the
    /// naive first-maximum definition: values and argmax.
    func testMaxPool3x3Stride2VectorPathAgainstNaive() {
        for (h, w, pad) in [(28, 28, 1), (14, 18, 1), (9, 31, 1), (11, 40, 0), (7, 17, 0)] {
            let planes = 3
            let g = ConvGeometry(channels: 1, height: h, width: w, kernel: 3, stride: 2, padding: pad)
            var rng = TestRandom(UInt64(h * 1000 + w * 10 + pad))
            let x = (0..<planes * h * w).map { _ in Float(rng.next() % 5) - 3 }
            let ref = Naive.maxPool(x.map(Double.init), planes: planes, h: h, w: w, k: 3, s: 2, pad: pad)
            for rectify in [false, true] {
                _ = checkPoolForward(x, planes: planes, geometry: g, reference: ref, rectify: rectify,
                                     label: "\(h)×\(w) pad \(pad) rectify \(rectify)")
            }
        }
    }

    /// The 2×2 stride-2 vector path (8 outputs at a time, the last group overlapping) on small integers
    /// (many ties) against the naive first-maximum definition: values, argmax, the rectified values, and
    /// the backward's routing (with and without the ReLU gate) against a scatter written here.
    func testMaxPool2x2VectorPathAgainstNaive() {
        for (h, w) in [(24, 24), (8, 16), (10, 21), (6, 34)] {
            let planes = 3
            let g = ConvGeometry(channels: 1, height: h, width: w, kernel: 2, stride: 2, padding: 0)
            var rng = TestRandom(UInt64(h * 100 + w))
            let x = (0..<planes * h * w).map { _ in Float(rng.next() % 5) - 2 }
            let ref = Naive.maxPool(x.map(Double.init), planes: planes, h: h, w: w, k: 2, s: 2, pad: 0)
            for rectify in [false, true] {
                let (y, arg) = checkPoolForward(x, planes: planes, geometry: g, reference: ref, rectify: rectify,
                                                label: "\(h)×\(w) rectify \(rectify)")

                let dy = (0..<y.count).map { _ in Float(rng.next() % 7) + 1 }
                var expected = [Float](repeating: 0, count: x.count)
                for i in 0..<y.count where !rectify || y[i] > 0 { expected[ref.arg[i]] += dy[i] }
                var dx = [Float](repeating: .nan, count: x.count)
                y.withUnsafeBufferPointer { yp in
                    MaxPoolKernel.backward(dy, argmax: arg, planes: planes, geometry: g, gradInput: &dx,
                                           gate: rectify ? yp.baseAddress : nil)
                }
                XCTAssertEqual(dx, expected, "\(h)×\(w) backward rectify \(rectify)")
            }
        }
    }

    /// ReLU followed by max pooling, fused (the pooling rectifies, the ReLU passes through) against the
    /// two layers run apart: the same output and the same input gradient, bit for bit, for the 2×2 and
    /// the seed's 3/2/1 pooling, on values with many zeros and ties.
    func testFusedReLUPoolingMatchesSeparateLayers() {
        for (k, st, pad, side) in [(2, 2, 0, 24), (3, 2, 1, 16)] {
            let (channels, batch) = (4, 3)
            var rng = TestRandom(UInt64(31 + k))
            let x = (0..<channels * batch * side * side).map { _ in Float(Int(rng.next() % 9) - 4) * 0.5 }
            func run(fused: Bool) -> ([Float], [Float]) {
                let relu = ReLU(size: channels * side * side)
                let pool = MaxPool(channels: channels, height: side, width: side, kernel: k, stride: st, padding: pad)
                let net = Sequential([relu, pool])
                if fused { net.fuseReLUIntoPooling() }
                XCTAssertEqual(relu.deferredToPooling, fused)
                let y = net.forward(x, batch: batch, context: ForwardContext(training: true))
                let out = Array(UnsafeBufferPointer(start: y, count: batch * pool.outputSize))
                let dy = (0..<out.count).map { Float($0 % 5) - 1.5 }
                let dx = net.backward(dy, batch: batch, needInputGradient: true)!
                return (out, Array(UnsafeBufferPointer(start: dx, count: x.count)))
            }
            let (separate, fused) = (run(fused: false), run(fused: true))
            XCTAssertEqual(fused.0, separate.0, "k\(k) forward")
            XCTAssertEqual(fused.1, separate.1, "k\(k) backward")
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

    /// Jobs of 2 parts on a pool of 3 between jobs of 3: the third helper sits out every other job (the caller
    /// does not wait for it), and must still take its part of each later one exactly once.
    func testParallelJobsOfVaryingWidth() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(3)
        var wide = [Int32](repeating: 0, count: 3), narrow = [Int32](repeating: 0, count: 2)
        wide.withUnsafeMutableBufferPointer { w in narrow.withUnsafeMutableBufferPointer { n in
            for _ in 0..<500 {
                Parallel.forParts(2) { t in n[t] += 1 }
                Parallel.forParts(3) { t in w[t] += 1 }
            }
        } }
        XCTAssertEqual(narrow, [500, 500])
        XCTAssertEqual(wide, [500, 500, 500])
    }

    /// Flatten split over two threads by samples: forward is the (c, h, w) reordering, backward its inverse.
    func testFlattenSplitOverThreads() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(2)
        let (c, plane, n) = (4, 49, 400)   // 78,400 elements: past Parallel.minimumWork, so the rows are split
        var rng = TestRandom(7)
        let x = rng.floats(c * n * plane), dy = rng.floats(c * n * plane)
        let flatten = Flatten(channels: c, planeSize: plane)
        let y = Array(UnsafeBufferPointer(start: flatten.forward(x, batch: n, context: .inference), count: x.count))
        let dx = Array(UnsafeBufferPointer(start: flatten.backward(dy, batch: n, needInputGradient: true)!, count: x.count))
        for b in 0..<n { for ch in 0..<c { for i in 0..<plane {
            XCTAssertEqual(y[(b * c + ch) * plane + i], x[(ch * n + b) * plane + i])
            XCTAssertEqual(dx[(ch * n + b) * plane + i], dy[(b * c + ch) * plane + i])
        } } }
    }
}
