/// An 8-bit sRGB colour.
public struct RGBColor: Equatable, Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// From `0xRRGGBB`.
    public init(hex: UInt32) {
        self.init(UInt8(hex >> 16 & 0xFF), UInt8(hex >> 8 & 0xFF), UInt8(hex & 0xFF))
    }

    public static let white = RGBColor(255, 255, 255)
    public static let black = RGBColor(0, 0, 0)
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `r, g, b`.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    /// Wraps existing pixels; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width`×`height` image filled with `color`.
    public init(width: Int, height: Int, fill color: RGBColor = .white) {
        var pixels = [UInt8](repeating: 0, count: max(0, width * height * 3))
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = color.r
            pixels[i + 1] = color.g
            pixels[i + 2] = color.b
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The colour at (`x`, `y`); the point must be inside the image.
    public func pixel(x: Int, y: Int) -> RGBColor {
        let i = (y * width + x) * 3
        return RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel; points outside the image are ignored so callers can draw clipped shapes.
    public mutating func setPixel(x: Int, y: Int, _ color: RGBColor) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    /// Mixes `color` into one pixel with opacity `alpha` in [0, 1] (clipped like `setPixel`).
    public mutating func blend(x: Int, y: Int, _ color: RGBColor, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height, alpha > 0 else { return }
        let a = min(alpha, 1)
        let i = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - a) + Double(new) * a).rounded())
        }
        pixels[i] = mix(pixels[i], color.r)
        pixels[i + 1] = mix(pixels[i + 1], color.g)
        pixels[i + 2] = mix(pixels[i + 2], color.b)
    }

    /// Fills the rectangle with top-left (`x`, `y`), clipped to the image.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: RGBColor) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for row in y0..<y1 {
            for column in x0..<x1 { setPixel(x: column, y: row, color) }
        }
    }

    /// Copies `image` with its top-left corner at (`x`, `y`), clipped to this image.
    public mutating func draw(_ image: RGBImage, x: Int, y: Int) {
        for row in 0..<image.height {
            for column in 0..<image.width {
                setPixel(x: x + column, y: y + row, image.pixel(x: column, y: row))
            }
        }
    }

    /// Nearest-neighbour resize: output pixel i takes source pixel floor(i · src / dst) (as the
    /// SVHN 32→28 preprocessing does).
    public func resizedNearest(width newWidth: Int, height newHeight: Int) -> RGBImage {
        var out = RGBImage(width: newWidth, height: newHeight)
        guard width > 0, height > 0 else { return out }
        for y in 0..<newHeight {
            let sy = y * height / newHeight
            for x in 0..<newWidth {
                let sx = x * width / newWidth
                let s = (sy * width + sx) * 3, d = (y * newWidth + x) * 3
                out.pixels[d] = pixels[s]
                out.pixels[d + 1] = pixels[s + 1]
                out.pixels[d + 2] = pixels[s + 2]
            }
        }
        return out
    }

    /// Bilinear resize with pixel centres aligned (source coordinate (i + ½)·src/dst − ½, clamped at
    /// the edges), the convention of PIL, OpenCV and PyTorch's `align_corners=False`. No antialiasing:
    /// for large reductions resize in steps.
    public func resizedBilinear(width newWidth: Int, height newHeight: Int) -> RGBImage {
        var out = RGBImage(width: newWidth, height: newHeight)
        guard width > 0, height > 0 else { return out }
        func taps(_ i: Int, _ source: Int, _ target: Int) -> (Int, Int, Double) {
            let position = max(0, (Double(i) + 0.5) * Double(source) / Double(target) - 0.5)
            let lower = min(Int(position), source - 1)
            let upper = min(lower + 1, source - 1)
            return (lower, upper, position - Double(lower))
        }
        let columns = (0..<newWidth).map { taps($0, width, newWidth) }
        for y in 0..<newHeight {
            let (y0, y1, fy) = taps(y, height, newHeight)
            for x in 0..<newWidth {
                let (x0, x1, fx) = columns[x]
                for c in 0..<3 {
                    let p00 = Double(pixels[(y0 * width + x0) * 3 + c]), p01 = Double(pixels[(y0 * width + x1) * 3 + c])
                    let p10 = Double(pixels[(y1 * width + x0) * 3 + c]), p11 = Double(pixels[(y1 * width + x1) * 3 + c])
                    let top = p00 + (p01 - p00) * fx, bottom = p10 + (p11 - p10) * fx
                    out.pixels[(y * newWidth + x) * 3 + c] = UInt8(min(255, max(0, (top + (bottom - top) * fy).rounded())))
                }
            }
        }
        return out
    }

    /// Draws `text` in the built-in 5×7 bitmap font with its top-left at (`x`, `y`), each font pixel
    /// a `scale`×`scale` block. Newlines start a new line; unknown characters draw as a box.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, color: RGBColor) {
        var penX = x, penY = y
        for character in text {
            if character == "\n" {
                penX = x
                penY += BitmapFont.lineHeight * scale
                continue
            }
            let rows = BitmapFont.rows(for: character)
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (0x10 >> column) != 0 {
                    fillRect(x: penX + column * scale, y: penY + row * scale, width: scale, height: scale, color: color)
                }
            }
            penX += BitmapFont.advance * scale
        }
    }

    /// The image turned a quarter turn anticlockwise (for vertical axis labels).
    public func rotatedCounterClockwise() -> RGBImage {
        var out = RGBImage(width: height, height: width)
        for y in 0..<height {
            for x in 0..<width {
                out.setPixel(x: y, y: width - 1 - x, pixel(x: x, y: y))
            }
        }
        return out
    }
}
