import Foundation

/// The run's `metrics.csv`: one header row, then one row per logged step. Columns are fixed when the
/// file is opened; a value missing from a row is left empty (e.g. accuracies between evaluations).
///
/// Resuming a run re-opens the same file: the header must match, and rows at or after the resume
/// step are dropped first so the resumed run does not duplicate them.
public final class MetricsCSV {
    /// The file being written.
    public let path: String
    /// Column names in file order.
    public let columns: [String]
    private let handle: FileHandle

    /// The columns every run starts with (docs/design.md §4.2).
    public static let leadingColumns = ["step", "epoch", "lr", "lambda", "label_loss", "domain_loss"]

    /// `leadingColumns`, then `middle` (accuracies, timings...), then `images_per_s` last.
    public static func standardColumns(middle: [String]) -> [String] {
        leadingColumns + middle + ["images_per_s"]
    }

    /// Opens `path` for appending, writing the header if the file is new or empty. An existing file
    /// must have the same header. With `resumeFromStep`, rows whose `step` is ≥ that value (and a
    /// half-written last line) are removed before appending.
    public init(path: String, columns: [String], resumeFromStep: Int64? = nil) throws {
        guard !columns.isEmpty, Set(columns).count == columns.count else {
            throw DANNError.file(path, "metrics columns must be non-empty and distinct: \(columns)")
        }
        for column in columns where column.contains(where: { $0 == "," || $0 == "\n" || $0 == "\"" }) {
            throw DANNError.file(path, "metrics column name \"\(column)\" contains a comma, quote or newline")
        }
        self.path = path
        self.columns = columns
        let header = columns.joined(separator: ",")

        let existing = FileManager.default.fileExists(atPath: path)
            ? try MetricsCSV.readExisting(path: path) : ""
        if existing.isEmpty || !existing.contains("\n") {
            // New, empty, or cut inside the header row: start over with the header.
            try MetricsCSV.replaceContents(path: path, with: header + "\n")
        } else {
            var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            // A file that does not end in a newline was cut mid-row by a crash: drop that row.
            let complete = existing.hasSuffix("\n")
            lines.removeLast()
            guard let fileHeader = lines.first, fileHeader == header else {
                throw DANNError.file(path, "existing header \"\(lines.first ?? "")\" differs from \"\(header)\"")
            }
            var kept = lines
            if let resumeFromStep {
                guard let stepIndex = columns.firstIndex(of: "step") else {
                    throw DANNError.file(path, "cannot truncate for resume: no \"step\" column")
                }
                kept = [fileHeader] + lines.dropFirst().filter { line in
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                    guard stepIndex < fields.count, let step = Double(fields[stepIndex]) else { return false }
                    return step < Double(resumeFromStep)
                }
            }
            if kept.count != lines.count || !complete {
                try MetricsCSV.replaceContents(path: path, with: kept.map { $0 + "\n" }.joined())
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw DANNError.file(path, "cannot open for appending")
        }
        self.handle = handle
        do {
            try handle.seekToEnd()
        } catch {
            throw DANNError.file(path, "cannot seek to the end (\(error.localizedDescription))")
        }
    }

    deinit { try? handle.close() }

    /// Appends one row; keys must be column names, absent columns stay empty. The row reaches the
    /// file before this returns (one unbuffered write).
    public func append(_ values: [String: Double]) throws {
        for key in values.keys where !columns.contains(key) {
            throw DANNError.file(path, "metric \"\(key)\" is not one of the columns \(columns)")
        }
        let row = columns.map { values[$0].map(MetricsCSV.format) ?? "" }.joined(separator: ",") + "\n"
        do {
            try handle.write(contentsOf: Data(row.utf8))
        } catch {
            throw DANNError.file(path, "cannot append a row (\(error.localizedDescription))")
        }
    }

    /// Integers (steps, epochs) without a decimal point; other values with 7 significant digits,
    /// which is all a Float metric carries; non-finite values as Python's float() spells them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.7g", value)
    }

    private static func readExisting(path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DANNError.file(path, "cannot read the existing metrics file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DANNError.file(path, "existing metrics file is not UTF-8 text")
        }
        return text
    }

    private static func replaceContents(path: String, with text: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw DANNError.file(path, "cannot write (\(error.localizedDescription))")
        }
    }
}
