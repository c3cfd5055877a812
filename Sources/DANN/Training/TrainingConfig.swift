import Foundation

/// How gradients are summed over ranks (docs/design.md §3.5, §3.12): fixed-order buckets started while backward
/// is still running (DDP-style), one call after backward, or, with every rank on one node, through shared memory
/// with each rank updating one shard of the parameters. `auto` is `shared` where it can be (one node, Float32
/// exchange) and `buckets` elsewhere.
public enum AllreduceMode: String, Codable, CaseIterable, Sendable {
    case auto, buckets, single, shared

    /// The mode a run of `ranks` ranks uses with `dtype` on the wire (`oneNode`: all of them on one node).
    public func resolved(ranks: Int, oneNode: Bool, dtype: AllreduceDType) -> AllreduceMode {
        guard self == .auto else { return self }
        return ranks > 1 && oneNode && dtype == .f32 ? .shared : .buckets
    }
}

/// What the gradient exchange puts on the wire (docs/design.md §3.10): Float32, or each rank's gradient rounded
/// to a 16-bit float and summed in Float32 with a rounding back to 16 bits after each addition.
public enum AllreduceDType: String, Codable, CaseIterable, Sendable {
    case f32, bf16, fp16

    /// The 16-bit format, or nil for Float32.
    public var halfFormat: HalfFormat? {
        switch self {
        case .f32: nil
        case .bf16: .bf16
        case .fp16: .fp16
        }
    }
}

