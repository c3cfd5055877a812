#if !_endian(little)
#error("safetensors stores little-endian bytes; this code copies host memory as-is")
#endif

/// One named tensor as safetensors stores it: dtype tag, shape, and the raw little-endian bytes.
public struct TensorEntry: Equatable {
    /// The tensor's name (a key in the header, e.g. `"E.0.weight"`).
    public var name: String
    /// The safetensors dtype tag: `"F32"`, `"F64"`, `"I64"`, `"U8"` (or any other in `SafeTensors.dtypeSizes`).
    public var dtype: String
    /// Dimensions, outermost first (PyTorch order). `[]` is a scalar.
    public var shape: [Int]
    /// Row-major element bytes, little-endian; `count` equals element count × dtype size.
    public var data: [UInt8]

    /// A tensor from raw bytes; the caller is responsible for `data.count` matching dtype and shape.
    public init(name: String, dtype: String, shape: [Int], data: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// Number of elements the shape describes (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Reader and writer of the safetensors format (8-byte little-endian header length, JSON header padded with
/// spaces to 8-byte alignment, then the tensors' bytes back to back).
public enum SafeTensors {
    /// Bytes per element of each dtype tag the format defines.
    public static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
        "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4,
        "I64": 8, "U64": 8, "F64": 8,
    ]

    /// The header key that holds string-to-string metadata rather than a tensor.
    public static let metadataKey = "__metadata__"

    /// Serialises tensors in the given order (data laid out in that order too) with `metadata` first in the
    /// header, its keys sorted, and no optional whitespace, so identical inputs give identical bytes.
    public static func encode(_ tensors: [TensorEntry], metadata: [String: String]) -> [UInt8] {
        // Assembled here, not by JSONEncoder, which writes keys sorted or (on Linux) in hash order: the header
        // lists the tensors in data order, each as dtype, shape, data_offsets. Strings go through JSONEncoder.
        var entries: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            entries.append("\(jsonQuoted(metadataKey)):{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in tensors {
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            let end = offset + tensor.data.count
            entries.append("\(jsonQuoted(tensor.name)):{\"dtype\":\(jsonQuoted(tensor.dtype)),\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        // Padding the header keeps every tensor's data 8-byte aligned for readers that map the file.
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for tensor in tensors { out.append(contentsOf: tensor.data) }
        return out
    }

    /// Encodes and writes atomically (temporary file, fsync, rename), so `path` is either the old file or
    /// the complete new one.
    public static func write(_ tensors: [TensorEntry], metadata: [String: String], to path: String) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: path)
    }
}
