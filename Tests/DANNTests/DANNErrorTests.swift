import XCTest
@testable import DANN

final class DANNErrorTests: XCTestCase {
    func testFileErrorNamesFile() {
        XCTAssertEqual(DANNError.file("data/x.gz", "truncated").message, "data/x.gz: truncated")
    }
}
