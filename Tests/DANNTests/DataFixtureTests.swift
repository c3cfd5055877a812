import Foundation
import XCTest
@testable import DANN

/// Helpers the data tests share: data paths, external tools (python3, gzip) as independent
/// references, and an assertion that an error is one DANNError line naming the file.
enum DataFixtures {
    static let repository = TestPaths.repositoryData.path
    static let mnistDir = "\(repository)/mnist"
    static let svhnSample = "\(repository)/svhn-sample/train_32x32.mat"

    /// The genuine 2.6 MB prefix of the official SVHN train file: only in ../shared/data (a skip without it).
    static func svhnPrefix() throws -> String {
        try TestPaths.requireSharedData("svhn/partial/train_32x32.mat.first2686976bytes")
    }

    /// MNIST-M (133 MB, never committed): only in ../shared/data (a skip without it).
    static func mnistMArchive() throws -> String { try TestPaths.requireSharedData("mnist_m/mnist_m.tar.gz") }

    /// A data folder linking only the committed MNIST and SVHN sample. `data/` itself may also hold full sets
    /// fetched by scripts/download-data.sh, which would change the counts and notes some tests pin.
    private static let committedData = Result { () throws -> String in
        let dir = TestPaths.temporaryDirectory("committed-data")
        for name in ["mnist", "svhn-sample"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name),
                                                       withDestinationURL: TestPaths.repositoryData.appendingPathComponent(name))
        }
        return dir.path
    }
    static func committedDataDir() throws -> String { try committedData.get() }

    /// A data folder with the repository's MNIST and ../shared's MNIST-M (a skip naming it when absent);
    /// the caller removes it.
    static func mnistAndMNISTMDataDir() throws -> URL {
        let mnistM = (try mnistMArchive() as NSString).deletingLastPathComponent
        let dir = TestPaths.temporaryDirectory("mnist-mnistm-data")
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("mnist").path, withDestinationPath: mnistDir)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("mnist_m").path, withDestinationPath: mnistM)
        return dir
    }

    /// Runs a program and returns its stdout; fails the test when it exits non-zero.
    @discardableResult
    static func run(_ arguments: [String], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        let result = try ChildProcess.runTool("/usr/bin/env", arguments, stdin: stdin)
        if result.status != 0 {
            XCTFail("\(arguments.prefix(2).joined(separator: " ")) failed: \(result.stderr)", file: file, line: line)
        }
        return result.output
    }

    /// Runs a python3 script (numpy/scipy available) and returns its stdout as text.
    static func python(_ script: String) throws -> String {
        String(decoding: try run(["python3", "-c", script]), as: UTF8.self)
    }

    /// Decompresses a .gz file with the gzip tool (an independent decoder).
    static func gunzip(_ path: String) throws -> [UInt8] {
        // gzip's empty output for a missing file would otherwise reach the caller as data and fail it later,
        // far from the cause (or index past its end).
        guard FileManager.default.fileExists(atPath: path) else { throw FixtureError("\(path) not found") }
        return [UInt8](try run(["gzip", "-dc", path]))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Asserts `body` throws a DANNError naming `path` whose message contains `problem`.
    static func assertFileError<T>(_ path: String, _ problem: String, file: StaticString = #filePath, line: UInt = #line,
                                   _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected an error naming \(path)", file: file, line: line)
        } catch let error as DANNError {
            XCTAssertTrue(error.message.contains(path), "\(error.message) does not name \(path)", file: file, line: line)
            XCTAssertTrue(error.message.contains(problem), "\(error.message) does not say \(problem)", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "error is more than one line", file: file, line: line)
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
    }

    static func classCounts(_ labels: [UInt8]) -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }
}

/// A test input that is missing or malformed: thrown so that only the tests needing it fail.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class DataFixtureTests: XCTestCase {
    /// The gzip helper is itself checked, since other tests use it as their reference.
    func testGunzipHelperMatchesKnownSize() throws {
        let bytes = try DataFixtures.gunzip("\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")
        XCTAssertEqual(bytes.count, 10_008)
        XCTAssertEqual(Array(bytes.prefix(4)), [0, 0, 8, 1])
    }
}
