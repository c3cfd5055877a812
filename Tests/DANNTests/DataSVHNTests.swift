import Foundation
import XCTest
@testable import DANN

final class DataSVHNTests: XCTestCase {
    private var tmp: URL!
    override func setUp() { tmp = TestPaths.temporaryDirectory("svhn") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// The independent reference: images 0..<1083 as [n][row][col][rgb] and their labels (0 = digit 0).
    /// Decoded from the official prefix, it lives only in ../shared/data (a skip without it).
    private func referenceImages() throws -> [UInt8] {
        try DataFixtures.gunzip(TestPaths.requireSharedData("svhn/partial/train-images-first1083.u8.gz"))
    }
    private func referenceLabels() throws -> [UInt8] {
        try DataFixtures.gunzip(TestPaths.requireSharedData("svhn/partial/train-labels-first1083.u8.gz"))
    }

    private func assertMatchesReference(_ raw: RawImages, indices: [Int], _ reference: [UInt8],
                                        file: StaticString = #filePath, line: UInt = #line) {
        var mismatches = 0
        for (p, n) in indices.enumerated() {
            for r in 0..<32 { for c in 0..<32 { for k in 0..<3
                where raw.pixels[p * 3072 + k * 1024 + r * 32 + c] != reference[n * 3072 + (r * 32 + c) * 3 + k] {
                    mismatches += 1
            } } }
        }
        XCTAssertEqual(mismatches, 0, "pixels differ from the reference decode", file: file, line: line)
    }

    /// The scipy-written sample: count, labels, histogram and per-channel mean against data/README.md and
    /// SOURCES.md (what a fresh clone can check).
    func testSampleAgainstDocumentedStatistics() throws {
        let d = try SVHNDataset(split: .train, path: DataFixtures.svhnSample)
        XCTAssertEqual(d.count, 1083)
        let labels = try d.allLabels()
        XCTAssertEqual(Array(labels.prefix(10)), [1, 9, 2, 3, 2, 5, 9, 3, 3, 1])
        XCTAssertEqual(DataFixtures.classCounts(labels), [66, 227, 141, 134, 110, 112, 78, 70, 78, 67])
        let raw = try d.load(indices: Array(0..<1083))
        XCTAssertEqual(raw.labels, labels)
        let means = (0..<3).map { k -> Double in
            var sum = 0
            for n in 0..<1083 { for i in 0..<1024 { sum += Int(raw.pixels[n * 3072 + k * 1024 + i]) } }
            return Double(sum) / Double(1083 * 1024)
        }
        XCTAssertEqual(means[0], 115.4, accuracy: 0.05)
        XCTAssertEqual(means[1], 116.4, accuracy: 0.05)
        XCTAssertEqual(means[2], 122.8, accuracy: 0.05)
    }

    /// Every label and pixel of the sample against the independent reference files.
    func testSampleAgainstReference() throws {
        let referenceLabels = try referenceLabels(), referenceImages = try referenceImages()
        let d = try SVHNDataset(split: .train, path: DataFixtures.svhnSample)
        XCTAssertEqual(try d.allLabels(), referenceLabels)
        assertMatchesReference(try d.load(indices: Array(0..<1083)), indices: Array(0..<1083), referenceImages)
        // Any order, with repeats.
        let picked = [1082, 0, 500, 0]
        assertMatchesReference(try d.load(indices: picked), indices: picked, referenceImages)
    }

    /// The genuine official prefix: its real header is parsed, opening it reports truncation, and the
    /// images it does hold decode to the reference.
    func testOfficialPrefixIsTruncated() throws {
        let path = try DataFixtures.svhnPrefix()
        let mat = try MATFile(path: path)
        XCTAssertTrue(mat.headerText.hasPrefix("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Dec  5 21:09:26 2011"))
        XCTAssertFalse(mat.bigEndian)
        DataFixtures.assertFileError(path, "truncated: variable X (uint8 32×32×3×73257) at offset 128 declares 182004347 bytes") {
            try SVHNDataset(split: .train, path: path)
        }
        let prefix = try readSVHNPrefixImages(path: path, count: 1083)
        XCTAssertEqual(prefix.x.dims, [32, 32, 3, 73257])
        assertMatchesReference(prefix.images, indices: Array(0..<1083), try referenceImages())
    }

    /// The sample re-saved by scipy without compression reads identically (the sample itself is checked
    /// against the reference above).
    func testUncompressedScipyMAT() throws {
        let out = tmp.appendingPathComponent("plain.mat").path
        _ = try DataFixtures.python("""
        import scipy.io as s
        d = s.loadmat('\(DataFixtures.svhnSample)')
        s.savemat('\(out)', {'y': d['y'], 'X': d['X']}, do_compression=False)
        """)
        let plain = try SVHNDataset(split: .train, path: out)
        let sample = try SVHNDataset(split: .train, path: DataFixtures.svhnSample)
        XCTAssertFalse(try MATFile(path: out).variables().contains { $0.compressed })
        XCTAssertEqual(try plain.allLabels(), try sample.allLabels())
        XCTAssertEqual(try plain.load(indices: [7, 1000]).pixels, try sample.load(indices: [7, 1000]).pixels)
    }

    // MARK: - Hand-written MAT files (python struct, no scipy): storage forms and error paths

    /// Writes a MAT v5 file from variables given as python tuples (name, class, dims, storage type, bytes).
    private func writeMAT(_ variables: String, compress: Bool, bigEndian: Bool = false, name: String = UUID().uuidString) throws -> String {
        let path = tmp.appendingPathComponent("\(name).mat").path
        _ = try DataFixtures.python("""
        import struct, zlib
        E = '>' if \(bigEndian ? "True" : "False") else '<'
        def el(t, data, small_ok=True):
            n = len(data)
            if small_ok and 0 < n <= 4:
                tag = struct.pack(E + 'HH', n, t) if E == '>' else struct.pack(E + 'HH', t, n)
                return tag + data + b'\\0' * (4 - n)
            return struct.pack(E + 'II', t, n) + data + b'\\0' * ((8 - n % 8) % 8)
        def matrix(name, cls, dims, rtype, real):
            body = el(6, struct.pack(E + 'II', cls, 0), False)
            body += el(5, struct.pack(E + '%di' % len(dims), *dims), False)
            body += el(1, name.encode())
            body += el(rtype, real)
            return struct.pack(E + 'II', 14, len(body)) + body
        def pixels(n):
            return bytes((r + 3 * c + 7 * k + 11 * i) % 256 for i in range(n) for k in range(3) for c in range(32) for r in range(32))
        out = b'MATLAB 5.0 MAT-file, Platform: hand-written test'.ljust(116, b' ') + b'\\0' * 8
        out += struct.pack(E + 'H', 0x0100) + (b'MI' if E == '>' else b'IM')
        for v in [\(variables)]:
            m = matrix(*v)
            if \(compress ? "True" : "False"):
                z = zlib.compress(m)
                m = struct.pack(E + 'II', 15, len(z)) + z
            out += m
        open('\(path)', 'wb').write(out)
        """)
        return path
    }

    private let x2 = "('X', 9, [32, 32, 3, 2], 2, pixels(2))"
    /// y as class double stored in miUINT8 using the small-data-element form (2 bytes), as MATLAB does.
    private let yUInt8 = "('y', 6, [2, 1], 2, bytes([10, 7]))"

    /// Expected planar pixels of the hand-written X: value (r + 3c + 7k + 11n) mod 256.
    private func assertHandPixels(_ raw: RawImages, indices: [Int], file: StaticString = #filePath, line: UInt = #line) {
        var bad = 0
        for (p, n) in indices.enumerated() {
            for k in 0..<3 { for r in 0..<32 { for c in 0..<32
                where Int(raw.pixels[p * 3072 + k * 1024 + r * 32 + c]) != (r + 3 * c + 7 * k + 11 * n) % 256 { bad += 1 } } }
        }
        XCTAssertEqual(bad, 0, file: file, line: line)
    }

    func testStorageFormsAndOrder() throws {
        let yDouble = "('y', 6, [1, 2], 9, struct.pack(E + 'dd', 3.0, 10.0))"
        for (vars, compress, big, labels) in [
            ("\(yUInt8), \(x2)", false, false, [0, 7]),      // y before X, uncompressed, small element
            ("\(x2), \(yUInt8)", true, false, [0, 7]),       // compressed
            ("\(yDouble), \(x2)", true, true, [3, 0]),       // big-endian, y as 1×N doubles
        ] as [(String, Bool, Bool, [UInt8])] {
            let path = try writeMAT(vars, compress: compress, bigEndian: big)
            let d = try SVHNDataset(split: .test, path: path)
            XCTAssertEqual(d.count, 2)
            XCTAssertEqual(try d.allLabels(), labels)
            let raw = try d.load(indices: [1, 0, 1])
            XCTAssertEqual(raw.labels, [labels[1], labels[0], labels[1]])
            assertHandPixels(raw, indices: [1, 0, 1])
        }
    }

    func testMissingVariables() throws {
        let noX = try writeMAT(yUInt8, compress: true)
        DataFixtures.assertFileError(noX, "no variable X") { try SVHNDataset(split: .train, path: noX) }
        let noY = try writeMAT(x2, compress: false)
        DataFixtures.assertFileError(noY, "no variable y") { try SVHNDataset(split: .train, path: noY) }
    }

    func testWrongClassOrDims() throws {
        let xDouble = try writeMAT("('X', 6, [32, 32, 3, 1], 9, bytes(8 * 3072)), ('y', 6, [1, 1], 2, bytes([1]))", compress: true)
        DataFixtures.assertFileError(xDouble, "variable X is double, expected uint8") { try SVHNDataset(split: .train, path: xDouble) }
        let grey = try writeMAT("('X', 9, [32, 32, 1, 2], 2, bytes(2048)), \(yUInt8)", compress: true)
        DataFixtures.assertFileError(grey, "variable X is 32×32×1×2, expected 32×32×3×N") { try SVHNDataset(split: .train, path: grey) }
        let yShort = try writeMAT("\(x2), ('y', 6, [3, 1], 2, bytes([1, 2, 3]))", compress: true)
        DataFixtures.assertFileError(yShort, "variable y is 3×1, expected 2×1") { try SVHNDataset(split: .train, path: yShort) }
        let yClass = try writeMAT("\(x2), ('y', 9, [2, 1], 2, bytes([1, 2]))", compress: false)
        DataFixtures.assertFileError(yClass, "variable y is uint8, expected double") { try SVHNDataset(split: .train, path: yClass) }
        let yValue = try writeMAT("\(x2), ('y', 6, [2, 1], 2, bytes([0, 2]))", compress: false)
        DataFixtures.assertFileError(yValue, "y[0] = 0.0 is not a label 1...10") { try SVHNDataset(split: .train, path: yValue).allLabels() }
    }

    func testNonMATFile() throws {
        let text = tmp.appendingPathComponent("notes.mat").path
        try DataFixtures.write(Array(String(repeating: "not a mat file ", count: 20).utf8), to: text)
        DataFixtures.assertFileError(text, "not a MAT-file v5") { try SVHNDataset(split: .train, path: text) }
        let short = tmp.appendingPathComponent("short.mat").path
        try DataFixtures.write(Array("MATLAB 5.0 MAT-file".utf8), to: short)
        DataFixtures.assertFileError(short, "truncated: MAT-file header") { try SVHNDataset(split: .train, path: short) }
    }

    func testTruncatedMAT() throws {
        let sample = try Data(contentsOf: URL(fileURLWithPath: DataFixtures.svhnSample))
        let cut = tmp.appendingPathComponent("cut.mat").path
        try sample.prefix(100_000).write(to: URL(fileURLWithPath: cut))
        DataFixtures.assertFileError(cut, "truncated: variable X (uint8 32×32×3×1083)") { try SVHNDataset(split: .train, path: cut) }
        // Cut inside y (which scipy writes after X).
        try sample.prefix(sample.count - 20).write(to: URL(fileURLWithPath: cut))
        DataFixtures.assertFileError(cut, "truncated") { try SVHNDataset(split: .train, path: cut) }
    }
}
