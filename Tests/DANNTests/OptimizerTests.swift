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
}
