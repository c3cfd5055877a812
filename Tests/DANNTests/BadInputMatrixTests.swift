import Foundation
import XCTest
@testable import DANN

/// Bad flags, files and checkpoints given to the shipped binary, as a user or an attacker would: each must
/// end with exit status ≠ 0 (not a signal: a Swift trap is SIGILL/SIGTRAP), exactly one stderr line
/// "dann-dist: error: …" naming the flag or file, no run folder left behind, and a peak RSS under the
/// case's bound (measured for that one child with wait4; a clean start of the binary takes ~40 MB).
final class BadInputMatrixTests: XCTestCase {
    struct Case {
        let name: String
        let arguments: [String]
        /// Text the error line must contain: the flag or the file.
        let names: String
        var memoryBoundMB = 300
    }

    static let repositoryData = TestPaths.repositoryData.path
    static let pretrained = TestPaths.repositoryData.appendingPathComponent("pretrained/small-bn-mnist-mnist_m/model.safetensors").path
    static let work = TestPaths.temporaryDirectory("bad-input")
    /// A two-step run with checkpoints, the material for the checkpoint and resume cases.
    static var run: URL { work.appendingPathComponent("run") }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    func testEveryBadInputEndsWithOneLineAndBoundedMemory() throws {
        let binary = try ChildProcess.executable()
        try makeReferenceRun(binary)
        let cases = flagCases() + (try fileCases()) + (try checkpointCases())
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var environment = ChildProcess.environmentWithoutLauncher()
        environment["OMP_NUM_THREADS"] = "1"
        for item in cases {
            let out = Self.work.appendingPathComponent("out-\(UUID().uuidString)").path
            let arguments = item.arguments.map { $0 == "OUT" ? out : $0 }
            let result = try MeasuredRun.run(binary, arguments, environment: environment)
            let lines = result.stderr.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            let context = "\(item.name): dann-dist \(arguments.joined(separator: " "))\n\(result.stderr)"
            XCTAssertNil(result.signal, "ended by signal \(result.signal ?? 0): \(context)")
            XCTAssertNotEqual(result.status, 0, context)
            XCTAssertEqual(lines.count, 1, "not one line: \(context)")
            XCTAssertTrue(lines.first?.hasPrefix("dann-dist: error: ") ?? false, context)
            XCTAssertTrue(lines.first?.contains(item.names) ?? false, "does not name \(item.names): \(context)")
            XCTAssertLessThan(result.peakRSSBytes, item.memoryBoundMB << 20, "peak RSS \(result.peakRSSBytes >> 20) MB: \(context)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "left the run folder: \(context)")
        }
    }

    // MARK: - Flags

    func flagCases() -> [Case] {
        let bad: [(String, String)] = [
            ("--lr", "-1"), ("--lr", "nan"), ("--lr", "inf"), ("--momentum", "1"), ("--momentum", "nan"),
            ("--weight-decay", "-1"), ("--weight-decay", "inf"), ("--gamma", "nan"), ("--gamma", "-inf"),
            ("--alpha", "inf"), ("--beta", "nan"), ("--dropout", "1"), ("--dropout", "-0.5"),
            ("--domain-weight", "-1"), ("--domain-weight", "nan"), ("--lambda-max", "inf"), ("--clip-grad-norm", "0"),
            ("--clip-grad-norm", "nan"), ("--adam-beta1", "1"), ("--adam-beta2", "nan"), ("--adam-epsilon", "0"),
            ("--batch-size", "0"), ("--batch-size", "-5"), ("--epochs", "0"), ("--epochs", "-3"),
            ("--epochs", "1000000000000"), ("--steps", "0"), ("--steps", "99999999999999"), ("--eval-every", "-1"),
            ("--checkpoint-every", "-1"), ("--keep", "0"), ("--threads", "0"), ("--limit-source", "0"),
            ("--limit-target", "-1"), ("--bucket-mb", "inf"), ("--bucket-mb", "0"), ("--input-size", "30"),
            ("--arch", "resnet"), ("--source", "cifar"), ("--optimizer", "lbfgs"), ("--running-stats", "some"),
            ("--seed", "-1"), ("--lr", "0x"), ("--accumulate", "0"), ("--accumulate", "-1"), ("--accumulate", "abc"),
            ("--accumulate", "99999999999"), ("--allreduce-dtype", "f8"), ("--allreduce-dtype", "BF16"),
        ]
        var cases = bad.map { flag, value in
            Case(name: "\(flag) \(value)", arguments: ["train", "--data", Self.repositoryData, "--out", "OUT", flag, value],
                 names: flag)
        }
        cases.append(Case(name: "epochs and steps", arguments: ["train", "--out", "OUT", "--epochs", "2", "--steps", "3"], names: "--steps"))
        cases.append(Case(name: "resume without out", arguments: ["train", "--resume"], names: "--out"))
        cases.append(Case(name: "lr without value", arguments: ["train", "--out", "OUT", "--lr"], names: "--lr"))
        cases.append(Case(name: "bench threads", arguments: ["bench", "--threads", "-2"], names: "--threads"))
        return cases
    }

    // MARK: - Data files

    func fileCases() throws -> [Case] {
        let fm = FileManager.default
        func dataDirectory(_ label: String, mnist replace: [String: Data]) throws -> String {
            let dir = Self.work.appendingPathComponent("data-\(label)")
            try fm.createDirectory(at: dir.appendingPathComponent("mnist"), withIntermediateDirectories: true)
            for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
                let target = dir.appendingPathComponent("mnist/\(name)")
                if let bytes = replace[name] {
                    try bytes.write(to: target)
                } else {
                    try fm.createSymbolicLink(at: target, withDestinationURL: TestPaths.repositoryData.appendingPathComponent("mnist/\(name)"))
                }
            }
            return dir.path
        }
        let labels = try Data(contentsOf: TestPaths.repositoryData.appendingPathComponent("mnist/t10k-labels-idx1-ubyte.gz"))
        let images = try Data(contentsOf: TestPaths.repositoryData.appendingPathComponent("mnist/t10k-images-idx3-ubyte.gz"))
        let rawLabels = try Self.gunzip(labels)
        // Headers claiming 2^31 entries over the real (short) contents.
        var hugeLabels = rawLabels
        hugeLabels.replaceSubrange(4..<8, with: [0x80, 0, 0, 0])
        var hugeImages = try Self.gunzip(images).prefix(16 + 784 * 30)
        hugeImages.replaceSubrange(4..<8, with: [0x80, 0, 0, 0])
        var wrongCRC = images
        wrongCRC[wrongCRC.count - 6] ^= 0x5a  // inside the trailer's CRC-32
        var flipped = images
        flipped[flipped.count / 2] ^= 0x10
        let truncated = images.prefix(images.count / 3)
        var negative = rawLabels
        negative.replaceSubrange(4..<8, with: [0xff, 0xff, 0xff, 0xfb])

        let eval = { (dir: String) in ["eval", "--checkpoint", Self.pretrained, "--data", dir] }
        let t10kLabels = "t10k-labels-idx1-ubyte.gz", t10kImages = "t10k-images-idx3-ubyte.gz"
        var cases = [
            Case(name: "labels claim 2^31", arguments: eval(try dataDirectory("huge-labels", mnist: [t10kLabels: try Self.gzip(hugeLabels)])), names: t10kLabels),
            Case(name: "both claim 2^31",
                 arguments: eval(try dataDirectory("huge-both", mnist: [t10kLabels: try Self.gzip(hugeLabels), t10kImages: try Self.gzip(Data(hugeImages))])),
                 names: "t10k-"),
            Case(name: "gzip CRC wrong", arguments: eval(try dataDirectory("crc", mnist: [t10kImages: wrongCRC])), names: t10kImages),
            Case(name: "deflate byte flipped", arguments: eval(try dataDirectory("flip", mnist: [t10kImages: flipped])), names: t10kImages),
            Case(name: "gzip truncated", arguments: eval(try dataDirectory("trunc", mnist: [t10kImages: Data(truncated)])), names: t10kImages),
            Case(name: "not gzip", arguments: eval(try dataDirectory("garbage", mnist: [t10kImages: Data("hello".utf8)])), names: t10kImages),
            Case(name: "label count negative", arguments: eval(try dataDirectory("negative", mnist: [t10kLabels: try Self.gzip(negative)])), names: t10kLabels),
            Case(name: "training labels 2^31",
                 arguments: ["train", "--source", "mnist", "--target", "mnist", "--steps", "1", "--out", "OUT", "--data",
                             try dataDirectory("train-huge", mnist: ["train-labels-idx1-ubyte.gz": try Self.gzip(hugeLabels)])],
                 names: "train-labels-idx1-ubyte.gz"),
            Case(name: "data folder missing", arguments: ["train", "--source", "mnist", "--target", "mnist", "--out", "OUT",
                                                          "--data", Self.work.appendingPathComponent("nowhere").path], names: "nowhere"),
        ]
        // SVHN: the sample's MAT file cut short.
        let svhn = Self.work.appendingPathComponent("data-svhn")
        try fm.createDirectory(at: svhn.appendingPathComponent("svhn"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: svhn.appendingPathComponent("mnist"), withDestinationURL: TestPaths.repositoryData.appendingPathComponent("mnist"))
        let mat = try Data(contentsOf: TestPaths.repositoryData.appendingPathComponent("svhn-sample/train_32x32.mat"))
        try mat.prefix(mat.count / 2).write(to: svhn.appendingPathComponent("svhn/train_32x32.mat"))
        cases.append(Case(name: "SVHN MAT truncated", arguments: ["train", "--out", "OUT", "--steps", "1", "--data", svhn.path],
                          names: "train_32x32.mat"))
        return cases
    }

    // MARK: - Checkpoints

    func checkpointCases() throws -> [Case] {
        let fm = FileManager.default
        let model = try Data(contentsOf: URL(fileURLWithPath: Self.pretrained))
        func file(_ label: String, _ bytes: Data) throws -> String {
            let url = Self.work.appendingPathComponent("\(label).safetensors")
            try bytes.write(to: url)
            return url.path
        }
        let nanWeight = try file("nan-weight", try Self.poke(model, tensor: "E.0.weight", element: 7, value: .nan))
        let infBias = try file("inf-bias", try Self.poke(model, tensor: "G_c.6.bias", element: 3, value: -.infinity))
        let negativeVariance = try file("negative-var", try Self.poke(model, tensor: "E.1.running_var", element: 0, value: -1))
        let hugeInput = try file("huge-input", try Self.rewriteHeader(model) { $0.replacingOccurrences(of: "\"input_size\":\"28\"", with: "\"input_size\":\"100000\"") })
        let truncated = try file("truncated", model.prefix(model.count - 100))
        let longHeader = try file("long-header", Data([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]) + model.dropFirst(8))

        // Resume: copies of the reference run, each spoiled in one way.
        func spoiledRun(_ label: String, _ spoil: (URL) throws -> Void) throws -> String {
            let copy = Self.work.appendingPathComponent("run-\(label)")
            try fm.copyItem(at: Self.run, to: copy)
            try spoil(copy.appendingPathComponent("checkpoints"))
            return copy.path
        }
        func latest(_ checkpoints: URL) throws -> URL {
            let name = try String(contentsOf: checkpoints.appendingPathComponent("latest"), encoding: .utf8)
            return checkpoints.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let nanMomentum = try spoiledRun("nan-momentum") { checkpoints in
            let state = try latest(checkpoints).appendingPathComponent(TrainerState.fileName)
            try Self.poke(try Data(contentsOf: state), tensor: "momentum.E.0.weight", element: 0, value: .nan).write(to: state)
        }
        let danglingLatest = try spoiledRun("dangling") { try "step-99999999\n".write(to: $0.appendingPathComponent("latest"), atomically: true, encoding: .utf8) }
        let nanModel = try spoiledRun("nan-model") { checkpoints in
            let weights = try latest(checkpoints).appendingPathComponent(ModelFile.fileName)
            try Self.poke(try Data(contentsOf: weights), tensor: "G_d.0.weight", element: 11, value: .nan).write(to: weights)
        }
        let resume = { (run: String) in ["train", "--resume", "--out", run, "--data", Self.repositoryData] }
        let digit = TestPaths.repositoryData.appendingPathComponent("../Tests").path  // any folder: predict fails on the model first
        return [
            Case(name: "init NaN weight", arguments: ["train", "--out", "OUT", "--arch", "small-bn", "--init", nanWeight], names: nanWeight),
            Case(name: "eval NaN weight", arguments: ["eval", "--checkpoint", nanWeight, "--data", Self.repositoryData], names: "E.0.weight"),
            Case(name: "predict NaN weight", arguments: ["predict", "--checkpoint", nanWeight, "--json", digit], names: nanWeight),
            Case(name: "eval infinite bias", arguments: ["eval", "--checkpoint", infBias, "--data", Self.repositoryData], names: "G_c.6.bias"),
            Case(name: "eval negative variance", arguments: ["eval", "--checkpoint", negativeVariance, "--data", Self.repositoryData], names: "running_var"),
            Case(name: "input_size 100000", arguments: ["eval", "--checkpoint", hugeInput, "--data", Self.repositoryData], names: "input_size"),
            Case(name: "model truncated", arguments: ["eval", "--checkpoint", truncated, "--data", Self.repositoryData], names: truncated),
            Case(name: "header length 2^63", arguments: ["eval", "--checkpoint", longHeader, "--data", Self.repositoryData], names: longHeader),
            Case(name: "checkpoint missing", arguments: ["eval", "--checkpoint", Self.work.appendingPathComponent("none.safetensors").path], names: "none.safetensors"),
            Case(name: "resume NaN momentum", arguments: resume(nanMomentum), names: "momentum.E.0.weight"),
            Case(name: "resume dangling latest", arguments: resume(danglingLatest), names: "latest"),
            Case(name: "resume NaN model", arguments: resume(nanModel), names: "G_d.0.weight"),
            Case(name: "resume nothing there", arguments: ["train", "--resume", "--out", Self.work.appendingPathComponent("never").path], names: "never"),
        ]
    }

    // MARK: - Helpers

    /// A short real run (small network, MNIST → MNIST, two steps) whose checkpoints the resume cases spoil.
    func makeReferenceRun(_ binary: String) throws {
        guard !FileManager.default.fileExists(atPath: Self.run.path) else { return }
        let result = try ChildProcess.run(binary, ["train", "--source", "mnist", "--target", "mnist", "--arch", "small",
                                                   "--steps", "2", "--batch-size", "32", "--limit-source", "64", "--limit-target", "64",
                                                   "--eval-every", "100", "--data", Self.repositoryData, "--out", Self.run.path],
                                          environment: ChildProcess.environmentWithoutLauncher())
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    static func gzip(_ data: Data) throws -> Data { try pipe(data, through: "gzip -c") }
    static func gunzip(_ data: Data) throws -> Data { try pipe(data, through: "gzip -dc") }

    static func pipe(_ data: Data, through command: String) throws -> Data {
        let packed = work.appendingPathComponent(UUID().uuidString), unpacked = work.appendingPathComponent(UUID().uuidString)
        try data.write(to: packed)
        let result = try ChildProcess.runTool("/bin/sh", ["-c", "\(command) < '\(packed.path)' > '\(unpacked.path)'"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try Data(contentsOf: unpacked)
    }

    /// The safetensors bytes with one F32 element of `tensor` replaced (offsets read from the header JSON).
    static func poke(_ file: Data, tensor: String, element: Int, value: Float) throws -> Data {
        let headerLength = Int(file.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: file.subdata(in: 8..<8 + headerLength)) as? [String: Any])
        let entry = try XCTUnwrap(header[tensor] as? [String: Any], "no tensor \(tensor)")
        let begin = try XCTUnwrap((entry["data_offsets"] as? [Int])?.first)
        var bytes = file
        let at = 8 + headerLength + begin + 4 * element
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(at..<at + 4, with: $0) }
        return bytes
    }

    /// The safetensors bytes with the header text transformed (its length field rewritten to match).
    static func rewriteHeader(_ file: Data, _ transform: (String) -> String) throws -> Data {
        let headerLength = Int(file.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let text = transform(String(decoding: file.subdata(in: 8..<8 + headerLength), as: UTF8.self))
        XCTAssertNotEqual(text, String(decoding: file.subdata(in: 8..<8 + headerLength), as: UTF8.self), "header unchanged")
        var length = UInt64(text.utf8.count).littleEndian
        return Data(bytes: &length, count: 8) + Data(text.utf8) + file.dropFirst(8 + headerLength)
    }
}
