import Foundation
import XCTest
@testable import DANN

final class PlotTests: XCTestCase {
    /// A DANN-like metrics.csv: schedules from docs/design.md §2.4, decaying noisy losses, sparse accuracies.
    static func writeSyntheticMetrics(to path: String, steps: Int = 2000, accuracy: Bool = true) throws {
        let middle = accuracy ? ["domain_acc", "mnist_test_acc", "svhn_test_acc"] : []
        let csv = try MetricsCSV(path: path, columns: MetricsCSV.standardColumns(middle: middle))
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
            if accuracy && step % 200 == 0 {
                row["mnist_test_acc"] = 0.5 + 0.25 * (1 - exp(-4 * p)) + 0.01 * jitter()
                row["svhn_test_acc"] = 0.2 + 0.7 * (1 - exp(-5 * p))
            }
            try csv.append(row)
        }
    }

    // MARK: Ticks

    func testNiceSteps() {
        XCTAssertEqual(PlotTicks.niceStep(span: 10, count: 5), 2)
        XCTAssertEqual(PlotTicks.niceStep(span: 1, count: 6), 0.2, accuracy: 1e-12)
        XCTAssertEqual(PlotTicks.niceStep(span: 1990, count: 6), 500)
        XCTAssertEqual(PlotTicks.niceStep(span: 0.0085, count: 4), 0.002, accuracy: 1e-15)
    }

    func testLinearTicks() {
        let extended = PlotTicks.linear(lower: 0, upper: 1030, count: 5, extend: true)
        XCTAssertEqual(extended.step, 200)
        XCTAssertEqual(extended.range, 0...1200)
        XCTAssertEqual(extended.ticks, [0, 200, 400, 600, 800, 1000, 1200])
        let inside = PlotTicks.linear(lower: 0, upper: 1030, count: 5, extend: false)
        XCTAssertEqual(inside.range, 0...1030)
        XCTAssertEqual(inside.ticks, [0, 200, 400, 600, 800, 1000])
        let small = PlotTicks.linear(lower: 0.0012, upper: 0.0097, count: 4, extend: true)
        XCTAssertEqual(small.ticks.count, 6)
        XCTAssertEqual(small.ticks[3], 0.006, accuracy: 1e-15)
        XCTAssertEqual(small.range.upperBound, 0.01, accuracy: 1e-15)
        let flat = PlotTicks.linear(lower: 3, upper: 3, count: 4, extend: true)
        XCTAssertTrue(flat.range.lowerBound < 3 && flat.range.upperBound > 3)
    }

    func testLogTicksAndLabels() {
        let log = PlotTicks.logarithmic(lower: 0.007, upper: 2.3)
        XCTAssertEqual(log.range, -3...1)
        XCTAssertEqual(log.ticks, [-3, -2, -1, 0, 1])
        XCTAssertEqual(log.minorTicks.count, 4 * 8)
        XCTAssertEqual(log.minorTicks.first!, log10(0.002), accuracy: 1e-12)
        XCTAssertEqual(["0.001", "1", "10000", "1e5", "1e-4"], [-3, 0, 4, 5, -4].map(PlotTicks.decadeLabel))
        XCTAssertEqual(PlotTicks.label(0.004, step: 0.002), "0.004")
        XCTAssertEqual(PlotTicks.label(1500, step: 500), "1500")
        XCTAssertEqual(PlotTicks.label(0.6000000000000001, step: 0.2), "0.6")
        XCTAssertEqual(PlotTicks.label(-1e-17, step: 0.2), "0.0")
        XCTAssertEqual(PlotTicks.label(2.5e-5, step: 5e-6), "2.5e-5")
        XCTAssertEqual(PlotTicks.label(3e6, step: 1e6), "3e6")
    }

    // MARK: Rendered pixels

    /// The two columns and two rows drawn in the frame colour over at least half the image: found by
    /// scanning, independently of `PlotLayout`.
    func frameLines(_ image: RGBImage) -> (columns: [Int], rows: [Int]) {
        let columns = (0..<image.width).filter { x in
            (0..<image.height).filter { image.pixel(x: x, y: $0) == LinePlot.Style.frame }.count > image.height / 2
        }
        let rows = (0..<image.height).filter { y in
            (0..<image.width).filter { image.pixel(x: $0, y: y) == LinePlot.Style.frame }.count > image.width / 2
        }
        return (columns, rows)
    }

    /// Top-left corners where `text` drawn in the font appears exactly (ink and paper) in `image`.
    func find(_ text: String, scale: Int, color: RGBColor, in image: RGBImage) -> [(Int, Int)] {
        let w = BitmapFont.width(of: text, scale: scale), h = BitmapFont.glyphHeight * scale
        var stamp = RGBImage(width: w, height: h, fill: .white)
        stamp.drawText(text, x: 0, y: 0, scale: scale, color: color)
        var hits: [(Int, Int)] = []
        for y in 0...(image.height - h) {
            for x in 0...(image.width - w) {
                var match = true
                scan: for sy in 0..<h {
                    for sx in 0..<w where stamp.pixel(x: sx, y: sy) != image.pixel(x: x + sx, y: y + sy) {
                        match = false
                        break scan
                    }
                }
                if match { hits.append((x, y)) }
            }
        }
        return hits
    }

    func testAxesSeriesAndLegendPixels() {
        let red = RGBColor(hex: 0xD62728)
        let points: [(Double, Double)] = [(0, 0.1), (2, 0.3), (5, 0.8), (8, 0.5), (10, 0.9)]
        let plot = LinePlot(title: "Test plot", xLabel: "step",
                            series: [.init(name: "alpha", color: red, points: points)],
                            xRange: 0...10, yRange: 0...1)
        let image = plot.render(width: 600, height: 400)
        XCTAssertEqual(image.width, 600)
        XCTAssertEqual(image.height, 400)
        XCTAssertEqual(image.pixel(x: 0, y: 0), .white)
        XCTAssertEqual(image.pixel(x: 599, y: 399), .white)
        XCTAssertEqual(image.pixel(x: 599, y: 0), .white)

        let lines = frameLines(image)
        XCTAssertEqual(lines.columns.count, 2, "left and right frame lines")
        XCTAssertEqual(lines.rows.count, 2, "top and bottom frame lines")
        guard lines.columns.count == 2, lines.rows.count == 2 else { return }
        let (left, right) = (lines.columns[0], lines.columns[1])
        let (top, bottom) = (lines.rows[0], lines.rows[1])
        let layout = plot.layout(width: 600, height: 400)
        XCTAssertEqual([left, right, top, bottom], [layout.left, layout.right, layout.top, layout.bottom])
        XCTAssertGreaterThan(right - left, 400, "the data area takes most of the width")
        XCTAssertGreaterThan(bottom - top, 250)

        // The fixed ranges put x = 0…10 on the left…right lines and y = 0…1 on the bottom…top lines.
        func pixel(_ x: Double, _ y: Double) -> (Int, Int) {
            (Int((Double(left) + x / 10 * Double(right - left)).rounded()),
             Int((Double(bottom) - y * Double(bottom - top)).rounded()))
        }
        for (x, y) in points where x > 0 && x < 10 {
            let (px, py) = pixel(x, y)
            XCTAssertEqual(image.pixel(x: px, y: py), red, "data point (\(x), \(y)) at (\(px), \(py))")
        }
        let (mx, my) = pixel(3.5, 0.55)  // midway along the segment (2, 0.3)–(5, 0.8)
        XCTAssertEqual(image.pixel(x: mx, y: my), red)
        let (ox, oy) = pixel(5, 0.2)  // well away from the curve
        XCTAssertNotEqual(image.pixel(x: ox, y: oy), red)

        let s = layout.textScale
        let legend = find("alpha", scale: s, color: LinePlot.Style.text, in: image)
        XCTAssertEqual(legend.count, 1, "legend text drawn once")
        if let (lx, ly) = legend.first {
            XCTAssertTrue(lx > left && lx < right && ly > top && ly < bottom, "legend inside the data area")
            // The legend's colour sample sits just left of the name.
            let sampleRow = ly + BitmapFont.capHeight * s / 2
            XCTAssertEqual(image.pixel(x: lx - 4 * s - 2, y: sampleRow), red)
        }
        XCTAssertEqual(find("Test plot", scale: s + 1, color: LinePlot.Style.text, in: image).count, 1)

        // The y tick label "0.6" sits left of the frame, centred on the row of y = 0.6.
        let label = find("0.6", scale: s, color: LinePlot.Style.text, in: image)
        XCTAssertEqual(label.count, 1)
        if let (tx, ty) = label.first {
            XCTAssertLessThan(tx + BitmapFont.width(of: "0.6", scale: s), left)
            XCTAssertEqual(Double(ty) + Double(BitmapFont.capHeight * s) / 2, Double(pixel(0, 0.6).1), accuracy: 2)
        }
    }

    func testLogAxisMapsDecadesEvenly() {
        let blue = LinePlot.palette[0]
        let points: [(Double, Double)] = (0...40).map { (Double($0), pow(10, -2 + Double($0) / 40 * 3)) }
        let plot = LinePlot(title: "", xLabel: "", series: [.init(name: "", color: blue, points: points)], logY: true)
        let image = plot.render(width: 900, height: 540)
        let lines = frameLines(image)
        guard lines.columns.count == 2, lines.rows.count == 2 else {
            return XCTFail("frame not found: \(lines)")
        }
        // Data 0.01…10 → decades −2…1 over the frame; y = 1 lies two thirds of the way up.
        let (left, right, top, bottom) = (lines.columns[0], lines.columns[1], lines.rows[0], lines.rows[1])
        let x = 40.0 * 2 / 3  // where the series reaches y = 1
        let px = Int((Double(left) + x / 40 * Double(right - left)).rounded())
        let py = Int((Double(bottom) - 2.0 / 3 * Double(bottom - top)).rounded())
        XCTAssertEqual(image.pixel(x: px, y: py), blue)
    }

    func testNonFiniteValueBreaksTheLine() {
        let green = LinePlot.palette[2]
        func render(_ middle: Double) -> RGBImage {
            LinePlot(title: "", xLabel: "", series: [.init(name: "", color: green, points: [(0, 0.2), (5, middle), (10, 0.2)])],
                     xRange: 0...10, yRange: 0...1).render(width: 900, height: 540)
        }
        let layout = LinePlot(title: "", xLabel: "", series: [], xRange: 0...10, yRange: 0...1).layout(width: 900, height: 540)
        let px = Int((Double(layout.left) + 0.25 * Double(layout.right - layout.left)).rounded())
        let py = Int((Double(layout.bottom) - 0.2 * Double(layout.bottom - layout.top)).rounded())
        XCTAssertEqual(render(0.2).pixel(x: px, y: py), green)
        XCTAssertNotEqual(render(.nan).pixel(x: px, y: py), green)
    }

    // MARK: Run plots

    func testWriteRunPlots() throws {
        let directory = TestPaths.temporaryDirectory("plots")
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("metrics.csv").path
        try Self.writeSyntheticMetrics(to: csv)
        let plots = directory.appendingPathComponent("plots").path
        try writeRunPlots(metricsCSVPath: csv, plotsDir: plots)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: plots)),
                       ["losses.png", "schedule.png", "accuracy.png"])
        for (name, colors) in [("losses.png", [0, 1]), ("schedule.png", [0, 1]), ("accuracy.png", [1, 2])] {
            let image = try ImageReader.read(path: "\(plots)/\(name)")
            XCTAssertEqual([image.width, image.height], [900, 540], name)
            var present = Set<RGBColor>()
            for i in stride(from: 0, to: image.pixels.count, by: 3) {
                present.insert(RGBColor(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]))
            }
            for index in colors {
                XCTAssertTrue(present.contains(LinePlot.palette[index]), "\(name) has series colour \(index)")
            }
        }
    }

    func testRunPlotsSkipChartsWithoutData() throws {
        let directory = TestPaths.temporaryDirectory("plots")
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("metrics.csv").path
        try Self.writeSyntheticMetrics(to: csv, steps: 100, accuracy: false)
        try writeRunPlots(metricsCSVPath: csv, plotsDir: directory.path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("losses.png").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("accuracy.png").path))
        XCTAssertThrowsError(try writeRunPlots(metricsCSVPath: directory.appendingPathComponent("none.csv").path,
                                               plotsDir: directory.path)) { error in
            XCTAssertTrue((error as? DANNError)?.message.hasSuffix("none.csv: no such file") == true, "\(error)")
        }
    }
}
