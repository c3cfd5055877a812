import Foundation

/// MD5 (RFC 1321), streamed, for checking downloaded files against the published checksums. Not for security.
public struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer = [UInt8]()
    private var length: UInt64 = 0

    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    /// K[i] = floor(2^32 · |sin(i + 1)|).
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64((abs(sin(Double($0 + 1))) * 4_294_967_296).rounded(.down))) }

    public init() { buffer.reserveCapacity(64) }

    /// Adds bytes to the digest.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var i = 0
        if !buffer.isEmpty {
            while i < bytes.count && buffer.count < 64 { buffer.append(bytes[i]); i += 1 }
            if buffer.count == 64 {
                buffer.withUnsafeBytes { compress($0.baseAddress!) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        while i + 64 <= bytes.count {
            compress(bytes.baseAddress! + i)
            i += 64
        }
        while i < bytes.count { buffer.append(bytes[i]); i += 1 }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as 32 lowercase hex digits.
    public mutating func hexDigest() -> String {
        let bits = length &* 8
        var pad: [UInt8] = [0x80]
        while (Int(length) + pad.count) % 64 != 56 { pad.append(0) }
        for k in 0..<8 { pad.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
        update(pad)
        return [state.0, state.1, state.2, state.3].map { word in
            (0..<4).map { String(format2(UInt8(truncatingIfNeeded: word >> (8 * UInt32($0))))) }.joined()
        }.joined()
    }

    private func format2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    private mutating func compress(_ block: UnsafeRawPointer) {
        var m = [UInt32](repeating: 0, count: 16)
        for i in 0..<16 { m[i] = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        var (a, b, c, d) = state
        for i in 0..<64 {
            var f: UInt32, g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ MD5.constants[i] &+ m[g]
            a = d; d = c; c = b
            let s = MD5.shifts[i]
            b = b &+ ((f << s) | (f >> (32 - s)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }

    /// MD5 of a whole file, read in 1 MiB chunks.
    public static func file(_ path: String) throws -> String {
        let stream = try FileStream(file: path)
        var md5 = MD5()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try stream.read(into: $0.baseAddress!, count: $0.count) }
            if n == 0 { break }
            chunk.withUnsafeBytes { md5.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return md5.hexDigest()
    }
}
