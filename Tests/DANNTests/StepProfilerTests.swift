import XCTest
@testable import DANN

/// The training loop's clock and the statistics its ranks sum each step.
final class StepProfilerTests: XCTestCase {
    func testPhasesAddUpAndBecomeSpans() {
        let timeline = Timeline(capacity: 16)
        let profiler = StepProfiler(timeline: timeline)
        profiler.startStep()
        let value = profiler.measure(.compute, step: 3) { () -> Int in usleep(2000); return 42 }
        XCTAssertEqual(value, 42)
        profiler.measure(.compute, step: 3) { _ = usleep(1000) }
        XCTAssertThrowsError(try profiler.measure(.data, step: 3) { () throws -> Void in throw DANNError("no data") })
        profiler.endStep()
        XCTAssertGreaterThanOrEqual(profiler.milliseconds(.compute), 3)
        XCTAssertEqual(profiler.milliseconds(.allreduce), 0)
        XCTAssertGreaterThanOrEqual(profiler.stepMilliseconds, profiler.milliseconds(.compute))
        XCTAssertEqual(profiler.stepSeconds * 1000, profiler.stepMilliseconds, accuracy: 1e-9)
        // Three spans (the throwing phase too), labelled with the step given.
        XCTAssertEqual(timeline.count, 3)
        let trace = Timeline.chromeTrace([timeline.encoded()], hosts: ["h"])
        XCTAssertEqual(trace.components(separatedBy: "\"name\": \"compute\"").count - 1, 2, trace)
        XCTAssertEqual(trace.components(separatedBy: "\"args\": {\"step\": 3}").count - 1, 3, trace)

        // A new step starts from zero; without a timeline only the durations are kept.
        profiler.startStep()
        XCTAssertEqual(profiler.milliseconds(.compute), 0)
        let quiet = StepProfiler(timeline: nil)
        quiet.startStep()
        quiet.measure(.optimizer, step: 1) { _ = usleep(1000) }
        quiet.endStep()
        XCTAssertGreaterThanOrEqual(quiet.milliseconds(.optimizer), 1)
    }

    func testStepStatisticsPackAndSumOverRanks() {
        let mine = StepStatistics(labelLoss: 0.5, domainLoss: 0.25, labelCorrect: 3, domainCorrect: 7, stopRequests: 0)
        XCTAssertEqual(StepStatistics(packed: mine.packed), mine)
        let communicator = EvalTestCommunicator(rank: 0, size: 3, othersDoubles: [1, 2, 10, 20, 1])
        let total = mine.summed(over: communicator)
        XCTAssertEqual(total, StepStatistics(labelLoss: 1.5, domainLoss: 2.25, labelCorrect: 13, domainCorrect: 27, stopRequests: 1))
        XCTAssertEqual(communicator.doubleReductions, 1, "one allreduce per step")
    }
}
