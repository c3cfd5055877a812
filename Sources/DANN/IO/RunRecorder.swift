import Foundation

/// Writes the run directory of docs/design.md §4.2 from rank 0: config.json, metrics.csv, a TensorBoard event
/// file with the same scalar names, and plots/*.png refreshed at every evaluation.
public final class RunRecorder: TrainingCallback {
    public let directory: String
    private var csv: MetricsCSV?
    private var tensorBoard: TensorBoardWriter?
    private var metricsPath: String { URL(fileURLWithPath: directory).appendingPathComponent("metrics.csv").path }
    private var plotsPath: String { URL(fileURLWithPath: directory).appendingPathComponent("plots").path }

    public init(directory: String) { self.directory = directory }

    public func runStarted(_ info: RunInfo) throws {
        try CheckpointStore.createDirectory(directory)
        try AtomicFile.writeText(try info.config.json() + "\n", to: URL(fileURLWithPath: directory).appendingPathComponent("config.json").path)
        let middle = ["label_acc", "domain_acc"] + info.testSets.map { "\($0.rawValue)_test_acc" }
        csv = try MetricsCSV(path: metricsPath, columns: MetricsCSV.standardColumns(middle: middle),
                             resumeFromStep: info.startStep > 0 ? Int64(info.startStep + 1) : nil)
        tensorBoard = try TensorBoardWriter(directory: directory)
    }

    public func stepFinished(_ r: StepRecord, evaluation: [EvalResult]?) throws {
        var values: [String: Double] = [
            "step": Double(r.step), "epoch": Double(r.epoch), "lr": r.lr, "lambda": r.lambda,
            "label_loss": r.labelLoss, "domain_loss": r.domainLoss, "label_acc": r.labelAccuracy,
            "domain_acc": r.domainAccuracy, "images_per_s": r.imagesPerSecond,
        ]
        for e in evaluation ?? [] { values["\(e.key)_acc"] = e.accuracy }
        try csv?.append(values)
        if let tensorBoard {
            for (tag, value) in values.sorted(by: { $0.key < $1.key }) where tag != "step" {
                try tensorBoard.addScalar(tag, value: Float(value), step: Int64(r.step))
            }
            try tensorBoard.flush()
        }
        if evaluation != nil { try writeRunPlots(metricsCSVPath: metricsPath, plotsDir: plotsPath) }
    }

    public func runFinished(step: Int, interrupted: Bool) throws {
        try writeRunPlots(metricsCSVPath: metricsPath, plotsDir: plotsPath)
        tensorBoard?.close()
    }
}
