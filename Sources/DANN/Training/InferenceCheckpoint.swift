import Foundation

/// A model opened for `eval` / `predict`, with the settings its model.safetensors records.
public struct InferenceCheckpoint {
    public let model: DANNModel
    /// The model.safetensors the user's path designated (a checkpoint or run folder is resolved).
    public let path: String
    /// The file's `__metadata__` (arch, input_size, and whatever the trainer added).
    public let metadata: [String: String]

    /// True when the model was trained on inputs normalised to [−1, 1] (metadata `"normalize": "true"`).
    public var normalize: Bool { metadata["normalize"] == "true" }

    /// Opens a model.safetensors path, a checkpoint folder, a `checkpoints/` folder or a run folder.
    public static func open(_ userPath: String) throws -> InferenceCheckpoint {
        let path = try ModelFile.resolve(userPath)
        let model = try ModelFile.open(path)
        return InferenceCheckpoint(model: model, path: path, metadata: try readMetadata(path))
    }

    /// The `__metadata__` of a safetensors file, from its header alone (a seed checkpoint is ~130 MB and
    /// has just been read once by `ModelFile.open`).
    static func readMetadata(_ path: String) throws -> [String: String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw DANNError.file(path, "cannot open") }
        defer { try? handle.close() }
        let prefix = [UInt8](handle.readData(ofLength: 8))
        guard prefix.count == 8 else { throw DANNError.file(path, "too short for a safetensors header") }
        let length = prefix.reversed().reduce(0) { $0 << 8 | Int($1) }
        guard length <= SafeTensors.maximumHeaderBytes else { throw DANNError.file(path, "implausible header length \(length)") }
        let header = [UInt8](handle.readData(ofLength: length))
        guard header.count == length, case .object(let members)? = try? SafeTensorsJSON.parse(header) else {
            throw DANNError.file(path, "unreadable safetensors header")
        }
        var metadata: [String: String] = [:]
        if case .object(let entries)? = members.first(where: { $0.key == SafeTensors.metadataKey })?.value {
            for (key, value) in entries { if case .string(let text) = value { metadata[key] = text } }
        }
        return metadata
    }
}
