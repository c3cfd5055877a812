import Foundation
import XCTest
@testable import DANN

final class DataMNISTMTests: XCTestCase {
    private var tmp: URL!
    override func setUp() { tmp = TestPaths.temporaryDirectory("mnistm") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    private func archive(_ split: Split) throws -> MNISTMDataset {
        try MNISTMDataset(split: split, source: .archive(DataFixtures.mnistMArchive()))
    }

    /// Counts and class histograms against SOURCES.md, and the labels against MNIST's (MNIST-M's labels are
    /// MNIST train[0:59001] and test[0:9001]).
    func testCountsHistogramsAndLabels() throws {
        for (split, n, counts) in [
            (Split.train, 59001, [5825, 6640, 5853, 6028, 5746, 5331, 5812, 6158, 5757, 5851]),
            (.test, 9001, [878, 1016, 933, 908, 890, 807, 856, 914, 880, 919]),
        ] {
            let d = try archive(split)
            XCTAssertEqual(d.count, n)
            let labels = try d.allLabels()
            XCTAssertEqual(DataFixtures.classCounts(labels), counts)
            let mnist = try DataFixtures.gunzip("\(DataFixtures.mnistDir)/\(MNISTDataset.files(split).labels)")
            XCTAssertEqual(labels, Array(mnist[8 ..< 8 + n]))
            XCTAssertEqual(d.names.first, "00000000.png")
        }
    }

    /// Mean RGB of every image against SOURCES.md (train (0.4579, 0.4621, 0.4082), test (0.4609, 0.4644, 0.4109)).
    func testMeanRGB() throws {
        for (split, expected) in [(Split.test, [0.4609, 0.4644, 0.4109]), (.train, [0.4579, 0.4621, 0.4082])] {
            let d = try archive(split)
            let raw = try d.load(indices: Array(0..<d.count))
            XCTAssertEqual([raw.channels, raw.height, raw.width], [3, 32, 32])
            XCTAssertEqual(raw.downscale, .centreCrop)
            for k in 0..<3 {
                var sum = 0
                for n in 0..<raw.count { for i in 0..<1024 { sum += Int(raw.pixels[n * 3072 + k * 1024 + i]) } }
                XCTAssertEqual(Double(sum) / Double(raw.count * 1024) / 255, expected[k], accuracy: 0.00006, "\(split) channel \(k)")
            }
        }
    }

    /// The extracted-folder form gives the same samples as the archive.
    func testFolderMatchesArchive() throws {
        let mnistMArchive = try DataFixtures.mnistMArchive()
        let members = (0..<5).map { String(format: "mnist_m/mnist_m_test/%08d.png", $0 * 1000) }
        let root = tmp.appendingPathComponent("mnist_m")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try DataFixtures.run(["tar", "-xzf", mnistMArchive, "-C", root.path] + members)
        let testLabels = try archive(.test).allLabels()
        let lines = (0..<5).map { String(format: "%08d.png %d", $0 * 1000, testLabels[$0 * 1000]) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: root.appendingPathComponent("mnist_m/mnist_m_test_labels.txt").path,
                                                          atomically: true, encoding: .utf8)
        let folder = try MNISTMDataset(split: .test, source: .folder(root.appendingPathComponent("mnist_m").path))
        XCTAssertEqual(folder.count, 5)
        let fromFolder = try folder.load(indices: [4, 0, 2])
        let fromArchive = try archive(.test).load(indices: [4000, 0, 2000])
        XCTAssertEqual(fromFolder.pixels, fromArchive.pixels)
        XCTAssertEqual(fromFolder.labels, fromArchive.labels)
        let (opened, _) = try openDataset(.mnistM, .test, dataDir: tmp.path)
        XCTAssertEqual(opened.count, 5, "the extracted folder wins over a missing archive")
    }

    // MARK: - Fixtures built with python's tarfile and a hand-written PNG encoder

    /// Writes `name`.tar.gz with mnist_m/<entries>; a PNG entry's pixel (x, y, c) is (7x + 3y + 50c) mod 256.
    private func makeArchive(_ entries: String, name: String = "mnist_m") throws -> String {
        let path = tmp.appendingPathComponent("\(name).tar.gz").path
        _ = try DataFixtures.python("""
        import io, struct, tarfile, zlib
        def png(w=32, h=32):
            raw = b''.join(b'\\0' + bytes((7 * x + 3 * y + 50 * c) % 256 for x in range(w) for c in range(3)) for y in range(h))
            def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
            return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
        entries = [\(entries)]
        with tarfile.open('\(path)', 'w:gz', format=tarfile.GNU_FORMAT) as t:
            for name, data in entries:
                info = tarfile.TarInfo('mnist_m/' + name); info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        """)
        return path
    }

    func testHandWrittenPNGDecodes() throws {
        let path = try makeArchive("('mnist_m_test/a.png', png()), ('mnist_m_test/b.png', png()), ('mnist_m_test_labels.txt', b'a.png 3\\nb.png 8\\n')")
        let d = try MNISTMDataset(split: .test, source: .archive(path))
        XCTAssertEqual(try d.allLabels(), [3, 8])
        let raw = try d.load(indices: [1])
        var bad = 0
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 where Int(raw.pixels[c * 1024 + y * 32 + x]) != (7 * x + 3 * y + 50 * c) % 256 { bad += 1 } } }
        XCTAssertEqual(bad, 0)
        XCTAssertEqual(raw.labels, [8])
    }

    func testCorruptPNG() throws {
        let path = try makeArchive("('mnist_m_test/a.png', png()[:60] + b'garbage' * 20), ('mnist_m_test_labels.txt', b'a.png 3\\n')")
        let d = try MNISTMDataset(split: .test, source: .archive(path))
        DataFixtures.assertFileError("\(path): mnist_m/mnist_m_test/a.png", "corrupt PNG") { try d.load(indices: [0]) }
        let wrongSize = try makeArchive("('mnist_m_test/a.png', png(28, 28)), ('mnist_m_test_labels.txt', b'a.png 3\\n')", name: "small")
        DataFixtures.assertFileError(wrongSize, "PNG is 28×28, expected 32×32") {
            try MNISTMDataset(split: .test, source: .archive(wrongSize)).load(indices: [0])
        }
    }

    func testLabelLineNamingMissingImage() throws {
        let path = try makeArchive("('mnist_m_test/a.png', png()), ('mnist_m_test_labels.txt', b'a.png 3\\nzz.png 4\\n')")
        DataFixtures.assertFileError("\(path): mnist_m_test_labels.txt", "line 2 names zz.png, which is not in mnist_m_test/") {
            try MNISTMDataset(split: .test, source: .archive(path))
        }
        let bad = try makeArchive("('mnist_m_test/a.png', png()), ('mnist_m_test_labels.txt', b'a.png three\\n')", name: "badline")
        DataFixtures.assertFileError(bad, "line 1 is not \"NAME.png DIGIT\"") { try MNISTMDataset(split: .test, source: .archive(bad)) }
        // Folder form.
        let folder = tmp.appendingPathComponent("folder/mnist_m")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("mnist_m_train"), withIntermediateDirectories: true)
        try "00000000.png 5\n".write(to: folder.appendingPathComponent("mnist_m_train_labels.txt"), atomically: true, encoding: .utf8)
        DataFixtures.assertFileError("\(folder.path)/mnist_m_train_labels.txt", "line 1 names 00000000.png") {
            try MNISTMDataset(split: .train, source: .folder(folder.path))
        }
    }

    func testNonTarAndTruncatedArchive() throws {
        let notTar = tmp.appendingPathComponent("mnist_m.tar.gz").path
        try DataFixtures.run(["python3", "-c", "import gzip; open('\(notTar)', 'wb').write(gzip.compress(b'hello world ' * 100))"])
        DataFixtures.assertFileError(notTar, "not a tar archive (bad header checksum at offset 0)") {
            try MNISTMDataset(split: .train, source: .archive(notTar))
        }
        let good = try makeArchive("('mnist_m_test/a.png', bytes(range(256)) * 40), ('mnist_m_test_labels.txt', b'a.png 3\\n')", name: "whole")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cut = tmp.appendingPathComponent("cut.tar.gz").path
        try bytes.prefix(bytes.count - 30).write(to: URL(fileURLWithPath: cut))
        DataFixtures.assertFileError(cut, "truncated") { try MNISTMDataset(split: .test, source: .archive(cut)) }
        let plain = tmp.appendingPathComponent("plain.tar.gz").path
        try DataFixtures.write(Array("just text".utf8), to: plain)
        DataFixtures.assertFileError(plain, "not a gzip file") { try MNISTMDataset(split: .test, source: .archive(plain)) }
    }
}
