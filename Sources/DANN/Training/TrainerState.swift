import Foundation

/// What `trainer.safetensors` holds besides the weights: the optimizer's state buffers (one tensor per
/// parameter and buffer: `momentum.<name>` for SGD, `exp_avg.<name>` and `exp_avg_sq.<name>` for Adam) and
/// its step count, the step to run next and the data cursors it implies, and the run's
/// config. Dropout masks and sample order are pure functions of (seed, step), so no RNG state is needed.
public enum TrainerState {
    public static let fileName = "trainer.safetensors"

    public struct Snapshot {
        /// The next step to run (= steps completed).
        public var step: Int
        public var optimizerSteps: Int64
        public var config: TrainingConfig
    }

    public static func save(model: DANNModel, optimizer: Optimizer, step: Int, stepsPerEpoch: Int, config: TrainingConfig,
                            to path: String) throws {
        var tensors: [TensorEntry] = optimizer.stateBuffers.flatMap { prefix, buffer in
            model.arena.entries.map { entry in
                TensorEntry(name: "\(prefix).\(entry.name)", shape: entry.shape,
                            float32: UnsafeBufferPointer(start: buffer.pointer + entry.offset, count: entry.count))
            }
        }
        let epoch = step / max(stepsPerEpoch, 1)
        tensors.append(TensorEntry(name: "step", shape: [], int64: [Int64(step)]))
        tensors.append(TensorEntry(name: "epoch", shape: [], int64: [Int64(epoch)]))
        tensors.append(TensorEntry(name: "has_momentum", shape: [], int64: [optimizer.stepsTaken > 0 ? 1 : 0]))
        tensors.append(TensorEntry(name: "optimizer_steps", shape: [], int64: [optimizer.stepsTaken]))
        // Cursors, informational: both follow from the step (docs/design.md §3.3).
        tensors.append(TensorEntry(name: "source_cursor", shape: [2], int64: [Int64(epoch), Int64((step % max(stepsPerEpoch, 1)) * config.stepBatch)]))
        tensors.append(TensorEntry(name: "target_cursor", shape: [], int64: [Int64(step * config.stepBatch)]))
        let metadata = ["config": try config.json(), "arch": config.arch, "step": String(step), "format": "dann-dist-trainer-1"]
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Reads the state into `optimizer` and returns the step and config.
    public static func load(from path: String, into optimizer: Optimizer, model: DANNModel) throws -> Snapshot {
        let file = try SafeTensors.read(path: path)
        guard let configText = file.metadata["config"] else { throw DANNError.file(path, "has no training config") }
        let config = try TrainingConfig.fromJSON(configText, path: path)
        for (prefix, buffer) in optimizer.stateBuffers {
            for entry in model.arena.entries {
                try SafeTensors.copyFloat32("\(prefix).\(entry.name)", from: file.tensors,
                                            into: UnsafeMutableBufferPointer(start: buffer.pointer + entry.offset, count: entry.count),
                                            shape: entry.shape, path: path)
            }
        }
        guard let step = file.tensors["step"]?.int64Values?.first, step >= 0,
              let has = file.tensors["has_momentum"]?.int64Values?.first else {
            throw DANNError.file(path, "has no step / has_momentum counters")
        }
        // Checkpoints from before Adam recorded only whether SGD's momentum buffer was filled.
        let steps = file.tensors["optimizer_steps"]?.int64Values?.first ?? (has != 0 ? 1 : 0)
        optimizer.stepsTaken = steps
        return Snapshot(step: Int(step), optimizerSteps: steps, config: config)
    }
}
