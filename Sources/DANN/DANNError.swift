/// The one error type the library throws: a single line naming what went wrong (and the file, where
/// there is one), which the CLI prints as-is before exiting non-zero.
public struct DANNError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) { self.message = message }

    /// An error about a file: "PATH: PROBLEM".
    public static func file(_ path: String, _ problem: String) -> DANNError {
        DANNError("\(path): \(problem)")
    }

    public var description: String { message }
}
