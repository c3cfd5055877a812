/// Reads a tar archive (ustar/GNU, as written by GNU tar) from a stream, one member at a time, so a
/// tar.gz is never extracted to disk or held in memory.
final class TarReader {
    struct Entry {
        var name: String
        var size: Int
        /// "0" (or NUL) regular file, "5" directory, others ignored.
        var type: UInt8
        var isFile: Bool { type == UInt8(ascii: "0") || type == 0 }
    }

    private let stream: ByteStream
    private var pendingData = 0
    private var headerOffset = 0

    init(_ stream: ByteStream) { self.stream = stream }

    var path: String { stream.path }

    /// The next regular member or directory; nil at the end-of-archive marker (or a clean end of stream).
    func next() throws -> Entry? {
        try skipData()
        var longName: String?
        while true {
            headerOffset = stream.position
            var block = [UInt8](repeating: 0, count: 512)
            let got = try block.withUnsafeMutableBytes { try stream.read(into: $0.baseAddress!, count: 512) }
            if got == 0 { return nil }
            guard got == 512 else { throw DANNError.file(path, "truncated tar archive: header at offset \(headerOffset) is \(got) of 512 bytes") }
            if block.allSatisfy({ $0 == 0 }) { return nil }
            let stored = Int(octal(block[148 ..< 156]) ?? -1)
            var sum = 0
            for (i, b) in block.enumerated() { sum += (148 ..< 156).contains(i) ? 32 : Int(b) }
            guard stored == sum else {
                throw DANNError.file(path, "not a tar archive (bad header checksum at offset \(headerOffset))")
            }
            guard let size = octal(block[124 ..< 136]) else {
                throw DANNError.file(path, "tar header at offset \(headerOffset) has an unreadable size")
            }
            let type = block[156]
            if type == UInt8(ascii: "L") {
                // GNU long name: the data block holds the next member's name. PATH_MAX-sized names are
                // plenty; a larger size is a damaged header, refused before it is read into memory.
                guard size <= TarReader.maxLongName else {
                    throw DANNError.file(path, "tar long name at offset \(headerOffset) claims \(size) bytes (at most \(TarReader.maxLongName))")
                }
                let data = try stream.readBytes(size, what: "tar long name")
                try stream.skip((512 - size % 512) % 512, what: "tar padding")
                longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                continue
            }
            var name = String(decoding: block[0 ..< 100].prefix { $0 != 0 }, as: UTF8.self)
            if block[257 ..< 262].elementsEqual("ustar".utf8) {
                let prefix = String(decoding: block[345 ..< 500].prefix { $0 != 0 }, as: UTF8.self)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            if let long = longName { name = long }
            pendingData = (size + 511) & ~511
            return Entry(name: name, size: size, type: type)
        }
    }

    static let maxLongName = 1 << 16

    /// Reads the current member's data (call once, right after `next`). Members read into memory are
    /// small (label lists, 32×32 PNGs), so a size above `limit` is a damaged header, not data to hold.
    func readData(_ entry: Entry, limit: Int = 1 << 26) throws -> [UInt8] {
        guard entry.size <= limit else {
            throw DANNError.file(path, "tar member \(entry.name) claims \(entry.size) bytes, more than the \(limit) a member read into memory may have")
        }
        let data = try stream.readBytes(entry.size, what: "tar member \(entry.name)")
        pendingData -= entry.size
        return data
    }

    /// Reads on to the end of the underlying stream (past the end-of-archive blocks), so a tar.gz read
    /// only in part still has its gzip CRC-32 and length checked.
    func finish() throws {
        try skipData()
        try stream.drain()
    }

    private func skipData() throws {
        if pendingData > 0 { try stream.skip(pendingData, what: "tar member data") }
        pendingData = 0
    }

    private func octal(_ field: ArraySlice<UInt8>) -> Int? {
        var value = 0
        var seen = false
        for b in field {
            if b == 0 || b == UInt8(ascii: " ") { if seen { break } else { continue } }
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(b - UInt8(ascii: "0"))
            seen = true
        }
        return seen ? value : nil
    }
}
