import Foundation
import XCTest
@testable import DANN

/// Every way a safetensors file can be broken becomes one `DANNError` line naming the file and the problem.
final class SafeTensorsErrorTests: XCTestCase {
    private var directory: URL!

    override func setUp() {
        directory = TestPaths.temporaryDirectory("safetensors-errors")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `bytes`, reads them back, and returns the error message (failing if the read succeeds).
    private func readError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> String {
        let path = directory.appendingPathComponent("broken-\(UUID().uuidString).safetensors").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            _ = try SafeTensors.read(path: path)
            XCTFail("read succeeded on a broken file", file: file, line: line)
            return ""
        } catch let error as DANNError {
            XCTAssertTrue(error.message.hasPrefix("\(path): "), "error must name the file: \(error.message)", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "one line: \(error.message)", file: file, line: line)
            return String(error.message.dropFirst(path.count + 2))
        } catch {
            XCTFail("not a DANNError: \(error)", file: file, line: line)
            return ""
        }
    }

    /// A file from a header text (length-prefixed, no padding needed by the reader) and data bytes.
    private func stFile(header: String, data: [UInt8] = []) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        var length = UInt64(headerBytes.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + headerBytes + data
    }

    private func tensor(_ name: String = "w", dtype: String = "F32", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    private let eightBytes = [UInt8](repeating: 1, count: 8)

    func testUnpaddedValidFileReads() throws {
        // The helpers build valid files when nothing is broken, so the failures below are the breakage.
        let path = directory.appendingPathComponent("ok.safetensors").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(stFile(header: "{\(tensor())}", data: eightBytes)))
        XCTAssertEqual(try SafeTensors.read(path: path).tensors["w"]?.data, eightBytes)
    }

    func testMissingFile() {
        let path = directory.appendingPathComponent("absent.safetensors").path
        XCTAssertThrowsError(try SafeTensors.read(path: path)) { error in
            XCTAssertEqual((error as? DANNError)?.message, "\(path): no such file")
        }
    }

    func testDirectoryIsNotAFile() {
        XCTAssertThrowsError(try SafeTensors.read(path: directory.path)) { error in
            XCTAssertEqual((error as? DANNError)?.message, "\(directory.path): not a regular file")
        }
    }

    func testTooShortForHeaderLength() {
        XCTAssertEqual(readError([1, 2, 3]), "file of 3 bytes is too short for a safetensors header")
        XCTAssertEqual(readError([]), "file of 0 bytes is too short for a safetensors header")
    }

    func testHeaderLengthBeyondFile() {
        let bytes = stFile(header: "{}")
        var tooLong = bytes
        tooLong[0] = 3
        XCTAssertTrue(readError(tooLong).hasPrefix("header length 3 exceeds the 2 bytes after it"))
        XCTAssertTrue(readError([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B]).hasPrefix("header length 18446744073709551615 exceeds"))
    }

    func testNotJSONObject() {
        XCTAssertEqual(readError(stFile(header: "[1,2]")), "header does not start with '{' (not a safetensors file)")
        XCTAssertEqual(readError(stFile(header: "PK\u{3}\u{4}")), "header does not start with '{' (not a safetensors file)")
    }

