import XCTest
@testable import DANN

final class CRC32CTests: XCTestCase {
    /// Bit-at-a-time CRC-32C straight from the definition (reflected polynomial 0x82F63B78), as an
    /// independent reference for the table-driven version.
    static func naiveCRC32C(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                let mask: UInt32 = (crc & 1) == 1 ? 0xFFFF_FFFF : 0
                crc = (crc >> 1) ^ (0x82F6_3B78 & mask)
            }
        }
        return ~crc
    }

    func testPublishedCheckValue() {
        // The standard "check" value of CRC-32C.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }

    func testRFC3720Vectors() {
        // RFC 3720 appendix B.4.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
    }

    func testEmptyInput() {
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testMatchesBitwiseReferenceOnPseudoRandomData() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for length in [1, 2, 7, 64, 1000] {
            let bytes = (0..<length).map { _ -> UInt8 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 33)
            }
            XCTAssertEqual(CRC32C.checksum(bytes), Self.naiveCRC32C(bytes), "length \(length)")
        }
    }

    func testMaskFormula() {
        // masked = rotate right by 15, plus 0xa282ead8 (wrapping), from the TFRecord format notes.
        let crc: UInt32 = 0x1234_5678
        let rotated = (crc >> 15) | (crc << 17)
        XCTAssertEqual(CRC32C.masked(crc), rotated &+ 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
        // The TFRecord framing of a zero-length record: masked CRC of eight zero bytes.
        XCTAssertEqual(CRC32C.maskedChecksum([UInt8](repeating: 0, count: 8)),
                       CRC32C.masked(Self.naiveCRC32C([UInt8](repeating: 0, count: 8))))
    }
}
