import XCTest
@testable import DANN

typealias LayerReference = (_ x: [Double], _ params: [[Double]]) -> [Double]

extension XCTestCase {
    /// Runs forward/backward of `layer` and compares with finite differences of L = Σ r ⊙ reference(x).
    func check(_ layer: Layer, batch: Int, input: [Float], params: [[Float]] = [], context: ForwardContext = .inference,
               tolerance: Double = 1e-3, backwardRows: Int? = nil, reference: LayerReference,
               file: StaticString = #filePath, line: UInt = #line) {
        let arena = ParameterArena(layer.parameterSpecs.map { ($0.name, $0.shape) })
        var offset = 0
        var ptrs: [UnsafeMutablePointer<Float>] = [], grads: [UnsafeMutablePointer<Float>] = []
        for (spec, values) in zip(layer.parameterSpecs, params) {
            XCTAssertEqual(spec.count, values.count, "parameter \(spec.name)", file: file, line: line)
            (arena.parameters + offset).update(from: values, count: values.count)
            ptrs.append(arena.parameters + offset); grads.append(arena.gradients + offset)
            offset += spec.count
        }
        layer.bind(parameters: ptrs, gradients: grads)

        let x64 = input.map(Double.init), p64 = params.map { $0.map(Double.init) }
        let expected = reference(x64, p64)
        let y = input.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: layer.forward($0.baseAddress!, batch: batch, context: context), count: batch * layer.outputSize)) }
        XCTAssertEqual(y.count, expected.count, file: file, line: line)
        XCTAssertLessThan(relativeError(y.map(Double.init), expected), 1e-5, "forward", file: file, line: line)

        // With `backwardRows`, the loss weighs only the first rows and the backward runs over them alone.
        let rows = backwardRows ?? batch
        var rng = TestRandom(99)
        var r = (0..<y.count).map { _ in rng.uniform() }
        for i in rows * layer.outputSize..<r.count { r[i] = 0 }
        let rf = r.map(Float.init)
        let dx = rf.withUnsafeBufferPointer { p -> [Float] in
            guard let g = layer.backward(p.baseAddress!, batch: rows, needInputGradient: true) else { return [] }
            return Array(UnsafeBufferPointer(start: g, count: rows * layer.inputSize))
        }
        func loss(_ x: [Double], _ p: [[Double]]) -> Double { zip(reference(x, p), r).reduce(0) { $0 + $1.0 * $1.1 } }

        let xIndices = Array(0..<rows * layer.inputSize)
        let numericX = centralDifferences(at: x64, indices: xIndices) { loss($0, p64) }
        let errX = relativeError(dx.map(Double.init), numericX)
        XCTAssertLessThan(errX, tolerance, "input gradient", file: file, line: line)

        offset = 0
        for (t, spec) in layer.parameterSpecs.enumerated() {
            let analytic = (0..<spec.count).map { Double(arena.gradients[offset + $0]) }
            let numeric = centralDifferences(at: p64[t], indices: Array(0..<spec.count)) { v in
                var p = p64; p[t] = v; return loss(x64, p)
            }
            let err = relativeError(analytic, numeric)
            XCTAssertLessThan(err, tolerance, "\(spec.name) gradient", file: file, line: line)
            offset += spec.count
        }
    }
}

/// Every layer's forward against the naive Double reference, and its backward against central finite
/// differences of that reference (relative error ≤ 1e-3 per tensor).
final class LayerGradientTests: XCTestCase {
    func testConv2DChannelMajorPadded() {
        let (n, c, h, w, o, k, pad) = (2, 3, 6, 5, 4, 3, 1)
        var rng = TestRandom(1)
        let conv = Conv2D(inChannels: c, outChannels: o, height: h, width: w, kernel: k, padding: pad)
        check(conv, batch: n, input: rng.floats(n * c * h * w), params: [rng.floats(o * c * k * k), rng.floats(o)]) { x, p in
            let img = Naive.channelToImageMajor(x, n: n, c: c, plane: h * w)
            let out = Naive.conv(img, n: n, c: c, h: h, w: w, weight: p[0], bias: p[1], out: o, k: k, pad: pad)
            return Naive.imageToChannelMajor(out.y, n: n, c: o, plane: out.oh * out.ow)
        }
    }

