import Foundation
import XCTest
@testable import DANN

/// Replays every committed fuzz corpus file (`Fuzz/corpus/TARGET/`: seeds and the inputs that once crashed
/// a reader) through the same per-target functions `scripts/fuzz.sh` fuzzes (`FuzzTargets`, compiled into
/// both), in this process and without the fuzzer. Each input must load or end in a `DANNError`; a trap
/// would take the whole test process down, which is the failure this guards against. Crash inputs are
/// named `crash-*` and must be rejected.
final class FuzzCorpusReplayTests: XCTestCase {
    private var tmp: URL!
    override func setUp() { tmp = TestPaths.temporaryDirectory("fuzz-replay") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    static let corpus = TestPaths.packageRoot.appendingPathComponent("Fuzz/corpus")

    func testEveryTargetHasACorpusAndNothingElseIsThere() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        XCTAssertEqual(folders, FuzzTargets.Target.allCases.map(\.rawValue).sorted())
    }

    func testIDX() throws { try replay(.idx) }
    func testMAT() throws { try replay(.mat) }
    func testTar() throws { try replay(.tar) }
    func testImage() throws { try replay(.image) }
    func testSafeTensors() throws { try replay(.safetensors) }
    func testCheckpoint() throws { try replay(.checkpoint) }
    func testConfig() throws { try replay(.config) }
    func testMNISTMLabels() throws { try replay(.mnistm) }

    /// The synthesized checkpoint is the file the target loads: length, header, data sized by the header.
    func testCheckpointSynthesisSizesTheDataFromTheHeader() throws {
        let header = Array(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        let file = FuzzTargets.synthesizeSafeTensors(header + [0, 0, 0, 0x80, 0x3F])
        XCTAssertEqual(file.count, 8 + header.count + 8)
        let decoded = try SafeTensors.decode(file)
        XCTAssertEqual(decoded.tensors["w"]?.float32Values, [1, 1])
    }

    private func replay(_ target: FuzzTargets.Target) throws {
        let folder = Self.corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertFalse(names.isEmpty, "\(folder.path) holds no inputs")
        let scratch = tmp.appendingPathComponent(target.rawValue).path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var loaded: [String] = []
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
            do {
                try FuzzTargets.run(target, bytes, directory: scratch)
                loaded.append(name)
                XCTAssertFalse(name.hasPrefix("crash-"), "\(target.rawValue)/\(name): a crash input loaded without an error")
            } catch let error as DANNError {
                XCTAssertFalse(error.message.isEmpty, "\(target.rawValue)/\(name): empty DANNError")
            } catch {
                XCTFail("\(target.rawValue)/\(name): \(error)")
            }
        }
        // The genuine seeds load, so the fuzzer starts from inputs that reach past the readers' first checks.
        for name in Self.mustLoad[target] ?? [] {
            XCTAssertTrue(loaded.contains(name), "\(target.rawValue)/\(name) is a genuine file but did not load")
        }
        if target == .safetensors {
            // No seed is a whole model (the checkpoint target reaches those), but these decode.
            for name in ["seed-three.safetensors", "seed-empty.safetensors"] {
                XCTAssertNoThrow(try SafeTensors.read(path: folder.appendingPathComponent(name).path), name)
            }
        }
    }

    /// Seeds that are complete genuine files (or, for checkpoint, genuine headers) and must load.
    static let mustLoad: [FuzzTargets.Target: [String]] = [
        .idx: ["seed-images-2.idx", "seed-images-2.idx.gz", "seed-labels-8.idx", "seed-labels-8.idx.gz"],
        .mat: ["seed-svhn-2-plain.mat", "seed-svhn-2-zlib.mat"],
        .tar: ["seed-longname.tar", "seed-mnistm-2.tar", "seed-mnistm-2.tar.gz", "seed-ustar-prefix.tar"],
        .image: ["seed-mnistm-00000000.png", "seed-rgb-32x32.jpg", "seed-progressive-8x8.jpg", "seed-gray-8x8.jpg",
                 "seed-cmyk-8x8.jpg"],
        .checkpoint: ["seed-small-model.json", "seed-small-bn-model.json", "seed-small-model-halves.json"],
        .config: ["seed-empty.json", "seed-adam.json", "seed-trainer-config.json"],
        .mnistm: ["seed-labels.txt", "seed-labels-crlf.txt"],
    ]
}
