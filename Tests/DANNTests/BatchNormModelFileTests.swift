import XCTest
@testable import DANN

/// small-bn's tensors under PyTorch's names (running statistics and `num_batches_tracked` included), their
/// round trip through model.safetensors, and an independent numpy forward of the saved file in eval mode
/// (PyTorch's semantics: running statistics, no dropout) against the model's own logits.
final class BatchNormModelFileTests: XCTestCase {
    func testSmallBNNamesAndCounts() throws {
        let model = try DANNModel(architecture: .smallBN)
        // small (205,992) + γ and β of E.1 (32), E.5 (48), G_c.1, G_c.4, G_d.1 (100 each)
        XCTAssertEqual(model.parameterCount, 205_992 + 2 * (32 + 48 + 300))
        XCTAssertEqual(model.batchNorms.map(\.name), ["E.1", "E.5", "G_c.1", "G_c.4", "G_d.1"])
        let names = ModelFile.tensors(of: model).map(\.name)
        XCTAssertTrue(names.contains("E.5.running_var"))
        XCTAssertEqual(ModelFile.tensors(of: model).first { $0.name == "G_d.1.num_batches_tracked" }?.dtype, "I64")
        XCTAssertEqual(try DANNModel(architecture: .seedBN).batchNorms.map(\.name),
                       ["E.1", "E.5", "E.9", "G_c.1", "G_c.4", "G_d.1", "G_d.4"])
    }

    /// A trained-looking model: random weights, running statistics away from (0, 1), a nonzero counter.
    func perturbedModel() throws -> DANNModel {
        let model = try DANNModel(architecture: .smallBN)
        model.initialize(seed: 4)
        var rng = TestRandom(41)
        for (i, (_, norm)) in model.batchNorms.enumerated() {
            for c in 0..<norm.channels {
                norm.runningMean[c] = Float(rng.uniform(-0.5, 0.5))
                norm.runningVariance[c] = Float(rng.uniform(0.2, 3))
            }
            norm.batchesTracked = Int64(100 + i)
        }
        for e in model.arena.entries where e.shape.count == 1 {
            let p = model.arena.parameter(e)
            for i in 0..<p.count { p[i] += Float(rng.uniform(-0.2, 0.2)) }
        }
        return model
    }

    func testRoundTripAndMissingBuffer() throws {
        let model = try perturbedModel()
        let dir = TestPaths.temporaryDirectory("bn-file")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: path)
        let loaded = try ModelFile.open(path)
        XCTAssertEqual(loaded.architecture.name, "small-bn")
        for ((_, a), (_, b)) in zip(model.batchNorms, loaded.batchNorms) {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: a.runningBuffers.pointer, count: 2 * a.channels)),
                           Array(UnsafeBufferPointer(start: b.runningBuffers.pointer, count: 2 * b.channels)))
            XCTAssertEqual(a.batchesTracked, b.batchesTracked)
        }
        // Without metadata (a file saved from PyTorch) the running statistics tell small-bn from small.
        let bare = dir.appendingPathComponent("bare.safetensors").path
        try SafeTensors.write(ModelFile.tensors(of: model), metadata: [:], to: bare)
        XCTAssertEqual(try ModelFile.open(bare).architecture.name, "small-bn")
        // A missing running variance is one error naming the file and the tensor.
        let partial = dir.appendingPathComponent("partial.safetensors").path
        try SafeTensors.write(ModelFile.tensors(of: model).filter { $0.name != "G_c.4.running_var" }, metadata: [:], to: partial)
        XCTAssertThrowsError(try ModelFile.open(partial)) { error in
            let message = (error as? DANNError)?.message ?? "\(error)"
            XCTAssertTrue(message.hasPrefix(partial) && message.contains("G_c.4.running_var"), message)
        }
    }

    func testNumpyEvalForwardOfSavedFileMatchesModel() throws {
        guard (try? runPython("import numpy", arguments: [])) != nil else { throw XCTSkip("python3 numpy not installed") }
        let model = try perturbedModel()
        let dir = TestPaths.temporaryDirectory("bn-numpy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try ModelFile.save(model, to: path)
        var rng = TestRandom(42)
        let n = 3
        let images = rng.floats(n * model.imageSize, 0, 1)
        let imagesPath = dir.appendingPathComponent("images.f32").path
        try images.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: imagesPath)) }
        let logits = images.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.classify($0.baseAddress!, count: n), count: n * 10)) }

        // The safetensors layout read with struct + json; PyTorch's eval-mode definitions written out in numpy.
        let script = #"""
        import json, struct, sys
        import numpy as np
        raw = open(sys.argv[1], "rb").read()
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + size])
        def t(name):
            h = header[name]; a, b = h["data_offsets"]
            return np.frombuffer(raw[8 + size + a:8 + size + b], dtype={"F32": np.float32, "I64": np.int64}[h["dtype"]]).reshape(h["shape"]).astype(np.float64)
        def conv(x, w, b):
            k = w.shape[2]
            win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))   # n, c, oh, ow, k, k
            return np.einsum("nchwij,ocij->nohw", win, w) + b[None, :, None, None]
        def bn(x, p):
            shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            scale = t(p + ".weight") / np.sqrt(t(p + ".running_var") + 1e-5)
            return (x - t(p + ".running_mean").reshape(shape)) * scale.reshape(shape) + t(p + ".bias").reshape(shape)
        def pool(x):
            n, c, h, w = x.shape
            return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        relu = lambda x: np.maximum(x, 0)
        lin = lambda x, p: x @ t(p + ".weight").T + t(p + ".bias")
        x = np.fromfile(sys.argv[2], dtype=np.float32).astype(np.float64).reshape(-1, 3, 28, 28)
        x = pool(relu(bn(conv(x, t("E.0.weight"), t("E.0.bias")), "E.1")))
        x = pool(relu(bn(conv(x, t("E.4.weight"), t("E.4.bias")), "E.5")))
        f = x.reshape(x.shape[0], -1)
        h = relu(bn(lin(f, "G_c.0"), "G_c.1"))
        h = relu(bn(lin(h, "G_c.3"), "G_c.4"))
        print(json.dumps(lin(h, "G_c.6").reshape(-1).tolist()))
        """#
        let output = try runPython(script, arguments: [path, imagesPath])
        let reference = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [Double])
        XCTAssertEqual(reference.count, logits.count)
        XCTAssertLessThan(relativeError(logits.map(Double.init), reference), 1e-5)
    }
}
