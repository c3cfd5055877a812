import Foundation

/// `model.safetensors`: the weights under the seed's PyTorch state-dict names and layouts, so
/// `model.load_state_dict(safetensors.torch.load_file(path))` works, plus metadata naming the architecture.
public enum ModelFile {
    public static let fileName = "model.safetensors"

    /// The parameters, then each batch-normalisation layer's buffers under PyTorch's names
    /// (`running_mean`, `running_var` as F32, `num_batches_tracked` as an I64 scalar).
    public static func tensors(of model: DANNModel) -> [TensorEntry] {
        model.arena.entries.map { entry in
            TensorEntry(name: entry.name, shape: entry.shape, float32: UnsafeBufferPointer(model.arena.parameter(entry)))
        } + model.batchNorms.flatMap { name, norm in
            [TensorEntry(name: "\(name).running_mean", shape: [norm.channels],
                         float32: UnsafeBufferPointer(start: norm.runningMean, count: norm.channels)),
             TensorEntry(name: "\(name).running_var", shape: [norm.channels],
                         float32: UnsafeBufferPointer(start: norm.runningVariance, count: norm.channels)),
             TensorEntry(name: "\(name).num_batches_tracked", shape: [], int64: [norm.batchesTracked])]
        }
    }

    public static func metadata(of model: DANNModel) -> [String: String] {
        ["format": "pt", "arch": model.architecture.name, "input_size": String(model.architecture.inputSize)]
    }

    /// Writes atomically (temporary file, fsync, rename).
    public static func save(_ model: DANNModel, to path: String, metadata extra: [String: String] = [:]) throws {
        try SafeTensors.write(tensors(of: model), metadata: metadata(of: model).merging(extra) { $1 }, to: path)
    }

    /// Copies the file's weights into `model`; every tensor must be present with the model's shape.
    public static func load(into model: DANNModel, from path: String) throws {
        let file = try SafeTensors.read(path: path)
        try load(into: model, tensors: file.tensors, path: path)
    }

    static func load(into model: DANNModel, tensors: [String: TensorEntry], path: String) throws {
        for entry in model.arena.entries {
            try SafeTensors.copyFloat32(entry.name, from: tensors, into: model.arena.parameter(entry), shape: entry.shape, path: path)
        }
        var known = model.arena.entries.map(\.name)
        for (name, norm) in model.batchNorms {
            for (buffer, pointer) in [("running_mean", norm.runningMean), ("running_var", norm.runningVariance)] {
                try SafeTensors.copyFloat32("\(name).\(buffer)", from: tensors,
                                            into: UnsafeMutableBufferPointer(start: pointer, count: norm.channels),
                                            shape: [norm.channels], path: path)
            }
            if let index = (0..<norm.channels).first(where: { norm.runningVariance[$0] < 0 }) {
                throw DANNError.file(path, "tensor '\(name).running_var' holds a negative variance (\(norm.runningVariance[index]) at element \(index))")
            }
            let trackedName = "\(name).num_batches_tracked"
            guard let tracked = tensors[trackedName]?.int64Values, tracked.count == 1 else {
                throw DANNError.file(path, "tensor '\(trackedName)' is missing or not one int64")
            }
            norm.batchesTracked = tracked[0]
            known += ["\(name).running_mean", "\(name).running_var", trackedName]
        }
        let unknown = Set(tensors.keys).subtracting(known)
        if let name = unknown.sorted().first {
            throw DANNError.file(path, "tensor '\(name)' does not belong to architecture '\(model.architecture.name)'")
        }
    }

    /// Opens a checkpoint for inference: a model.safetensors path, a checkpoint folder holding one, a
    /// `checkpoints/` folder or a run folder (then its `latest`). The architecture comes from the metadata,
    /// or else from the tensor shapes.
    public static func open(_ path: String, dropout: Float = 0) throws -> DANNModel {
        try openWithMetadata(path, dropout: dropout).model
    }

    /// `open`, also returning the resolved file and its `__metadata__`.
    public static func openWithMetadata(_ path: String, dropout: Float = 0) throws -> (model: DANNModel, path: String, metadata: [String: String]) {
        let file = try resolve(path)
        let contents = try SafeTensors.read(path: file)
        let arch = try architecture(metadata: contents.metadata, tensors: contents.tensors, path: file)
        let model = try DANNModel(architecture: arch, dropout: dropout)
        try load(into: model, tensors: contents.tensors, path: file)
        return (model, file, contents.metadata)
    }

    /// The model.safetensors a user-given path designates.
    public static func resolve(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DANNError.file(path, "no such file or folder")
        }
        guard isDirectory.boolValue else { return path }
        let url = URL(fileURLWithPath: path)
        let direct = url.appendingPathComponent(fileName).path
        if FileManager.default.fileExists(atPath: direct) { return direct }
        for checkpoints in [url, url.appendingPathComponent("checkpoints")] {
            if let latest = try CheckpointStore.latest(in: checkpoints.path) {
                return URL(fileURLWithPath: latest).appendingPathComponent(fileName).path
            }
        }
        throw DANNError.file(path, "holds no \(fileName) and no checkpoints/latest")
    }

    static func architecture(metadata: [String: String], tensors: [String: TensorEntry], path: String) throws -> Architecture {
        // The metadata sizes every activation buffer: only the sizes the networks are defined for.
        var inputSize = 28
        if let text = metadata["input_size"] {
            guard let size = Int(text), Architecture.inputSizes.contains(size) else {
                throw DANNError.file(path, "metadata input_size '\(text)' is not one of \(Architecture.inputSizes.map(String.init).joined(separator: ", "))")
            }
            inputSize = size
        }
        if let name = metadata["arch"] {
            do { return try Architecture.named(name).withInputSize(inputSize) }
            catch { throw DANNError.file(path, "metadata names unknown architecture '\(name)'") }
        }
        // No metadata (e.g. saved from PyTorch): the first conv's width tells the presets apart.
        let normalized = tensors["E.1.running_mean"] != nil
        switch tensors["E.0.weight"]?.shape.first {
        case 64: return (normalized ? Architecture.seedBN : .seed).withInputSize(inputSize)
        case 32: return (normalized ? Architecture.smallBN : .small).withInputSize(inputSize)
        default: throw DANNError.file(path, "cannot tell the architecture: no metadata and no known E.0.weight shape")
        }
    }
}
