import Foundation
import XCTest
@testable import DANN

/// The analytic FLOP count against hand counts, and `dann-dist bench --json`'s shape (no timing asserted).
final class BenchmarkTests: XCTestCase {
    /// small, by hand: conv 3→32 k5 on 28² → 24² (patch 75), pool → 12², conv 32→48 k5 → 8² (patch 800),
    /// pool → 4², 768 features; C 768·100 + 100·100 + 100·10, D 768·100 + 100·2 multiply-adds per image.
    func testStepFLOPsSmallByHand() {
        for b in [1, 7, 128] {
            let conv1 = 32.0 * 24 * 24 * 75, conv2 = 48.0 * 8 * 8 * 800
            let images = 2.0 * Double(b)
            let c = 768.0 * 100 + 100 * 100 + 100 * 10, d = 768.0 * 100 + 100 * 2
            let f = StepFLOPs(architecture: .small, batch: b)
            XCTAssertEqual(f.extractorForward, 2 * images * (conv1 + conv2))
            // The first conv needs no input gradient: dW only; the second dW and dX.
            XCTAssertEqual(f.extractorBackward, 2 * images * (conv1 + 2 * conv2))
            XCTAssertEqual(f.headsForward, 2 * (Double(b) * c + images * d))
            XCTAssertEqual(f.headsBackward, 4 * (Double(b) * c + images * d))
        }
        XCTAssertEqual(StepFLOPs(architecture: .small, batch: 128).total, 5_376_153_600)
    }

    /// seed, by hand: convs 3→64 on 28² (patch 75), 64→64 on 14² and 64→128 on 7² (patch 1600).
    func testStepFLOPsSeedByHand() {
        let b = 128.0
        let convs = [64.0 * 784 * 75, 64.0 * 196 * 1600, 128.0 * 49 * 1600]
        let c = 6272.0 * 3072 + 3072 * 2048 + 2048 * 10, d = 6272.0 * 1024 + 1024 * 1024 + 1024 * 2
        let extractor = 2 * 2 * b * (convs.reduce(0, +) + (2 * convs.reduce(0, +) - convs[0]))
        let heads = 3 * 2 * (b * c + 2 * b * d)
        XCTAssertEqual(StepFLOPs(architecture: .seed, batch: 128).total, extractor + heads)
        XCTAssertEqual(StepFLOPs(architecture: .seed, batch: 128).total, 81_219_551_232)
    }

    /// Runs the built executable on one small step and checks the JSON keys and their consistency.
    func testBenchJSONShape() throws {
        let b = 16
        let result = try ChildProcess.runCLI(["bench", "--arch", "small", "--steps", "1", "--warmup", "0", "--batch-size", String(b),
                                              "--threads", "1", "--peak-size", "256", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let data = result.output
        XCTAssertEqual(result.stdout.split(separator: "\n").count, 1, "one line (scripts/bench.sh reads a line per run)")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any],
                                   String(decoding: data, as: UTF8.self))
        for key in ["images_per_s", "step_s", "gflops", "sgemm_peak_gflops", "fraction_of_peak", "flops_per_step"] {
            XCTAssertNotNil(object[key] as? Double, key)
        }
        let imagesPerSecond = try XCTUnwrap(object["images_per_s"] as? Double)
        let stepSeconds = try XCTUnwrap(object["step_s"] as? Double)
        let gflops = try XCTUnwrap(object["gflops"] as? Double), peak = try XCTUnwrap(object["sgemm_peak_gflops"] as? Double)
        XCTAssertGreaterThan(stepSeconds, 0)
        XCTAssertEqual(imagesPerSecond * stepSeconds, Double(2 * b), accuracy: 1e-6 * Double(b))
        XCTAssertEqual(try XCTUnwrap(object["flops_per_step"] as? Double), StepFLOPs(architecture: .small, batch: b).total)
        XCTAssertEqual(gflops, StepFLOPs(architecture: .small, batch: b).total / stepSeconds / 1e9, accuracy: 1e-6 * gflops)
        XCTAssertGreaterThan(peak, 0)
        XCTAssertEqual(try XCTUnwrap(object["fraction_of_peak"] as? Double), gflops / peak, accuracy: 1e-9 * gflops / peak)
        let phases = try XCTUnwrap(object["phases_ms"] as? [String: Double])
        XCTAssertEqual(Set(phases.keys), ["extractor_forward", "heads", "extractor_backward", "optimizer"])
        XCTAssertEqual(object["arch"] as? String, "small")
        XCTAssertEqual(object["batch_size"] as? Int, b)
        XCTAssertEqual(object["threads"] as? Int, 1)
        let layers = try XCTUnwrap(object["layers_ms"] as? [String: Double])
        XCTAssertNotNil(layers["E0 Conv2D forward"])
    }

    /// What a scale model needs from the JSON, against hand counts: small-bn's 206,752 parameters (README), every
    /// gradient range handed over exactly once and in time order, and its batch norm's reductions — five layers
    /// (E: 32 and 48 channels; C: 100, 100; D: 100), each 2C + 2C Doubles in forward and 4C in backward.
    func testBenchJSONHasWhatTheScaleModelReads() throws {
        let result = try ChildProcess.runCLI(["bench", "--arch", "small-bn", "--steps", "2", "--warmup", "1", "--batch-size", "8",
                                              "--threads", "1", "--peak-size", "0", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: result.output) as? [String: Any], result.stdout)
        XCTAssertEqual(object["parameters"] as? Int, 206_752)
        let ready = try XCTUnwrap(object["gradient_ready"] as? [[String: Any]])
        let floats = ready.compactMap { $0["floats"] as? Int }, times = ready.compactMap { $0["ms"] as? Double }
        XCTAssertEqual(floats.count, ready.count)
        XCTAssertEqual(floats.reduce(0, +), 206_752)
        XCTAssertEqual(times, times.sorted())
        XCTAssertGreaterThan(times.first ?? 0, 0)
        XCTAssertEqual(object["statistics_allreduces_per_step"] as? Int, 5 * 3)
        XCTAssertEqual(object["statistics_doubles_per_step"] as? Int, 8 * (32 + 48 + 100 + 100 + 100))

        let plain = try ChildProcess.runCLI(["bench", "--arch", "small", "--steps", "1", "--warmup", "0", "--batch-size", "4",
                                             "--threads", "1", "--peak-size", "0", "--json"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let small = try XCTUnwrap(try JSONSerialization.jsonObject(with: plain.output) as? [String: Any])
        XCTAssertEqual(small["parameters"] as? Int, 205_992)
        XCTAssertEqual(small["statistics_allreduces_per_step"] as? Int, 0)
    }

    /// A bad flag value is one error line and a non-zero exit, not a trap.
    func testBenchRejectsUnknownArchitecture() throws {
        let result = try ChildProcess.runCLI(["bench", "--arch", "huge", "--steps", "1"])
        XCTAssertEqual(result.status, 1)
        let text = result.stderr
        XCTAssertTrue(text.contains("unknown architecture 'huge'"), text)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
    }
}
