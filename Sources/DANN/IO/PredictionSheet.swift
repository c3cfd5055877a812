import Foundation

/// The `predict --annotate` picture: what the network saw for each image, enlarged, with the predicted
/// digit and its probability written under it.
///
/// Layout: up to `columns` cells per row, as many rows as needed. Each cell is `cellWidth` × `cellHeight`
/// pixels (120 × 148): a 4 px margin, the S×S network input enlarged by nearest neighbour to `tile` × `tile`
/// (112 × 112), then a caption such as `7 98.1%` in the 5×7 bitmap font at twice its size. So n images
/// give a picture of min(n, 8)·120 × ⌈n / 8⌉·148 pixels.
public enum PredictionSheet {
    public static let tile = 112
    public static let margin = 4
    public static let captionHeight = 28
    public static let columns = 8
    public static let cellWidth = tile + 2 * margin
    public static let cellHeight = tile + 2 * margin + captionHeight

    /// Width and height of the sheet for `count` images.
    public static func size(count: Int) -> (width: Int, height: Int) {
        let n = max(1, count)
        return (min(n, columns) * cellWidth, ((n + columns - 1) / columns) * cellHeight)
    }

    /// Draws `views[i]` (any size, shown at `tile` × `tile`) above the caption of `predictions[i]`.
    public static func render(views: [RGBImage], predictions: [Prediction]) -> RGBImage {
        let (width, height) = size(count: views.count)
        var sheet = RGBImage(width: width, height: height, fill: .white)
        for (i, (view, prediction)) in zip(views, predictions).enumerated() {
            let x = (i % columns) * cellWidth, y = (i / columns) * cellHeight
            sheet.draw(view.resizedNearest(width: tile, height: tile), x: x + margin, y: y + margin)
            let caption = "\(prediction.digit) \(percent(prediction.confidence))"
            let scale = 2
            let textX = x + (cellWidth - BitmapFont.width(of: caption, scale: scale)) / 2
            let textY = y + margin + tile + (captionHeight - BitmapFont.capHeight * scale) / 2
            // Confident answers in black, doubtful ones (below one half) in red.
            let color = prediction.confidence >= 0.5 ? RGBColor.black : RGBColor(200, 0, 0)
            sheet.drawText(caption, x: textX, y: textY, scale: scale, color: color)
        }
        return sheet
    }

    static func percent(_ p: Float) -> String { String(format: "%.1f%%", Double(p) * 100) }
}
