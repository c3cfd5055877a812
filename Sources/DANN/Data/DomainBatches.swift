import Dispatch
import Foundation

/// Everything the data layer needs to know about a run.
public struct DataConfig: Sendable {
    public var source, target: DatasetName
    public var dataDir: String
    public var inputSize: Int
    public var normalize: Bool
    public var limitSource, limitTarget: Int?
    public var seed: UInt64
    public var shuffle: Bool

    public init(source: DatasetName = .svhn, target: DatasetName = .mnist, dataDir: String = "data",
                inputSize: Int = 28, normalize: Bool = false, limitSource: Int? = nil, limitTarget: Int? = nil,
                seed: UInt64 = 0, shuffle: Bool = true) {
        self.source = source
        self.target = target
        self.dataDir = dataDir
        self.inputSize = inputSize
        self.normalize = normalize
        self.limitSource = limitSource
        self.limitTarget = limitTarget
        self.seed = seed
        self.shuffle = shuffle
    }
}

/// One rank's view of the training stream (docs/design.md §3.3–§3.4): which samples global step s uses, and this rank's
/// shard of them loaded from the files one source epoch at a time.
///
/// With gradient accumulation (§3.11) a step of K passes of B images reads the samples a step of one pass of
/// K·B images would: the sample order, the epochs and the target cursor count in steps of K·B, and pass k
/// takes offsets [k·B, (k+1)·B) of the step, of which each rank takes its `localSlice`.
public final class DomainBatches {
    public let config: DataConfig
    /// B: source (and target) images per pass over all ranks (`--batch-size`).
    public let globalBatch: Int
    /// K: passes per step (`--accumulate`).
    public let accumulation: Int
    /// K·B: images per step over all ranks and passes.
    public var stepBatch: Int { globalBatch * accumulation }
    public let rank: Int, size: Int
    public let sourceCount: Int, targetCount: Int, stepsPerEpoch: Int
    /// This rank's offsets inside one pass's batch of B.
    public let localSlice: Range<Int>
    /// Lines for the CLI to print once (e.g. the SVHN-sample fallback).
    public var notes: [String]
    /// Seconds the last shard load took (both domains), for the trainer to report. With prefetching, the
    /// time `fill` waited for the background load (0 when it was ready).
    public private(set) var lastShardLoadSeconds: Double = 0
    /// When true, as soon as an epoch's shard is in memory the next one is read on a background thread,
    /// so the epoch change does not stall the step. Costs a second shard's memory while it is pending.
    public var prefetchNextEpoch = false
    /// Whether a domain whose epoch uses at least a quarter of its split keeps the whole split decoded from its
    /// first load on (§3.4): then later epochs read no file, only pick their rows. False: every epoch reads its
    /// shard from the file.
    public var keepsBusySplits = true
    /// Passes over a dataset file so far (one per domain and epoch without kept splits).
    public private(set) var fileLoads = 0

    let source: DigitDataset
    let target: DigitDataset
    let preprocessor: Preprocessor
    private var shardEpoch = -1
    private var sourceShard: Shard?
    private var targetShard: Shard?
    private var pending: PendingShard?
    /// A split kept whole (all samples in file order), once loaded.
    private var wholeSource: RawImages?
    private var wholeTarget: RawImages?

    public init(config: DataConfig, globalBatch: Int, rank: Int, size: Int, accumulation: Int = 1) throws {
        guard globalBatch > 0 else { throw DANNError("batch size must be positive, got \(globalBatch)") }
        guard accumulation > 0, !globalBatch.multipliedReportingOverflow(by: accumulation).overflow else {
            throw DANNError("passes per step must be positive and fit with the batch size, got \(accumulation)")
        }
        guard config.inputSize == 28 || config.inputSize == 32 else {
            throw DANNError("input size must be 28 or 32, got \(config.inputSize)")
        }
        guard size > 0, rank >= 0, rank < size else { throw DANNError("rank \(rank) is outside 0..<\(size)") }
        self.config = config
        self.globalBatch = globalBatch
        self.accumulation = accumulation
        self.rank = rank
        self.size = size
        let (s, sNote) = try openDataset(config.source, .train, dataDir: config.dataDir)
        let (t, tNote) = try openDataset(config.target, .train, dataDir: config.dataDir)
        notes = [sNote, tNote].compactMap { $0 }
        // Blame an empty split on its file here; past this point an empty source reads as "fewer than one batch".
        for dataset in [s, t] where dataset.count <= 0 {
            throw DANNError.file(dataset.path, "holds no samples (count \(dataset.count))")
        }
        source = LimitedDataset(s, limit: config.limitSource)
        target = LimitedDataset(t, limit: config.limitTarget)
        sourceCount = source.count
        targetCount = target.count
        stepsPerEpoch = SampleOrder.stepsPerEpoch(sourceCount: sourceCount, globalBatch: globalBatch * accumulation)
        guard stepsPerEpoch > 0 else {
            let step = accumulation == 1 ? "one batch of \(globalBatch)" : "one step's \(accumulation) × \(globalBatch)"
            throw DANNError.file(source.path, "\(sourceCount) source samples, fewer than \(step)")
        }
        guard targetCount > 0 else { throw DANNError.file(target.path, "no target samples") }
        localSlice = SampleOrder.rankSlice(globalBatch: globalBatch, rank: rank, size: size)
        preprocessor = Preprocessor(inputSize: config.inputSize, normalize: config.normalize)
    }

