/// A MAT-file version 5 (the format of the official SVHN files), read as far as dann-dist needs:
/// the 128-byte header, top-level miMATRIX elements stored plain or inside miCOMPRESSED (zlib) elements,
/// and numeric (non-complex, non-sparse) arrays. Variables are found by seeking over elements, so listing
/// them never decompresses an array; an array's data is then streamed in bounded memory.
struct MATFile {
    /// Data types of MAT v5 data elements (the subset that can hold numeric arrays, names and dims).
    enum DataType: UInt32 {
        case int8 = 1, uint8 = 2, int16 = 3, uint16 = 4, int32 = 5, uint32 = 6, single = 7, double = 9
        case int64 = 12, uint64 = 13, matrix = 14, compressed = 15, utf8 = 16, utf16 = 17, utf32 = 18

        var size: Int {
            switch self {
            case .int8, .uint8, .utf8, .matrix, .compressed: return 1
            case .int16, .uint16, .utf16: return 2
            case .int32, .uint32, .single, .utf32: return 4
            case .double, .int64, .uint64: return 8
            }
        }
    }

    /// MATLAB array classes (the `class` field of array flags).
    static let classNames: [UInt32: String] = [
        1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single",
        8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64",
    ]

    /// One top-level variable as found by `variables()`.
    struct Variable {
        var name: String
        var classID: UInt32
        var complex: Bool
        var dims: [Int]
        /// Offset of the element's tag in the file.
        var offset: Int
        var compressed: Bool
        /// True when the file ends before the element does (only reported by `variables(allowTruncated:)`).
        var truncated: Bool

        var className: String { MATFile.classNames[classID] ?? "class \(classID)" }
        var shape: String { dims.map(String.init).joined(separator: "×") }
    }

    let path: String
    /// The descriptive text of the header, e.g. "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: …".
    let headerText: String
    let bigEndian: Bool
    let fileSize: Int

    /// Reads and checks the 128-byte header: descriptive text, version 0x0100, endian indicator "IM"/"MI".
    init(path: String) throws {
        self.path = path
        let file = try FileStream(file: path)
        fileSize = file.size
        let notMAT = "not a MAT-file v5 (no \"MATLAB 5.0 MAT-file\" header)"
        let got = file.size
        guard got >= 128 else {
            let head = try file.readBytes(got, what: "header")
            if head.starts(with: Array("MATLAB 5.0 MAT-file".utf8)) {
                throw DANNError.file(path, "truncated: MAT-file header needs 128 bytes, file has \(got)")
            }
            throw DANNError.file(path, notMAT)
        }
        let header = try file.readBytes(128, what: "MAT-file header")
        guard header.starts(with: Array("MATLAB 5.0 MAT-file".utf8)) else { throw DANNError.file(path, notMAT) }
        let text = header[0..<116].prefix { $0 != 0 }
        headerText = String(decoding: text, as: UTF8.self).trimmingTrailingSpaces()
        switch (header[126], header[127]) {
        case (UInt8(ascii: "I"), UInt8(ascii: "M")): bigEndian = false
        case (UInt8(ascii: "M"), UInt8(ascii: "I")): bigEndian = true
        default: throw DANNError.file(path, "MAT-file header has no endian indicator (expected \"IM\" or \"MI\")")
        }
        let version = bigEndian ? UInt16(header[124]) << 8 | UInt16(header[125])
                                : UInt16(header[125]) << 8 | UInt16(header[124])
        guard version == 0x0100 else {
            throw DANNError.file(path, "MAT-file version 0x\(String(version, radix: 16)), expected 0x0100")
        }
    }

    /// Lists the top-level variables. A top-level element running past the end of the file is an error
    /// ("truncated", naming the variable when its header could be read) unless `allowTruncated`.
    func variables(allowTruncated: Bool = false) throws -> [Variable] {
        var result: [Variable] = []
        var offset = 128
        while offset < fileSize {
            let file = try FileStream(file: path)
            try file.skip(offset, what: "element")
            guard fileSize - offset >= 8 else {
                throw DANNError.file(path, "truncated: element tag at offset \(offset) needs 8 bytes, file has \(fileSize - offset)")
            }
            let tag = try readTag(file)
            let length = tag.small != nil ? 0 : tag.count
            let dataType = DataType(rawValue: tag.type)
            // Compressed elements are not padded; others are padded to 8 bytes.
            let padded = dataType == .compressed ? length : (length + 7) & ~7
            let end = offset + 8 + padded
            let inFile = min(fileSize, end) - offset - 8
            if dataType == .matrix || dataType == .compressed {
                var variable: Variable
                do {
                    let matrix = try openMatrix(file, offset: offset, tag: tag, truncated: end > fileSize,
                                                label: "\(path) (compressed element at offset \(offset))")
                    let header = matrix.header
                    variable = Variable(name: header.name, classID: header.classID, complex: header.complex,
                                        dims: header.dims, offset: offset, compressed: dataType == .compressed,
                                        truncated: end > fileSize)
                } catch let error as DANNError where end > fileSize {
                    throw DANNError.file(path, "truncated: element at offset \(offset) declares \(length) bytes, file has \(inFile) after its tag (\(error.message))")
                }
                if end > fileSize {
                    if !allowTruncated {
                        throw DANNError.file(path, "truncated: variable \(variable.name) (\(variable.className) \(variable.shape)) at offset \(offset) declares \(length) bytes, file has only \(inFile) after its tag")
                    }
                    result.append(variable)
                    return result
                }
                result.append(variable)
            } else if end > fileSize {
                throw DANNError.file(path, "truncated: element at offset \(offset) declares \(length) bytes, file has \(inFile) after its tag")
            }
            offset = end
        }
        return result
    }

