import XCTest
@testable import DANN

/// `--allreduce-dtype` in one process (docs/design.md §3.10): there is no exchange, so nothing is rounded and
/// the run is the Float32 run byte for byte. (The 16-bit exchange itself: CommunicatorMPITests and
/// DistributedAccumulationTests.)
final class AllreduceDTypeTests: XCTestCase {
    func testOneProcessDoesNotRound() throws {
        var models: [Data] = []
        for dtype in AllreduceDType.allCases {
            let out = TestPaths.temporaryDirectory("dtype-\(dtype.rawValue)")
            defer { try? FileManager.default.removeItem(at: out) }
            var c = TrainingConfig()
            c.source = .mnist
            c.target = .mnist
            c.dataDir = try distributedTrainingData()
            c.arch = "small"
            c.steps = 4
            c.batchSize = 16
            c.limitSource = 64
            c.limitTarget = 64
            c.out = out.path
            c.threads = 1
            c.allreduceDtype = dtype
            let trainer = try Trainer(config: c, communicator: SingleProcessCommunicator())
            XCTAssertEqual(try trainer.run(), .finished(step: 4))
            models.append(try finalModelBytes(out))
        }
        XCTAssertEqual(models[1], models[0], "bf16 at np=1")
        XCTAssertEqual(models[2], models[0], "fp16 at np=1")
    }

    /// The identity check names the setting: a 16-bit run does not resume as a Float32 one.
    func testDTypeIsPartOfTheRunIdentity() {
        var c = TrainingConfig()
        XCTAssertEqual(c.runIdentity["allreduce-dtype"], "f32")
        c.allreduceDtype = .bf16
        XCTAssertEqual(c.runIdentity["allreduce-dtype"], "bf16")
        XCTAssertFalse(TrainingConfig.resumableSettings.contains("allreduceDtype"))
        XCTAssertEqual(AllreduceDType.bf16.halfFormat, .bf16)
        XCTAssertNil(AllreduceDType.f32.halfFormat)
    }
}