    /// This rank's offsets among the step's K·B images in pass `pass`: its slice of offsets [pass·B, (pass+1)·B).
    public func stepOffsets(pass: Int) -> Range<Int> {
        precondition((0..<accumulation).contains(pass), "pass \(pass) outside 0..<\(accumulation)")
        return (pass * globalBatch + localSlice.lowerBound) ..< (pass * globalBatch + localSlice.upperBound)
    }

    /// This rank's offsets in every pass of a step, pass by pass.
    private var allStepOffsets: [Int] { (0..<accumulation).flatMap { stepOffsets(pass: $0) } }

    /// Source sample indices (into the possibly limited split) of this rank's slices for every step of `epoch`,
    /// step by step and, within a step, pass by pass.
    public func sourceIndices(epoch: Int) -> [Int] {
        let perm = SampleOrder.permutation(n: sourceCount, seed: config.seed, epoch: epoch,
                                           stream: SampleOrder.sourceStream, shuffle: config.shuffle)
        let offsets = allStepOffsets
        return (0..<stepsPerEpoch).flatMap { k in offsets.map { perm[k * stepBatch + $0] } }
    }

    /// Target sample indices of this rank's slices for every step (and pass) of source epoch `epoch`.
    public func targetIndices(epoch: Int) -> [Int] {
        var perms: [Int: [Int]] = [:]
        var result: [Int] = []
        let offsets = allStepOffsets
        result.reserveCapacity(stepsPerEpoch * offsets.count)
        for step in epoch * stepsPerEpoch ..< (epoch + 1) * stepsPerEpoch {
            for offset in offsets {
                let (e, p) = SampleOrder.targetPosition(step: step, offset: offset, globalBatch: stepBatch,
                                                        targetCount: targetCount)
                if perms[e] == nil {
                    perms = perms.filter { $0.key >= e - 1 }
                    perms[e] = SampleOrder.permutation(n: targetCount, seed: config.seed, epoch: e,
                                                       stream: SampleOrder.targetStream, shuffle: config.shuffle)
                }
                result.append(perms[e]![p])
            }
        }
        return result
    }

    /// Fills this rank's slice of pass `pass` of global step `step`: source images [local][3][S][S], labels,
    /// target images. Loads the rank's shard for the epoch containing `step` from the files when the epoch
    /// changes; only the samples this rank's slices touch in that epoch (source and target) are kept in memory,
    /// unless the domain's split is kept whole (`keepsBusySplits`).
    public func fill(step: Int, pass: Int = 0, source sourceOut: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>,
                     target targetOut: UnsafeMutablePointer<Float>) throws {
        precondition(step >= 0, "steps count from 0")
        precondition((0..<accumulation).contains(pass), "pass \(pass) outside 0..<\(accumulation)")
        let epoch = step / stepsPerEpoch
        if epoch != shardEpoch { try loadShard(epoch: epoch) }
        guard let src = sourceShard, let tgt = targetShard else { return }
        let local = localSlice.count, floats = preprocessor.floatsPerImage, preprocessor = preprocessor
        let base = ((step % stepsPerEpoch) * accumulation + pass) * local
        // The compute threads are idle between steps: they share the slice's images.
        Parallel.forRanges(local, work: 2 * local * floats) { part in
            for i in part {
                let s = src.row(base + i), t = tgt.row(base + i)
                preprocessor.write(src.images, index: s, into: sourceOut + i * floats)
                labels[i] = Int32(src.images.labels[s])
                preprocessor.write(tgt.images, index: t, into: targetOut + i * floats)
            }
        }
    }

    /// Rows of one domain that this rank's slices use in one epoch (with repeats).
    private var rowsPerEpoch: Int { stepsPerEpoch * accumulation * localSlice.count }

