import Foundation
import XCTest
@testable import DANN

/// `Evaluator` and `dann-dist eval` on the real MNIST test set with an untrained `small` model, against an
/// argmax loop written here over inputs built here from the gzip tool's bytes.
final class EvaluatorTests: XCTestCase {
    /// One model and its single-process MNIST result, shared by the tests (a full pass is the slow part).
    /// Each is computed once, on first use; if its files are missing, every test that asks fails (or skips)
    /// on its own instead of the static initialiser taking the whole test process down.
    nonisolated(unsafe) private static let loadedModel = Result { try EvalFixtures.smallModel() }
    private static let mnistOnlyData = Result { try EvalFixtures.mnistOnlyDataDir() }
    private static let singleProcessResult = Result { () throws -> EvalResult in
        let dir = try EvaluatorTests.dataDir
        let evaluator = Evaluator(dataDir: dir.path, preprocessor: Preprocessor(inputSize: 28, normalize: false),
                                  communicator: SingleProcessCommunicator())
        guard let result = try evaluator.evaluate(EvaluatorTests.model).first else { throw FixtureError("no MNIST result under \(dir.path)") }
        return result
    }

    /// The reference: inputs from `EvalFixtures.mnistInput`, logits from `classify` 500 at a time, argmax here.
    private static let referenceResult = Result { () throws -> (digits: [Int], margins: [Float]) in
        let model = try EvaluatorTests.model
        var digits: [Int] = [], margins: [Float] = []
        let chunk = 500
        var input = [Float](repeating: 0, count: chunk * 3 * 784)
        for start in stride(from: 0, to: 10_000, by: chunk) {
            try input.withUnsafeMutableBufferPointer { buffer in
                for i in 0..<chunk { try EvalFixtures.mnistInput(start + i, into: buffer.baseAddress! + i * 3 * 784) }
                let logits = model.classify(buffer.baseAddress!, count: chunk)
                for i in 0..<chunk {
                    let (digit, margin) = EvalFixtures.top(logits + i * 10)
                    digits.append(digit)
                    margins.append(margin)
                }
            }
        }
        return (digits, margins)
    }

    private static var model: DANNModel { get throws { try loadedModel.get() } }
    private static var dataDir: URL { get throws { try mnistOnlyData.get() } }
    private static var singleProcess: EvalResult { get throws { try singleProcessResult.get() } }
    private static var reference: (digits: [Int], margins: [Float]) { get throws { try referenceResult.get() } }

    /// Images whose top two logits are so close that a different summation order could swap them.
    private static var nearTies: Int { get throws { try reference.margins.filter { $0 < EvalFixtures.nearTie }.count } }