    /// The parsed sub-elements of a miMATRIX before its real part.
    struct MatrixHeader {
        var classID: UInt32
        var complex: Bool
        var dims: [Int]
        var name: String
    }

    /// Opens `variable`'s real part: returns the storage type, its byte count, and a stream positioned at
    /// its first byte (decompressing on the fly for miCOMPRESSED elements).
    func openRealPart(_ variable: Variable) throws -> (type: DataType, count: Int, stream: ByteStream, small: [UInt8]?) {
        let file = try FileStream(file: path)
        try file.skip(variable.offset, what: "element")
        let tag = try readTag(file)
        let matrix = try openMatrix(file, offset: variable.offset, tag: tag, truncated: variable.truncated,
                                    label: "\(path) (variable \(variable.name))")
        guard let real = matrix.real, let type = matrix.type else {
            throw DANNError.file(path, "variable \(variable.name) is \(variable.className), not a numeric array")
        }
        return (type, real.count, matrix.body, real.small)
    }

    /// Numeric array classes (double … uint64): their real part follows the name.
    static func isNumeric(_ classID: UInt32) -> Bool { (6...15).contains(classID) }

    /// A top-level miMATRIX read up to its real part's data.
    private struct OpenedMatrix {
        var header: MatrixHeader
        /// The real part's tag and storage type (numeric classes only).
        var real: Tag?
        var type: DataType?
        /// Positioned at the real part's first byte.
        var body: ByteStream
    }

    /// Reads a top-level element (miMATRIX, or miCOMPRESSED holding one) whose tag has just been read from
    /// `file`, up to its real part. Every length inside is checked against what holds it before it is
    /// used: the inner miMATRIX against what the compressed bytes can expand to, the real part against the
    /// rest of its element and against the dimensions. `truncated` elements (see `variables`) are only
    /// checked against their declared lengths, as the file does not hold them whole.
    private func openMatrix(_ file: FileStream, offset: Int, tag: Tag, truncated: Bool, label: String) throws -> OpenedMatrix {
        let body: ByteStream
        let matrixEnd: Int
        if tag.type == DataType.compressed.rawValue {
            let inFile = min(tag.count, fileSize - offset - 8)
            body = try InflateStream(source: file, gzip: false, compressedBytes: inFile, label: label)
            let inner = try readTag(body)
            guard inner.type == DataType.matrix.rawValue else {
                throw DANNError.file(path, "compressed element at offset \(offset) holds data type \(inner.type), expected miMATRIX (14)")
            }
            if !truncated { try body.requireAvailable(inner.count, "a miMATRIX in the compressed element at offset \(offset)") }
            matrixEnd = 8 + inner.count
        } else {
            body = file
            matrixEnd = offset + 8 + tag.count
        }
        let header = try readMatrixHeader(body, elementOffset: offset)
        guard MATFile.isNumeric(header.classID) else { return OpenedMatrix(header: header, body: body) }
        let real = try readTag(body)
        var left = matrixEnd - body.position
        if !truncated { left = min(left, body.maxRemaining) }
        let type = try checkRealPart(real, header, bytesLeft: left)
        return OpenedMatrix(header: header, real: real, type: type, body: body)
    }

    /// The storage type of a numeric real part, after checking that its length holds exactly the values
    /// the dimensions call for and fits in the `bytesLeft` of its element.
    private func checkRealPart(_ real: Tag, _ header: MatrixHeader, bytesLeft: Int) throws -> DataType {
        let name = header.name, shape = header.dims.map(String.init).joined(separator: "×")
        guard let type = DataType(rawValue: real.type), type.rawValue <= DataType.uint64.rawValue, type != .matrix else {
            throw DANNError.file(path, "variable \(name): real part has data type \(real.type), expected a numeric type")
        }
        guard real.count % type.size == 0 else {
            throw DANNError.file(path, "variable \(name): real part of \(real.count) bytes is not a whole number of \(type) values")
        }
        let values = real.count / type.size
        guard let elements = checkedProduct(header.dims), values == elements else {
            throw DANNError.file(path, "variable \(name): real part holds \(values) values but its dimensions \(shape) need \(checkedProduct(header.dims).map(String.init) ?? "more than any file holds")")
        }
        guard real.small != nil || real.count <= bytesLeft else {
            throw DANNError.file(path, "variable \(name): real part of \(real.count) bytes runs past its element (at most \(bytesLeft) bytes left)")
        }
        return type
    }

