import Foundation

/// A line chart of one or more series: framed data area, light grid at "nice" ticks, tick labels,
/// title, axis labels and a legend placed in the emptiest corner. Rendered in software to an
/// `RGBImage` with antialiased lines, so the trainer needs no plotting dependency.
public struct LinePlot {
    /// One curve: its legend name, colour and (x, y) points in drawing order. Non-finite points
    /// (and non-positive y on a log axis) break the line.
    public struct Series {
        public var name: String
        public var color: RGBColor
        public var points: [(Double, Double)]

        public init(name: String, color: RGBColor, points: [(Double, Double)]) {
            self.name = name
            self.color = color
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Plot y on a base-10 logarithmic axis.
    public var logY: Bool
    /// Fixed x limits; by default the data's x extent.
    public var xRange: ClosedRange<Double>?
    /// Fixed y limits (data units, also with `logY`); by default the data's extent widened to ticks.
    public var yRange: ClosedRange<Double>?
    /// At least this many pixels left of the frame, so stacked charts can share one x alignment.
    public var minimumLeftMargin = 0

    /// Matplotlib's "tab10" colours, a familiar and colour-blind-tolerant cycle.
    public static let palette: [RGBColor] = [
        0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF,
    ].map { RGBColor(hex: $0) }

    /// Colours of the chart furniture (public so tests and callers can find them).
    public enum Style {
        public static let background = RGBColor.white
        public static let frame = RGBColor(hex: 0x4D4D4D)
        public static let grid = RGBColor(hex: 0xE8E8E8)
        public static let minorGrid = RGBColor(hex: 0xF4F4F4)
        public static let text = RGBColor(hex: 0x262626)
        public static let legendBorder = RGBColor(hex: 0xC8C8C8)
    }

    public init(title: String, xLabel: String, yLabel: String = "", series: [Series], logY: Bool = false,
                xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logY = logY
        self.xRange = xRange
        self.yRange = yRange
    }

    /// Where everything goes for a given image size.
    public func layout(width: Int, height: Int) -> PlotLayout {
        // Text scale follows the width; short panels (stacked charts) still get readable labels.
        let s = max(1, min(width / 450, height / 130))
        let pad = 5 * s
        var xs: [Double] = [], ys: [Double] = []
        for series in series {
            for (x, y) in series.points where x.isFinite && y.isFinite && (!logY || y > 0) {
                xs.append(x)
                ys.append(y)
            }
        }

        let xLimits = xRange ?? ((xs.min() ?? 0)...(xs.max() ?? 1))
        let xTicks = PlotTicks.linear(lower: xLimits.lowerBound, upper: xLimits.upperBound,
                                      count: max(3, width / (75 * s)), extend: false)
        let yAxis: (range: ClosedRange<Double>, ticks: [Double], minor: [Double], labels: [String])
        if logY {
            let limits = yRange ?? ((ys.min() ?? 0.1)...(ys.max() ?? 1))
            let lower = limits.lowerBound > 0 ? limits.lowerBound : 1e-3
            let decades = PlotTicks.logarithmic(lower: lower, upper: max(limits.upperBound, lower))
            let range = yRange.map { log10(lower)...log10(max($0.upperBound, lower * 10)) } ?? decades.range
            yAxis = (range, decades.ticks.filter(range.contains), decades.minorTicks.filter(range.contains),
                     decades.ticks.filter(range.contains).map(PlotTicks.decadeLabel))
        } else {
            let limits = yRange ?? ((ys.min() ?? 0)...(ys.max() ?? 1))
            let ticks = PlotTicks.linear(lower: limits.lowerBound, upper: limits.upperBound,
                                         count: max(3, height / (60 * s)), extend: yRange == nil)
            yAxis = (ticks.range, ticks.ticks, [], ticks.ticks.map { PlotTicks.label($0, step: ticks.step) })
        }
        let xLabels = xTicks.ticks.map { PlotTicks.label($0, step: xTicks.step) }

        let titleScale = s + 1
        let top = pad * 2 + (title.isEmpty ? 0 : BitmapFont.capHeight * titleScale + pad)
        let yLabelWidth = yAxis.labels.map { BitmapFont.width(of: $0, scale: s) }.max() ?? 0
        let left = max(minimumLeftMargin,
                       pad + (yLabel.isEmpty ? 0 : BitmapFont.glyphHeight * s + pad) + yLabelWidth + 4 * s)
        let lastXLabel = BitmapFont.width(of: xLabels.last ?? "", scale: s)
        let right = width - 1 - max(pad * 3, lastXLabel / 2 + pad)
        let bottom = height - 1 - (pad + (xLabel.isEmpty ? 0 : BitmapFont.glyphHeight * s + pad)
                                   + BitmapFont.glyphHeight * s + 4 * s)
        return PlotLayout(left: left, right: max(right, left + 2), top: top, bottom: max(bottom, top + 2),
                          xRange: xTicks.range, yRange: yAxis.range,
                          xTicks: xTicks.ticks, xLabels: xLabels,
                          yTicks: yAxis.ticks, yMinorTicks: yAxis.minor, yLabels: yAxis.labels,
                          logY: logY, textScale: s)
    }

    /// Draws the chart on a `width`×`height` white image.
    public func render(width: Int = 900, height: Int = 540) -> RGBImage {
        var image = RGBImage(width: width, height: height, fill: Style.background)
        let frame = layout(width: width, height: height)
        let s = frame.textScale
        let clip = (minX: frame.left + 1, minY: frame.top + 1, maxX: frame.right - 1, maxY: frame.bottom - 1)

        for tick in frame.yMinorTicks {
            let y = Int(frame.pixelY(axisValue: tick).rounded())
            image.fillRect(x: clip.minX, y: y, width: clip.maxX - clip.minX + 1, height: 1, color: Style.minorGrid)
        }
        for tick in frame.yTicks {
            let y = Int(frame.pixelY(axisValue: tick).rounded())
            image.fillRect(x: clip.minX, y: y, width: clip.maxX - clip.minX + 1, height: 1, color: Style.grid)
        }
        for tick in frame.xTicks {
            let x = Int(frame.pixelX(tick).rounded())
            image.fillRect(x: x, y: clip.minY, width: 1, height: clip.maxY - clip.minY + 1, color: Style.grid)
        }

        let halfWidth = max(1, 0.75 * Double(s))
        for series in series {
            var stroke = AntialiasedStroke(width: width, height: height, clip: clip)
            let markers = series.points.count <= 30
            var previous: (Double, Double)?
            for (x, y) in series.points {
                guard let point = frame.pixel(x: x, y: y) else {
                    previous = nil
                    continue
                }
                if let previous { stroke.segment(previous, point, halfWidth: halfWidth) }
                if markers { stroke.dot(point, radius: 1.75 * Double(s)) }
                previous = point
            }
            if series.points.count == 1, let (x, y) = series.points.first, let point = frame.pixel(x: x, y: y) {
                stroke.dot(point, radius: 1.75 * Double(s))
            }
            stroke.paint(onto: &image, color: series.color)
        }

        drawLegend(on: &image, frame: frame, clip: clip)

        // The frame goes on top so curves running along an edge do not eat it.
        image.fillRect(x: frame.left, y: frame.top, width: frame.right - frame.left + 1, height: 1, color: Style.frame)
        image.fillRect(x: frame.left, y: frame.bottom, width: frame.right - frame.left + 1, height: 1, color: Style.frame)
        image.fillRect(x: frame.left, y: frame.top, width: 1, height: frame.bottom - frame.top + 1, color: Style.frame)
        image.fillRect(x: frame.right, y: frame.top, width: 1, height: frame.bottom - frame.top + 1, color: Style.frame)

        let tickLength = 2 * s
        let glyphHeight = BitmapFont.capHeight * s
        for (tick, label) in zip(frame.yTicks, frame.yLabels) {
            let y = Int(frame.pixelY(axisValue: tick).rounded())
            image.fillRect(x: frame.left - tickLength, y: y, width: tickLength, height: 1, color: Style.frame)
            let labelWidth = BitmapFont.width(of: label, scale: s)
            image.drawText(label, x: frame.left - tickLength - 2 * s - labelWidth, y: y - glyphHeight / 2,
                           scale: s, color: Style.text)
        }
        for (tick, label) in zip(frame.xTicks, frame.xLabels) {
            let x = Int(frame.pixelX(tick).rounded())
            image.fillRect(x: x, y: frame.bottom + 1, width: 1, height: tickLength, color: Style.frame)
            let labelWidth = BitmapFont.width(of: label, scale: s)
            image.drawText(label, x: x - labelWidth / 2, y: frame.bottom + tickLength + 2 * s, scale: s, color: Style.text)
        }

        let centreX = (frame.left + frame.right) / 2
        if !title.isEmpty {
            let titleScale = s + 1
            image.drawText(title, x: centreX - BitmapFont.width(of: title, scale: titleScale) / 2,
                           y: 2 * 5 * s, scale: titleScale, color: Style.text)
        }
        if !xLabel.isEmpty {
            image.drawText(xLabel, x: centreX - BitmapFont.width(of: xLabel, scale: s) / 2,
                           y: height - 5 * s - BitmapFont.glyphHeight * s, scale: s, color: Style.text)
        }
        if !yLabel.isEmpty {
            var label = RGBImage(width: BitmapFont.width(of: yLabel, scale: s), height: BitmapFont.glyphHeight * s,
                                 fill: Style.background)
            label.drawText(yLabel, x: 0, y: 0, scale: s, color: Style.text)
            let rotated = label.rotatedCounterClockwise()
            image.draw(rotated, x: 5 * s, y: (frame.top + frame.bottom) / 2 - rotated.height / 2)
        }
        return image
    }

    /// The legend: a short line of each curve's colour beside its name.
    private func drawLegend(on image: inout RGBImage, frame: PlotLayout,
                            clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)) {
        let s = frame.textScale
        PlotLegend.draw(on: &image, entries: series.map { ($0.name, $0.color) }, textScale: s, sampleWidth: 10, clip: clip) {
            image, x, centreY, color in
            let thickness = max(2, Int(1.5 * Double(s)))
            image.fillRect(x: x, y: centreY - thickness / 2, width: 10 * s, height: thickness, color: color)
        }
    }
}

/// The geometry of a rendered `LinePlot`: the frame's pixel rows/columns and the axis mapping.
public struct PlotLayout {
    /// Columns of the left and right frame lines and rows of the top and bottom ones. Data limits map
    /// exactly onto these lines.
    public let left: Int, right: Int, top: Int, bottom: Int
    /// Data values at the left/right lines.
    public let xRange: ClosedRange<Double>
    /// Values at the bottom/top lines, in log10 units when `logY`.
    public let yRange: ClosedRange<Double>
    public let xTicks: [Double], xLabels: [String]
    /// Tick positions in axis units (exponents of ten when `logY`).
    public let yTicks: [Double], yMinorTicks: [Double], yLabels: [String]
    public let logY: Bool
    /// Pixel size of one font pixel for tick labels.
    public let textScale: Int

    /// Pixel column of x (pixel centres are at integer coordinates).
    public func pixelX(_ x: Double) -> Double {
        Double(left) + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * Double(right - left)
    }

    /// Pixel row of a y value already in axis units.
    public func pixelY(axisValue: Double) -> Double {
        Double(bottom) - (axisValue - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * Double(bottom - top)
    }

    /// Pixel position of a data point, or nil if it cannot be drawn (not finite, or y ≤ 0 on a log axis).
    public func pixel(x: Double, y: Double) -> (Double, Double)? {
        guard x.isFinite, y.isFinite, !logY || y > 0 else { return nil }
        return (pixelX(x), pixelY(axisValue: logY ? log10(y) : y))
    }
}
