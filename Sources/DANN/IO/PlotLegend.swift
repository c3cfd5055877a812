/// The boxed legend both chart kinds draw: one row per named entry (a sample mark, then the name), placed in
/// whichever inner corner of the data area covers the fewest non-background pixels — the first such corner
/// (top right, top left, bottom right, bottom left) on a tie, so an empty chart gets it top right.
enum PlotLegend {
    typealias Clip = (minX: Int, minY: Int, maxX: Int, maxY: Int)

    /// `drawSample(image, x, centreY, colour)` draws one entry's mark in the `sampleWidth` pixels from x.
    static func draw(on image: inout RGBImage, entries: [(name: String, color: RGBColor)], textScale s: Int,
                     sampleWidth: Int, clip: Clip,
                     drawSample: (inout RGBImage, Int, Int, RGBColor) -> Void) {
        let entries = entries.filter { !$0.name.isEmpty }
        guard !entries.isEmpty else { return }
        let inset = 3 * s, sample = sampleWidth * s, gap = 3 * s, rowHeight = BitmapFont.lineHeight * s
        let nameWidth = entries.map { BitmapFont.width(of: $0.name, scale: s) }.max() ?? 0
        let boxWidth = inset + sample + gap + nameWidth + inset
        let boxHeight = inset + entries.count * rowHeight - (rowHeight - BitmapFont.capHeight * s) + inset
        let margin = 4 * s
        let corners = [
            (clip.maxX - margin - boxWidth, clip.minY + margin), (clip.minX + margin, clip.minY + margin),
            (clip.maxX - margin - boxWidth, clip.maxY - margin - boxHeight), (clip.minX + margin, clip.maxY - margin - boxHeight),
        ]
        let paper: Set<RGBColor> = [LinePlot.Style.background, LinePlot.Style.grid, LinePlot.Style.minorGrid]
        func ink(_ corner: (Int, Int)) -> Int {
            var count = 0
            for y in max(0, corner.1)..<min(image.height, corner.1 + boxHeight) {
                for x in max(0, corner.0)..<min(image.width, corner.0 + boxWidth) where !paper.contains(image.pixel(x: x, y: y)) {
                    count += 1
                }
            }
            return count
        }
        var best = corners[0], bestInk = Int.max
        for corner in corners {
            let value = ink(corner)
            if value < bestInk { (best, bestInk) = (corner, value) }
        }
        let (x, y) = best
        image.fillRect(x: x, y: y, width: boxWidth, height: boxHeight, color: LinePlot.Style.legendBorder)
        image.fillRect(x: x + 1, y: y + 1, width: boxWidth - 2, height: boxHeight - 2, color: LinePlot.Style.background)
        for (row, entry) in entries.enumerated() {
            let textY = y + inset + row * rowHeight
            drawSample(&image, x + inset, textY + BitmapFont.capHeight * s / 2, entry.color)
            image.drawText(entry.name, x: x + inset + sample + gap, y: textY, scale: s, color: LinePlot.Style.text)
        }
    }
}
