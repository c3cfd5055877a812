import XCTest
@testable import DANN

final class OptimizerTests: XCTestCase {
    /// Two steps of PyTorch's SGD (μ 0.9, wd 1e-5, v = g on the first step), worked by hand:
    /// step 1: g = 0.5 + 1e-5·1 = 0.50001, v = 0.50001, w = 1 − 0.1·0.50001 = 0.949999
    /// step 2: g = 0.2 + 1e-5·0.949999 = 0.20000949999, v = 0.9·0.50001 + g = 0.65001849999,
    ///         w = 0.949999 − 0.1·v = 0.884997150001
    func testTwoStepsMatchHandComputation() {
        let sgd = SGD(count: 2, momentum: 0.9, weightDecay: 1e-5)
        var w: [Float] = [1, -2]
        sgd.step(parameters: &w, gradients: [0.5, 0], learningRate: 0.1)
        XCTAssertEqual(w[0], 0.949999, accuracy: 1e-7)
        XCTAssertEqual(w[1], -2 + 0.1 * 2e-5, accuracy: 1e-7)
        XCTAssertEqual(sgd.velocity.pointer[0], 0.50001, accuracy: 1e-7)
        sgd.step(parameters: &w, gradients: [0.2, 0], learningRate: 0.1)
        XCTAssertEqual(sgd.velocity.pointer[0], 0.65001849999, accuracy: 1e-6)
        XCTAssertEqual(w[0], 0.884997150001, accuracy: 1e-6)
    }

    /// The update is split over the compute threads on large arenas: 3 threads give the bytes of 1 for SGD and
    /// Adam over 300,000 parameters and three steps (the first SGD step takes its own branch).
    func testLargeUpdatesDoNotDependOnThreadCount() {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        let n = 300_000
        var rng = TestRandom(7)
        let start = rng.floats(n), grads = (0..<3).map { _ in rng.floats(n).map { $0 - 0.5 } }
        func run(threads: Int, _ make: () -> Optimizer) -> [Float] {
            BLAS.setThreads(threads)
            let optimizer = make()
            var w = start
            for g in grads { optimizer.step(parameters: &w, gradients: g, learningRate: 0.05) }
            return w
        }
        for (name, make) in [("sgd", { SGD(count: n, momentum: 0.9, weightDecay: 1e-4) as Optimizer }),
                             ("adam", { Adam(count: n, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4) as Optimizer })] {
            let one = run(threads: 1, make), three = run(threads: 3, make)
            XCTAssertEqual(one, three, name)
            XCTAssertNotEqual(one, start, name)
        }
    }

    /// Values at p = 0, 0.5, 1 computed by hand: lr0/(1+αp)^β and 2/(1+e^{−γp}) − 1.
    func testSchedulesAtZeroHalfAndOne() {
        let s = Schedules()
        XCTAssertEqual(s.learningRate(progress: 0), 0.01, accuracy: 1e-12)
        XCTAssertEqual(s.learningRate(progress: 0.5), 0.0026084743001221454, accuracy: 1e-12)  // 0.01 / 6^0.75
        XCTAssertEqual(s.learningRate(progress: 1), 0.0016556002607617019, accuracy: 1e-12)    // 0.01 / 11^0.75
        XCTAssertEqual(s.lambda(progress: 0), 0, accuracy: 1e-12)
        XCTAssertEqual(s.lambda(progress: 0.5), 0.9866142981514305, accuracy: 1e-12)            // tanh(2.5)
        XCTAssertEqual(s.lambda(progress: 1), 0.9999092042625952, accuracy: 1e-12)              // tanh(5)
        XCTAssertEqual(Schedules.progress(step: 50, totalSteps: 100), 0.5)
    }