    func testConv2DImageMajorFirstLayer() {
        let (n, c, h, w, o, k, pad) = (3, 3, 7, 7, 2, 5, 2)
        var rng = TestRandom(2)
        let conv = Conv2D(inChannels: c, outChannels: o, height: h, width: w, kernel: k, padding: pad, inputIsImageMajor: true)
        check(conv, batch: n, input: rng.floats(n * c * h * w), params: [rng.floats(o * c * k * k), rng.floats(o)]) { x, p in
            let out = Naive.conv(x, n: n, c: c, h: h, w: w, weight: p[0], bias: p[1], out: o, k: k, pad: pad)
            return Naive.imageToChannelMajor(out.y, n: n, c: o, plane: out.oh * out.ow)
        }
    }

    func testConv2DUnpadded() {
        let (n, c, h, w, o, k) = (2, 2, 8, 8, 3, 5)
        var rng = TestRandom(3)
        let conv = Conv2D(inChannels: c, outChannels: o, height: h, width: w, kernel: k, padding: 0)
        check(conv, batch: n, input: rng.floats(n * c * h * w), params: [rng.floats(o * c * k * k), rng.floats(o)]) { x, p in
            let img = Naive.channelToImageMajor(x, n: n, c: c, plane: h * w)
            let out = Naive.conv(img, n: n, c: c, h: h, w: w, weight: p[0], bias: p[1], out: o, k: k, pad: 0)
            return Naive.imageToChannelMajor(out.y, n: n, c: o, plane: out.oh * out.ow)
        }
    }

    func testLinear() {
        let (n, i, o) = (3, 7, 5)
        var rng = TestRandom(4)
        check(Linear(inputSize: i, outputSize: o), batch: n, input: rng.floats(n * i), params: [rng.floats(o * i), rng.floats(o)]) { x, p in
            Naive.linear(x, n: n, inSize: i, weight: p[0], bias: p[1], out: o)
        }
    }

