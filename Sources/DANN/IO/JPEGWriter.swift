import CJPEG
#if canImport(Glibc)
import Glibc
#endif

/// Writes RGB images as baseline JPEG through libjpeg-turbo.
public enum JPEGWriter {
    /// The JPEG file bytes for `image` at `quality` (1–100).
    public static func encode(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        guard image.width > 0, image.height > 0, image.width <= 65_500, image.height <= 65_500 else {
            throw DANNError("cannot encode a \(image.width)x\(image.height) image as JPEG")
        }
        guard (1...100).contains(quality) else {
            throw DANNError("JPEG quality \(quality) is outside 1...100")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: 200)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            dann_jpeg_encode_rgb(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(quality),
                                 &output, &size, &message, message.count)
        }
        defer { free(output) }
        guard status == 0, let output else {
            throw DANNError("JPEG encoding failed: \(String(cString: message))")
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    /// Writes `image` to `path` at `quality` atomically (temporary file, then rename).
    public static func write(_ image: RGBImage, quality: Int = 90, to path: String) throws {
        let bytes: [UInt8]
        do {
            bytes = try encode(image, quality: quality)
        } catch let error as DANNError {
            throw DANNError.file(path, error.message)
        }
        try AtomicFile.write(bytes, to: path)
    }
}
