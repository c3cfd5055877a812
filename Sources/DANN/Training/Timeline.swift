import Foundation

/// Records what each rank does during a step (data, compute = forward + backward, allreduce wait,
/// optimizer; evaluation, rank 0's logging and checkpoints; instants when gradient buckets start) and
/// writes them, gathered from every rank, as one Chrome trace (chrome://tracing, Perfetto): `{"traceEvents": [...]}` with pid = rank, tid = 0,
/// ts and dur in microseconds.
///
/// Recording only stores five integers into a buffer allocated up front, so a step is not slowed by
/// allocation or formatting; a trainer without a timeline pays one nil check per event.
public final class Timeline {
    /// What a span or instant covers.
    public enum Phase: Int, CaseIterable, Sendable {
        case data, compute, allreduce, optimizer, evaluate, logging, checkpoint, bucketStart

        /// The name shown in the trace viewer.
        public var name: String {
            switch self {
            case .data: "data"
            case .compute: "compute"
            case .allreduce: "allreduce"
            case .optimizer: "optimizer"
            case .evaluate: "evaluate"
            case .logging: "logging"
            case .checkpoint: "checkpoint"
            case .bucketStart: "bucket start"
            }
        }
    }

    /// Words per event: start (ns after origin), duration (ns, or UInt64.max for an instant), step, phase, value.
    static let wordsPerEvent = 5
    private static let instantMarker = UInt64.max

    public let capacity: Int
    public private(set) var count = 0
    /// Events that did not fit into the buffer (reported in the trace's metadata).
    public private(set) var dropped = 0
    private let words: UnsafeMutablePointer<UInt64>
    private var origin: UInt64

    /// `capacity` events are allocated now; later events are counted as dropped.
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        words = .allocate(capacity: self.capacity * Self.wordsPerEvent)
        origin = DispatchTime.now().uptimeNanoseconds
    }

    deinit { words.deallocate() }

    /// Events for `steps` steps with up to `bucketsPerStep` bucket starts each, plus evaluations and
    /// checkpoints, capped at 262,144 events (10 MB per rank, about 40 MB of JSON per rank): a trace is
    /// for looking at some steps, not a whole 100-epoch run.
    public static func capacity(steps: Int, bucketsPerStep: Int) -> Int {
        min(1 << 18, max(0, steps) * (8 + bucketsPerStep) + 64)
    }

    /// Makes now the time zero of this rank's events. Called right after a barrier, so that ranks on one
    /// machine share the origin to within the barrier's exit skew.
    public func startClock() {
        origin = DispatchTime.now().uptimeNanoseconds
    }

    /// The current time in this recorder's clock (pass it back to `span(_:step:since:)`).
    @inline(__always) public func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }

    /// Records `phase` of step `step` from `start` (a value of `now()`) until now.
    public func span(_ phase: Phase, step: Int, since start: UInt64, value: Int = 0) {
        let end = now()
        record(start: start, duration: end &- start, step: step, phase: phase, value: value)
    }

    /// Records `phase` of step `step` from `start` to `end` (values of `now()`).
    func record(_ phase: Phase, step: Int, start: UInt64, end: UInt64) {
        record(start: start, duration: end &- start, step: step, phase: phase, value: 0)
    }

    /// Records an instant event (e.g. a bucket of `value` floats starting its allreduce).
    public func instant(_ phase: Phase, step: Int, value: Int = 0) {
        record(start: now(), duration: Self.instantMarker, step: step, phase: phase, value: value)
    }

    private func record(start: UInt64, duration: UInt64, step: Int, phase: Phase, value: Int) {
        guard count < capacity else { dropped += 1; return }
        let w = words + count * Self.wordsPerEvent
        w[0] = start >= origin ? start - origin : 0
        w[1] = duration
        w[2] = UInt64(max(0, step))
        w[3] = UInt64(phase.rawValue)
        w[4] = UInt64(max(0, value))
        count += 1
    }

    /// This rank's events as bytes (native byte order: the ranks of one job share an architecture),
    /// followed by the dropped count.
    public func encoded() -> [UInt8] {
        var bytes = [UInt8](UnsafeRawBufferPointer(start: words, count: count * Self.wordsPerEvent * 8))
        withUnsafeBytes(of: UInt64(dropped)) { bytes += $0 }
        return bytes
    }

    /// Gathers every rank's events (a collective call) and returns the Chrome trace JSON on rank 0 (nil on
    /// the others). `hosts[r]` names rank r's machine.
    public func gatherTrace(_ communicator: Communicator, hosts: [String]) -> String? {
        let gathered = communicator.allgather(encoded())
        return communicator.isRoot ? Self.chromeTrace(gathered, hosts: hosts) : nil
    }

    /// The trace JSON of the encoded events of each rank (element r from rank r).
    public static func chromeTrace(_ ranks: [[UInt8]], hosts: [String]) -> String {
        var out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n"
        var first = true
        func append(_ line: String) {
            out += first ? line : ",\n" + line
            first = false
        }
        var dropped = 0
        for (rank, bytes) in ranks.enumerated() {
            let host = rank < hosts.count ? hosts[rank] : "?"
            append("{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": \(rank), \"tid\": 0, \"args\": {\"name\": \(jsonQuoted("rank \(rank) (\(host))"))}}")
            append("{\"name\": \"process_sort_index\", \"ph\": \"M\", \"pid\": \(rank), \"tid\": 0, \"args\": {\"sort_index\": \(rank)}}")
            let words = bytes.withUnsafeBytes { raw in (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
            guard !words.isEmpty else { continue }
            dropped += Int(words[words.count - 1])
            let events = (words.count - 1) / wordsPerEvent
            for index in 0..<events {
                let w = words[(index * wordsPerEvent)..<((index + 1) * wordsPerEvent)].map { $0 }
                let phase = Phase(rawValue: Int(w[3]))?.name ?? "unknown"
                let ts = microseconds(w[0])
                let args = w[3] == UInt64(Phase.bucketStart.rawValue) ? "{\"step\": \(w[2]), \"floats\": \(w[4])}" : "{\"step\": \(w[2])}"
                if w[1] == instantMarker {
                    append("{\"name\": \"\(phase)\", \"cat\": \"step\", \"ph\": \"i\", \"s\": \"t\", \"pid\": \(rank), \"tid\": 0, \"ts\": \(ts), \"args\": \(args)}")
                } else {
                    append("{\"name\": \"\(phase)\", \"cat\": \"step\", \"ph\": \"X\", \"pid\": \(rank), \"tid\": 0, \"ts\": \(ts), \"dur\": \(microseconds(w[1])), \"args\": \(args)}")
                }
            }
        }
        out += "\n], \"otherData\": {\"ranks\": \(ranks.count), \"dropped_events\": \(dropped)}}\n"
        return out
    }

    /// Nanoseconds as microseconds with three decimals (exact: no floating point).
    private static func microseconds(_ nanoseconds: UInt64) -> String {
        let fraction = String(nanoseconds % 1000)
        return "\(nanoseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
