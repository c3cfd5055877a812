import Foundation
import XCTest
@testable import DANN

/// Round trips, determinism and the on-disk layout of `SafeTensors`, the layout checked by an independent
/// parser (python3's struct + json + numpy) in both directions.
final class SafeTensorsTests: XCTestCase {
    private var directory: URL!

    override func setUp() {
        directory = TestPaths.temporaryDirectory("safetensors")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A mix of dtypes, ranks (scalar, empty) and awkward names/metadata.
    private func sampleTensors() -> [TensorEntry] {
        [
            TensorEntry(name: "E.0.weight", shape: [2, 3], float32: [1.5, -2, 0.25, 3e-8, -0.0, 1e30]),
            TensorEntry(name: "G_c.4.bias", shape: [3], float64: [Double.pi, -1, 1e-300]),
            TensorEntry(name: "step", shape: [], int64: [Int64.max]),
            TensorEntry(name: "bytes \"quoted\" \\ é", dtype: "U8", shape: [5], data: [0, 1, 127, 128, 255]),
            TensorEntry(name: "empty", shape: [0, 4], float32: []),
            TensorEntry(name: "a.odd", dtype: "U8", shape: [1, 3], data: [9, 8, 7]),
        ]
    }

    private let sampleMetadata = ["step": "42", "config": "{\"lr\": 0.01}\nline2\ttab", "ünïcode": "✓"]

    func testRoundTripKeepsTensorsOrderAndMetadata() throws {
        let tensors = sampleTensors()
        let file = path("model.safetensors")
        try SafeTensors.write(tensors, metadata: sampleMetadata, to: file)
        let loaded = try SafeTensors.read(path: file)
        XCTAssertEqual(loaded.order, tensors.map(\.name))
        XCTAssertEqual(loaded.metadata, sampleMetadata)
        for tensor in tensors {
            XCTAssertEqual(loaded.tensors[tensor.name], tensor, tensor.name)
        }
        XCTAssertEqual(loaded.tensors["E.0.weight"]?.float32Values, [1.5, -2, 0.25, 3e-8, -0.0, 1e30])
        XCTAssertEqual(loaded.tensors["G_c.4.bias"]?.float64Values, [Double.pi, -1, 1e-300])
        XCTAssertEqual(loaded.tensors["step"]?.int64Values, [Int64.max])
        XCTAssertNil(loaded.tensors["step"]?.float32Values)
    }

    func testEncodingIsDeterministicAndPinned() {
        // Dictionaries with the same content but built in a different order must give the same bytes.
        var reversed: [String: String] = [:]
        for key in sampleMetadata.keys.sorted().reversed() { reversed[key] = sampleMetadata[key] }
        XCTAssertEqual(SafeTensors.encode(sampleTensors(), metadata: sampleMetadata),
                       SafeTensors.encode(sampleTensors(), metadata: reversed))

        // The exact bytes of a tiny file, written out by hand from the format's description.
        let bytes = SafeTensors.encode([TensorEntry(name: "w", shape: [2], float32: [1, -2])], metadata: ["b": "2", "a": "1"])
        let header = #"{"__metadata__":{"a":"1","b":"2"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        var expected: [UInt8] = [UInt8(padded.utf8.count), 0, 0, 0, 0, 0, 0, 0]
        expected += Array(padded.utf8)
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]   // 1.0f, -2.0f little-endian
        XCTAssertEqual(bytes, expected)
    }

