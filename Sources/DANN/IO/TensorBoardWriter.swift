import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes scalars to a TensorBoard event file (`events.out.tfevents.<unix seconds>.<hostname>`) in
/// TFRecord framing, so `tensorboard --logdir` on the run directory shows them live.
///
/// Scalars are buffered by `addScalar` and reach the file on `flush()`: call it once per batch of
/// scalars (e.g. once per logged step) so a live TensorBoard sees whole steps.
public final class TensorBoardWriter {
    /// The event file being written.
    public let path: String
    private var handle: FileHandle?
    private var pending: [UInt8] = []

    // Field numbers from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.
    private enum EventField { static let wallTime = 1, step = 2, fileVersion = 3, summary = 5 }
    private enum SummaryField { static let value = 1 }
    private enum ValueField { static let tag = 1, simpleValue = 2 }

    /// Creates `directory` if needed and starts a new event file in it with the file-version record.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DANNError.file(directory, "cannot create the TensorBoard directory (\(error.localizedDescription))")
        }
        let now = Date().timeIntervalSince1970
        let base = "\(directory)/events.out.tfevents.\(Int64(now)).\(currentHostname())"
        // Two writers started within one second in one folder must not share a file: add a suffix.
        var candidate = base
        var descriptor: Int32 = -1
        for attempt in 0..<1000 {
            candidate = attempt == 0 ? base : "\(base).\(attempt)"
            descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw DANNError.file(candidate, "cannot create the event file (\(String(cString: strerror(errno))))")
        }
        path = candidate
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)

        var event = ProtobufEncoder()
        event.double(EventField.wallTime, now)
        event.int64(EventField.step, 0)
        event.string(EventField.fileVersion, "brain.Event:2")
        pending = TFRecordFraming.frame(event.bytes)
        try flush()
    }

    deinit { close() }

    /// Queues one scalar (`tag` at `step`); `wallTime` defaults to now, in seconds since 1970.
    public func addScalar(_ tag: String, value: Float, step: Int64, wallTime: Double? = nil) throws {
        guard handle != nil else { throw DANNError.file(path, "scalar \(tag) written after close") }
        var summaryValue = ProtobufEncoder()
        summaryValue.string(ValueField.tag, tag)
        summaryValue.float(ValueField.simpleValue, value)
        var summary = ProtobufEncoder()
        summary.lengthDelimited(SummaryField.value, summaryValue.bytes)
        var event = ProtobufEncoder()
        event.double(EventField.wallTime, wallTime ?? Date().timeIntervalSince1970)
        event.int64(EventField.step, step)
        event.lengthDelimited(EventField.summary, summary.bytes)
        pending.append(contentsOf: TFRecordFraming.frame(event.bytes))
    }

    /// Writes every queued scalar to the file.
    public func flush() throws {
        guard let handle, !pending.isEmpty else { return }
        do {
            try handle.write(contentsOf: pending)
        } catch {
            throw DANNError.file(path, "cannot write TensorBoard events (\(error.localizedDescription))")
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes what is queued (best effort) and closes the file; later `addScalar` calls throw.
    public func close() {
        try? flush()
        try? handle?.close()
        handle = nil
    }
}