    /// Two steps of PyTorch's Adam (lr 0.1, β 0.9/0.999, ε 1e-8, L2 weight decay 0.01 added to the gradient),
    /// worked in Double from torch.optim.Adam's update:
    /// step 1: g = 0.5 + 0.01·1 = 0.51, m = 0.051, v = 0.0002601, w = 1 − (0.1/0.1)·m/(√v/√0.001 + ε) = 0.9000000019607843
    /// step 2: g = 0.2 + 0.01·w = 0.209…, m = 0.0668, v = 0.0003035209, w = 0.8097733282941708
    func testAdamTwoStepsMatchPyTorchFormula() {
        let adam = Adam(count: 2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        var w: [Float] = [1, 0]
        adam.step(parameters: &w, gradients: [0.5, 0], learningRate: 0.1)
        XCTAssertEqual(Double(w[0]), 0.9000000019607843, accuracy: 1e-6)
        XCTAssertEqual(Double(adam.firstMoment.pointer[0]), 0.051, accuracy: 1e-6 * 0.051)
        XCTAssertEqual(Double(adam.secondMoment.pointer[0]), 0.0002601, accuracy: 1e-6 * 0.0002601)
        XCTAssertEqual(w[1], 0, "a zero gradient on a zero weight moves nothing")
        adam.step(parameters: &w, gradients: [0.2, 0], learningRate: 0.1)
        XCTAssertEqual(Double(adam.firstMoment.pointer[0]), 0.0668, accuracy: 1e-6 * 0.0668)
        XCTAssertEqual(Double(adam.secondMoment.pointer[0]), 0.0003035209, accuracy: 2e-5 * 0.0003035209)
        XCTAssertEqual(Double(w[0]), 0.8097733282941708, accuracy: 2e-6)
        XCTAssertEqual(adam.stepsTaken, 2)
    }

    /// clip_grad_norm_: [3, 4] has norm 5; clipped to 1 it becomes [3, 4] / (5 + 1e-6); below the limit it stays.
    func testClipGradientNorm() {
        var g: [Float] = [3, 4]
        XCTAssertEqual(clipGradientNorm(&g, count: 2, maxNorm: 1), 5, accuracy: 1e-12)
        XCTAssertEqual(Double(g[0]), 0.599999880000024, accuracy: 1e-7)
        XCTAssertEqual(Double(g[1]), 0.799999840000032, accuracy: 1e-7)
        var small: [Float] = [0.3, 0.4]
        clipGradientNorm(&small, count: 2, maxNorm: 1)
        XCTAssertEqual(small, [0.3, 0.4])
        // A long vector: the norm of 10⁶ copies of Float(0.001) is 1000 · Float(0.001) in exact arithmetic,
        // where a plain Float running sum of the squares drifts by ~1e-3.
        var long = [Float](repeating: 0.001, count: 1_000_000)
        XCTAssertEqual(clipGradientNorm(&long, count: long.count, maxNorm: 10), 1000 * Double(Float(0.001)), accuracy: 2e-7)
    }

    /// λ_max scales the whole schedule: 0.3 · tanh(2.5) at p = 0.5.
    func testLambdaMax() {
        let s = Schedules(lambdaMax: 0.3)
        XCTAssertEqual(s.lambda(progress: 0.5), 0.29598428944542915, accuracy: 1e-12)
        XCTAssertEqual(s.lambda(progress: 0), 0, accuracy: 1e-12)
    }

    /// The gradient is affine in the domain weight w: g(w) = g(0) + w · (g(1) − g(0)) for every parameter,
    /// and the reported domain loss does not depend on w.
    func testDomainWeightScalesTheDomainTerm() throws {
        let model = try DANNModel(architecture: .small, dropout: 0)
        model.initialize(seed: 3)
        var rng = TestRandom(5)
        let images = rng.floats(4 * model.imageSize, 0, 1)
        let labels: [Int32] = [1, 7]
        func gradient(_ w: Float) -> ([Float], Double) {
            let r = images.withUnsafeBufferPointer { img in labels.withUnsafeBufferPointer { lab in
                model.computeGradients(DANNModel.Batch(images: img.baseAddress!, labels: lab.baseAddress!, sourceCount: 2,
                                                       targetCount: 2, globalBatch: 2),
                                       lambda: 0.6, step: 0, seed: 1, domainWeight: w)
            } }
            return (Array(model.arena.gradientBuffer), r.domainLoss)
        }
        let (g0, d0) = gradient(0), (g1, d1) = gradient(1), (gw, dw) = gradient(0.25)
        let expected = zip(g0, g1).map { Double($0) + 0.25 * (Double($1) - Double($0)) }
        XCTAssertLessThan(relativeError(gw.map(Double.init), expected), 1e-5)
        XCTAssertGreaterThan(relativeError(g0.map(Double.init), g1.map(Double.init)), 1e-2, "the domain term matters")
        XCTAssertEqual(d0, d1)
        XCTAssertEqual(dw, d1)
    }
}