    func testIndependentDecodingMatchesKnownStatistics() throws {
        // The reference data itself: SOURCES.md's class counts and first labels of MNIST test.
        let labels = try EvalFixtures.mnistTest().labels
        XCTAssertEqual(DataFixtures.classCounts(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        XCTAssertEqual(Array(labels.prefix(10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    }

    func testMNISTAccuracyEqualsIndependentArgmaxLoop() throws {
        let labels = try EvalFixtures.mnistTest().labels
        let reference = try Self.reference, nearTies = try Self.nearTies
        // An untrained model that answered one digit for everything would make any count "right" by luck.
        XCTAssertGreaterThanOrEqual(Set(reference.digits).count, 4, "predictions should vary")
        let expected = zip(reference.digits, labels).filter { $0 == Int($1) }.count
        let result = try Self.singleProcess
        XCTAssertEqual(result.dataset, .mnist)
        XCTAssertEqual(result.count, 10_000)
        XCTAssertLessThanOrEqual(abs(result.correct - expected), nearTies, "evaluator \(result.correct), reference \(expected)")
        XCTAssertEqual(result.accuracy, Double(result.correct) / 10_000, accuracy: 1e-15)
        print("untrained small model: \(result.correct)/10000 correct, \(nearTies) near ties, \(Set(reference.digits).count) distinct answers")
    }

    func testChunkedCountEqualsSingleImageClassifyOnSubset() throws {
        let n = 300
        let model = try Self.model, dataDir = try Self.dataDir, labels = try EvalFixtures.mnistTest().labels
        let full = try XCTUnwrap(loadEvalSlice(.mnist, dataDir: dataDir.path, rank: 0, size: 1))
        let subset = RawImages(count: n, channels: full.channels, height: full.height, width: full.width,
                               pixels: Array(full.pixels.prefix(n * full.imageBytes)), labels: Array(full.labels.prefix(n)))
        // Chunks of 7 so the subset ends in a partial chunk.
        let evaluator = Evaluator(dataDir: dataDir.path, preprocessor: Preprocessor(inputSize: 28, normalize: false),
                                  communicator: SingleProcessCommunicator(), chunkSize: 7)
        let counted = evaluator.countCorrect(model, subset, subset.labels.map { Int32($0) })

        var single = 0, ties = 0
        var input = [Float](repeating: 0, count: 3 * 784)
        for i in 0..<n {
            try input.withUnsafeMutableBufferPointer { buffer in
                try EvalFixtures.mnistInput(i, into: buffer.baseAddress!)
                let (digit, margin) = EvalFixtures.top(model.classify(buffer.baseAddress!, count: 1))
                if digit == Int(labels[i]) { single += 1 }
                if margin < EvalFixtures.nearTie { ties += 1 }
            }
        }
        XCTAssertGreaterThan(single, 0)
        XCTAssertLessThanOrEqual(abs(counted - single), ties, "chunked \(counted), one image at a time \(single)")
        print("subset of \(n): \(single) correct one at a time, \(counted) in chunks of 7, \(ties) near ties")
    }

    func testRankSlicesSumToSingleProcess() throws {
        let model = try Self.model, dataDir = try Self.dataDir, singleProcess = try Self.singleProcess
        // 10000 over 3 ranks is uneven (3334, 3333, 3333), which exercises the remainder rule.
        var correct = 0, count = 0
        var perRank: [EvalResult] = []
        for rank in 0..<3 {
            let evaluator = Evaluator(dataDir: dataDir.path, preprocessor: Preprocessor(inputSize: 28, normalize: false),
                                      communicator: EvalTestCommunicator(rank: rank, size: 3))
            let local = try XCTUnwrap(try evaluator.localCounts(model).first)
            perRank.append(local)
            correct += local.correct
            count += local.count
        }
        XCTAssertEqual(perRank.map(\.count), [3334, 3333, 3333])
        XCTAssertEqual(count, singleProcess.count)
        XCTAssertLessThanOrEqual(abs(correct - singleProcess.correct), try Self.nearTies)

        // The collective path: rank 0's evaluate adds what ranks 1 and 2 would contribute, in one reduction.
        let others = [Double(perRank[1].correct + perRank[2].correct), Double(perRank[1].count + perRank[2].count)]
        let communicator = EvalTestCommunicator(rank: 0, size: 3, othersDoubles: others)
        let evaluator = Evaluator(dataDir: dataDir.path, preprocessor: Preprocessor(inputSize: 28, normalize: false),
                                  communicator: communicator)
        let total = try XCTUnwrap(try evaluator.evaluate(model).first)
        XCTAssertEqual(total.count, 10_000)
        XCTAssertEqual(total.correct, correct)
        XCTAssertEqual(communicator.doubleReductions, 1)
        // A second call reuses the cached slice and gives the same answer.
        XCTAssertEqual(try evaluator.evaluate(model).first, total)
    }

    func testOnlyPresentTestSetsAreEvaluated() throws {
        let model = try Self.model
        let empty = TestPaths.temporaryDirectory("eval-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertEqual(Evaluator.presentTestSets(dataDir: empty.path), [])
        XCTAssertEqual(Evaluator.presentTestSets(dataDir: try Self.dataDir.path), [.mnist])
        // The committed SVHN sample is train images only: it is no test set.
        XCTAssertEqual(Evaluator.presentTestSets(dataDir: try DataFixtures.committedDataDir()), [.mnist])
        let evaluator = Evaluator(dataDir: empty.path, preprocessor: Preprocessor(inputSize: 28, normalize: false),
                                  communicator: SingleProcessCommunicator())
        XCTAssertEqual(try evaluator.evaluate(model), [])
    }

    func testInputSizeMismatchIsAnError() throws {
        let model = try Self.model
        let evaluator = Evaluator(dataDir: try Self.dataDir.path, preprocessor: Preprocessor(inputSize: 32, normalize: false),
                                  communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try evaluator.evaluate(model)) { error in
            XCTAssertTrue((error as? DANNError)?.message.contains("32") ?? false, "\(error)")
        }
    }

    // MARK: the command

    func testEvalJSONMatchesLibrary() throws {
        let model = try Self.model, dataDir = try Self.dataDir, singleProcess = try Self.singleProcess
        let dir = TestPaths.temporaryDirectory("eval-ckpt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: file)
        // The file itself and the folder holding it designate the same checkpoint.
        for checkpoint in [file, dir.path] {
            let run = try EvalFixtures.runCLI(["eval", "--checkpoint", checkpoint, "--data", dataDir.path, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            let json = try EvalFixtures.parseJSON(run.stdout)
            XCTAssertEqual(Array(json.keys), ["mnist_test"])
            let entry = try XCTUnwrap(json["mnist_test"] as? [String: Any])
            XCTAssertEqual(entry["correct"] as? Int, singleProcess.correct)
            XCTAssertEqual(entry["n"] as? Int, 10_000)
            XCTAssertEqual(try XCTUnwrap(entry["accuracy"] as? Double), singleProcess.accuracy, accuracy: 1e-12)
        }
    }

    func testEvalHonoursNormalizeMetadata() throws {
        let model = try Self.model
        let dir = TestPaths.temporaryDirectory("eval-norm")
        let data = try EvalFixtures.mnistSubsetDataDir(count: 1000)
        defer { for d in [dir, data] { try? FileManager.default.removeItem(at: d) } }
        let file = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: file, metadata: ["normalize": "true"])
        func library(normalize: Bool) throws -> EvalResult {
            try XCTUnwrap(Evaluator(dataDir: data.path, preprocessor: Preprocessor(inputSize: 28, normalize: normalize),
                                    communicator: SingleProcessCommunicator()).evaluate(model).first)
        }
        let normalized = try library(normalize: true), plain = try library(normalize: false)
        XCTAssertEqual(normalized.count, 1000)
        // Otherwise the test could not tell whether the metadata was read.
        XCTAssertNotEqual(normalized.correct, plain.correct)
        let run = try EvalFixtures.runCLI(["eval", "--checkpoint", file, "--data", data.path, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let entry = try XCTUnwrap(try EvalFixtures.parseJSON(run.stdout)["mnist_test"] as? [String: Any])
        XCTAssertEqual(entry["correct"] as? Int, normalized.correct)
        XCTAssertTrue(try InferenceCheckpoint.open(file).normalize)
    }

    func testEvalTextReportsEveryTestSetPresent() throws {
        let data = try DataFixtures.mnistAndMNISTMDataDir()
        let model = try Self.model, singleProcess = try Self.singleProcess
        let dir = TestPaths.temporaryDirectory("eval-all")
        defer { for d in [dir, data] { try? FileManager.default.removeItem(at: d) } }
        // MNIST and MNIST-M but no SVHN test set.
        XCTAssertEqual(Evaluator.presentTestSets(dataDir: data.path), [.mnist, .mnistM])
        let file = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: file)
        let run = try EvalFixtures.runCLI(["eval", "--checkpoint", file, "--data", data.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, run.stdout)
        // Test-set sizes from SOURCES.md.
        XCTAssertTrue(lines.contains { $0.hasPrefix("mnist_test ") && $0.hasSuffix("(\(singleProcess.correct)/10000)") }, run.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("mnist_m_test ") && $0.hasSuffix("/9001)") }, run.stdout)
    }

    func testEvalErrorsAreOneLineNamingTheFile() throws {
        let model = try Self.model, dataDir = try Self.dataDir
        let dir = TestPaths.temporaryDirectory("eval-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: good)

        let missing = dir.appendingPathComponent("nothing-here.safetensors").path
        EvalFixtures.assertOneLineError(try EvalFixtures.runCLI(["eval", "--checkpoint", missing, "--data", dataDir.path]),
                                        naming: missing, "no such file")

        let truncated = dir.appendingPathComponent("truncated.safetensors").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        EvalFixtures.assertOneLineError(try EvalFixtures.runCLI(["eval", "--checkpoint", truncated, "--data", dataDir.path]),
                                        naming: truncated, "truncated")

        let emptyFolder = dir.appendingPathComponent("empty-run").path
        try FileManager.default.createDirectory(atPath: emptyFolder, withIntermediateDirectories: true)
        EvalFixtures.assertOneLineError(try EvalFixtures.runCLI(["eval", "--checkpoint", emptyFolder, "--data", dataDir.path]),
                                        naming: emptyFolder)

        let noData = dir.appendingPathComponent("no-data").path
        try FileManager.default.createDirectory(atPath: noData, withIntermediateDirectories: true)
        EvalFixtures.assertOneLineError(try EvalFixtures.runCLI(["eval", "--checkpoint", good, "--data", noData]),
                                        naming: noData, "no test set")

        // A present but corrupt test file: MNIST test images cut short.
        let badData = dir.appendingPathComponent("bad-data").path
        try FileManager.default.createDirectory(atPath: "\(badData)/mnist", withIntermediateDirectories: true)
        let images = try Data(contentsOf: URL(fileURLWithPath: "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"))
        try images.prefix(5000).write(to: URL(fileURLWithPath: "\(badData)/mnist/t10k-images-idx3-ubyte.gz"))
        try FileManager.default.copyItem(atPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz",
                                         toPath: "\(badData)/mnist/t10k-labels-idx1-ubyte.gz")
        EvalFixtures.assertOneLineError(try EvalFixtures.runCLI(["eval", "--checkpoint", good, "--data", badData]),
                                        naming: "\(badData)/mnist/t10k-images-idx3-ubyte.gz")
    }
}