    /// Reads a whole (small) numeric real part as Double, whatever its storage type.
    func readDoubles(_ variable: Variable) throws -> [Double] {
        let (type, count, stream, small) = try openRealPart(variable)
        let bytes = try small ?? stream.readBytes(count, what: "variable \(variable.name) data")
        try stream.drain()
        let n = count / type.size
        return (0..<n).map { i in
            let raw = bytes[i * type.size ..< (i + 1) * type.size]
            var bits: UInt64 = 0
            for (k, b) in (bigEndian ? Array(raw) : raw.reversed()).enumerated() {
                _ = k
                bits = bits << 8 | UInt64(b)
            }
            switch type {
            case .uint8: return Double(UInt8(truncatingIfNeeded: bits))
            case .int8: return Double(Int8(truncatingIfNeeded: bits))
            case .uint16: return Double(UInt16(truncatingIfNeeded: bits))
            case .int16: return Double(Int16(truncatingIfNeeded: bits))
            case .uint32: return Double(UInt32(truncatingIfNeeded: bits))
            case .int32: return Double(Int32(truncatingIfNeeded: bits))
            case .uint64: return Double(bits)
            case .int64: return Double(Int64(bitPattern: bits))
            case .single: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
            default: return Double(bitPattern: bits)
            }
        }
    }

    // MARK: - Element parsing

    /// A data element tag; `small` holds the data of the small-data-element form (≤ 4 bytes in the tag).
    struct Tag {
        var type: UInt32
        var count: Int
        var small: [UInt8]?
    }

    private func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        let b = bytes[at ..< at + 4].map(UInt32.init)
        return bigEndian ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
    }

    func readTag(_ stream: ByteStream) throws -> Tag {
        let raw = try stream.readBytes(8, what: "data element tag")
        let first = word(raw, 0)
        if first >> 16 != 0 {
            let count = Int(first >> 16)
            guard count <= 4 else { throw DANNError.file(stream.path, "small data element of \(count) bytes (at most 4 allowed)") }
            return Tag(type: first & 0xFFFF, count: count, small: Array(raw[4 ..< 4 + count]))
        }
        return Tag(type: first, count: Int(word(raw, 4)), small: nil)
    }

    /// Reads a sub-element's data (small form or padded to 8 bytes).
    private func readData(_ stream: ByteStream, _ tag: Tag, what: String) throws -> [UInt8] {
        if let small = tag.small { return small }
        guard tag.count <= 1 << 20 else { throw DANNError.file(stream.path, "\(what) of \(tag.count) bytes is implausibly large") }
        let bytes = try stream.readBytes(tag.count, what: what)
        let pad = (8 - tag.count % 8) % 8
        if pad > 0 { _ = try stream.readBytes(pad, what: "\(what) padding") }
        return bytes
    }

    /// Array flags, dimensions and name of a miMATRIX whose tag has just been read.
    func readMatrixHeader(_ stream: ByteStream, elementOffset: Int) throws -> MatrixHeader {
        let where_ = "miMATRIX at offset \(elementOffset)"
        let flagsTag = try readTag(stream)
        let flags = try readData(stream, flagsTag, what: "array flags")
        guard flagsTag.type == DataType.uint32.rawValue, flags.count == 8 else {
            throw DANNError.file(path, "\(where_): array flags are not 8 bytes of miUINT32")
        }
        let flagWord = word(flags, 0)
        let dimsTag = try readTag(stream)
        let dimBytes = try readData(stream, dimsTag, what: "dimensions")
        guard dimsTag.type == DataType.int32.rawValue, dimBytes.count % 4 == 0, dimBytes.count >= 8 else {
            throw DANNError.file(path, "\(where_): dimensions are not miINT32 with at least 2 entries")
        }
        let dims = stride(from: 0, to: dimBytes.count, by: 4).map { Int(Int32(bitPattern: word(dimBytes, $0))) }
        let nameTag = try readTag(stream)
        let nameBytes = try readData(stream, nameTag, what: "array name")
        guard nameTag.type == DataType.int8.rawValue || nameTag.type == DataType.uint8.rawValue else {
            throw DANNError.file(path, "\(where_): array name is not miINT8")
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        // Dimensions are signed in the format but a negative one is meaningless; left in, it turns into
        // negative counts and out-of-range slices downstream (release builds do not check bounds).
        if let bad = dims.first(where: { $0 < 0 }) {
            throw DANNError.file(path, "\(where_): variable \(name) has dimension \(bad) (\(dims.map(String.init).joined(separator: "×"))); dimensions cannot be negative")
        }
        return MatrixHeader(classID: flagWord & 0xFF, complex: flagWord & 0x800 != 0, dims: dims, name: name)
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " { s = s.dropLast() }
        return String(s)
    }
}