    /// Whether `dataset` is kept whole: its epoch's rows are at least a quarter of it, so the whole split costs at
    /// most four shards' memory and saves reading (for MNIST-M, inflating 133 MB and decoding 59,001 PNGs) every epoch.
    private func keepsWhole(_ dataset: DigitDataset) -> Bool { keepsBusySplits && 4 * rowsPerEpoch >= dataset.count }

    private func loadShard(epoch: Int) throws {
        let start = Date()
        sourceShard = nil
        targetShard = nil
        var loaded: (source: RawImages?, target: RawImages?) = (nil, nil)
        if let ready = pending, ready.epoch == epoch {
            ready.done.wait()
            pending = nil
            loaded = try ready.result!.get()
            fileLoads += ready.files
        } else if let stale = pending {
            stale.done.wait()
            pending = nil
        }
        sourceShard = try shard(source, rows: { sourceIndices(epoch: epoch) }, loaded: loaded.source, whole: &wholeSource)
        targetShard = try shard(target, rows: { targetIndices(epoch: epoch) }, loaded: loaded.target, whole: &wholeTarget)
        shardEpoch = epoch
        lastShardLoadSeconds = Date().timeIntervalSince(start)
        if prefetchNextEpoch { startPrefetch(epoch: epoch + 1) }
    }

    /// One domain's images for an epoch whose positions use `rows()` of `dataset`: picked from the kept split (read
    /// whole the first time), else the prefetched shard (whose rows the prefetch already chose), else the shard read now.
    private func shard(_ dataset: DigitDataset, rows: () -> [Int], loaded: RawImages?, whole: inout RawImages?) throws -> Shard {
        if keepsWhole(dataset) {
            if whole == nil {
                whole = try dataset.load(indices: Array(0..<dataset.count))
                fileLoads += 1
            }
            return Shard(images: whole!, rows: rows())
        }
        if let loaded { return Shard(images: loaded, rows: nil) }
        fileLoads += 1
        return Shard(images: try dataset.load(indices: rows()), rows: nil)
    }

    private func startPrefetch(epoch: Int) {
        // A kept split has nothing to read ahead.
        let job = PendingShard(epoch: epoch, source: source, target: target,
                               sourceIndices: keepsWhole(source) ? nil : sourceIndices(epoch: epoch),
                               targetIndices: keepsWhole(target) ? nil : targetIndices(epoch: epoch))
        guard job.files > 0 else { return }
        pending = job
        Thread.detachNewThread { job.run() }
    }

    deinit { pending?.done.wait() }
}

/// One domain's images for the current epoch: epoch position p uses row `rows[p]` of `images` (a kept whole
/// split), or row p when `rows` is nil (a shard read in position order).
private struct Shard {
    let images: RawImages
    let rows: [Int]?

    func row(_ position: Int) -> Int { rows?[position] ?? position }
}

/// A shard being read on a background thread; `done` is signalled once `result` is set. A domain without
/// indices (its split is kept whole) is not read.
private final class PendingShard: @unchecked Sendable {
    let epoch: Int
    let done = DispatchSemaphore(value: 0)
    private(set) var result: Result<(source: RawImages?, target: RawImages?), Error>?
    private let source, target: DigitDataset
    private let sourceIndices, targetIndices: [Int]?

    init(epoch: Int, source: DigitDataset, target: DigitDataset, sourceIndices: [Int]?, targetIndices: [Int]?) {
        self.epoch = epoch
        self.source = source
        self.target = target
        self.sourceIndices = sourceIndices
        self.targetIndices = targetIndices
    }

    /// Files the job reads.
    var files: Int { (sourceIndices == nil ? 0 : 1) + (targetIndices == nil ? 0 : 1) }

    func run() {
        result = Result { (try sourceIndices.map { try source.load(indices: $0) }, try targetIndices.map { try target.load(indices: $0) }) }
        done.signal()
    }
}

/// Test split slice for evaluation on rank r of N (contiguous slice of the test set, raw: preprocess on
/// demand with `Preprocessor`); nil when the test split is absent from `dataDir`.
public func loadEvalSlice(_ name: DatasetName, dataDir: String, rank: Int, size: Int) throws -> RawImages? {
    let officialPresent = DataPaths.officialFiles(name, .test, dataDir: dataDir)
        .allSatisfy { FileManager.default.fileExists(atPath: $0) }
    guard name == .mnistM ? DataPaths.mnistM(dataDir) != nil : officialPresent else { return nil }
    let (dataset, _) = try openDataset(name, .test, dataDir: dataDir)
    let slice = SampleOrder.rankSlice(globalBatch: dataset.count, rank: rank, size: size)
    return try dataset.load(indices: Array(slice))
}
