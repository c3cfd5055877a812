import Foundation
import XCTest
@testable import DANN

/// `Predictor` and `dann-dist predict`: MNIST test images written as PNG and JPEG (also padded to 32×32,
/// enlarged to 56×56, inverted, and as an 8-bit grey PNG written by Python) must get the answers that
/// `classify` gives on the same images from the dataset pipeline.
final class PredictTests: XCTestCase {
    static let count = 20

    // The fixtures below are computed once, on first use. They come from files, so each is a `Result`
    // read through a throwing accessor: a missing file fails the tests that need it, not the test process.

    /// The shipped `small` model with its last layer scaled so that its top logit is about 5: the answers
    /// are unchanged and the probabilities decisive but not saturated, which a sheet caption and a
    /// probability comparison need.
    nonisolated(unsafe) private static let scaledModel = Result { () throws -> DANNModel in
        let model = try EvalFixtures.smallModel()
        let input = try PredictTests.datasetInputs
        let logits = model.classify(input, count: count)
        let largest = (0..<count * 10).map { abs(logits[$0]) }.max()!
        guard let entry = model.arena.entry("G_c.4.weight") else { throw FixtureError("the shipped small model has no G_c.4.weight") }
        let weight = model.arena.parameter(entry)
        for i in weight.indices { weight[i] *= 5 / largest }
        return model
    }

