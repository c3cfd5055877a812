import Foundation
import XCTest
@testable import DANN

/// What the eval and predict tests share: the shipped `small` model saved to disk, the MNIST test set
/// decoded independently of the library (gzip tool + the IDX header read here), the built executable,
/// and a communicator stand-in.
enum EvalFixtures {
    /// The shipped `small` model (trained by this tool): its answers vary from image to image and its
    /// probabilities are decisive, so counts and captions mean something.
    static func smallModel() throws -> DANNModel {
        try ModelFile.open(TestPaths.packageRoot.appendingPathComponent("data/pretrained/small-mnist-mnist_m").path)
    }

    /// A data directory holding only MNIST (a link to the committed copy), so `eval` looks at nothing else.
    static func mnistOnlyDataDir() throws -> URL {
        let dir = TestPaths.temporaryDirectory("eval-data")
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("mnist").path,
                                                   withDestinationPath: DataFixtures.mnistDir)
        return dir
    }

    /// A data directory whose MNIST test set is the first `count` official test images, written here as IDX
    /// files compressed by the gzip tool (a quick stand-in where a test needs a second full pass).
    static func mnistSubsetDataDir(count: Int) throws -> URL {
        let dir = TestPaths.temporaryDirectory("eval-subset")
        let mnist = dir.appendingPathComponent("mnist")
        try FileManager.default.createDirectory(at: mnist, withIntermediateDirectories: true)
        func bigEndian(_ values: [Int]) -> [UInt8] { values.flatMap { v in (0..<4).reversed().map { UInt8(v >> (8 * $0) & 0xFF) } } }
        let test = try mnistTest()
        let images = bigEndian([0x803, count, 28, 28]) + test.images.prefix(count * 784)
        let labels = bigEndian([0x801, count]) + test.labels.prefix(count)
        try DataFixtures.run(["gzip", "-c"], stdin: Data(images)).write(to: mnist.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        try DataFixtures.run(["gzip", "-c"], stdin: Data(labels)).write(to: mnist.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        return dir
    }

    /// MNIST test images (10000 × 784 bytes) and labels, decoded by the gzip tool and the IDX layout
    /// (16-byte image header, 8-byte label header, big-endian counts). Decoded once; a missing or short file
    /// fails each test that asks (an empty array would crash the process at the first index).
    static func mnistTest() throws -> (images: [UInt8], labels: [UInt8]) { try decodedMNISTTest.get() }

    private static let decodedMNISTTest: Result<(images: [UInt8], labels: [UInt8]), Error> = Result {
        let imagesPath = "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz", labelsPath = "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz"
        let images = try DataFixtures.gunzip(imagesPath), labels = try DataFixtures.gunzip(labelsPath)
        guard images.count == 16 + 10_000 * 784, labels.count == 8 + 10_000 else {
            throw FixtureError("\(imagesPath), \(labelsPath): \(images.count) and \(labels.count) bytes decoded, expected \(16 + 10_000 * 784) and \(8 + 10_000)")
        }
        return (Array(images[16...]), Array(labels[8...]))
    }

    /// MNIST image `i` as the network's 3×28×28 input, built here: x / 255 in each of three planes.
    static func mnistInput(_ i: Int, into out: UnsafeMutablePointer<Float>) throws {
        let pixels = try mnistTest().images
        for c in 0..<3 {
            for p in 0..<784 { out[c * 784 + p] = Float(pixels[i * 784 + p]) / 255 }
        }
    }

    /// MNIST image `i` as an RGB picture (grey replicated).
    static func mnistRGB(_ i: Int) throws -> RGBImage {
        let images = try mnistTest().images
        var pixels = [UInt8](repeating: 0, count: 784 * 3)
        for p in 0..<784 { for c in 0..<3 { pixels[3 * p + c] = images[i * 784 + p] } }
        return RGBImage(width: 28, height: 28, pixels: pixels)
    }

    /// Index of the largest of `row[0..<10]`, first on a tie, and the gap to the runner-up relative to the
    /// largest magnitude in the row (Float sums in another order differ by ~1e-6 of that).
    static func top(_ row: UnsafePointer<Float>) -> (digit: Int, margin: Float) {
        var best = 0
        for c in 1..<10 where row[c] > row[best] { best = c }
        var second = -Float.infinity, magnitude: Float = 0
        for c in 0..<10 {
            magnitude = max(magnitude, abs(row[c]))
            if c != best { second = max(second, row[c]) }
        }
        return (best, magnitude > 0 ? (row[best] - second) / magnitude : 0)
    }

    /// A relative top-2 margin below this is a near tie: summation order alone might swap the answer.
    static let nearTie: Float = 1e-4

    static func executable() throws -> String { try ChildProcess.executable() }

    static func runCLI(_ arguments: [String]) throws -> RunResult { try ChildProcess.runCLI(arguments) }

    /// Asserts a failed run: non-zero exit, nothing on stdout, exactly one stderr line naming `path`.
    static func assertOneLineError(_ result: RunResult, naming path: String, _ problem: String? = nil,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(result.status, 0, "should fail", file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "stderr: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(path), "\(result.stderr) does not name \(path)", file: file, line: line)
        if let problem {
            XCTAssertTrue(result.stderr.contains(problem), "\(result.stderr) does not say \(problem)", file: file, line: line)
        }
        XCTAssertFalse(result.stderr.contains("Fatal error"), file: file, line: line)
    }

    static func parseJSON(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)",
                      file: file, line: line)
    }
}

/// A rank of a pretend group: reports the rank and size it is given, and its Double sums add the counts
/// that the other ranks would have contributed.
final class EvalTestCommunicator: Communicator {
    let rank: Int
    let size: Int
    var localRank: Int { rank }
    var localSize: Int { size }
    let hostname = "fake"
    /// Added elementwise by `allreduceSum` on Doubles (the other ranks' buffers, summed).
    var othersDoubles: [Double]
    private(set) var doubleReductions = 0

    init(rank: Int, size: Int, othersDoubles: [Double] = []) {
        self.rank = rank
        self.size = size
        self.othersDoubles = othersDoubles
    }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { XCTFail("the evaluator sums Doubles") }
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        doubleReductions += 1
        XCTAssertEqual(count, othersDoubles.count, "buffer length")
        for i in 0..<min(count, othersDoubles.count) { buffer[i] += othersDoubles[i] }
    }
    func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction { PendingReduction() }
    func wait(_ pending: PendingReduction) {}
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    func allgather(_ bytes: [UInt8]) -> [[UInt8]] { Array(repeating: bytes, count: size) }
    func barrier() {}
    func abort(_ message: String) -> Never { fatalError(message) }
    func finalize() {}
}
