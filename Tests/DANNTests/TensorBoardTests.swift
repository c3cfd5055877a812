import Foundation
import XCTest
@testable import DANN

final class TensorBoardTests: XCTestCase {
    /// A scalar as this test's own decoder sees it in the file.
    struct DecodedEvent {
        var wallTime: Double?
        var step: Int64 = 0
        var fileVersion: String?
        var scalars: [(tag: String, value: Float)] = []
    }

    // MARK: Independent reader (TFRecord framing + the few protobuf fields TensorBoard uses)

    static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let crc = CRC32CTests.naiveCRC32C(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    static func littleEndian<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, as: T.Type) -> T {
        bytes.reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }

    static func readRecords(_ path: String) throws -> [[UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var records: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw DANNError("truncated record header at \(offset)") }
            let lengthBytes = Array(bytes[offset..<offset + 8])
            let length = Int(littleEndian(bytes[offset..<offset + 8], as: UInt64.self))
            let lengthCRC = littleEndian(bytes[offset + 8..<offset + 12], as: UInt32.self)
            guard lengthCRC == maskedCRC(lengthBytes) else { throw DANNError("bad length CRC at \(offset)") }
            let start = offset + 12
            guard start + length + 4 <= bytes.count else { throw DANNError("truncated record at \(offset)") }
            let data = Array(bytes[start..<start + length])
            let dataCRC = littleEndian(bytes[start + length..<start + length + 4], as: UInt32.self)
            guard dataCRC == maskedCRC(data) else { throw DANNError("bad data CRC at \(offset)") }
            records.append(data)
            offset = start + length + 4
        }
        return records
    }

    /// Splits a protobuf message into (field, wire type, payload) triples.
    static func fields(_ bytes: [UInt8]) throws -> [(field: Int, wire: Int, varint: UInt64, payload: [UInt8])] {
        var result: [(Int, Int, UInt64, [UInt8])] = []
        var i = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < bytes.count else { throw DANNError("truncated varint") }
                let byte = bytes[i]
                i += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }
        while i < bytes.count {
            let key = try varint()
            let field = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0: result.append((field, wire, try varint(), []))
            case 1: result.append((field, wire, 0, Array(bytes[i..<i + 8]))); i += 8
            case 5: result.append((field, wire, 0, Array(bytes[i..<i + 4]))); i += 4
            case 2:
                let n = Int(try varint())
                result.append((field, wire, 0, Array(bytes[i..<i + n])))
                i += n
            default: throw DANNError("unexpected wire type \(wire)")
            }
        }
        return result
    }

    static func decodeEvent(_ bytes: [UInt8]) throws -> DecodedEvent {
        var event = DecodedEvent()
        for f in try fields(bytes) {
            switch (f.field, f.wire) {
            case (1, 1): event.wallTime = Double(bitPattern: littleEndian(f.payload[...], as: UInt64.self))
            case (2, 0): event.step = Int64(bitPattern: f.varint)
            case (3, 2): event.fileVersion = String(decoding: f.payload, as: UTF8.self)
            case (5, 2):
                for value in try fields(f.payload) where value.field == 1 && value.wire == 2 {
                    var tag = "", number: Float = .nan
                    for part in try fields(value.payload) {
                        if part.field == 1 && part.wire == 2 { tag = String(decoding: part.payload, as: UTF8.self) }
                        if part.field == 2 && part.wire == 5 {
                            number = Float(bitPattern: littleEndian(part.payload[...], as: UInt32.self))
                        }
                    }
                    event.scalars.append((tag, number))
                }
            default: throw DANNError("unexpected field \(f.field) wire \(f.wire)")
            }
        }
        return event
    }

    // MARK: Fixture

    /// (tag, step, value) written by `writeFixture`.
    static let expected: [(String, Int64, Float)] = {
        var rows: [(String, Int64, Float)] = []
        for step: Int64 in [0, 10, 20, 30, 5_000_000_000] {
            rows.append(("label_loss", step, 2.3 / Float(1 + step % 1000)))
            rows.append(("lr", step, 0.01 / Float(1 + step % 7)))
            rows.append(("mnist_test_acc", step, Float(step % 97) / 97))
        }
        return rows
    }()

    func writeFixture(in directory: URL) throws -> String {
        let writer = try TensorBoardWriter(directory: directory.path)
        var lastStep: Int64 = -1
        for (i, (tag, step, value)) in Self.expected.enumerated() {
            if step != lastStep { try writer.flush(); lastStep = step }
            try writer.addScalar(tag, value: value, step: step, wallTime: 1_700_000_000 + Double(i) * 0.25)
        }
        writer.close()
        return writer.path
    }

    // MARK: Tests

    func testFileNameAndFirstRecord() throws {
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try writeFixture(in: directory)
        let name = URL(fileURLWithPath: path).lastPathComponent
        let parts = name.split(separator: ".", maxSplits: 4).map(String.init)
        XCTAssertEqual(Array(parts.prefix(3)), ["events", "out", "tfevents"])
        XCTAssertNotNil(Int64(parts[3]), "unix seconds in \(name)")
        let kernelHostname = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(parts[4], kernelHostname)

        let records = try Self.readRecords(path)
        XCTAssertEqual(records.count, 1 + Self.expected.count)
        let first = try Self.decodeEvent(records[0])
        XCTAssertEqual(first.fileVersion, "brain.Event:2")
        XCTAssertEqual(first.step, 0)
        XCTAssertEqual(first.wallTime.map { Int64($0) }, Int64(parts[3]))
    }

    func testScalarsRoundTripThroughIndependentReader() throws {
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let records = try Self.readRecords(try writeFixture(in: directory))
        let events = try records.dropFirst().map(Self.decodeEvent)
        XCTAssertEqual(events.count, Self.expected.count)
        for (i, (event, (tag, step, value))) in zip(events, Self.expected).enumerated() {
            XCTAssertEqual(event.step, step)
            XCTAssertEqual(event.wallTime, 1_700_000_000 + Double(i) * 0.25)
            XCTAssertEqual(event.scalars.count, 1)
            XCTAssertEqual(event.scalars.first?.tag, tag)
            XCTAssertEqual(event.scalars.first?.value.bitPattern, value.bitPattern)
        }
    }

    func testCorruptedByteIsDetectedByReader() throws {
        // Guards the reader itself: a flipped data byte must fail the CRC check.
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try writeFixture(in: directory)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[20] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Self.readRecords(path))
    }

    func testFlushMakesScalarsVisible() throws {
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = try TensorBoardWriter(directory: directory.path)
        XCTAssertEqual(try Self.readRecords(writer.path).count, 1, "file-version record written at once")
        try writer.addScalar("lr", value: 0.01, step: 1)
        try writer.addScalar("lambda", value: 0.5, step: 1)
        XCTAssertEqual(try Self.readRecords(writer.path).count, 1, "scalars wait for flush")
        try writer.flush()
        let events = try Self.readRecords(writer.path).dropFirst().map(Self.decodeEvent)
        XCTAssertEqual(events.map { $0.scalars.first?.tag }, ["lr", "lambda"])
        writer.close()
        XCTAssertThrowsError(try writer.addScalar("lr", value: 1, step: 2))
    }

    func testTwoWritersInOneSecondGetTwoFiles() throws {
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = try TensorBoardWriter(directory: directory.path)
        let b = try TensorBoardWriter(directory: directory.path)
        XCTAssertNotEqual(a.path, b.path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).count, 2)
    }

    func testUnwritableDirectoryIsAFileError() {
        XCTAssertThrowsError(try TensorBoardWriter(directory: "/proc/no-such-dir/tb")) { error in
            XCTAssertTrue((error as? DANNError)?.message.hasPrefix("/proc/no-such-dir/tb") == true, "\(error)")
        }
    }

    /// TensorBoard's own reader must see every scalar with its step and value.
    func testTensorBoardEventAccumulatorReadsScalars() throws {
        let probe = try runPython(["-c", "import tensorboard.backend.event_processing.event_accumulator"])
        guard probe.status == 0 else {
            throw XCTSkip("python3 module 'tensorboard' is missing (pip install tensorboard): \(probe.stderr.suffix(200))")
        }
        let directory = TestPaths.temporaryDirectory("tb")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try writeFixture(in: directory)
        let script = """
        import json, sys
        from tensorboard.backend.event_processing import event_accumulator as ea
        acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
        acc.Reload()
        out = {tag: [[s.step, s.value, s.wall_time] for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
        print(json.dumps(out))
        """
        let result = try runPython(["-c", script, directory.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [[Double]]])
        XCTAssertEqual(Set(json.keys), Set(Self.expected.map(\.0)))
        for tag in json.keys {
            let expected = Self.expected.filter { $0.0 == tag }
            let read = json[tag]!
            XCTAssertEqual(read.count, expected.count, tag)
            for (row, (_, step, value)) in zip(read, expected) {
                XCTAssertEqual(Int64(row[0]), step, tag)
                XCTAssertEqual(Float(row[1]), value, tag)
            }
        }
    }

    // MARK: Helpers

    func runPython(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try ChildProcess.runTool("/usr/bin/env", ["python3"] + arguments)
        return (result.status, result.stdout, result.stderr)
    }
}
