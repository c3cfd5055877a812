import Foundation
import XCTest
@testable import DANN

final class DataMD5Tests: XCTestCase {
    /// Against md5sum on lengths around the 64-byte block and padding boundaries.
    func testAgainstMd5sum() throws {
        var rng = SampleOrder.SplitMix64(state: 7)
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var md5 = MD5()
            // Feed in uneven pieces to exercise the buffering.
            var i = 0, piece = 1
            while i < length {
                let end = min(length, i + piece)
                md5.update(Array(bytes[i..<end]))
                i = end
                piece = piece * 3 + 1
            }
            let tool = String(decoding: try DataFixtures.run(["md5sum"], stdin: Data(bytes)), as: UTF8.self).prefix(32)
            XCTAssertEqual(md5.hexDigest(), String(tool), "length \(length)")
        }
    }

    func testOfficialMNISTFiles() throws {
        for (file, md5) in [("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
                            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873")] {
            XCTAssertEqual(try MD5.file("\(DataFixtures.mnistDir)/\(file)"), md5)
        }
    }
}