    /// Distinct values spaced far more than the finite-difference step, so no window's winner changes.
    func distinctValues(_ count: Int, seed: UInt64) -> [Float] {
        var rng = TestRandom(seed)
        var values = (0..<count).map { Float($0) * 0.01 - Float(count) * 0.005 }
        for i in stride(from: count - 1, to: 0, by: -1) { values.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return values
    }

    func testMaxPool3x3Stride2Pad1() {
        let (n, c, h, w) = (2, 2, 7, 6)
        let pool = MaxPool(channels: c, height: h, width: w, kernel: 3, stride: 2, padding: 1)
        check(pool, batch: n, input: distinctValues(n * c * h * w, seed: 5)) { x, _ in
            Naive.maxPool(x, planes: n * c, h: h, w: w, k: 3, s: 2, pad: 1).y
        }
    }

    func testMaxPool2x2() {
        let (n, c, h, w) = (2, 3, 6, 6)
        let pool = MaxPool(channels: c, height: h, width: w, kernel: 2, stride: 2, padding: 0)
        check(pool, batch: n, input: distinctValues(n * c * h * w, seed: 6)) { x, _ in
            Naive.maxPool(x, planes: n * c, h: h, w: w, k: 2, s: 2, pad: 0).y
        }
    }

    func testReLU() {
        var rng = TestRandom(7)
        let x = rng.floats(40).map { $0 >= 0 ? $0 + 0.01 : $0 - 0.01 }
        check(ReLU(size: 10), batch: 4, input: x) { x, _ in Naive.relu(x) }
    }

    func testFlatten() {
        let (n, c, plane) = (3, 4, 5)
        var rng = TestRandom(8)
        check(Flatten(channels: c, planeSize: plane), batch: n, input: rng.floats(n * c * plane)) { x, _ in
            Naive.channelToImageMajor(x, n: n, c: c, plane: plane)
        }
    }

    func testDropoutBackwardMatchesItsMask() {
        let (n, size, rate) = (4, 50, Float(0.5))
        var rng = TestRandom(9)
        let keys: [UInt64] = [3, 17, 128, 131]
        keys.withUnsafeBufferPointer { k in
            let ctx = ForwardContext(training: true, seed: 42, step: 7, rowKeys: k.baseAddress)
            check(Dropout(size: size, rate: rate), batch: n, input: rng.floats(n * size), context: ctx) { x, _ in
                x.enumerated().map { i, v in
                    Dropout.keeps(seed: 42, step: 7, rowKey: keys[i / size], element: i % size, rate: rate) ? v * 2 : 0
                }
            }
        }
    }

    /// Rows large enough to be split over 3 threads keep exactly the elements `Dropout.keeps` names.
    func testDropoutRowsSplitOverThreadsFollowTheKeyedMask() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(3)
        let (n, size, rate) = (24, 5000, Float(0.5))
        let keys = (0..<n).map { UInt64($0 * 7 + 1) }
        let x = [Float](repeating: 1, count: n * size)
        let layer = Dropout(size: size, rate: rate)
        let y: [Float] = keys.withUnsafeBufferPointer { k in
            let ctx = ForwardContext(training: true, seed: 5, step: 2, rowKeys: k.baseAddress)
            return Array(UnsafeBufferPointer(start: layer.forward(x, batch: n, context: ctx), count: n * size))
        }
        var mismatches = 0
        for i in 0..<n * size where (y[i] == 2) != Dropout.keeps(seed: 5, step: 2, rowKey: keys[i / size], element: i % size, rate: rate) {
            mismatches += 1
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || $0 == 2 })
    }

    func testGradientReversalScalesByMinusLambda() {
        let grl = GradientReversal(size: 6)
        grl.lambda = 0.37
        var rng = TestRandom(10)
        let x = rng.floats(12), dy = rng.floats(12)
        let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: grl.forward($0.baseAddress!, batch: 2, context: .inference), count: 12)) }
        XCTAssertEqual(y, x)
        let dx = dy.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: grl.backward($0.baseAddress!, batch: 2, needInputGradient: true)!, count: 12)) }
        for i in 0..<12 { XCTAssertEqual(Double(dx[i]), -0.37 * Double(dy[i]), accuracy: 1e-7) }
    }

    func testLogSoftmaxNLLGradient() {
        let (rows, classes) = (5, 10)
        var rng = TestRandom(11)
        let z = rng.floats(rows * classes, -3, 3)
        let targets: [Int32] = [0, 9, 3, 3, 7]
        let scale: Float = 1.0 / 8
        var grad = [Float](repeating: 0, count: rows * classes)
        var correct = 0
        let loss = LogSoftmaxNLL.forwardBackward(logits: z, targets: targets, rows: rows, classes: classes, scale: scale,
                                                 grad: &grad, correct: &correct)
        let ref = { (v: [Double]) in Naive.nll(v, rows: rows, classes: classes, targets: targets.map(Int.init)) * Double(scale) }
        let z64 = z.map(Double.init)
        XCTAssertEqual(loss, ref(z64), accuracy: 1e-5 * abs(ref(z64)))
        XCTAssertLessThan(relativeError(grad.map(Double.init), centralDifferences(at: z64, indices: Array(0..<z.count), ref)), 1e-4)
        let argmaxHits = (0..<rows).filter { r in
            let row = z[r * classes..<(r + 1) * classes]; return row.firstIndex(of: row.max()!)! - r * classes == Int(targets[r])
        }.count
        XCTAssertEqual(correct, argmaxHits)
    }
}
