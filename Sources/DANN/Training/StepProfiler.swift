import Foundation

/// The training loop's clock: it times each phase of a step, keeps this step's durations (for the step time
/// and `--verbose-ranks`), and records every phase as a span of the `--timeline` trace when there is one.
/// The loop reads no clock of its own.
final class StepProfiler {
    typealias Phase = Timeline.Phase

    /// Where spans go (nil: durations only).
    let timeline: Timeline?
    private var stepStart: UInt64 = 0
    private var stepEnd: UInt64 = 0
    /// Nanoseconds of each phase in the current step, by `Phase.rawValue`.
    private var durations = [UInt64](repeating: 0, count: Phase.allCases.count)

    init(timeline: Timeline?) {
        self.timeline = timeline
    }

    /// Makes now time zero of the trace; call on every rank right after a barrier, so that ranks on one machine
    /// share the origin to within the barrier's exit skew.
    func startClock() {
        timeline?.startClock()
    }

    /// Starts a step: the step time runs from here to `endStep`, and the phase durations start from zero.
    func startStep() {
        for index in durations.indices { durations[index] = 0 }
        stepStart = Self.now()
        stepEnd = stepStart
    }

    /// Runs `body` as `phase` of step `step` (1-based, as the trace labels steps).
    @inline(__always) @discardableResult
    func measure<T>(_ phase: Phase, step: Int, _ body: () throws -> T) rethrows -> T {
        let start = Self.now()
        defer {
            let end = Self.now()
            durations[phase.rawValue] &+= end &- start
            timeline?.record(phase, step: step, start: start, end: end)
        }
        return try body()
    }

    /// Ends the step's time (the phases after it, evaluation, logging and checkpoints, are not part of it).
    func endStep() {
        stepEnd = Self.now()
    }

    /// From `startStep` to `endStep`.
    var stepSeconds: Double { Double(stepEnd &- stepStart) / 1e9 }

    /// Time spent in `phase` during the current step.
    func milliseconds(_ phase: Phase) -> Double { Double(durations[phase.rawValue]) / 1e6 }

    /// From `startStep` to `endStep`, in milliseconds.
    var stepMilliseconds: Double { Double(stepEnd &- stepStart) / 1e6 }

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
