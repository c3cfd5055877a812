import Foundation
import XCTest
@testable import DANN

/// `AtomicFile`, which checkpoints (safetensors) and `checkpoints/latest` are written through.
final class SafeTensorsAtomicFileTests: XCTestCase {
    private var directory: URL!

    override func setUp() {
        directory = TestPaths.temporaryDirectory("atomic")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    func testWritesBytesAndLeavesNoTemporary() throws {
        let path = directory.appendingPathComponent("model.safetensors").path
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        try AtomicFile.write(bytes, to: path)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), bytes)
        XCTAssertEqual(try entries(), ["model.safetensors"])
    }

    func testReplacesExistingFileAndWritesText() throws {
        let path = directory.appendingPathComponent("latest").path
        try AtomicFile.writeText("step-00000100\n", to: path)
        try AtomicFile.writeText("step-00000200", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "step-00000200")
        try AtomicFile.write(Data([1, 2, 3]), to: path)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), [1, 2, 3])
        XCTAssertEqual(try entries(), ["latest"])
    }

    func testMissingDirectoryIsOneLineErrorNamingPath() {
        let path = directory.appendingPathComponent("no-such-dir/model.safetensors").path
        XCTAssertThrowsError(try AtomicFile.write([1, 2, 3], to: path)) { error in
            let message = (error as? DANNError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("\(path): cannot create temporary file \(path).tmp-"), message)
            XCTAssertTrue(message.contains("No such file or directory"), message)
            XCTAssertFalse(message.contains("\n"))
        }
    }

    func testUnwritableDirectory() throws {
        // Root ignores permission bits, so a directory under a regular file stands in for unwritable there.
        let blocker = directory.appendingPathComponent("a-file").path
        try AtomicFile.writeText("x", to: blocker)
        let path = blocker + "/model.safetensors"
        XCTAssertThrowsError(try AtomicFile.write([1], to: path)) { error in
            XCTAssertTrue(((error as? DANNError)?.message ?? "").hasPrefix("\(path): cannot create temporary file"))
        }
        if geteuid() != 0 {
            let locked = directory.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
            chmod(locked.path, 0o555)
            defer { chmod(locked.path, 0o755) }
            let lockedPath = locked.appendingPathComponent("x").path
            XCTAssertThrowsError(try AtomicFile.write([1], to: lockedPath)) { error in
                XCTAssertTrue(((error as? DANNError)?.message ?? "").contains("Permission denied"))
            }
        }
        XCTAssertEqual(try entries(), ["a-file"])
    }

    func testFailedRenameRemovesTemporaryAndKeepsTarget() throws {
        // A non-empty directory under the target name makes the final rename fail after the data was written.
        let target = directory.appendingPathComponent("checkpoint")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try AtomicFile.writeText("keep", to: target.appendingPathComponent("inside").path)
        XCTAssertThrowsError(try SafeTensors.write([], metadata: [:], to: target.path)) { error in
            let message = (error as? DANNError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("\(target.path): cannot rename"), message)
        }
        XCTAssertEqual(try entries(), ["checkpoint"], "no temporary file left behind")
        XCTAssertEqual(try String(contentsOfFile: target.appendingPathComponent("inside").path, encoding: .utf8), "keep")
    }
}
