import CPNG

/// Writes RGB images as 8-bit PNG through libpng's simplified API.
public enum PNGWriter {
    /// The PNG file bytes for `image`.
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        guard image.width > 0, image.height > 0 else {
            throw DANNError("cannot encode an empty \(image.width)x\(image.height) image as PNG")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_RGB)
        let stride = Int32(image.width * 3)
        var size = 0
        // First call measures, second call writes into a buffer of that size.
        let measured = image.pixels.withUnsafeBytes {
            png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, stride, nil)
        }
        guard measured != 0, size > 0 else {
            throw DANNError("PNG encoding failed: \(message(of: &png))")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = bytes.withUnsafeMutableBytes { output in
            image.pixels.withUnsafeBytes {
                png_image_write_to_memory(&png, output.baseAddress, &size, 0, $0.baseAddress, stride, nil)
            }
        }
        guard status != 0 else {
            throw DANNError("PNG encoding failed: \(message(of: &png))")
        }
        png_image_free(&png)
        return Array(bytes.prefix(size))
    }

    /// Writes `image` to `path` atomically (temporary file, then rename).
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes: [UInt8]
        do {
            bytes = try encode(image)
        } catch let error as DANNError {
            throw DANNError.file(path, error.message)
        }
        try AtomicFile.write(bytes, to: path)
    }

    /// libpng's error text from a `png_image` (a fixed 64-byte C string).
    static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
