import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a crash or a full disk never leaves a half-written file under the final name:
/// bytes go to `path.tmp-<pid>`, are fsynced, renamed over `path`, and the directory is fsynced so the
/// rename itself survives a power cut.
public enum AtomicFile {
    /// Replaces `path` with `bytes` atomically; on failure removes the temporary file and throws a one-line
    /// `DANNError.file(path, …)`.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try write(UnsafeRawBufferPointer($0), to: path) }
    }

    /// `write(_:to:)` for `Data`.
    public static func write(_ data: Data, to path: String) throws {
        try data.withUnsafeBytes { try write($0, to: path) }
    }

    /// Writes UTF-8 text atomically (e.g. `checkpoints/latest`, `config.json`).
    public static func writeText(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// The raw-buffer form the others funnel into.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DANNError.file(path, "cannot create temporary file \(temporary) (\(errnoText()))")
        }
        var failure: String?
        var written = 0
        while written < bytes.count, failure == nil {
            let result = systemWrite(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                failure = "write failed (\(errnoText()))"
            } else {
                written += result
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = "fsync failed (\(errnoText()))" }
        if close(descriptor) != 0, failure == nil { failure = "close failed (\(errnoText()))" }
        if failure == nil, rename(temporary, path) != 0 { failure = "cannot rename \(temporary) into place (\(errnoText()))" }
        if let failure {
            unlink(temporary)
            throw DANNError.file(path, failure)
        }
        syncDirectory(of: path)
    }

    /// Best effort: some filesystems refuse fsync on a directory, and the data itself is already safe.
    private static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private static func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(descriptor, buffer, count)
        #else
        return Darwin.write(descriptor, buffer, count)
        #endif
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
