/// TFRecord framing, the container of TensorBoard event files: per record a little-endian uint64
/// length, the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
enum TFRecordFraming {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { record.append(contentsOf: $0) }
        let lengthCRC = CRC32C.maskedChecksum(record)
        withUnsafeBytes(of: lengthCRC.littleEndian) { record.append(contentsOf: $0) }
        record.append(contentsOf: data)
        withUnsafeBytes(of: CRC32C.maskedChecksum(data).littleEndian) { record.append(contentsOf: $0) }
        return record
    }
}
