import Foundation

/// JSON text written by Foundation's `JSONEncoder`, the one encoder of the commands' `--json` output.
public enum JSONText {
    /// `value` as one line of JSON. Keys are sorted: on Linux `JSONEncoder` writes a keyed container in hash
    /// order, which changes from run to run. `/` is left unescaped. A non-finite number (which JSON cannot
    /// hold) becomes the string "nan", "inf" or "-inf" rather than a trap; types that promise `null` map
    /// such values to nil themselves.
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            // Only non-finite floats make JSONEncoder fail, and the strategy above encodes those.
            preconditionFailure("JSONEncoder failed on \(T.self): \(error)")
        }
    }
}

/// `text` as a JSON string literal (quotes, backslashes and control characters escaped by `JSONEncoder`).
public func jsonQuoted(_ text: String) -> String {
    JSONText.encode(text)
}
