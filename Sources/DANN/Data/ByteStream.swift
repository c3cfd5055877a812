import CZlib
import Foundation

/// A forward-only byte source that names its file in every error. Readers of all three formats are written
/// against this so that gzip, zlib-inside-MAT and tar-over-gzip all stream in bounded memory.
class ByteStream {
    /// The file (and, for nested streams, the part of it) that errors name.
    let path: String
    /// Bytes delivered so far.
    private(set) var position: Int = 0

    init(path: String) { self.path = path }

    /// Reads up to `count` bytes; returns fewer only at the end of the stream.
    func readSome(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        fatalError("subclass")
    }

    /// Reads up to `count` bytes, returning how many were read (fewer only at the end).
    final func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        while done < count {
            let n = try readSome(buffer + done, count - done)
            if n == 0 { break }
            done += n
        }
        position += done
        return done
    }

    /// Reads exactly `count` bytes or throws "truncated" naming `what`.
    final func readExactly(into buffer: UnsafeMutableRawPointer, count: Int, what: String) throws {
        let got = try read(into: buffer, count: count)
        if got < count {
            throw DANNError.file(path, "truncated: \(what) needs \(count) bytes, only \(got) left")
        }
    }

    /// Reads exactly `count` bytes into a new array.
    final func readBytes(_ count: Int, what: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 {
            try bytes.withUnsafeMutableBytes { try readExactly(into: $0.baseAddress!, count: count, what: what) }
        }
        return bytes
    }

    /// Discards `count` bytes or throws "truncated".
    func skip(_ count: Int, what: String) throws {
        var left = count
        var scratch = [UInt8](repeating: 0, count: min(count, 1 << 16))
        try scratch.withUnsafeMutableBytes { buf in
            while left > 0 {
                let n = min(left, buf.count)
                try readExactly(into: buf.baseAddress!, count: n, what: what)
                left -= n
            }
        }
    }

    /// True when no byte is left.
    final func atEnd() throws -> Bool {
        var byte: UInt8 = 0
        let n = try readSome(&byte, 1)
        if n == 1 { pushBack = byte }
        return n == 0
    }

    /// One byte that `atEnd` peeked at; subclasses deliver it first.
    var pushBack: UInt8?
}

/// A plain file read through a C stream (large buffered reads, seekable for skipping).
final class FileStream: ByteStream {
    private let file: UnsafeMutablePointer<FILE>
    /// Bytes in the file, from stat.
    let size: Int

    init(file path: String) throws {
        guard let file = fopen(path, "rb") else {
            throw DANNError.file(path, String(cString: strerror(errno)).lowercased())
        }
        var info = stat()
        fstat(fileno(file), &info)
        if (info.st_mode & S_IFMT) == S_IFDIR {
            fclose(file)
            throw DANNError.file(path, "is a directory, expected a file")
        }
        self.file = file
        self.size = Int(info.st_size)
        super.init(path: path)
        setvbuf(file, nil, _IOFBF, 1 << 16)
    }

    deinit { fclose(file) }

    override func readSome(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        if count == 0 { return 0 }
        if takePushBack(into: buffer) { return 1 }
        let n = fread(buffer, 1, count, file)
        if n == 0 && ferror(file) != 0 { throw DANNError.file(path, "read error") }
        return n
    }

    /// Skips by seeking, so passing over a 180 MB MAT variable costs nothing.
    override func skip(_ count: Int, what: String) throws {
        let here = position
        if here + count > size {
            throw DANNError.file(path, "truncated: \(what) needs \(count) bytes at offset \(here), file has \(size) bytes")
        }
        var left = count
        if pushBack != nil { pushBack = nil; left -= 1 }
        if left > 0 && fseeko(file, off_t(left), SEEK_CUR) != 0 { throw DANNError.file(path, "seek failed") }
        advance(count)
    }
}

extension ByteStream {
    /// Bookkeeping for subclasses that move without `read` (seeks).
    @inline(__always) func advance(_ count: Int) { position += count }

    /// Hands back the byte a reader peeked at and pushed back, if there is one.
    func takePushBack(into buffer: UnsafeMutableRawPointer) -> Bool {
        guard let byte = pushBack else { return false }
        buffer.storeBytes(of: byte, as: UInt8.self)
        pushBack = nil
        return true
    }
}

/// zlib/gzip decompression of (part of) another stream, in 64 KiB chunks.
final class InflateStream: ByteStream {
    private let source: ByteStream
    private var compressedLeft: Int
    private var stream = z_stream()
    private var input = [UInt8](repeating: 0, count: 1 << 16)
    private var inputStart = 0, inputEnd = 0
    private var finished = false
    private let format: String

    /// - Parameters:
    ///   - gzip: true for a gzip member (.gz files), false for a zlib stream (MAT miCOMPRESSED).
    ///   - compressedBytes: how many bytes of `source` belong to this stream (nil: to its end).
    init(source: ByteStream, gzip: Bool, compressedBytes: Int? = nil, label: String? = nil) throws {
        self.source = source
        self.compressedLeft = compressedBytes ?? Int.max
        self.format = gzip ? "gzip" : "zlib"
        super.init(path: label ?? source.path)
        let rc = dann_inflateInit2(&stream, gzip ? 15 + 16 : 15)
        if rc != Z_OK { throw DANNError.file(path, "zlib initialisation failed (\(rc))") }
    }

    deinit { inflateEnd(&stream) }

    override func readSome(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        if count == 0 { return 0 }
        if takePushBack(into: buffer) { return 1 }
        if finished { return 0 }
        var produced = 0
        while produced == 0 && !finished {
            if inputStart == inputEnd && compressedLeft > 0 {
                let want = min(input.count, compressedLeft)
                let got = try input.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: want) }
                compressedLeft -= got
                if got < want { compressedLeft = 0 }
                inputStart = 0
                inputEnd = got
            }
            let available = inputEnd - inputStart
            if available == 0 {
                throw DANNError.file(path, "truncated \(format) stream (compressed data ends before the stream does)")
            }
            let rc: Int32 = input.withUnsafeMutableBytes { inBuf in
                stream.next_in = inBuf.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputStart
                stream.avail_in = uInt(available)
                stream.next_out = buffer.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(min(count, Int(UInt32.max)))
                let rc = inflate(&stream, Z_NO_FLUSH)
                inputStart = inputEnd - Int(stream.avail_in)
                return rc
            }
            produced = min(count, Int(UInt32.max)) - Int(stream.avail_out)
            switch rc {
            case Z_OK: break
            case Z_STREAM_END: finished = true
            case Z_BUF_ERROR: break
            default:
                let why = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw DANNError.file(path, "corrupt \(format) data: \(why)")
            }
        }
        return produced
    }
}

/// Opens a file for reading, decompressing it when it starts with the gzip magic (1f 8b).
func openMaybeGzip(_ path: String) throws -> ByteStream {
    let file = try FileStream(file: path)
    var magic: (UInt8, UInt8) = (0, 0)
    let head = try withUnsafeMutableBytes(of: &magic) { try file.read(into: $0.baseAddress!, count: 2) }
    let reopened = try FileStream(file: path)
    if head == 2 && magic == (0x1f, 0x8b) { return try InflateStream(source: reopened, gzip: true) }
    if path.hasSuffix(".gz") { throw DANNError.file(path, "not a gzip file (no 1f 8b magic)") }
    return reopened
}
