import Foundation
import XCTest
@testable import DANN

final class DataInventoryTests: XCTestCase {
    private var dir: URL!
    override func setUp() {
        dir = TestPaths.temporaryDirectory("inventory")
        let fm = FileManager.default
        try? fm.createDirectory(at: dir.appendingPathComponent("mnist"), withIntermediateDirectories: true)
        try? fm.createDirectory(at: dir.appendingPathComponent("svhn-sample"), withIntermediateDirectories: true)
        for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try? fm.createSymbolicLink(atPath: dir.appendingPathComponent("mnist/\(f)").path, withDestinationPath: "\(DataFixtures.mnistDir)/\(f)")
        }
        try? fm.createSymbolicLink(atPath: dir.appendingPathComponent("svhn-sample/train_32x32.mat").path,
                                   withDestinationPath: DataFixtures.svhnSample)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// `data info --json` shape (docs/design.md §5.5) parsed back with JSONSerialization.
    func testInfoJSON() throws {
        let json = DataInventory.infoJSON(try DataInventory.info(dataDir: dir.path))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [String: Any]])
        XCTAssertEqual(Set(object.keys), ["mnist_train", "mnist_test", "svhn_train"])
        XCTAssertEqual(object["mnist_test"]?["n"] as? Int, 10000)
        XCTAssertEqual(object["mnist_train"]?["class_counts"] as? [Int], [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        XCTAssertEqual(object["svhn_train"]?["class_counts"] as? [Int], [66, 227, 141, 134, 110, 112, 78, 70, 78, 67])
        XCTAssertEqual(object["svhn_train"]?["sample"] as? Bool, true)
        let (_, note) = try openDataset(.svhn, .train, dataDir: dir.path)
        XCTAssertEqual(note, "\(dir.path)/svhn has no full SVHN: using the 1,083-image bundled sample; run scripts/download-data.sh for the full set")
    }

    func testPresentButUnreadableIsAnError() throws {
        let bad = dir.appendingPathComponent("mnist/t10k-labels-idx1-ubyte.gz").path
        try FileManager.default.removeItem(atPath: bad)
        try DataFixtures.write([0x1f, 0x8b, 8, 0, 0, 0], to: bad)
        DataFixtures.assertFileError(bad, "truncated gzip stream") { try DataInventory.info(dataDir: dir.path) }
        // A damaged image file is caught too, although its header reads fine (here: a wrong gzip CRC-32).
        try FileManager.default.removeItem(atPath: bad)
        try FileManager.default.createSymbolicLink(atPath: bad, withDestinationPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")
        let images = dir.appendingPathComponent("mnist/t10k-images-idx3-ubyte.gz").path
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: images)))
        try FileManager.default.removeItem(atPath: images)
        var damaged = whole
        damaged[whole.count - 8] ^= 0xFF
        try DataFixtures.write(damaged, to: images)
        XCTAssertNoThrow(try openDataset(.mnist, .test, dataDir: dir.path))
        DataFixtures.assertFileError(images, "corrupt gzip data: incorrect data check") { try DataInventory.info(dataDir: dir.path) }
        // Cut to 5,000 bytes it is refused on opening: 10,000 images cannot come out of what is left.
        try DataFixtures.write(Array(whole.prefix(5000)), to: images)
        DataFixtures.assertFileError(images, "header promises 10000 images of 28×28") { try openDataset(.mnist, .test, dataDir: dir.path) }
    }

    func testVerify() throws {
        let checks = try DataInventory.verify(dataDir: dir.path)
        let byName = Dictionary(uniqueKeysWithValues: checks.map { (($0.path as NSString).lastPathComponent + ($0.path.contains("sample") ? "-sample" : ""), $0.status) })
        XCTAssertEqual(byName["train-images-idx3-ubyte.gz"], .ok)
        XCTAssertEqual(byName["t10k-labels-idx1-ubyte.gz"], .ok)
        XCTAssertEqual(byName["train_32x32.mat"], .missing)
        XCTAssertEqual(byName["train_32x32.mat-sample"], .unknown)
        // `data verify --json`: every key on every entry, null where there is no md5 or no published value.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(DataInventory.verifyJSON(checks).utf8)) as? [[String: Any]])
        XCTAssertEqual(json.count, checks.count)
        for entry in json { XCTAssertEqual(Set(entry.keys), ["path", "status", "md5", "expected"]) }
        let missing = try XCTUnwrap(json.first { ($0["path"] as? String)?.hasSuffix("svhn/train_32x32.mat") == true })
        XCTAssertEqual(missing["status"] as? String, "missing")
        XCTAssertTrue(missing["md5"] is NSNull)
        let labels = dir.appendingPathComponent("mnist/t10k-labels-idx1-ubyte.gz").path
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: labels)))
        bytes[100] ^= 1
        try FileManager.default.removeItem(atPath: labels)
        try DataFixtures.write(bytes, to: labels)
        let after = try DataInventory.verify(dataDir: dir.path).first { $0.path == labels }
        XCTAssertEqual(after?.status, .mismatch)
    }
}
