import XCTest
@testable import DANN

final class DANNErrorTests: XCTestCase {
    func testFileErrorNamesFile() {
        XCTAssertEqual(DANNError.file("data/x.gz", "truncated").message, "data/x.gz: truncated")
    }

    /// Names read from files (tensor, tar member, MAT variable) may hold control characters; the message
    /// must stay one printable line, with the characters visible as Swift escapes.
    func testControlCharactersFromFilesAreEscaped() {
        let error = DANNError.file("m.safetensors", "no tensor named 'E.0\nweight\t\u{1b}[31m'")
        XCTAssertEqual(error.message, "m.safetensors: no tensor named 'E.0\\nweight\\t\\u{1B}[31m'")
        XCTAssertFalse(error.message.contains("\n"))
        XCTAssertEqual(DANNError("λ ≥ 0, ünïcode stays").message, "λ ≥ 0, ünïcode stays")
    }
}
