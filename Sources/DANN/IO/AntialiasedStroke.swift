/// Antialiased polylines and dots. Coverage is accumulated per series (the maximum over its
/// segments) and blended once, so joints between segments do not darken where strokes overlap.
struct AntialiasedStroke {
    let width: Int
    let height: Int
    /// Region that may be painted (the plot's data area), inclusive bounds.
    let clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)
    private(set) var coverage: [Float]

    init(width: Int, height: Int, clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)) {
        self.width = width
        self.height = height
        self.clip = clip
        coverage = [Float](repeating: 0, count: width * height)
    }

    /// A segment of thickness `2·halfWidth` between two points in pixel-centre coordinates.
    mutating func segment(_ a: (Double, Double), _ b: (Double, Double), halfWidth: Double) {
        let pad = halfWidth + 1
        // Clamp in floating point first: a point far off the chart must not overflow Int.
        func column(_ v: Double) -> Int { Int(min(Double(clip.maxX + 1), max(Double(clip.minX - 1), v)).rounded(.down)) }
        func row(_ v: Double) -> Int { Int(min(Double(clip.maxY + 1), max(Double(clip.minY - 1), v)).rounded(.down)) }
        let x0 = max(clip.minX, column(min(a.0, b.0) - pad)), x1 = min(clip.maxX, column(max(a.0, b.0) + pad) + 1)
        let y0 = max(clip.minY, row(min(a.1, b.1) - pad)), y1 = min(clip.maxY, row(max(a.1, b.1) + pad) + 1)
        guard x0 <= x1, y0 <= y1 else { return }
        let dx = b.0 - a.0, dy = b.1 - a.1
        let lengthSquared = dx * dx + dy * dy
        for y in y0...y1 {
            for x in x0...x1 {
                let px = Double(x) - a.0, py = Double(y) - a.1
                let t = lengthSquared > 0 ? min(1, max(0, (px * dx + py * dy) / lengthSquared)) : 0
                let ex = px - t * dx, ey = py - t * dy
                let distance = (ex * ex + ey * ey).squareRoot()
                let c = Float(min(1, max(0, halfWidth + 0.5 - distance)))
                if c > coverage[y * width + x] { coverage[y * width + x] = c }
            }
        }
    }

    /// A filled disc of `radius` centred on `centre`.
    mutating func dot(_ centre: (Double, Double), radius: Double) {
        segment(centre, centre, halfWidth: radius)
    }

    /// Paints the accumulated coverage onto `image` in `color`.
    func paint(onto image: inout RGBImage, color: RGBColor) {
        for y in clip.minY...clip.maxY {
            for x in clip.minX...clip.maxX {
                let c = coverage[y * width + x]
                if c >= 1 {
                    image.setPixel(x: x, y: y, color)
                } else if c > 0 {
                    image.blend(x: x, y: y, color, alpha: Double(c))
                }
            }
        }
    }
}