/// Every setting of a training run (written to config.json and into each checkpoint).
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var source: DatasetName = .svhn
    public var target: DatasetName = .mnist
    public var dataDir: String = "data"
    public var arch: String = "seed"
    public var inputSize: Int = 28
    public var normalize: Bool = false
    /// Total steps; when nil, `epochs` × steps per epoch.
    public var steps: Int? = nil
    public var epochs: Int = 100
    public var batchSize: Int = 128
    /// K: forward/backward passes of `batchSize` images summed into each optimizer step (§3.11).
    public var accumulate: Int = 1
    public var lr: Double = 0.01
    public var momentum: Double = 0.9
    public var weightDecay: Double = 1e-5
    public var gamma: Double = 10
    public var alpha: Double = 10
    public var beta: Double = 0.75
    public var dropout: Double = 0.5
    /// w in L = label loss + w · domain loss.
    public var domainWeight: Double = 1
    /// The λ schedule's ceiling: λ_p = lambdaMax · (2 / (1 + e^(−γp)) − 1).
    public var lambdaMax: Double = 1
    /// Rescale the summed gradient to at most this L2 norm before the update (nil: no clipping).
    public var clipGradNorm: Double? = nil
    public var optimizer: OptimizerKind = .sgd
    /// Which domains batch norm's running statistics follow (what evaluation normalises with).
    public var runningStats: BatchNorm.RunningStatistics = .everyDomain
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var sourceOnly: Bool = false
    public var seed: UInt64 = 1
    public var shuffle: Bool = true
    public var limitSource: Int? = nil
    public var limitTarget: Int? = nil
    public var initPath: String? = nil
    public var out: String = ""
    /// 0: ten evaluations per run (and one at the end).
    public var evalEvery: Int = 0
    /// 0: ten checkpoints per run (and one at the end).
    public var checkpointEvery: Int = 0
    public var keep: Int = 3
    /// Compute threads per rank; nil: cores on the node / ranks on the node.
    public var threads: Int? = nil
    public var allreduce: AllreduceMode = .auto
    public var bucketMegabytes: Double = 25
    public var allreduceDtype: AllreduceDType = .f32

    public init() {}

    /// K·B: source (and target) images per optimizer step, over all ranks and passes.
    public var stepBatch: Int { batchSize * accumulate }

    public var schedules: Schedules { Schedules(learningRate: lr, alpha: alpha, beta: beta, gamma: gamma, lambdaMax: lambdaMax) }

    // MARK: Settings by name

    /// Every setting's name, in declaration order: its key in config.json, the name `overriding(with:keys:)`,
    /// `setting(_:)` and `Trainer(explicit:)` take, and (in kebab case) its flag. Read off the properties, so
    /// it cannot drift from them; `train` declares one flag per setting under the same name (SettingsTests).
    public static let settingNames: [String] = Mirror(reflecting: TrainingConfig()).children.compactMap(\.label)

    /// Settings a resumed run may change: where files are, how often to evaluate and checkpoint, how the work
    /// is spread. Every other setting defines the sequence of updates and so is part of `runIdentity`.
    public static let resumableSettings: Set<String> = [
        "dataDir", "initPath", "out", "evalEvery", "checkpointEvery", "keep", "threads", "allreduce", "bucketMegabytes",
    ]

    /// Settings given as one: a command line that gives one of them gives the others too (at their defaults),
    /// so that a resumed run asked for `--epochs` does not keep the checkpoint's `--steps`.
    public static let givenTogether: [String: Set<String>] = ["epochs": ["steps"], "steps": ["epochs"]]

    /// The flag's name of a setting without its dashes: "lambdaMax" → "lambda-max" (argument-parser's rule).
    public static func kebabCase(_ name: String) -> String {
        name.reduce(into: "") { text, character in
            text += character.isUppercase ? "-" + character.lowercased() : String(character)
        }
    }

    /// The settings that define the sequence of updates, by flag name ("lambda-max": "1.0"): a resumed run must
    /// agree on all of them. Every setting outside `resumableSettings`, read off the properties.
    public var runIdentity: [String: String] {
        var identity: [String: String] = [:]
        for child in Mirror(reflecting: self).children {
            guard let name = child.label, !Self.resumableSettings.contains(name) else { continue }
            identity[Self.kebabCase(name)] = Self.describe(child.value)
        }
        // With --steps set, --epochs plays no part.
        if steps != nil { identity["epochs"] = "-" }
        return identity
    }

    /// A setting's value as the identity check prints it: an enum's raw value, "none" for an unset optional.
    static func describe(_ value: Any) -> String {
        if let optional = value as? AnyOptional { return optional.wrappedAny.map(describe) ?? "none" }
        if let value = value as? any RawRepresentable { return "\(value.rawValue)" }
        return "\(value)"
    }

    /// Rejects values no run can use, with the flag's name.
    public func validate(ranks: Int = 1) throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw DANNError(message) } }
        do { _ = try Architecture.named(arch) } catch let error as DANNError { throw DANNError("--arch: \(error.message)") }
        try check(Architecture.inputSizes.contains(inputSize), "--input-size must be 28 or 32, not \(inputSize)")
        try check(batchSize > 0, "--batch-size must be positive, not \(batchSize)")
        try check(batchSize >= ranks, "--batch-size \(batchSize) is smaller than the \(ranks) ranks: every rank needs a sample")
        try check(accumulate > 0, "--accumulate must be positive, not \(accumulate)")
        try check(accumulate <= Self.maximumAccumulate, "--accumulate must be at most \(Self.maximumAccumulate), not \(accumulate)")
        try check(!batchSize.multipliedReportingOverflow(by: accumulate).overflow,
                  "--accumulate \(accumulate) × --batch-size \(batchSize) images per step is too large")
        if let steps { try check(steps > 0, "--steps must be positive, not \(steps)") }
        try check(epochs > 0, "--epochs must be positive, not \(epochs)")
        try check(lr > 0 && lr.isFinite, "--lr must be positive, not \(lr)")
        try check(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), not \(momentum)")
        try check(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be a finite number ≥ 0, not \(weightDecay)")
        try check(gamma >= 0 && gamma.isFinite, "--gamma must be a finite number ≥ 0, not \(gamma)")
        try check(alpha >= 0 && alpha.isFinite, "--alpha must be a finite number ≥ 0, not \(alpha)")
        try check(beta >= 0 && beta.isFinite, "--beta must be a finite number ≥ 0, not \(beta)")
        try check(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1), not \(dropout)")
        try check(domainWeight >= 0 && domainWeight.isFinite, "--domain-weight must be a finite number ≥ 0, not \(domainWeight)")
        try check(lambdaMax >= 0 && lambdaMax.isFinite, "--lambda-max must be a finite number ≥ 0, not \(lambdaMax)")
        if let clipGradNorm { try check(clipGradNorm > 0 && clipGradNorm.isFinite, "--clip-grad-norm must be positive, not \(clipGradNorm)") }
        try check(adamBeta1 >= 0 && adamBeta1 < 1, "--adam-beta1 must be in [0, 1), not \(adamBeta1)")
        try check(adamBeta2 >= 0 && adamBeta2 < 1, "--adam-beta2 must be in [0, 1), not \(adamBeta2)")
        try check(adamEpsilon > 0 && adamEpsilon.isFinite, "--adam-epsilon must be positive, not \(adamEpsilon)")
        try check(evalEvery >= 0, "--eval-every must be non-negative, not \(evalEvery)")
        try check(checkpointEvery >= 0, "--checkpoint-every must be non-negative, not \(checkpointEvery)")
        try check(keep > 0, "--keep must be positive, not \(keep)")
        if let threads { try check(threads > 0, "--threads must be positive, not \(threads)") }
        if let limitSource { try check(limitSource > 0, "--limit-source must be positive, not \(limitSource)") }
        if let limitTarget { try check(limitTarget > 0, "--limit-target must be positive, not \(limitTarget)") }
        try check(bucketMegabytes > 0 && bucketMegabytes <= Self.maximumBucketMegabytes,
                  "--bucket-mb must be in (0, \(Int(Self.maximumBucketMegabytes))], not \(bucketMegabytes)")
        try check(allreduce != .shared || allreduceDtype == .f32,
                  "--allreduce shared sums Float32 in memory; --allreduce-dtype \(allreduceDtype.rawValue) needs buckets or single")
        try check(epochs <= Self.maximumSteps, "--epochs must be at most \(Self.maximumSteps), not \(epochs)")
        if let steps { try check(steps <= Self.maximumSteps, "--steps must be at most \(Self.maximumSteps), not \(steps)") }
    }

    /// A bound on `--accumulate` that keeps K·B, and a step's images times the steps, far from overflow.
    public static let maximumAccumulate = 1 << 20
    /// Larger buckets than the largest network's gradient (133 MB) only add latency.
    public static let maximumBucketMegabytes = 4096.0
    /// A bound on a run's steps that keeps step arithmetic (epochs × steps per epoch, step × batch) far from overflow.
    public static let maximumSteps = 1_000_000_000

    /// Steps of a run over `stepsPerEpoch`-step epochs, or nil when that exceeds `maximumSteps`.
    public func totalSteps(stepsPerEpoch: Int) -> Int? {
        if let steps { return steps }
        let (product, overflow) = epochs.multipliedReportingOverflow(by: stepsPerEpoch)
        return overflow || product > Self.maximumSteps ? nil : product
    }

    public var dataConfig: DataConfig {
        DataConfig(source: source, target: target, dataDir: dataDir, inputSize: inputSize, normalize: normalize,
                   limitSource: limitSource, limitTarget: limitTarget, seed: seed, shuffle: shuffle)
    }

    /// Canonical JSON (sorted keys): config.json and checkpoint metadata.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// This config with the settings named in `keys` taken from `other`.
    public func overriding(with other: TrainingConfig, keys: Set<String>) throws -> TrainingConfig {
        let unknown = keys.subtracting(Self.settingNames)
        precondition(unknown.isEmpty, "not TrainingConfig settings: \(unknown.sorted())")
        var mine = try jsonObject()
        let theirs = try other.jsonObject()
        for key in keys {
            if let value = theirs[key] { mine[key] = value } else { mine.removeValue(forKey: key) }
        }
        return try Self.decoding(mine)
    }

    /// This config with the named settings set to `values` (a flag's value: a Double, a DatasetName, …).
    public func setting(_ values: [String: any Encodable]) throws -> TrainingConfig {
        let unknown = Set(values.keys).subtracting(Self.settingNames)
        precondition(unknown.isEmpty, "not TrainingConfig settings: \(unknown.sorted())")
        var object = try jsonObject()
        guard let given = try JSONSerialization.jsonObject(with: Self.mergeEncoder().encode(NamedValues(values))) as? [String: Any] else {
            throw DANNError("cannot apply the settings \(values.keys.sorted())")
        }
        object.merge(given) { $1 }
        return try Self.decoding(object)
    }

    /// Reads a saved config; settings it predates take their defaults.
    public static func fromJSON(_ text: String, path: String) throws -> TrainingConfig {
        do {
            guard let saved = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw DANNError.file(path, "unreadable training config (not a JSON object)")
            }
            var merged = try TrainingConfig().jsonObject()
            merged.merge(saved) { $1 }
            return try decoding(merged)
        } catch let error as DANNError {
            throw error
        } catch {
            throw DANNError.file(path, "unreadable training config (\(error.localizedDescription))")
        }
    }

    // The merges above go through the JSON form, by setting name. Non-finite numbers travel as strings there,
    // so that `--lr nan` reaches `validate` and its message.

    private static func mergeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    private func jsonObject() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Self.mergeEncoder().encode(self)) as? [String: Any] else {
            throw DANNError("cannot merge training configs")
        }
        return object
    }

    private static func decoding(_ object: [String: Any]) throws -> TrainingConfig {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: object))
    }
}

/// Values by setting name, encoded as one JSON object.
private struct NamedValues: Encodable {
    let values: [String: any Encodable]

    init(_ values: [String: any Encodable]) { self.values = values }

    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in values { try container.encode(value, forKey: Key(stringValue: name)) }
    }
}

/// An optional seen through `Any` (a Mirror child), unwrapped.
private protocol AnyOptional {
    var wrappedAny: Any? { get }
}

extension Optional: AnyOptional {
    fileprivate var wrappedAny: Any? { map { $0 } }
}

extension DatasetName: Codable {}
