import CJPEG
import CPNG
import Foundation

/// Reads PNG and JPEG files into 8-bit RGB, choosing the decoder from the file's first bytes (not
/// its extension). Any corrupt, truncated or unsupported file becomes a `DANNError.file`.
public enum ImageReader {
    /// Images above this many pixels are refused rather than risking a huge allocation.
    static let maximumPixels = 1 << 28

    /// Decodes the image at `path`.
    public static func read(path: String) throws -> RGBImage {
        // Not FileManager.contents(atPath:): on Linux (Swift 6.3) it leaks a 4 KiB buffer for every empty
        // file it reads (found by scripts/fuzz.sh image, input Fuzz/corpus/image/crash-empty-file-leak).
        try decode(readWholeFile(path), path: path)
    }

    /// Decodes PNG or JPEG bytes; `path` only names the source in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> RGBImage {
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.starts(with: pngSignature) { return try decodePNG(bytes, path: path) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return try decodeJPEG(bytes, path: path) }
        if bytes.isEmpty { throw DANNError.file(path, "empty file, expected a PNG or JPEG image") }
        let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw DANNError.file(path, "not a PNG or JPEG image (starts with \(head))")
    }

    /// The one PNG decoder (predict's images and MNIST-M's): 8-bit RGB, 16-bit samples taken as sRGB,
    /// transparency over white. With `size`, an image of another size is refused before it is decoded.
    static func decodePNG(_ bytes: [UInt8], path: String, size: (width: Int, height: Int)? = nil) throws -> RGBImage {
        try bytes.withUnsafeBytes { memory -> RGBImage in
            var png = png_image()
            png.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&png) }
            guard png_image_begin_read_from_memory(&png, memory.baseAddress, memory.count) != 0 else {
                throw DANNError.file(path, "corrupt PNG (\(PNGWriter.message(of: &png)))")
            }
            let width = Int(png.width), height = Int(png.height)
            if let size, size.width != width || size.height != height {
                throw DANNError.file(path, "PNG is \(width)×\(height), expected \(size.width)×\(size.height)")
            }
            guard width > 0, height > 0, width * height <= maximumPixels else {
                throw DANNError.file(path, "PNG of \(width)x\(height) pixels is too large")
            }
            // The pixel buffer is sized from the header, so the header must fit the file: even at one bit
            // per pixel the image data is a filter byte plus ⌈width/8⌉ bytes per row, and deflate expands
            // at most 1032:1. A tiny file claiming a huge image is refused before the allocation.
            let leastData = height * (1 + (width + 7) / 8)
            let mostData = memory.count.multipliedSaturated(by: InflateStream.maxExpansion)
            guard leastData <= mostData else {
                throw DANNError.file(path, "PNG header promises \(width)x\(height) pixels (at least \(leastData) bytes of image data) but its \(memory.count) bytes can hold at most \(mostData)")
            }
            // Without this flag libpng takes 16-bit samples lacking gAMA/sRGB as linear light and
            // brightens them; nearly every such file is really sRGB-encoded.
            png.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            png.format = UInt32(PNG_FORMAT_RGB)
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            // Transparent pixels are shown over white, as an image viewer would show them.
            var background = png_color(red: 255, green: 255, blue: 255)
            let status = pixels.withUnsafeMutableBytes {
                png_image_finish_read(&png, &background, $0.baseAddress, Int32(width * 3), nil)
            }
            guard status != 0 else {
                throw DANNError.file(path, "corrupt PNG image data (\(PNGWriter.message(of: &png)))")
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
    }

    private static func decodeJPEG(_ bytes: [UInt8], path: String) throws -> RGBImage {
        var output: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: 200)
        let status = bytes.withUnsafeBufferPointer { data in
            dann_jpeg_decode_rgb(data.baseAddress, UInt(data.count), maximumPixels, &output, &width, &height, &message, message.count)
        }
        defer { free(output) }
        guard status == 0, let output else {
            throw DANNError.file(path, "corrupt or truncated JPEG (\(String(cString: message)))")
        }
        let count = Int(width) * Int(height) * 3
        return RGBImage(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: output, count: count)))
    }
}
