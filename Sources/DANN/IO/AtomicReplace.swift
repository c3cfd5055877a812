import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file's contents all at once: the bytes go to a temporary name in the same folder, are
/// synced, then renamed over the target, so a reader (or a crash) never sees a half-written file.
enum AtomicReplace {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DANNError.file(path, "cannot create \(temporary) (\(String(cString: strerror(errno))))")
        }
        var written = 0
        var failure: String?
        bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                written += n
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        if Glibc.close(descriptor) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw DANNError.file(path, "cannot write (\(failure))")
        }
    }
}
