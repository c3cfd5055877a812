/// Just enough of the protobuf wire format to write TensorBoard events: varints, fixed 32/64-bit
/// fields and length-delimited fields. Fields are written in the order the caller emits them.
struct ProtobufEncoder {
    private(set) var bytes: [UInt8] = []

    private mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func appendKey(field: Int, wireType: UInt64) {
        appendVarint(UInt64(field) << 3 | wireType)
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// An `int64` field (varint; negative values take ten bytes, as protobuf specifies).
    mutating func int64(_ field: Int, _ value: Int64) {
        appendKey(field: field, wireType: 0)
        appendVarint(UInt64(bitPattern: value))
    }

    /// A `double` field (wire type 1, little-endian IEEE 754).
    mutating func double(_ field: Int, _ value: Double) {
        appendKey(field: field, wireType: 1)
        appendLittleEndian(value.bitPattern)
    }

    /// A `float` field (wire type 5, little-endian IEEE 754).
    mutating func float(_ field: Int, _ value: Float) {
        appendKey(field: field, wireType: 5)
        appendLittleEndian(value.bitPattern)
    }

    /// A `string` field as UTF-8 bytes.
    mutating func string(_ field: Int, _ value: String) {
        lengthDelimited(field, Array(value.utf8))
    }

    /// A `bytes` or embedded-message field.
    mutating func lengthDelimited(_ field: Int, _ value: [UInt8]) {
        appendKey(field: field, wireType: 2)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}
