import Foundation

/// What `trainer.safetensors` holds besides the weights: the optimizer's momentum buffers (one tensor per
/// parameter, `momentum.<name>`), the step to run next and the data cursors it implies, and the run's
/// config. Dropout masks and sample order are pure functions of (seed, step), so no RNG state is needed.
public enum TrainerState {
    public static let fileName = "trainer.safetensors"

    public struct Snapshot {
        /// The next step to run (= steps completed).
        public var step: Int
        public var hasVelocity: Bool
        public var config: TrainingConfig
    }

    public static func save(model: DANNModel, optimizer: SGD, step: Int, stepsPerEpoch: Int, config: TrainingConfig,
                            to path: String) throws {
        var tensors: [TensorEntry] = model.arena.entries.map { entry in
            TensorEntry(name: "momentum.\(entry.name)", shape: entry.shape,
                        float32: UnsafeBufferPointer(start: optimizer.velocity.pointer + entry.offset, count: entry.count))
        }
        let epoch = step / max(stepsPerEpoch, 1)
        tensors.append(TensorEntry(name: "step", shape: [], int64: [Int64(step)]))
        tensors.append(TensorEntry(name: "epoch", shape: [], int64: [Int64(epoch)]))
        tensors.append(TensorEntry(name: "has_momentum", shape: [], int64: [optimizer.hasVelocity ? 1 : 0]))
        // Cursors, informational: both follow from the step (DESIGN.md §3).
        tensors.append(TensorEntry(name: "source_cursor", shape: [2], int64: [Int64(epoch), Int64((step % max(stepsPerEpoch, 1)) * config.batchSize)]))
        tensors.append(TensorEntry(name: "target_cursor", shape: [], int64: [Int64(step * config.batchSize)]))
        let metadata = ["config": config.json(), "arch": config.arch, "step": String(step), "format": "dann-dist-trainer-1"]
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Reads the state into `optimizer` (momentum) and returns the step and config.
    public static func load(from path: String, into optimizer: SGD, model: DANNModel) throws -> Snapshot {
        let file = try SafeTensors.read(path: path)
        guard let configText = file.metadata["config"] else { throw DANNError.file(path, "has no training config") }
        let config = try TrainingConfig.fromJSON(configText, path: path)
        for entry in model.arena.entries {
            try SafeTensors.copyFloat32("momentum.\(entry.name)", from: file.tensors,
                                        into: UnsafeMutableBufferPointer(start: optimizer.velocity.pointer + entry.offset, count: entry.count),
                                        shape: entry.shape, path: path)
        }
        guard let step = file.tensors["step"]?.int64Values?.first, step >= 0,
              let has = file.tensors["has_momentum"]?.int64Values?.first else {
            throw DANNError.file(path, "has no step / has_momentum counters")
        }
        optimizer.hasVelocity = has != 0
        return Snapshot(step: Int(step), hasVelocity: has != 0, config: config)
    }
}
