import Foundation
import XCTest
@testable import DANN

final class ImageIOTests: XCTestCase {
    var directory: URL!

    override func setUp() {
        directory = TestPaths.temporaryDirectory("imageio")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Helpers

    @discardableResult
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: Data, error: String) {
        let result = try ChildProcess.runTool("/usr/bin/env", [tool] + arguments)
        return (result.status, result.output, result.stderr)
    }

    func requireTool(_ tool: String, package: String) throws {
        guard (try? run("sh", ["-c", "command -v \(tool)"]))?.status == 0 else {
            throw XCTSkip("\(tool) not found (apt-get install \(package))")
        }
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A deterministic test card: gradients, a checkerboard and pseudo-random noise, so every PNG
    /// filter type and plenty of JPEG detail get exercised.
    static func testCard(width: Int, height: Int) -> RGBImage {
        var image = RGBImage(width: width, height: height)
        var state: UInt32 = 12345
        for y in 0..<height {
            for x in 0..<width {
                state = state &* 1_103_515_245 &+ 12345
                let noise = UInt8(truncatingIfNeeded: state >> 16)
                let r = UInt8(x * 255 / max(1, width - 1))
                let g = UInt8(y * 255 / max(1, height - 1))
                let b = (x / 4 + y / 4) % 2 == 0 ? noise : 255 - UInt8((x * y) % 256)
                image.setPixel(x: x, y: y, RGBColor(r, g, b))
            }
        }
        return image
    }

    /// Parses binary PPM (P6) or PGM (P5) bytes into RGB.
    static func parsePNM(_ data: Data) throws -> RGBImage {
        let bytes = [UInt8](data)
        var fields: [String] = [], i = 0
        while fields.count < 4 {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
            var token = ""
            while i < bytes.count, !(bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09) {
                token.append(Character(UnicodeScalar(bytes[i])))
                i += 1
            }
            guard !token.isEmpty else { throw DANNError("bad PNM header") }
            fields.append(token)
        }
        i += 1
        guard let width = Int(fields[1]), let height = Int(fields[2]), fields[3] == "255" else { throw DANNError("bad PNM") }
        let body = Array(bytes[i...])
        switch fields[0] {
        case "P6": return RGBImage(width: width, height: height, pixels: Array(body.prefix(width * height * 3)))
        case "P5": return RGBImage(width: width, height: height, pixels: body.prefix(width * height).flatMap { [$0, $0, $0] })
        default: throw DANNError("unsupported PNM \(fields[0])")
        }
    }

    static func ppm(_ image: RGBImage) -> Data {
        Data("P6\n\(image.width) \(image.height)\n255\n".utf8) + Data(image.pixels)
    }

    func assertClose(_ a: RGBImage, _ b: RGBImage, meanAbs: Double, maxAbs: Int, _ message: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual([a.width, a.height], [b.width, b.height], message, file: file, line: line)
        guard a.pixels.count == b.pixels.count, !a.pixels.isEmpty else { return }
        let diffs = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }
        let mean = Double(diffs.reduce(0, +)) / Double(diffs.count)
        XCTAssertLessThanOrEqual(mean, meanAbs, "\(message): mean abs difference", file: file, line: line)
        XCTAssertLessThanOrEqual(diffs.max()!, maxAbs, "\(message): max abs difference", file: file, line: line)
    }

    func assertFileError(_ body: @autoclosure () throws -> RGBImage, path: String, contains: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let message = (error as? DANNError)?.message ?? "not a DANNError: \(error)"
            XCTAssertTrue(message.hasPrefix(path + ": "), message, file: file, line: line)
            XCTAssertTrue(message.contains(contains), message, file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line", file: file, line: line)
        }
    }

    // MARK: PNG