    /// The first MNIST test images as the training pipeline prepares them (loadEvalSlice + Preprocessor).
    nonisolated(unsafe) private static let preparedInputs = Result { () throws -> UnsafeMutablePointer<Float> in
        guard let raw = try loadEvalSlice(.mnist, dataDir: DataFixtures.repository, rank: 0, size: 1) else {
            throw FixtureError("no MNIST test set under \(DataFixtures.repository)")
        }
        let preprocessor = Preprocessor(inputSize: 28, normalize: false)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: count * preprocessor.floatsPerImage)
        for i in 0..<count { preprocessor.write(raw, index: i, into: out + i * preprocessor.floatsPerImage) }
        return out
    }

    /// Reference answers: `classify` on the dataset inputs, softmax in Double here.
    private static let referenceAnswers = Result { () throws -> [(digit: Int, probabilities: [Double])] in
        let logits = try PredictTests.model.classify(PredictTests.datasetInputs, count: count)
        return (0..<count).map { i in
            let row = (0..<10).map { Double(logits[i * 10 + $0]) }
            let top = row.max()!
            let e = row.map { Foundation.exp($0 - top) }
            let sum = e.reduce(0, +)
            return (row.firstIndex(of: top)!, e.map { $0 / sum })
        }
    }

    private static let savedCheckpoint = Result { () throws -> String in
        let dir = TestPaths.temporaryDirectory("predict-ckpt")
        let path = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(PredictTests.model, to: path)
        return path
    }

    private static var model: DANNModel { get throws { try scaledModel.get() } }
    private static var datasetInputs: UnsafeMutablePointer<Float> { get throws { try preparedInputs.get() } }
    private static var reference: [(digit: Int, probabilities: [Double])] { get throws { try referenceAnswers.get() } }
    private static var checkpoint: String { get throws { try savedCheckpoint.get() } }

    private var directory: URL!

    override func setUp() { directory = TestPaths.temporaryDirectory("predict") }
    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// Writes the first images in a variant; returns the paths.
    private func writeImages(_ name: String, _ transform: (RGBImage) -> RGBImage = { $0 }, jpeg: Bool = false) throws -> [String] {
        try (0..<Self.count).map { i in
            let path = directory.appendingPathComponent("\(name)-\(i).\(jpeg ? "jpg" : "png")").path
            let image = transform(try EvalFixtures.mnistRGB(i))
            if jpeg { try JPEGWriter.write(image, quality: 90, to: path) } else { try PNGWriter.write(image, to: path) }
            return path
        }
    }

    private func predictJSON(_ images: [String], _ extra: [String] = []) throws -> (predictions: [[String: Any]], stderr: String) {
        let run = try EvalFixtures.runCLI(["predict", "--checkpoint", try Self.checkpoint, "--json"] + extra + images)
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try EvalFixtures.parseJSON(run.stdout)
        let predictions = try XCTUnwrap(json["predictions"] as? [[String: Any]])
        XCTAssertEqual(predictions.count, images.count)
        XCTAssertEqual(predictions.compactMap { $0["image"] as? String }, images)
        return (predictions, run.stderr)
    }

    private static func padded(_ image: RGBImage) -> RGBImage {
        var out = RGBImage(width: 32, height: 32, fill: .black)
        out.draw(image, x: 2, y: 2)
        return out
    }

    func testLosslessImagesGetTheDatasetPipelinesAnswers() throws {
        let reference = try Self.reference
        XCTAssertGreaterThanOrEqual(Set(reference.map(\.digit)).count, 3, "answers should vary")
        let variants = [
            try writeImages("plain"),
            try writeImages("padded32", Self.padded),                               // centre-cropped back to 28
            try writeImages("enlarged56") { $0.resizedNearest(width: 56, height: 56) }, // halved: 2×2 averages of equal pixels
        ]
        let (predictions, _) = try predictJSON(variants.flatMap { $0 })
        for (k, p) in predictions.enumerated() {
            let expected = reference[k % Self.count]
            XCTAssertEqual(p["digit"] as? Int, expected.digit, "\(p["image"]!)")
            let probabilities = try XCTUnwrap(p["probabilities"] as? [Double])
            XCTAssertEqual(probabilities.count, 10)
            for (a, b) in zip(probabilities, expected.probabilities) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            XCTAssertEqual(try XCTUnwrap(p["confidence"] as? Double), expected.probabilities[expected.digit], accuracy: 1e-5)
        }
        let labels = try EvalFixtures.mnistTest().labels.prefix(Self.count)
        print("reference answers: \(reference.map(\.digit)), labels \(Array(labels))")
    }

    func testGreyPNGFromPythonGetsTheSameAnswer() throws {
        // An 8-bit greyscale PNG (colour type 0) written by Python's zlib, not by our writer.
        let path = directory.appendingPathComponent("grey.png").path
        let reference = try Self.reference
        let pixels = Data(try EvalFixtures.mnistTest().images.prefix(784))
        try DataFixtures.run(["python3", "-c", """
            import sys, zlib, struct
            raw = sys.stdin.buffer.read()
            rows = b"".join(b"\\x00" + raw[28 * y:28 * y + 28] for y in range(28))
            def chunk(kind, body):
                return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
            png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) \\
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
            open(sys.argv[1], "wb").write(png)
            """, path], stdin: pixels)
        let (predictions, _) = try predictJSON([path])
        XCTAssertEqual(predictions[0]["digit"] as? Int, reference[0].digit)
        let probabilities = try XCTUnwrap(predictions[0]["probabilities"] as? [Double])
        for (a, b) in zip(probabilities, reference[0].probabilities) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testJPEGAnswersAgreeWithTheDatasetAnswers() throws {
        // JPEG at quality 90 moves pixels by a few levels; an answer may flip only where the model hesitates,
        // so at least 19 of 20 must agree (here the scaled model's top probability is far from the runner-up).
        let reference = try Self.reference
        let (predictions, _) = try predictJSON(try writeImages("jpeg", jpeg: true))
        let agree = zip(predictions, reference).filter { $0["digit"] as? Int == $1.digit }.count
        XCTAssertGreaterThanOrEqual(agree, 19)
        print("JPEG q90: \(agree)/\(Self.count) answers equal the dataset pipeline's")
    }

    func testInvertFlagUndoesAnInvertedImageAndLightImagesAreFlagged() throws {
        let reference = try Self.reference
        let inverted = try writeImages("inverted") { image in
            RGBImage(width: image.width, height: image.height, pixels: image.pixels.map { 255 - $0 })
        }
        let plain = try predictJSON(inverted)
        // MNIST is ~13% ink, so the inverted images have means near 0.87: each one gets a note naming it.
        for path in inverted { XCTAssertTrue(plain.stderr.contains("\(path) is mostly light"), plain.stderr) }
        XCTAssertTrue(plain.stderr.contains("--invert"))
        let flipped = try predictJSON(inverted, ["--invert"])
        XCTAssertEqual(flipped.stderr, "")
        XCTAssertEqual(flipped.predictions.compactMap { $0["digit"] as? Int }, reference.map(\.digit))
        for p in plain.predictions { XCTAssertGreaterThan(try XCTUnwrap(p["mean"] as? Double), 0.5) }
    }

    func testFittingRulesReproduceTheTrainingInputs() throws {
        let model = try Self.model, inputs = try Self.datasetInputs
        let predictor = Predictor(model: model, normalize: false)
        let image = try EvalFixtures.mnistRGB(3)
        let expected = Array(UnsafeBufferPointer(start: inputs + 3 * 2352, count: 2352))
        // 4× enlarged (halved twice), stretched vertically ×2 (bilinear midway between equal rows), padded.
        XCTAssertEqual(predictor.input(for: image.resizedNearest(width: 112, height: 112), invert: false), expected)
        XCTAssertEqual(predictor.input(for: image.resizedNearest(width: 28, height: 56), invert: false), expected)
        XCTAssertEqual(predictor.input(for: Self.padded(image), invert: false), expected)
        // Any other size ends at the model's input size, by bilinear interpolation of the whole picture.
        let odd = Predictor.fitted(image.resizedNearest(width: 45, height: 33), inputSize: 28, invert: false)
        XCTAssertEqual([odd.width, odd.height], [28, 28])

        // At input size 32, a 28×28 image is zero-padded as MNIST is for such models.
        let model32 = try DANNModel(architecture: Architecture.small.withInputSize(32), dropout: 0)
        let raw = try XCTUnwrap(loadEvalSlice(.mnist, dataDir: DataFixtures.repository, rank: 0, size: 1))
        var reference = [Float](repeating: 0, count: 3 * 32 * 32)
        reference.withUnsafeMutableBufferPointer { Preprocessor(inputSize: 32, normalize: true).write(raw, index: 3, into: $0.baseAddress!) }
        XCTAssertEqual(Predictor(model: model32, normalize: true).input(for: image, invert: false), reference)
        XCTAssertEqual(Predictor.networkView(image, inputSize: 32, invert: false), Self.padded(image))
    }

    func testAnnotateWritesTheDocumentedSheet() throws {
        let reference = try Self.reference, pixels = try EvalFixtures.mnistTest().images
        let images = try writeImages("sheet")
        let sheet = directory.appendingPathComponent("sheet.png").path
        let (predictions, _) = try predictJSON(images, ["--annotate", sheet])
        let picture = try ImageReader.read(path: sheet)
        // 20 images: 8 per row in cells of 120 × 148 → 960 × 444 (as `predict --help` says).
        XCTAssertEqual([picture.width, picture.height], [960, 444])
        for i in [0, 9, 19] {
            let cellX = (i % 8) * 120, cellY = (i / 8) * 148
            // Each input pixel is a 4×4 block starting 4 px into the cell.
            for (x, y) in [(14, 14), (5, 20), (20, 9), (0, 0)] {
                let grey = pixels[i * 784 + y * 28 + x]
                XCTAssertEqual(picture.pixel(x: cellX + 4 + 4 * x + 2, y: cellY + 4 + 4 * y + 3), RGBColor(grey, grey, grey))
            }
            // The caption: digit and percentage as the font draws them, centred in the 28 rows under the tile.
            let confidence = try XCTUnwrap(predictions[i]["confidence"] as? Double)
            let caption = "\(reference[i].digit) \(String(format: "%.1f", confidence * 100))%"
            var expected = RGBImage(width: 120, height: 28, fill: .white)
            expected.drawText(caption, x: (120 - BitmapFont.width(of: caption, scale: 2)) / 2, y: 7, scale: 2,
                              color: confidence >= 0.5 ? .black : RGBColor(200, 0, 0))
            var drawn = RGBImage(width: 120, height: 28, fill: .white)
            for y in 0..<28 { for x in 0..<120 { drawn.setPixel(x: x, y: y, picture.pixel(x: cellX + x, y: cellY + 116 + y)) } }
            XCTAssertTrue(drawn == expected, "caption of image \(i) should read \(caption)")
        }
        XCTAssertEqual(PredictionSheet.size(count: 1).width, 120)
        XCTAssertEqual(PredictionSheet.size(count: 9).height, 296)
    }

    func testPredictErrorsAreOneLineNamingTheFile() throws {
        let checkpoint = try Self.checkpoint
        let good = try writeImages("ok")[0]
        let sheet = directory.appendingPathComponent("never.png").path
        func predict(_ checkpoint: String, _ images: [String]) throws -> RunResult {
            try EvalFixtures.runCLI(["predict", "--checkpoint", checkpoint, "--annotate", sheet] + images)
        }
        let missingImage = directory.appendingPathComponent("absent.png").path
        EvalFixtures.assertOneLineError(try predict(checkpoint, [good, missingImage]), naming: missingImage, "no such file")

        let notImage = directory.appendingPathComponent("notes.png").path
        try Data("just some text\n".utf8).write(to: URL(fileURLWithPath: notImage))
        EvalFixtures.assertOneLineError(try predict(checkpoint, [notImage]), naming: notImage, "not a PNG or JPEG")

        let truncatedPNG = directory.appendingPathComponent("cut.png").path
        let pngBytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try pngBytes.prefix(pngBytes.count - 20).write(to: URL(fileURLWithPath: truncatedPNG))
        EvalFixtures.assertOneLineError(try predict(checkpoint, [truncatedPNG]), naming: truncatedPNG, "PNG")

        let truncatedJPEG = directory.appendingPathComponent("cut.jpg").path
        try Data(JPEGWriter.encode(EvalFixtures.mnistRGB(0)).prefix(200)).write(to: URL(fileURLWithPath: truncatedJPEG))
        EvalFixtures.assertOneLineError(try predict(checkpoint, [truncatedJPEG]), naming: truncatedJPEG, "JPEG")

        let missingCheckpoint = directory.appendingPathComponent("none.safetensors").path
        EvalFixtures.assertOneLineError(try predict(missingCheckpoint, [good]), naming: missingCheckpoint)

        let corrupt = directory.appendingPathComponent("corrupt.safetensors").path
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: checkpoint)))
        bytes[8] = UInt8(ascii: "x")  // the header no longer starts with '{'
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        EvalFixtures.assertOneLineError(try predict(corrupt, [good]), naming: corrupt, "header")

        XCTAssertFalse(FileManager.default.fileExists(atPath: sheet), "no sheet after a failed run")
    }
}
