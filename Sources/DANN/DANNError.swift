/// The one error type the library throws: a single line naming what went wrong (and the file, where
/// there is one), which the CLI prints as-is before exiting non-zero.
public struct DANNError: Error, CustomStringConvertible, Equatable {
    public let message: String

    /// Control characters (a newline in a tensor or tar member name read from a file) are written as
    /// escapes, so the message stays one line whatever a file holds.
    public init(_ message: String) {
        self.message = message.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            ? String(message.unicodeScalars.map { $0.properties.generalCategory == .control
                ? $0.escaped(asASCII: true) : String($0) }.joined())
            : message
    }

    /// An error about a file: "PATH: PROBLEM".
    public static func file(_ path: String, _ problem: String) -> DANNError {
        DANNError("\(path): \(problem)")
    }

    public var description: String { message }
}
