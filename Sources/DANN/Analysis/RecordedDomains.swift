import Foundation

/// The domains a checkpoint was trained on, as its run recorded them: the trainer writes its config into
/// trainer.safetensors beside every model.safetensors it saves. Exported or shipped models have no such
/// file, and then the caller has to choose.
public enum RecordedDomains {
    public static func beside(modelFile: String) throws -> (source: DatasetName, target: DatasetName)? {
        let state = URL(fileURLWithPath: modelFile).deletingLastPathComponent().appendingPathComponent(TrainerState.fileName).path
        guard FileManager.default.fileExists(atPath: state) else { return nil }
        let file = try SafeTensors.read(path: state)
        guard let text = file.metadata["config"] else { throw DANNError.file(state, "has no training config") }
        let config = try TrainingConfig.fromJSON(text, path: state)
        return (config.source, config.target)
    }
}
