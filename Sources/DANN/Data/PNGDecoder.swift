import CPNG

/// Decodes a PNG held in memory to 8-bit RGB with libpng's simplified API, writing planar [3][h][w].
/// Throws, naming `path`, when libpng rejects the bytes or the size is not `width`×`height`.
func decodePNG(_ data: [UInt8], path: String, width: Int, height: Int,
               into out: UnsafeMutablePointer<UInt8>, scratch: inout [UInt8]) throws {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    defer { png_image_free(&image) }
    let began = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
    guard began != 0 else { throw DANNError.file(path, "corrupt PNG: \(pngMessage(&image))") }
    guard Int(image.width) == width, Int(image.height) == height else {
        throw DANNError.file(path, "PNG is \(image.width)×\(image.height), expected \(width)×\(height)")
    }
    image.format = UInt32(PNG_FORMAT_RGB)
    let plane = width * height
    if scratch.count < 3 * plane { scratch = [UInt8](repeating: 0, count: 3 * plane) }
    let finished = scratch.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
    guard finished != 0 else { throw DANNError.file(path, "corrupt PNG: \(pngMessage(&image))") }
    for i in 0..<plane {
        out[i] = scratch[3 * i]
        out[plane + i] = scratch[3 * i + 1]
        out[2 * plane + i] = scratch[3 * i + 2]
    }
}

private func pngMessage(_ image: inout png_image) -> String {
    withUnsafeBytes(of: &image.message) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
