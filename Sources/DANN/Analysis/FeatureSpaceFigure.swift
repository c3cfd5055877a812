import Foundation

/// The DANN paper's Figure 4 for one model: the 2-D projection of E's features for source and target test
/// images, twice side by side with the same axes: coloured by domain on the left (does the adaptation
/// mix the domains?) and by digit on the right (do the classes stay apart?), under a one-line title.
public enum FeatureSpaceFigure {
    public static let sourceColor = LinePlot.palette[0]
    public static let targetColor = LinePlot.palette[3]
    public static let panelWidth = 900
    public static let panelHeight = 860
    public static let headerHeight = 50

    public static var size: (width: Int, height: Int) { (2 * panelWidth, headerHeight + panelHeight) }

    /// One domain's points: projected coordinates and digit labels.
    public struct Domain {
        public var name: String
        public var points: [(Double, Double)]
        public var labels: [UInt8]

        public init(name: String, points: [(Double, Double)], labels: [UInt8]) {
            precondition(points.count == labels.count, "one label per point")
            self.name = name
            self.points = points
            self.labels = labels
        }
    }

    public static func render(title: String, source: Domain, target: Domain, xLabel: String, yLabel: String) -> RGBImage {
        // Source and target alternate in proportion, so neither domain is painted over the other wholesale.
        let order = (source.points.indices.map { (key: (Double($0) + 0.5) / Double(source.points.count), target: false, index: $0) }
            + target.points.indices.map { (key: (Double($0) + 0.5) / Double(target.points.count), target: true, index: $0) })
            .sorted { ($0.key, $0.target ? 1 : 0) < ($1.key, $1.target ? 1 : 0) }
        func coordinates(_ item: (key: Double, target: Bool, index: Int)) -> (Double, Double) {
            (item.target ? target : source).points[item.index]
        }
        let xRange = ScatterPlot.paddedExtent(order.map { coordinates($0).0 })
        let yRange = ScatterPlot.paddedExtent(order.map { coordinates($0).1 })

        let byDomain = ScatterPlot(
            title: "by domain", xLabel: xLabel, yLabel: yLabel,
            groups: [.init(name: "\(source.name) (source)", color: sourceColor), .init(name: "\(target.name) (target)", color: targetColor)],
            points: order.map { item in
                let (x, y) = coordinates(item)
                return .init(x: x, y: y, group: item.target ? 1 : 0)
            },
            xRange: xRange, yRange: yRange)
        let byClass = ScatterPlot(
            title: "by digit", xLabel: xLabel, yLabel: yLabel,
            groups: LinePlot.palette.enumerated().map { .init(name: "\($0.offset)", color: $0.element) },
            points: order.map { item in
                let (x, y) = coordinates(item)
                return .init(x: x, y: y, group: Int((item.target ? target : source).labels[item.index]))
            },
            xRange: xRange, yRange: yRange)

        let (width, height) = size
        var image = RGBImage(width: width, height: height, fill: LinePlot.Style.background)
        image.draw(byDomain.render(width: panelWidth, height: panelHeight), x: 0, y: headerHeight)
        image.draw(byClass.render(width: panelWidth, height: panelHeight), x: panelWidth, y: headerHeight)
        // The title shrinks to the smaller font rather than run off the image.
        let scale = BitmapFont.width(of: title, scale: 3) <= width - 20 ? 3 : BitmapFont.width(of: title, scale: 2) <= width - 20 ? 2 : 1
        image.drawText(title, x: max(4, (width - BitmapFont.width(of: title, scale: scale)) / 2),
                       y: headerHeight - BitmapFont.capHeight * scale - 14, scale: scale, color: LinePlot.Style.text)
        return image
    }
}