    /// A PNG decoder written in Python with only zlib: chunk CRCs, IHDR, IDAT inflate and the five
    /// filter types. Prints the raw RGB bytes.
    static let pythonPNGDecoder = """
    import sys, struct, zlib
    data = open(sys.argv[1], 'rb').read()
    assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
        if kind == b'IDAT': idat += body
        if kind == b'IEND': break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype == 2 and interlace == 0, ihdr
    raw, bpp, stride = zlib.decompress(idat), 3, w * 3
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else: assert f == 0, f
        out += line; prev = line
    sys.stdout.buffer.write(out)
    """

    func testPNGWriterRoundTripThroughPythonDecoder() throws {
        let image = Self.testCard(width: 67, height: 41)
        let file = path("card.png")
        try PNGWriter.write(image, to: file)
        let result = try run("python3", ["-c", Self.pythonPNGDecoder, file])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertEqual(result.output.count, image.pixels.count)
        XCTAssertTrue([UInt8](result.output) == image.pixels, "python decodes the same pixels")
        XCTAssertEqual(try ImageReader.read(path: file), image, "and so does ImageReader")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [], "no temporary file left behind")
    }

    /// Writes PNGs of several colour types and bit depths with Python's zlib, plus the RGB each
    /// should decode to (transparent pixels over white, 16-bit samples scaled to 8 bits).
    static let pythonPNGFixtures = """
    import sys, struct, zlib, os
    out = sys.argv[1]
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    def png(name, w, h, depth, ctype, rows, extra=b''):
        raw = b''.join(b'\\x00' + r for r in rows)
        data = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0))
        data += extra + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
        open(os.path.join(out, name), 'wb').write(data)
    def expect(name, rgb):
        open(os.path.join(out, name + '.rgb'), 'wb').write(bytes(rgb))
    W, H = 13, 7
    px = [[((x * 37 + y * 11) % 256, (x * 5 + y * 53) % 256, (x * y * 7 + 3) % 256) for x in range(W)] for y in range(H)]
    # gray 8
    png('gray8.png', W, H, 8, 0, [bytes(p[0] for p in r) for r in px])
    expect('gray8.png', [p[0] for r in px for p in r for _ in range(3)])
    # RGB 8
    png('rgb8.png', W, H, 8, 2, [bytes(c for p in r for c in p) for r in px])
    expect('rgb8.png', [c for r in px for p in r for c in p])
    # palette 8 with 4 colours
    pal = [(255, 0, 0), (0, 128, 0), (10, 20, 250), (200, 200, 200)]
    idx = [[(x + 2 * y) % 4 for x in range(W)] for y in range(H)]
    png('palette.png', W, H, 8, 3, [bytes(r) for r in idx], chunk(b'PLTE', bytes(c for p in pal for c in p)))
    expect('palette.png', [c for r in idx for i in r for c in pal[i]])
    # gray + alpha 8: alpha either opaque or clear (clear shows the white background)
    ga = [[(px[y][x][0], 255 if (x + y) % 3 else 0) for x in range(W)] for y in range(H)]
    png('grayalpha.png', W, H, 8, 4, [bytes(c for p in r for c in p) for r in ga])
    expect('grayalpha.png', [(g if a else 255) for r in ga for (g, a) in r for _ in range(3)])
    # RGBA 16
    rgba = [[(p[0] * 257, p[1] * 257, p[2] * 257, 65535 if (x * y) % 4 else 0) for x, p in enumerate(r)] for y, r in enumerate(px)]
    png('rgba16.png', W, H, 16, 6, [b''.join(struct.pack('>HHHH', *p) for p in r) for r in rgba])
    expect('rgba16.png', [(c // 257 if p[3] else 255) for r in rgba for p in r for c in p[:3]])
    # gray 1-bit
    bits = [[(x ^ y) & 1 for x in range(W)] for y in range(H)]
    def pack(r):
        r = r + [0] * (-len(r) % 8)
        return bytes(sum(b << (7 - i) for i, b in enumerate(r[k:k + 8])) for k in range(0, len(r), 8))
    png('gray1.png', W, H, 1, 0, [pack(r) for r in bits])
    expect('gray1.png', [255 * b for r in bits for b in r for _ in range(3)])
    """

    func testReadsPNGColourTypesFromIndependentEncoder() throws {
        let result = try run("python3", ["-c", Self.pythonPNGFixtures, directory.path])
        XCTAssertEqual(result.status, 0, result.error)
        for name in ["gray8.png", "rgb8.png", "palette.png", "grayalpha.png", "rgba16.png", "gray1.png"] {
            let image = try ImageReader.read(path: path(name))
            let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(name + ".rgb"))))
            XCTAssertEqual([image.width, image.height], [13, 7], name)
            XCTAssertTrue(image.pixels == expected, "\(name) decodes to the expected RGB")
        }
    }

    func testFormatComesFromContentNotExtension() throws {
        let image = Self.testCard(width: 8, height: 8)
        try PNGWriter.write(image, to: path("really-a-png.jpg"))
        XCTAssertEqual(try ImageReader.read(path: path("really-a-png.jpg")), image)
    }

    func testBrokenFilesAreFileErrors() throws {
        let png = try PNGWriter.encode(Self.testCard(width: 40, height: 40))
        let truncated = path("truncated.png")
        try Data(png.prefix(png.count / 2)).write(to: URL(fileURLWithPath: truncated))
        assertFileError(try ImageReader.read(path: truncated), path: truncated, contains: "PNG")

        var flipped = png
        flipped[png.count / 2] ^= 0xFF  // inside IDAT: the chunk CRC no longer matches
        let corrupt = path("corrupt.png")
        try Data(flipped).write(to: URL(fileURLWithPath: corrupt))
        assertFileError(try ImageReader.read(path: corrupt), path: corrupt, contains: "PNG")

        let jpeg = try JPEGWriter.encode(Self.testCard(width: 64, height: 64), quality: 90)
        let truncatedJPEG = path("truncated.jpg")
        try Data(jpeg.prefix(jpeg.count * 6 / 10)).write(to: URL(fileURLWithPath: truncatedJPEG))
        assertFileError(try ImageReader.read(path: truncatedJPEG), path: truncatedJPEG, contains: "JPEG")

        // A frame header claiming 60000×60000 pixels is refused before decoding starts.
        var huge = jpeg
        if let sof = (0..<huge.count - 9).first(where: { huge[$0] == 0xFF && huge[$0 + 1] == 0xC0 }) {
            huge.replaceSubrange(sof + 5..<sof + 9, with: [0xEA, 0x60, 0xEA, 0x60])
        } else {
            XCTFail("no SOF0 marker in the encoded JPEG")
        }
        let hugeFile = path("huge.jpg")
        try Data(huge).write(to: URL(fileURLWithPath: hugeFile))
        assertFileError(try ImageReader.read(path: hugeFile), path: hugeFile, contains: "60000x60000 pixels is too large")

        let headerOnly = path("header-only.jpg")
        try Data(jpeg.prefix(3)).write(to: URL(fileURLWithPath: headerOnly))
        assertFileError(try ImageReader.read(path: headerOnly), path: headerOnly, contains: "JPEG")

        let text = path("notes.png")
        try Data("hello, not an image".utf8).write(to: URL(fileURLWithPath: text))
        assertFileError(try ImageReader.read(path: text), path: text, contains: "not a PNG or JPEG")

        let empty = path("empty.jpg")
        try Data().write(to: URL(fileURLWithPath: empty))
        assertFileError(try ImageReader.read(path: empty), path: empty, contains: "empty")

        assertFileError(try ImageReader.read(path: path("missing.png")), path: path("missing.png"), contains: "no such file")
    }

    // MARK: JPEG

    func testReadsJPEGFromCjpegLikeDjpeg() throws {
        try requireTool("cjpeg", package: "libjpeg-turbo-progs")
        let card = Self.testCard(width: 48, height: 32)
        try Self.ppm(card).write(to: URL(fileURLWithPath: path("card.ppm")))
        var grey = Data("P5\n48 32\n255\n".utf8)
        grey.append(contentsOf: stride(from: 0, to: card.pixels.count, by: 3).map { card.pixels[$0 + 1] })
        try grey.write(to: URL(fileURLWithPath: path("card.pgm")))

        var smooth = RGBImage(width: 48, height: 32)
        for y in 0..<32 {
            for x in 0..<48 { smooth.setPixel(x: x, y: y, RGBColor(UInt8(x * 5), UInt8(y * 7), UInt8(128 + (x - y)))) }
        }
        try Self.ppm(smooth).write(to: URL(fileURLWithPath: path("smooth.ppm")))

        let cases = [("smooth.ppm", ["-quality", "95"]), ("card.ppm", ["-quality", "95"]), ("card.ppm", ["-quality", "75", "-progressive"]),
                     ("card.pgm", ["-quality", "95"])]
        for (index, (input, options)) in cases.enumerated() {
            let jpeg = path("case\(index).jpg")
            let encoded = try run("cjpeg", options + ["-outfile", jpeg, path(input)])
            XCTAssertEqual(encoded.status, 0, encoded.error)
            let decoded = try run("djpeg", ["-pnm", jpeg])
            XCTAssertEqual(decoded.status, 0, decoded.error)
            let reference = try Self.parsePNM(decoded.output)
            let image = try ImageReader.read(path: jpeg)
            XCTAssertEqual(image, reference, "\(input) \(options): same pixels as djpeg")
        }
        // And close to the source (JPEG is lossy, but a smooth image at quality 95 barely changes).
        assertClose(try ImageReader.read(path: path("case0.jpg")), smooth, meanAbs: 1.5, maxAbs: 10, "q95 smooth colour")
    }

    func testReadsAdobeCMYKJPEG() throws {
        let probe = try run("python3", ["-c", "import PIL"])
        guard probe.status == 0 else { throw XCTSkip("python3 module PIL (pillow) is missing: no CMYK JPEG source") }
        // Flat 16×16 patches of CMYK ink; RGB = 255·(1 − ink)(1 − black).
        let script = """
        import sys
        from PIL import Image
        inks = [(0, 255, 0, 0), (255, 0, 0, 0), (0, 0, 255, 0), (0, 0, 0, 128), (64, 128, 0, 64), (0, 0, 0, 0)]
        im = Image.new('CMYK', (16 * len(inks), 16))
        for i, ink in enumerate(inks):
            im.paste(ink, (16 * i, 0, 16 * i + 16, 16))
        im.save(sys.argv[1], quality=100)
        """
        let file = path("cmyk.jpg")
        let made = try run("python3", ["-c", script, file])
        XCTAssertEqual(made.status, 0, made.error)
        let image = try ImageReader.read(path: file)
        let inks: [[Double]] = [[0, 255, 0, 0], [255, 0, 0, 0], [0, 0, 255, 0], [0, 0, 0, 128], [64, 128, 0, 64], [0, 0, 0, 0]]
        for (i, ink) in inks.enumerated() {
            let pixel = image.pixel(x: 16 * i + 8, y: 8)
            let expected = (0..<3).map { 255 * (1 - ink[$0] / 255) * (1 - ink[3] / 255) }
            for (got, want) in zip([pixel.r, pixel.g, pixel.b], expected) {
                XCTAssertEqual(Double(got), want, accuracy: 4, "patch \(i): \(pixel) vs \(expected)")
            }
        }
    }

    func testJPEGWriterMNISTDigitsDecodeWithDjpeg() throws {
        try requireTool("djpeg", package: "libjpeg-turbo-progs")
        let images = "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"
        // The first three test digits (labels 7, 2, 1), read by Python's gzip.
        let extract = try run("python3", ["-c", "import gzip,sys; d=gzip.open(sys.argv[1]).read(); sys.stdout.buffer.write(d[16:16+3*784])", images])
        XCTAssertEqual(extract.status, 0, extract.error)
        let bytes = [UInt8](extract.output)
        // The committed file is always there; if it is not, fail here rather than index past the end below.
        guard bytes.count == 3 * 784 else { return XCTFail("\(images): \(bytes.count) pixel bytes, expected \(3 * 784)") }
        for digit in 0..<3 {
            let grey = Array(bytes[digit * 784..<(digit + 1) * 784])
            let image = RGBImage(width: 28, height: 28, pixels: grey.flatMap { [$0, $0, $0] })
            let file = path("digit\(digit).jpg")
            try JPEGWriter.write(image, quality: 95, to: file)
            let decoded = try run("djpeg", ["-pnm", file])
            XCTAssertEqual(decoded.status, 0, decoded.error)
            let reference = try Self.parsePNM(decoded.output)
            assertClose(reference, image, meanAbs: 3, maxAbs: 60, "digit \(digit) through djpeg")
            XCTAssertEqual(try ImageReader.read(path: file), reference, "ImageReader agrees with djpeg")
        }
        XCTAssertThrowsError(try JPEGWriter.encode(RGBImage(width: 4, height: 4), quality: 0))
    }

    // MARK: RGBImage

    func testResizedNearestUsesFloorIndex() {
        let source = Self.testCard(width: 32, height: 32)
        let small = source.resizedNearest(width: 28, height: 28)
        for y in 0..<28 {
            for x in 0..<28 {
                // docs/design.md §2.2: index = floor(i · 32 / 28).
                let sx = Int((Double(x) * 32 / 28).rounded(.down)), sy = Int((Double(y) * 32 / 28).rounded(.down))
                XCTAssertEqual(small.pixel(x: x, y: y), source.pixel(x: sx, y: sy))
            }
        }
    }

    func testResizedBilinearHandValues() {
        // Source x for output i is (i + ½)·src/dst − ½, clamped: 2 → 4 gives −¼, ¼, ¾, 1¼.
        let row = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 100, 200, 40])
        let up = row.resizedBilinear(width: 4, height: 1)
        XCTAssertEqual(up.pixels, [0, 0, 0, 25, 50, 10, 75, 150, 30, 100, 200, 40])
        // 4 → 2 samples at ½ and 2½.
        let wide = RGBImage(width: 4, height: 1, pixels: [0, 100, 200, 250].flatMap { [$0, $0, $0] })
        XCTAssertEqual(wide.resizedBilinear(width: 2, height: 1).pixels, [50, 50, 50, 225, 225, 225])
        // A constant image stays constant in both directions.
        let flat = RGBImage(width: 5, height: 3, fill: RGBColor(9, 99, 199))
        XCTAssertEqual(flat.resizedBilinear(width: 11, height: 7), RGBImage(width: 11, height: 7, fill: RGBColor(9, 99, 199)))
    }

    func testFillRectClipsAndDrawTextInks() {
        var image = RGBImage(width: 10, height: 10, fill: .white)
        image.fillRect(x: 7, y: -2, width: 10, height: 4, color: .black)
        let black = (0..<10).flatMap { y in (0..<10).map { x in (x, y) } }.filter { image.pixel(x: $0.0, y: $0.1) == .black }
        XCTAssertEqual(black.count, 3 * 2)
        XCTAssertTrue(black.allSatisfy { $0.0 >= 7 && $0.1 < 2 })

        // "1" is ..#.. / .##.. / ..#.. ×4 / .###. — drawn at scale 2 from (1, 1).
        var text = RGBImage(width: 14, height: 18, fill: .white)
        let red = RGBColor(200, 0, 0)
        text.drawText("1", x: 1, y: 1, scale: 2, color: red)
        let rows = ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]
        for (r, pattern) in rows.enumerated() {
            for (c, mark) in pattern.enumerated() {
                for dy in 0..<2 {
                    for dx in 0..<2 {
                        XCTAssertEqual(text.pixel(x: 1 + 2 * c + dx, y: 1 + 2 * r + dy), mark == "#" ? red : .white, "row \(r) col \(c)")
                    }
                }
            }
        }
        XCTAssertEqual(BitmapFont.width(of: "abc", scale: 2), (3 * 6 - 1) * 2)
    }
}
