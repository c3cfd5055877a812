import Foundation

/// The console side of a run (rank 0): a boxed table of every setting at start, then a progress line —
/// redrawn in place on a terminal, plain lines at most once a second otherwise — and a line per evaluation.
public final class ProgressPrinter: TrainingCallback {
    private let isTerminal: Bool
    private let write: (String) -> Void
    private var lastPrint = 0.0
    private var averageStep = 0.0
    private var lineOpen = false

    public init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0, write: @escaping (String) -> Void = { print($0, terminator: ""); fflush(nil) }) {
        self.isTerminal = isTerminal
        self.write = write
    }

    public func runStarted(_ info: RunInfo) throws {
        for note in info.notes { write("note: \(note)\n") }
        write(ProgressPrinter.table(info))
    }

    public func stepFinished(_ r: StepRecord, evaluation: [EvalResult]?) throws {
        averageStep = averageStep == 0 ? r.stepSeconds : 0.9 * averageStep + 0.1 * r.stepSeconds
        let now = Date().timeIntervalSince1970
        let last = r.step == r.totalSteps
        if isTerminal ? (now - lastPrint >= 0.1 || last) : (now - lastPrint >= 1 || last || evaluation != nil) {
            lastPrint = now
            let eta = ProgressPrinter.duration(averageStep * Double(r.totalSteps - r.step))
            let line = String(format: "epoch %d/%d  step %d/%d  %.0f img/s  ETA %@  label %.4f  domain %.4f  lr %.5f  λ %.3f",
                              r.epoch, r.epochs, r.step, r.totalSteps, r.imagesPerSecond, eta, r.labelLoss, r.domainLoss, r.lr, r.lambda)
            write(isTerminal ? "\r\u{1B}[2K" + line : line + "\n")
            lineOpen = isTerminal
        }
        if let evaluation, !evaluation.isEmpty {
            let parts = evaluation.map { String(format: "%@ %.4f (%d/%d)", $0.key, $0.accuracy, $0.correct, $0.count) }
            say("eval at step \(r.step): " + parts.joined(separator: ", "))
        }
    }

    public func checkpointSaved(_ folder: String, step: Int) throws {
        if !isTerminal { say("checkpoint: \(folder)") }
    }

    public func warning(_ text: String) throws { say("warning: " + text) }

    public func runFinished(step: Int, interrupted: Bool) throws {
        if lineOpen { write("\n"); lineOpen = false }
    }

    private func say(_ text: String) {
        write((lineOpen ? "\n" : "") + text + "\n")
        lineOpen = false
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }

    /// Every setting, the data and the parallel layout, in a box.
    public static func table(_ info: RunInfo) -> String {
        let c = info.config
        let hosts = Dictionary(grouping: info.hosts, by: { $0 }).map { "\($0.key)×\($0.value.count)" }.sorted().joined(separator: " ")
        let rows: [(String, String)] = [
            ("source → target", "\(c.source.rawValue) → \(c.target.rawValue)\(c.sourceOnly ? " (source only)" : "")"),
            ("data", "\(c.dataDir)  (\(info.sourceCount) source, \(info.targetCount) target images)"),
            ("test sets", info.testSets.isEmpty ? "none present" : info.testSets.map { "\($0.rawValue)_test" }.joined(separator: ", ")),
            ("arch", "\(c.arch), input \(c.inputSize)×\(c.inputSize)\(c.normalize ? ", normalized" : ""), \(info.parameterCount.formatted()) parameters"),
            ("steps", "\(info.totalSteps) (\(info.stepsPerEpoch) per epoch)\(info.startStep > 0 ? ", resuming at \(info.startStep)" : "")"),
            ("batch", c.accumulate == 1 ? "\(c.batchSize) source + \(c.batchSize) target per step (global)"
                : "\(c.stepBatch) source + \(c.stepBatch) target per step (global): \(c.accumulate) passes of \(c.batchSize) + \(c.batchSize)"),
            ("optimizer", c.optimizer == .sgd ? "SGD, momentum \(c.momentum), weight decay \(c.weightDecay)"
                : "Adam, β \(c.adamBeta1), \(c.adamBeta2), ε \(c.adamEpsilon), weight decay \(c.weightDecay)"),
            ("lr", "\(c.lr) / (1 + \(c.alpha)·p)^\(c.beta)\(c.clipGradNorm.map { ", gradient norm clipped at \($0)" } ?? "")"),
            ("loss, λ", "label + \(c.domainWeight == 1 ? "" : "\(c.domainWeight) · ")domain, λ = \(c.lambdaMax == 1 ? "" : "\(c.lambdaMax) · (")2 / (1 + exp(−\(c.gamma)·p)) − 1\(c.lambdaMax == 1 ? "" : ")")"),
            ("dropout / seed", "\(c.dropout) / \(c.seed)\(c.shuffle ? "" : ", no shuffle")"),
            ("ranks", "\(info.ranks) on \(hosts), \(info.threadsPerRank) BLAS thread(s) each (\(BLASKernels.loaded) kernels), binding: \(info.binding)"),
            ("allreduce", info.ranks > 1 ? "\(info.allreduce.rawValue)\(info.allreduce == .buckets ? " (\(c.bucketMegabytes) MB)" : info.allreduce == .shared ? " (node memory, each rank updates 1/\(info.ranks))" : "")\(c.allreduceDtype == .f32 ? "" : ", \(c.allreduceDtype.rawValue) on the wire")"
                : "none (one process)\(c.allreduceDtype == .f32 ? "" : "; --allreduce-dtype \(c.allreduceDtype.rawValue) has no effect")"),
            ("eval / checkpoint", "every \(c.evalEvery > 0 ? String(c.evalEvery) : "~" + String(max(1, info.totalSteps / 10))) / \(c.checkpointEvery > 0 ? String(c.checkpointEvery) : "~" + String(max(1, info.totalSteps / 10))) steps, keep \(c.keep)"),
            ("out", info.outDirectory),
        ]
        let keyWidth = rows.map { $0.0.count }.max()!
        let valueWidth = rows.map { $0.1.count }.max()!
        var text = "┌" + String(repeating: "─", count: keyWidth + valueWidth + 5) + "┐\n"
        for (k, v) in rows {
            text += "│ " + k.padding(toLength: keyWidth, withPad: " ", startingAt: 0) + " │ " + v.padding(toLength: valueWidth, withPad: " ", startingAt: 0) + " │\n"
        }
        return text + "└" + String(repeating: "─", count: keyWidth + valueWidth + 5) + "┘\n"
    }
}
