/// One finished step as the logs see it (rank 0; losses and accuracies already summed over ranks).
public struct StepRecord: Sendable {
    /// Steps completed, 1-based: the x-axis of every log.
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    public var epochs: Int
    public var lr: Double
    public var lambda: Double
    public var labelLoss: Double
    public var domainLoss: Double
    public var labelAccuracy: Double
    public var domainAccuracy: Double
    public var stepSeconds: Double
    public var imagesPerSecond: Double
}

/// What a run looks like before its first step (for the start table and the logs).
public struct RunInfo: Sendable {
    public var config: TrainingConfig
    public var totalSteps: Int
    public var stepsPerEpoch: Int
    public var sourceCount: Int
    public var targetCount: Int
    public var parameterCount: Int
    public var startStep: Int
    public var ranks: Int
    public var hosts: [String]
    public var threadsPerRank: Int
    public var binding: String
    /// How gradients are exchanged (`config.allreduce` with `auto` resolved for this run's placement).
    public var allreduce: AllreduceMode
    public var testSets: [DatasetName]
    public var notes: [String]
    public var outDirectory: String
}

/// Observers of the loop (logging, progress, plots), called on rank 0 only. Everything has a no-op default.
public protocol TrainingCallback: AnyObject {
    func runStarted(_ info: RunInfo) throws
    /// After each step; `evaluation` is non-nil on steps that evaluated.
    func stepFinished(_ record: StepRecord, evaluation: [EvalResult]?) throws
    func checkpointSaved(_ folder: String, step: Int) throws
    /// Something about the run the user should know (e.g. `DomainAccuracyWatch`'s warning).
    func warning(_ text: String) throws
    func runFinished(step: Int, interrupted: Bool) throws
}

extension TrainingCallback {
    public func runStarted(_ info: RunInfo) throws {}
    public func stepFinished(_ record: StepRecord, evaluation: [EvalResult]?) throws {}
    public func checkpointSaved(_ folder: String, step: Int) throws {}
    public func warning(_ text: String) throws {}
    public func runFinished(step: Int, interrupted: Bool) throws {}
}
