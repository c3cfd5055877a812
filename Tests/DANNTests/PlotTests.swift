import Foundation
import XCTest
@testable import DANN

final class PlotTests: XCTestCase {
    /// A DANN-like metrics.csv: schedules from DESIGN §2, decaying noisy losses, sparse accuracies.
    static func writeSyntheticMetrics(to path: String, steps: Int = 2000) throws {
        let csv = try MetricsCSV(path: path, columns: MetricsCSV.standardColumns(middle: ["domain_acc", "mnist_test_acc", "svhn_test_acc"]))
        var noise: UInt64 = 42
        func jitter() -> Double {
            noise = noise &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(noise >> 11) / Double(1 << 53) - 0.5
        }
        for step in stride(from: 0, to: steps, by: 10) {
            let p = Double(step) / Double(steps)
            var row: [String: Double] = [
                "step": Double(step), "epoch": Double(step / 500),
                "lr": 0.01 / pow(1 + 10 * p, 0.75), "lambda": 2 / (1 + exp(-10 * p)) - 1,
                "label_loss": 2.3 * exp(-6 * p) + 0.02 + 0.05 * jitter(),
                "domain_loss": 1.386 - 0.3 * p + 0.08 * jitter(), "images_per_s": 900 + 50 * jitter(),
            ]
            if step % 200 == 0 {
                row["mnist_test_acc"] = 0.5 + 0.25 * (1 - exp(-4 * p)) + 0.01 * jitter()
                row["svhn_test_acc"] = 0.2 + 0.7 * (1 - exp(-5 * p))
            }
            try csv.append(row)
        }
    }

    func testWriteRunPlotsSample() throws {
        let directory = TestPaths.temporaryDirectory("plots")
        let csv = directory.appendingPathComponent("metrics.csv").path
        try Self.writeSyntheticMetrics(to: csv)
        try writeRunPlots(metricsCSVPath: csv, plotsDir: directory.appendingPathComponent("plots").path)
        print("PLOTS AT", directory.path)
    }
}