    func testBadJSON() {
        // The detail after "bad header JSON: " is Foundation's (JSONSerialization's, as JSONDecoder on Linux
        // says only "The given data was not valid JSON."), e.g. "Invalid value around character 55.".
        func assertBadJSON(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
            let message = readError(bytes, file: file, line: line)
            XCTAssertTrue(message.hasPrefix("bad header JSON: "), message, file: file, line: line)
            XCTAssertFalse(message.contains("not valid JSON"), "says what is wrong: \(message)", file: file, line: line)
        }
        assertBadJSON(stFile(header: "{\"w\":{\"dtype\":\"F32\","))
        assertBadJSON(stFile(header: "{\(tensor())} trailing", data: eightBytes))
        assertBadJSON(stFile(header: "{\"w\":tru}"))
        assertBadJSON(stFile(header: "{\"w\u{01}\":1}"))
        assertBadJSON(stFile(header: "{\"a\":" + String(repeating: "[", count: 100)))
        // Nesting deeper than Foundation's limit (512) is refused, not a stack overflow.
        assertBadJSON(stFile(header: "{\"a\":" + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"))
        var invalidUTF8 = stFile(header: "{\"ab\":{}}")
        invalidUTF8[10] = 0xFF
        assertBadJSON(invalidUTF8)
    }

    func testDuplicateName() {
        XCTAssertEqual(readError(stFile(header: "{\(tensor()),\(tensor(offsets: "[8,16]"))}", data: eightBytes + eightBytes)),
                       "header names 'w' twice")
        // JSONDecoder alone would keep one of the two silently; the reader sees every key as written.
        XCTAssertEqual(readError(stFile(header: "{\"__metadata__\":{},\(tensor()),\"__metadata__\":3}", data: eightBytes)),
                       "header names '__metadata__' twice")
    }

    func testMetadataMustBeStrings() {
        XCTAssertEqual(readError(stFile(header: "{\"__metadata__\":{\"step\":42}}")), "__metadata__ value of 'step' is not a string")
        XCTAssertEqual(readError(stFile(header: "{\"__metadata__\":[]}")), "__metadata__ is not an object")
    }

    func testBadTensorEntries() {
        XCTAssertEqual(readError(stFile(header: "{\"w\":3}")), "entry of tensor 'w' is not an object")
        XCTAssertEqual(readError(stFile(header: "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: eightBytes)), "tensor 'w' has no dtype")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(dtype: "F31"))}", data: eightBytes)), "tensor 'w' has unknown dtype 'F31'")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(shape: "[-2]"))}", data: eightBytes)),
                       "shape of tensor 'w' holds something other than a non-negative integer")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(shape: "[2.5]"))}", data: eightBytes)),
                       "shape of tensor 'w' holds something other than a non-negative integer")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(shape: "2"))}", data: eightBytes)), "shape of tensor 'w' is not an array")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(offsets: "[0]"))}", data: eightBytes)),
                       "data_offsets of tensor 'w' are not [begin, end] with begin <= end")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(offsets: "[8,0]"))}", data: eightBytes)),
                       "data_offsets of tensor 'w' are not [begin, end] with begin <= end")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(shape: "[4611686018427387904,4]"))}", data: eightBytes)),
                       "shape [4611686018427387904, 4] of tensor 'w' is too large")
    }

    func testDtypeTimesShapeMustEqualByteLength() {
        XCTAssertEqual(readError(stFile(header: "{\(tensor(shape: "[3]"))}", data: eightBytes)),
                       "tensor 'w' of dtype F32 and shape [3] needs 12 bytes but data_offsets span 8")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(dtype: "F64", shape: "[2]"))}", data: eightBytes)),
                       "tensor 'w' of dtype F64 and shape [2] needs 16 bytes but data_offsets span 8")
    }

    func testOverlapGapTruncationAndTrailingBytes() {
        let two = "{\(tensor("a")),\(tensor("b", offsets: "[4,12]"))}"
        XCTAssertEqual(readError(stFile(header: two, data: eightBytes + [0, 0, 0, 0])),
                       "tensor 'b' overlaps the previous tensor (starts at 4, previous ends at 8)")
        let gap = "{\(tensor("a")),\(tensor("b", offsets: "[12,20]"))}"
        XCTAssertEqual(readError(stFile(header: gap, data: eightBytes + eightBytes + [0, 0, 0, 0])),
                       "gap in data before tensor 'b' (bytes 8..<12 unused)")
        XCTAssertEqual(readError(stFile(header: "{\(tensor(offsets: "[4,12]"))}", data: eightBytes + [0, 0, 0, 0])),
                       "gap in data before tensor 'w' (bytes 0..<4 unused)")
        XCTAssertEqual(readError(stFile(header: "{\(tensor())}", data: [1, 2, 3])),
                       "truncated: tensors need 8 data bytes but the file holds 3")
        XCTAssertEqual(readError(stFile(header: "{\(tensor())}", data: eightBytes + [0])),
                       "1 unexpected bytes after the last tensor")
    }

    func testTruncatedWrittenFile() throws {
        // A real file of ours cut short at every few bytes must always be rejected, never trap.
        let good = SafeTensors.encode([TensorEntry(name: "w", shape: [4, 4], float32: [Float](repeating: 2, count: 16)),
                                       TensorEntry(name: "b", shape: [4], float32: [1, 2, 3, 4])],
                                      metadata: ["step": "7"])
        for length in stride(from: 0, to: good.count, by: 5) {
            let message = readError(Array(good.prefix(length)))
            XCTAssertFalse(message.isEmpty, "prefix of \(length) bytes")
        }
        XCTAssertTrue(readError(Array(good.dropLast(1))).hasPrefix("truncated: tensors need 80 data bytes but the file holds 79"))
    }
}
