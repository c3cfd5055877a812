import Foundation

/// Renders the run's standard charts from `metrics.csv` into `plotsDir` (created if needed):
/// `losses.png` (label_loss, domain_loss), `schedule.png` (lr above lambda) and `accuracy.png`
/// (every `*_acc` column). A chart whose columns hold no values yet is not written. Each file is
/// replaced atomically, so a viewer refreshing it never sees half an image.
public func writeRunPlots(metricsCSVPath: String, plotsDir: String) throws {
    let table = try MetricsTable(path: metricsCSVPath)
    do {
        try FileManager.default.createDirectory(atPath: plotsDir, withIntermediateDirectories: true)
    } catch {
        throw DANNError.file(plotsDir, "cannot create the plots folder (\(error.localizedDescription))")
    }
    let width = 900, height = 540

    let losses = table.series(["label_loss", "domain_loss"])
    if !losses.isEmpty {
        // Losses fall by orders of magnitude over a run; a log axis keeps the late part readable.
        let ys = losses.flatMap { $0.points.map(\.1) }
        let positive = ys.allSatisfy { $0 > 0 }
        let logY = positive && (ys.max() ?? 1) / (ys.min() ?? 1) > 30
        let plot = LinePlot(title: "Training losses", xLabel: "step", yLabel: logY ? "loss (log scale)" : "loss",
                            series: losses, logY: logY)
        try PNGWriter.write(plot.render(width: width, height: height), to: "\(plotsDir)/losses.png")
    }

    let lr = table.series(["lr"]), lambda = table.series(["lambda"], colorOffset: 1)
    if !lr.isEmpty || !lambda.isEmpty {
        var image = RGBImage(width: width, height: height, fill: LinePlot.Style.background)
        var upper = LinePlot(title: "Learning rate", xLabel: "", yLabel: "lr", series: lr)
        var lower = LinePlot(title: "GRL coefficient lambda", xLabel: "step", yLabel: "lambda", series: lambda)
        // One x scale for both panels: the same left margin and the same step range.
        let steps = (lr + lambda).flatMap { $0.points.map(\.0) }
        if let first = steps.min(), let last = steps.max(), last > first {
            upper.xRange = first...last
            lower.xRange = first...last
        }
        let margin = max(upper.layout(width: width, height: height / 2).left,
                         lower.layout(width: width, height: height - height / 2).left)
        upper.minimumLeftMargin = margin
        lower.minimumLeftMargin = margin
        image.draw(upper.render(width: width, height: height / 2), x: 0, y: 0)
        image.draw(lower.render(width: width, height: height - height / 2), x: 0, y: height / 2)
        try PNGWriter.write(image, to: "\(plotsDir)/schedule.png")
    }

    let accuracyColumns = table.columns.filter { $0.hasSuffix("_acc") }
    let accuracy = table.series(accuracyColumns)
    if !accuracy.isEmpty {
        let ys = accuracy.flatMap { $0.points.map(\.1) }
        let unitRange = ys.allSatisfy { (0...1).contains($0) }
        let plot = LinePlot(title: "Accuracy", xLabel: "step", yLabel: "accuracy", series: accuracy,
                            yRange: unitRange ? 0...1 : nil)
        try PNGWriter.write(plot.render(width: width, height: height), to: "\(plotsDir)/accuracy.png")
    }
}

/// metrics.csv read back by column: numbers, with empty or unparsable cells as missing.
struct MetricsTable {
    let columns: [String]
    private let values: [[Double?]]
    private let steps: [Double?]

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw DANNError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read as UTF-8 text" : "no such file")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { throw DANNError.file(path, "empty metrics file (no header row)") }
        columns = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let stepIndex = columns.firstIndex(of: "step") else {
            throw DANNError.file(path, "no \"step\" column in the header")
        }
        values = lines.map { line in
            line.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        }
        steps = values.map { stepIndex < $0.count ? $0[stepIndex] : nil }
    }

    /// One series per named column that has at least one value, x = step, coloured from the palette
    /// by position in `names` (plus `colorOffset`) so a column keeps its colour when another is absent.
    func series(_ names: [String], colorOffset: Int = 0) -> [LinePlot.Series] {
        names.enumerated().compactMap { offset, name in
            guard let index = columns.firstIndex(of: name) else { return nil }
            let points = zip(steps, values).compactMap { step, row -> (Double, Double)? in
                guard let step, index < row.count, let value = row[index], value.isFinite else { return nil }
                return (step, value)
            }
            guard !points.isEmpty else { return nil }
            let color = LinePlot.palette[(offset + colorOffset) % LinePlot.palette.count]
            return LinePlot.Series(name: name, color: color, points: points)
        }
    }
}
