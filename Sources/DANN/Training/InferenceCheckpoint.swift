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
        let opened = try ModelFile.openWithMetadata(userPath)
        return InferenceCheckpoint(model: opened.model, path: opened.path, metadata: opened.metadata)
    }
}
