import Foundation
import XCTest
@testable import DANN

final class DataMNISTTests: XCTestCase {
    private var tmp: URL!
    override func setUp() { tmp = TestPaths.temporaryDirectory("mnist") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    private func dataset(_ split: Split) throws -> MNISTDataset {
        let (d, note) = try openDataset(.mnist, split, dataDir: DataFixtures.repository)
        XCTAssertNil(note)
        return try XCTUnwrap(d as? MNISTDataset)
    }

    /// Counts, class histograms, first labels and mean pixel against SOURCES.md.
    func testTrainAndTestAgainstSources() throws {
        let expected: [(Split, Int, [Int], [UInt8], Double)] = [
            (.train, 60000, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], 0.1307),
            (.test, 10000, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9], 0.1325),
        ]
        for (split, n, counts, first, mean) in expected {
            let d = try dataset(split)
            XCTAssertEqual(d.count, n)
            let labels = try d.allLabels()
            XCTAssertEqual(DataFixtures.classCounts(labels), counts)
            XCTAssertEqual(Array(labels.prefix(10)), first)
            let raw = try d.load(indices: Array(0..<n))
            XCTAssertEqual(raw.labels, labels)
            XCTAssertEqual([raw.channels, raw.height, raw.width], [1, 28, 28])
            let sum = raw.pixels.reduce(0) { $0 + Int($1) }
            XCTAssertEqual(Double(sum) / Double(raw.pixels.count) / 255, mean, accuracy: 0.00005)
        }
    }

    /// load(indices:) returns images in the requested order, repeats included, equal to gzip -dc's bytes.
    func testSelectedIndicesMatchIndependentDecode() throws {
        let d = try dataset(.test)
        let reference = try DataFixtures.gunzip(d.imagesPath)
        let indices = [9999, 3, 0, 3, 5000]
        let raw = try d.load(indices: indices)
        for (p, i) in indices.enumerated() {
            XCTAssertEqual(Array(raw.pixels[p * 784 ..< (p + 1) * 784]), Array(reference[16 + i * 784 ..< 16 + (i + 1) * 784]))
        }
        let labelBytes = try DataFixtures.gunzip(d.labelsPath)
        XCTAssertEqual(raw.labels, indices.map { labelBytes[8 + $0] })
        DataFixtures.assertFileError(d.path, "outside 0..<10000") { try d.load(indices: [10000]) }
    }

    /// Uncompressed IDX files (as gzip -d leaves them) read the same as the .gz.
    func testRawIDXFiles() throws {
        let images = tmp.appendingPathComponent("t10k-images-idx3-ubyte").path
        let labels = tmp.appendingPathComponent("t10k-labels-idx1-ubyte").path
        try DataFixtures.write(DataFixtures.gunzip("\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"), to: images)
        try DataFixtures.write(DataFixtures.gunzip("\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz"), to: labels)
        let raw = try MNISTDataset(split: .test, imagesPath: images, labelsPath: labels)
        let gz = try dataset(.test)
        XCTAssertEqual(try raw.load(indices: [1, 7777]).pixels, try gz.load(indices: [1, 7777]).pixels)
        XCTAssertEqual(try raw.allLabels(), try gz.allLabels())
    }

    // MARK: - Error paths, each naming the file

    private func idx(dims: [Int], magic: [UInt8]? = nil, payload: Int? = nil) -> [UInt8] {
        var bytes = magic ?? [0, 0, 8, UInt8(dims.count)]
        for d in dims { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return bytes + [UInt8](repeating: 1, count: payload ?? dims.reduce(1, *))
    }

    private func pair(images: [UInt8], labels: [UInt8]) throws -> (String, String) {
        let i = tmp.appendingPathComponent("images-\(UUID())").path, l = tmp.appendingPathComponent("labels-\(UUID())").path
        try DataFixtures.write(images, to: i)
        try DataFixtures.write(labels, to: l)
        return (i, l)
    }

    func testWrongMagic() throws {
        let (i, l) = try pair(images: idx(dims: [2, 28, 28], magic: [0, 0, 9, 3]), labels: idx(dims: [2]))
        DataFixtures.assertFileError(i, "not an IDX file") { try MNISTDataset(split: .test, imagesPath: i, labelsPath: l) }
        let (i2, l2) = try pair(images: idx(dims: [2, 28, 28]), labels: idx(dims: [2, 28, 28]))
        DataFixtures.assertFileError(l2, "has 3 dimensions, expected 1") { try MNISTDataset(split: .test, imagesPath: i2, labelsPath: l2) }
    }

    func testDimsMismatch() throws {
        let (i, l) = try pair(images: idx(dims: [2, 28, 27]), labels: idx(dims: [2]))
        DataFixtures.assertFileError(i, "28×27, expected 28×28") { try MNISTDataset(split: .test, imagesPath: i, labelsPath: l) }
    }

    func testImageLabelCountMismatch() throws {
        let (i, l) = try pair(images: idx(dims: [3, 28, 28]), labels: idx(dims: [2]))
        DataFixtures.assertFileError(i, "holds 3 images but \(l) holds 2 labels") {
            try MNISTDataset(split: .test, imagesPath: i, labelsPath: l)
        }
    }

    func testCountLargerThanData() throws {
        // A short file is refused as soon as its header is read: the count must fit the bytes after it.
        let (i, l) = try pair(images: idx(dims: [3, 28, 28], payload: 2 * 784 + 100), labels: idx(dims: [3]))
        DataFixtures.assertFileError(i, "header promises 3 images of 28×28 (2352 bytes) but the file can hold at most 1668") {
            try MNISTDataset(split: .test, imagesPath: i, labelsPath: l)
        }
        let (i2, l2) = try pair(images: idx(dims: [3, 28, 28], payload: 3 * 784 + 1), labels: idx(dims: [3]))
        DataFixtures.assertFileError(i2, "longer than its header") {
            try MNISTDataset(split: .test, imagesPath: i2, labelsPath: l2).load(indices: [0])
        }
        let (i3, l3) = try pair(images: idx(dims: [2, 28, 28]), labels: idx(dims: [2], payload: 1) )
        DataFixtures.assertFileError(l3, "header promises 2 labels (2 bytes) but the file can hold at most 1") {
            try MNISTDataset(split: .test, imagesPath: i3, labelsPath: l3).allLabels()
        }
    }

    func testLabelOutOfRange() throws {
        let (i, l) = try pair(images: idx(dims: [2, 28, 28]), labels: [0, 0, 8, 1, 0, 0, 0, 2, 3, 10])
        DataFixtures.assertFileError(l, "label 10 at index 1") { try MNISTDataset(split: .test, imagesPath: i, labelsPath: l).allLabels() }
    }

    func testTruncatedGzip() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"))
        let cut = tmp.appendingPathComponent("t10k-images-idx3-ubyte.gz").path
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        let d = try MNISTDataset(split: .test, imagesPath: cut, labelsPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")
        DataFixtures.assertFileError(cut, "truncated gzip stream") { try d.load(indices: [0]) }
        // Corrupt deflate data in the middle.
        var bad = [UInt8](whole)
        for k in 1000..<1100 { bad[k] ^= 0x5A }
        let corrupt = tmp.appendingPathComponent("corrupt.gz").path
        try DataFixtures.write(bad, to: corrupt)
        DataFixtures.assertFileError(corrupt, "corrupt gzip data") {
            try MNISTDataset(split: .test, imagesPath: corrupt, labelsPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz").load(indices: [0])
        }
    }

    func testNotGzipAndMissing() throws {
        let fake = tmp.appendingPathComponent("x-idx3-ubyte.gz").path
        try DataFixtures.write(idx(dims: [1, 28, 28]), to: fake)
        DataFixtures.assertFileError(fake, "not a gzip file") { try MNISTDataset(split: .test, imagesPath: fake, labelsPath: fake) }
        let empty = tmp.path
        DataFixtures.assertFileError("\(empty)/mnist/train-images-idx3-ubyte.gz", "not found") {
            try openDataset(.mnist, .train, dataDir: empty)
        }
    }
}
