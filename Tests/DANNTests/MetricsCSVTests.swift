import Foundation
import XCTest
@testable import DANN

final class MetricsCSVTests: XCTestCase {
    let columns = MetricsCSV.standardColumns(middle: ["domain_acc", "mnist_test_acc"])

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func testStandardColumnOrder() {
        XCTAssertEqual(columns, ["step", "epoch", "lr", "lambda", "label_loss", "domain_loss",
                                 "domain_acc", "mnist_test_acc", "images_per_s"])
    }

    func testHeaderOnceAndMissingValuesEmpty() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metrics.csv").path
        let csv = try MetricsCSV(path: path, columns: columns)
        try csv.append(["step": 0, "epoch": 0, "lr": 0.01, "lambda": 0, "label_loss": 2.302585, "images_per_s": 1234.5])
        try csv.append(["step": 100, "epoch": 1, "mnist_test_acc": 0.9875])
        XCTAssertEqual(try lines(path), [
            "step,epoch,lr,lambda,label_loss,domain_loss,domain_acc,mnist_test_acc,images_per_s",
            "0,0,0.01,0,2.302585,,,,1234.5",
            "100,1,,,,,,0.9875,",
            "",
        ])
        // A second, independent parser (Python's csv module) reads the same cells.
        let script = "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(r[0]['label_loss'], r[1]['mnist_test_acc'], repr(r[1]['lr']))"
        let output = try runPython(script, arguments: [path])
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "2.302585 0.9875 ''")
    }

    func testNumberFormatting() {
        XCTAssertEqual(MetricsCSV.format(12), "12")
        XCTAssertEqual(MetricsCSV.format(-3), "-3")
        XCTAssertEqual(MetricsCSV.format(0.1), "0.1")
        XCTAssertEqual(MetricsCSV.format(Double(Float(0.1))), "0.1")  // Float metrics print as written
        XCTAssertEqual(MetricsCSV.format(1.0 / 3.0), "0.3333333")
        XCTAssertEqual(MetricsCSV.format(2.5e-7), "2.5e-07")
        XCTAssertEqual(MetricsCSV.format(.nan), "nan")
        XCTAssertEqual(MetricsCSV.format(-.infinity), "-inf")
    }

    func testReopenWithoutResumeKeepsRows() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metrics.csv").path
        try MetricsCSV(path: path, columns: columns).append(["step": 1])
        try MetricsCSV(path: path, columns: columns).append(["step": 2])
        XCTAssertEqual(try lines(path).map { $0.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) },
                       ["step", "1", "2", ""])
    }

    func testResumeTruncatesRowsAtAndAfterResumeStep() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metrics.csv").path
        let first = try MetricsCSV(path: path, columns: columns)
        for step in stride(from: 0, through: 500, by: 100) {
            try first.append(["step": Double(step), "label_loss": 1])
        }
        // Simulate a crash mid-row: a trailing line without its newline.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("600,0,0.0".utf8))
        try handle.close()

        let resumed = try MetricsCSV(path: path, columns: columns, resumeFromStep: 300)
        try resumed.append(["step": 300, "label_loss": 0.5])
        let steps = try lines(path).dropFirst().filter { !$0.isEmpty }.map { $0.split(separator: ",").first! }
        XCTAssertEqual(steps, ["0", "100", "200", "300"])
        XCTAssertEqual(try lines(path).filter { $0.hasPrefix("300,") }, ["300,,,,0.5,,,,"])
    }

    func testResumeFromStepBeyondFileKeepsAllAndDropsPartialRow() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metrics.csv").path
        try "step,epoch\n0,0\n10,0\n20,1".write(toFile: path, atomically: true, encoding: .utf8)
        let csv = try MetricsCSV(path: path, columns: ["step", "epoch"], resumeFromStep: 1000)
        try csv.append(["step": 20, "epoch": 1])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "step,epoch\n0,0\n10,0\n20,1\n")
    }

    func testDifferentHeaderIsAFileError() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metrics.csv").path
        try "step,epoch,loss\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MetricsCSV(path: path, columns: columns, resumeFromStep: 0)) { error in
            XCTAssertTrue((error as? DANNError)?.message.hasPrefix(path + ": existing header") == true, "\(error)")
        }
    }

    func testUnknownMetricIsRejected() throws {
        let directory = TestPaths.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = try MetricsCSV(path: directory.appendingPathComponent("m.csv").path, columns: ["step"])
        XCTAssertThrowsError(try csv.append(["stepz": 1]))
    }
}