    func testEmptyFileWithoutTensorsOrMetadata() throws {
        let bytes = SafeTensors.encode([], metadata: [:])
        XCTAssertEqual(bytes, [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let file = path("empty.safetensors")
        try AtomicFile.write(bytes, to: file)
        let loaded = try SafeTensors.read(path: file)
        XCTAssertTrue(loaded.tensors.isEmpty)
        XCTAssertTrue(loaded.metadata.isEmpty)
    }

    func testLayoutMatchesIndependentPythonParser() throws {
        let file = path("layout.safetensors")
        try SafeTensors.write(sampleTensors(), metadata: sampleMetadata, to: file)
        // Python reads the file with struct + json + numpy only and reports what it sees.
        let script = #"""
        import json, struct, sys
        import numpy as np
        raw = open(sys.argv[1], "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n].decode("utf-8"))
        data = raw[8 + n:]
        kinds = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U8": "u1"}
        out = {"header_len": n, "data_len": len(data), "metadata": header.pop("__metadata__", {}),
               "names": list(header.keys()), "tensors": {}}
        for name, info in header.items():
            b, e = info["data_offsets"]
            values = np.frombuffer(data[b:e], dtype=kinds[info["dtype"]]).reshape(info["shape"])
            out["tensors"][name] = {"dtype": info["dtype"], "shape": info["shape"], "offsets": [b, e],
                                    "values": [float(v) for v in values.reshape(-1)]}
        print(json.dumps(out))
        """#
        let output = try runPython(script, arguments: [file])
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let headerLength = try XCTUnwrap(report["header_len"] as? Int)
        XCTAssertEqual((8 + headerLength) % 8, 0, "data must start 8-byte aligned")
        XCTAssertEqual(report["metadata"] as? [String: String], sampleMetadata)
        XCTAssertEqual(report["names"] as? [String], sampleTensors().map(\.name), "header keeps the given order")
        let seen = try XCTUnwrap(report["tensors"] as? [String: [String: Any]])
        var offset = 0
        for tensor in sampleTensors() {
            let entry = try XCTUnwrap(seen[tensor.name], tensor.name)
            XCTAssertEqual(entry["dtype"] as? String, tensor.dtype)
            XCTAssertEqual(entry["shape"] as? [Int], tensor.shape)
            XCTAssertEqual(entry["offsets"] as? [Int], [offset, offset + tensor.data.count], "contiguous in given order")
            offset += tensor.data.count
        }
        XCTAssertEqual(report["data_len"] as? Int, offset)
        XCTAssertEqual(seen["E.0.weight"]?["values"] as? [Double], [1.5, -2, 0.25, Double(Float(3e-8)), -0.0, Double(Float(1e30))])
        XCTAssertEqual(seen["G_c.4.bias"]?["values"] as? [Double], [Double.pi, -1, 1e-300])
        XCTAssertEqual(seen["bytes \"quoted\" \\ é"]?["values"] as? [Double], [0, 1, 127, 128, 255])
    }

    func testReadsFileWrittenByPythonWithStructAndJSON() throws {
        let file = path("from-python.safetensors")
        // Header in a different order than the data, pretty-printed, default padding rules of the spec.
        let script = #"""
        import json, struct, sys
        import numpy as np
        w = (np.arange(12, dtype="<f4") * 0.5 - 1).reshape(3, 4)
        ids = np.array([-5, 0, 2**40], dtype="<i8")
        b = w.tobytes(); i = ids.tobytes()
        header = {"ids": {"dtype": "I64", "shape": [3], "data_offsets": [len(b), len(b) + len(i)]},
                  "__metadata__": {"format": "pt"},
                  "fc.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, len(b)]}}
        text = json.dumps(header, indent=1).encode("utf-8")
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(sys.argv[1], "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b + i)
        """#
        _ = try runPython(script, arguments: [file])
        let loaded = try SafeTensors.read(path: file)
        XCTAssertEqual(loaded.order, ["fc.weight", "ids"], "order is the data order")
        XCTAssertEqual(loaded.metadata, ["format": "pt"])
        XCTAssertEqual(loaded.tensors["fc.weight"]?.shape, [3, 4])
        XCTAssertEqual(loaded.tensors["fc.weight"]?.float32Values, (0..<12).map { Float($0) * 0.5 - 1 })
        XCTAssertEqual(loaded.tensors["ids"]?.int64Values, [-5, 0, 1 << 40])

        var weights = [Float](repeating: .nan, count: 12)
        try weights.withUnsafeMutableBufferPointer {
            try SafeTensors.copyFloat32("fc.weight", from: loaded.tensors, into: $0, shape: [3, 4], path: file)
        }
        XCTAssertEqual(weights, (0..<12).map { Float($0) * 0.5 - 1 })
    }

    func testCopyFloat32ChecksNameDtypeAndShape() throws {
        let file = path("copy.safetensors")
        let source: [Float] = [1, 2, 3, 4, 5, 6]
        let entry = source.withUnsafeBufferPointer { TensorEntry(name: "w", shape: [2, 3], float32: $0) }
        try SafeTensors.write([entry, TensorEntry(name: "d", shape: [1], float64: [1])], metadata: [:], to: file)
        let loaded = try SafeTensors.read(path: file)
        var destination = [Float](repeating: 0, count: 6)
        func copy(_ name: String, _ shape: [Int]) -> String? {
            do {
                try destination.withUnsafeMutableBufferPointer {
                    try SafeTensors.copyFloat32(name, from: loaded.tensors, into: $0, shape: shape, path: file)
                }
                return nil
            } catch {
                return (error as? DANNError)?.message ?? "not a DANNError"
            }
        }
        XCTAssertNil(copy("w", [2, 3]))
        XCTAssertEqual(destination, source)
        XCTAssertEqual(copy("missing", [2, 3]), "\(file): no tensor named 'missing'")
        XCTAssertEqual(copy("w", [3, 2]), "\(file): tensor 'w' has shape [2, 3], expected [3, 2]")
        XCTAssertEqual(copy("d", [1]), "\(file): tensor 'd' has dtype F64, expected F32")
    }

    func testSafetensorsPackageLoadsOurFileWhenInstalled() throws {
        guard (try? runPython("import safetensors, numpy", arguments: [])) != nil else {
            throw XCTSkip("python3 package 'safetensors' not installed (pip install safetensors numpy); independent struct+json check still runs")
        }
        let file = path("for-package.safetensors")
        try SafeTensors.write(sampleTensors(), metadata: sampleMetadata, to: file)
        let script = #"""
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], "np") as f:
            meta = f.metadata()
        print(json.dumps({"w": t["E.0.weight"].reshape(-1).tolist(), "shape": list(t["E.0.weight"].shape),
                          "step": int(t["step"]), "meta": meta}))
        """#
        let output = try runPython(script, arguments: [file])
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        XCTAssertEqual(report["shape"] as? [Int], [2, 3])
        XCTAssertEqual(report["w"] as? [Double], [1.5, -2, 0.25, Double(Float(3e-8)), -0.0, Double(Float(1e30))])
        XCTAssertEqual((report["step"] as? NSNumber)?.int64Value, Int64.max)
        XCTAssertEqual(report["meta"] as? [String: String], sampleMetadata)

        // And the other way: the package's own writer (which reorders data by dtype) reads back here.
        let written = path("by-package.safetensors")
        _ = try runPython(#"""
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({"b": np.arange(5, dtype=np.float32), "a": np.full((2, 3), 0.5), "z": np.array([3], dtype=np.int64)},
                  sys.argv[1], metadata={"format": "np"})
        """#, arguments: [written])
        let loaded = try SafeTensors.read(path: written)
        XCTAssertEqual(loaded.metadata, ["format": "np"])
        XCTAssertEqual(loaded.tensors["b"]?.float32Values, [0, 1, 2, 3, 4])
        XCTAssertEqual(loaded.tensors["a"]?.float64Values, [Double](repeating: 0.5, count: 6))
        XCTAssertEqual(loaded.tensors["a"]?.shape, [2, 3])
        XCTAssertEqual(loaded.tensors["z"]?.int64Values, [3])
    }
}

/// Runs a python3 script with arguments and returns its stdout; throws if it exits non-zero.
func runPython(_ script: String, arguments: [String]) throws -> String {
    let result = try ChildProcess.runTool("/usr/bin/env", ["python3", "-c", script] + arguments)
    guard result.status == 0 else { throw DANNError("python3 failed: \(result.stderr)") }
    return result.stdout
}
