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

    /// An upper bound on the bytes this stream can still deliver, known without reading them. Header
    /// counts are checked against it before anything is allocated, so a small file claiming billions of
    /// entries is refused at once instead of after a multi-gigabyte allocation.
    var maxRemaining: Int { Int.max }

    /// Throws, naming the file, unless `bytes` (what a header promises, described by `what`) can still be
    /// delivered. Callers pass the size computed with overflow checks; nil means it overflowed.
    final func requireAvailable(_ bytes: Int?, _ what: String) throws {
        let bound = maxRemaining
        guard let bytes, bytes <= bound else {
            let size = bytes.map { "\($0) bytes" } ?? "more bytes than any file holds"
            throw DANNError.file(path, "header promises \(what) (\(size)) but the file can hold at most \(bound)")
        }
    }

    /// Reads and discards the rest of the stream. A compressed stream's trailer (gzip CRC-32 and length,
    /// zlib Adler-32) is only checked when inflate reaches it, so a reader that needed only a prefix calls
    /// this to make sure the bytes it did use are the ones that were written.
    func drain() throws {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        try scratch.withUnsafeMutableBytes { buf in
            while try readSome(buf.baseAddress!, buf.count) > 0 {}
        }
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

    /// Reads exactly `count` bytes into a new array. The count usually comes from the file itself, so it
    /// is checked against `maxRemaining` first, and the array grows with the bytes actually read (in
    /// chunks) rather than being allocated at the promised size: a bound that is loose (compressed data)
    /// still never costs more than about twice the bytes the file really holds.
    final func readBytes(_ count: Int, what: String) throws -> [UInt8] {
        guard count >= 0 else { throw DANNError.file(path, "\(what) has a negative size (\(count))") }
        let bound = maxRemaining
        if count > bound {
            throw DANNError.file(path, "truncated: \(what) needs \(count) bytes, at most \(bound) left")
        }
        let chunk = 1 << 20
        if count <= chunk {
            var bytes = [UInt8](repeating: 0, count: count)
            if count > 0 {
                try bytes.withUnsafeMutableBytes { try readExactly(into: $0.baseAddress!, count: count, what: what) }
            }
            return bytes
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chunk)
        while bytes.count < count {
            let want = min(chunk, count - bytes.count), start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: want))
            let got = try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress! + start, count: want) }
            if got < want {
                throw DANNError.file(path, "truncated: \(what) needs \(count) bytes, only \(start + got) left")
            }
        }
        return bytes
    }

    /// Discards `count` bytes or throws "truncated".
    func skip(_ count: Int, what: String) throws {
        guard count >= 0 else { throw DANNError.file(path, "\(what) has a negative size (\(count))") }
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
    /// False for pipes and devices, whose stat size says nothing about what they deliver.
    private let regular: Bool

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
        self.regular = (info.st_mode & S_IFMT) == S_IFREG
        super.init(path: path)
        setvbuf(file, nil, _IOFBF, 1 << 16)
    }

    deinit { fclose(file) }

    override var maxRemaining: Int { regular ? max(0, size - position) : Int.max }

    /// Stored bytes carry no checksum of their own: there is nothing to verify by reading on.
    override func drain() throws {}

    /// The last `count` bytes of the file (a gzip trailer), read without moving the stream.
    func tail(_ count: Int) -> [UInt8]? {
        guard regular, size >= count else { return nil }
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fileno(file), $0.baseAddress!, count, off_t(size - count)) }
        return got == count ? bytes : nil
    }

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
    /// True when the stream runs to the end of `source` (a whole .gz file), so nothing may follow it.
    private let wholeSource: Bool
    /// An upper bound on the stream's total decompressed size from the gzip trailer, when there is one.
    private var totalBound: Int?

    /// Deflate expands at most 1032:1 (zlib's technical notes: a length-258 match costs at least two bits).
    static let maxExpansion = 1032
    /// Output inflate may hold back between calls (a pending match, bits already taken from the input).
    private static let heldBack = 1 << 14

    /// - Parameters:
    ///   - gzip: true for a gzip member (.gz files), false for a zlib stream (MAT miCOMPRESSED).
    ///   - compressedBytes: how many bytes of `source` belong to this stream (nil: to its end).
    ///   - sizeMod32: the gzip trailer's ISIZE (decompressed size mod 2^32) of a whole-file stream.
    init(source: ByteStream, gzip: Bool, compressedBytes: Int? = nil, label: String? = nil,
         sizeMod32: UInt32? = nil) throws {
        self.source = source
        self.compressedLeft = compressedBytes ?? Int.max
        self.format = gzip ? "gzip" : "zlib"
        self.wholeSource = gzip && compressedBytes == nil
        super.init(path: label ?? source.path)
        let rc = dann_inflateInit2(&stream, gzip ? 15 + 16 : 15)
        if rc != Z_OK { throw DANNError.file(path, "zlib initialisation failed (\(rc))") }
        if let sizeMod32 {
            // The size is ISIZE + k·2^32 for some k ≥ 0; the expansion limit caps k. For files under about
            // 4 MB that pins the size exactly. A trailer claiming more than the limit allows is damaged:
            // ignore it here, the length check at the end of the stream reports it.
            let ratioBound = maxRemaining, isize = Int(sizeMod32)
            if isize <= ratioBound { totalBound = isize + (ratioBound - isize) / (1 << 32) * (1 << 32) }
        }
    }

    deinit { inflateEnd(&stream) }

    override var maxRemaining: Int {
        let pushed = pushBack == nil ? 0 : 1
        if finished { return pushed }
        let compressed = (inputEnd - inputStart).addingSaturated(min(compressedLeft, source.maxRemaining))
        var bound = compressed.multipliedSaturated(by: InflateStream.maxExpansion)
            .addingSaturated(InflateStream.heldBack + pushed)
        if let totalBound { bound = min(bound, max(0, totalBound - position)) }
        return bound
    }

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
            case Z_STREAM_END:
                finished = true
                // Reading stops at the first member's end, so a second member (or padding) would be
                // dropped without a word: refuse it instead.
                if wholeSource, try inputStart < inputEnd || !source.atEnd() {
                    throw DANNError.file(path, "data follows the end of the gzip stream (concatenated gzip members are not supported)")
                }
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
    if head == 2 && magic == (0x1f, 0x8b) {
        let trailer = file.tail(4).map { t in t.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
        return try InflateStream(source: reopened, gzip: true, sizeMod32: trailer)
    }
    if path.hasSuffix(".gz") { throw DANNError.file(path, "not a gzip file (no 1f 8b magic)") }
    return reopened
}

extension Int {
    /// Sums and products of sizes taken from files: saturate instead of wrapping (release builds are
    /// -Ounchecked), so a bound stays a bound.
    func addingSaturated(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? Int.max : sum
    }

    func multipliedSaturated(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? Int.max : product
    }
}

/// The product of sizes read from a file, or nil when it overflows (no file can hold that many bytes).
func checkedProduct(_ factors: [Int]) -> Int? {
    var product = 1
    for f in factors {
        let (p, overflow) = product.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        product = p
    }
    return product
}
