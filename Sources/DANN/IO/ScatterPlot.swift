import Foundation

/// A scatter chart of points in a few coloured groups, with the same frame, grid, ticks, title and axis
/// labels as `LinePlot` (it draws an empty `LinePlot` with fixed limits and puts the dots on top), and a
/// legend of dot samples in the emptiest corner. Dots are antialiased discs blended one at a time in the
/// given order, so interleaving the groups keeps any one from hiding the others where they overlap.
public struct ScatterPlot {
    public struct Group {
        public var name: String
        public var color: RGBColor

        public init(name: String, color: RGBColor) {
            self.name = name
            self.color = color
        }
    }

    public struct Point {
        public var x: Double
        public var y: Double
        /// Index into `groups`.
        public var group: Int

        public init(x: Double, y: Double, group: Int) {
            self.x = x
            self.y = y
            self.group = group
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var groups: [Group]
    /// Drawing order: later points are drawn over earlier ones.
    public var points: [Point]
    /// Dot radius in pixels at text scale 1 (it grows with the text scale).
    public var dotRadius = 1.2
    /// Opacity of one dot: dense regions darken, so where points pile up still shows.
    public var opacity = 0.75
    /// Fixed limits; by default the data's extent plus a small margin.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, groups: [Group], points: [Point],
                xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.groups = groups
        self.points = points
        self.xRange = xRange
        self.yRange = yRange
    }

    /// The data extent of the finite points widened by 4% of its span on each side, so edge dots clear the frame.
    public static func paddedExtent(_ values: [Double]) -> ClosedRange<Double> {
        let finite = values.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return 0...1 }
        let pad = (high - low) * 0.04
        return (low - pad)...(high + pad)
    }

    /// The empty chart whose furniture this one borrows.
    private var frame: LinePlot {
        LinePlot(title: title, xLabel: xLabel, yLabel: yLabel, series: [],
                 xRange: xRange ?? Self.paddedExtent(points.map(\.x)), yRange: yRange ?? Self.paddedExtent(points.map(\.y)))
    }

    public func layout(width: Int, height: Int) -> PlotLayout { frame.layout(width: width, height: height) }

    public func render(width: Int = 900, height: Int = 860) -> RGBImage {
        let chart = frame
        var image = chart.render(width: width, height: height)
        let layout = chart.layout(width: width, height: height)
        let clip = (minX: layout.left + 1, minY: layout.top + 1, maxX: layout.right - 1, maxY: layout.bottom - 1)
        let radius = dotRadius * Double(layout.textScale)
        for point in points where groups.indices.contains(point.group) {
            guard let centre = layout.pixel(x: point.x, y: point.y) else { continue }
            Self.dot(on: &image, centre: centre, radius: radius, color: groups[point.group].color, opacity: opacity, clip: clip)
        }
        drawLegend(on: &image, layout: layout, clip: clip)
        return image
    }

    /// An antialiased disc: coverage falls from 1 to 0 across the pixel straddling the rim.
    static func dot(on image: inout RGBImage, centre: (Double, Double), radius: Double, color: RGBColor, opacity: Double,
                    clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)) {
        guard centre.0.isFinite, centre.1.isFinite else { return }
        let x0 = max(clip.minX, Int((centre.0 - radius - 1).rounded(.down))), x1 = min(clip.maxX, Int((centre.0 + radius + 1).rounded(.up)))
        let y0 = max(clip.minY, Int((centre.1 - radius - 1).rounded(.down))), y1 = min(clip.maxY, Int((centre.1 + radius + 1).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let dx = Double(x) - centre.0, dy = Double(y) - centre.1
                let coverage = min(1, max(0, radius + 0.5 - (dx * dx + dy * dy).squareRoot()))
                if coverage > 0 { image.blend(x: x, y: y, color, alpha: coverage * opacity) }
            }
        }
    }

    /// The legend: a dot of each group's colour beside its name.
    private func drawLegend(on image: inout RGBImage, layout: PlotLayout, clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)) {
        let s = layout.textScale
        PlotLegend.draw(on: &image, entries: groups.map { ($0.name, $0.color) }, textScale: s, sampleWidth: 6, clip: clip) {
            image, x, centreY, color in
            let whole = (minX: 0, minY: 0, maxX: image.width - 1, maxY: image.height - 1)
            Self.dot(on: &image, centre: (Double(x + 3 * s), Double(centreY)), radius: Double(6 * s) / 2 - 0.5,
                     color: color, opacity: 1, clip: whole)
        }
    }
}
