import Wire
import XCTest

final class CodecTests: XCTestCase {
    func testFixedWidthValuesAreLittleEndian() throws {
        var writer = WireWriter()
        writer.writeU8(0xAB)
        writer.writeU16(0x0102)
        writer.writeU32(0x0304_0506)
        writer.writeU64(0x0708_090A_0B0C_0D0E)
        writer.writeI64(-2)
        writer.writeF32(1.0)
        writer.writeF64(-2.0)
        writer.writeBool(true)
        writer.writeBool(false)

        XCTAssertEqual(
            writer.bytes,
            [0xAB, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07]
                + [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + [0x00, 0x00, 0x80, 0x3F]
                + [0, 0, 0, 0, 0, 0, 0, 0xC0] + [1, 0])
        var reader = WireReader(writer.bytes)
        XCTAssertEqual(try reader.readU8("a"), 0xAB)
        XCTAssertEqual(try reader.readU16("b"), 0x0102)
        XCTAssertEqual(try reader.readU32("c"), 0x0304_0506)
        XCTAssertEqual(try reader.readU64("d"), 0x0708_090A_0B0C_0D0E)
        XCTAssertEqual(try reader.readI64("e"), -2)
        XCTAssertEqual(try reader.readF32("f"), 1.0)
        XCTAssertEqual(try reader.readF64("g"), -2.0)
        XCTAssertEqual(try reader.readBool("h"), true)
        XCTAssertEqual(try reader.readBool("i"), false)
        XCTAssertNoThrow(try reader.finish(message: "test"))
    }

    func testNaNPayloadSurvives() throws {
        let quiet = Double(bitPattern: 0x7FF8_0000_0000_1234)
        var writer = WireWriter()
        writer.writeF64(quiet)
        writer.writeF32(Float(bitPattern: 0x7FC0_0042))
        var reader = WireReader(writer.bytes)
        XCTAssertEqual(try reader.readF64("x").bitPattern, 0x7FF8_0000_0000_1234)
        XCTAssertEqual(try reader.readF32("y").bitPattern, 0x7FC0_0042)
    }

    func testStringsArraysOptionalsAndMaps() throws {
        var writer = WireWriter()
        try writer.writeString("héllo", field: "s")
        try writer.writeArray([UInt32(7), 9], field: "a") { $0.writeU32($1) }
        writer.writeOptional(Double?.none) { $0.writeF64($1) }
        writer.writeOptional(Double?.some(0.5)) { $0.writeF64($1) }
        try writer.writeStringMap(["b": "2", "a": "1"], field: "m")

        XCTAssertEqual(Array(writer.bytes[0..<10]), [6, 0, 0, 0, 0x68, 0xC3, 0xA9, 0x6C, 0x6C, 0x6F])
        XCTAssertEqual(Array(writer.bytes[10..<22]), [2, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0])
        XCTAssertEqual(Array(writer.bytes[22..<24]), [0, 1])
        let map = Array(writer.bytes[32...])
        XCTAssertEqual(
            map, [2, 0, 0, 0] + [1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x31] + [1, 0, 0, 0, 0x62, 1, 0, 0, 0, 0x32])
        var reader = WireReader(writer.bytes)
        XCTAssertEqual(try reader.readString("s"), "héllo")
        XCTAssertEqual(try reader.readArray("a", minElementBytes: 4) { try $0.readU32("a[]") }, [7, 9])
        XCTAssertNil(try reader.readOptional("o") { try $0.readF64("o") })
        XCTAssertEqual(try reader.readOptional("o") { try $0.readF64("o") }, 0.5)
        XCTAssertEqual(try reader.readStringMap("m"), ["a": "1", "b": "2"])
        XCTAssertNoThrow(try reader.finish(message: "test"))
    }

    func testTruncatedFieldIsReportedWithItsName() {
        var reader = WireReader([1, 2, 3])
        let error = assertWireError(.truncated) { _ = try reader.readU32("Ping.echo") }
        XCTAssertEqual(error?.field, "Ping.echo")
        XCTAssertEqual(error?.value, "3 bytes left")
    }

    func testStringLongerThanRemainingIsTruncated() {
        var reader = WireReader(littleEndian(UInt32(10)) + Array("short".utf8))
        assertWireError(.truncated) { _ = try reader.readString("name") }
    }

    func testOverlongStringIsRefusedFromItsLengthAlone() {
        var reader = WireReader(littleEndian(UInt32(65_537)))
        let error = assertWireError(.overlong) { _ = try reader.readString("Hello.clientName") }
        XCTAssertEqual(error?.field, "Hello.clientName")
        XCTAssertTrue(error?.message.contains("65537") ?? false)
    }

    func testLongestStringIsAccepted() throws {
        let text = String(repeating: "x", count: 65_536)
        var writer = WireWriter()
        try writer.writeString(text, field: "s")
        var reader = WireReader(writer.bytes)
        XCTAssertEqual(try reader.readString("s"), text)
    }

    func testWriterRefusesOverlongString() {
        var writer = WireWriter()
        writer.writeU8(9)
        assertWireError(.overlong) { try writer.writeString(String(repeating: "y", count: 65_537), field: "s") }
        XCTAssertEqual(writer.bytes, [9])
    }

    func testBadUTF8IsRefused() {
        let cases: [[UInt8]] = [
            [0xFF], [0xC3], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x61, 0x80],
        ]
        for bytes in cases {
            var reader = WireReader(littleEndian(UInt32(bytes.count)) + bytes)
            assertWireError(.invalidUTF8) { _ = try reader.readString("name") }
        }
    }

    func testTrailingBytesAreRefused() {
        var reader = WireReader([1, 0, 0, 0, 0, 0, 0, 0, 0xEE])
        XCTAssertEqual(try reader.readU64("echo"), 1)
        let error = assertWireError(.trailingBytes) { try reader.finish(message: "Ping") }
        XCTAssertTrue(error?.message.contains("1 unread") ?? false)
    }

    func testArrayCountLargerThanRemainingIsRefusedBeforeAllocating() {
        var reader = WireReader(littleEndian(UInt32.max) + [0, 0, 0, 0, 0, 0, 0, 0])
        var calls = 0
        let error = assertWireError(.countTooLarge) {
            _ = try reader.readArray("Specialize.budgets", minElementBytes: 9) { reader -> UInt8 in
                calls += 1
                return try reader.readU8("x")
            }
        }
        XCTAssertEqual(calls, 0)
        XCTAssertEqual(error?.field, "Specialize.budgets")
        XCTAssertTrue(error?.message.contains("4294967295") ?? false)
    }

    func testArrayCountThatExactlyFitsIsAccepted() throws {
        var reader = WireReader(littleEndian(UInt32(3)) + [1, 2, 3])
        XCTAssertEqual(try reader.readArray("a", minElementBytes: 1) { try $0.readU8("a[]") }, [1, 2, 3])
        var short = WireReader(littleEndian(UInt32(4)) + [1, 2, 3])
        assertWireError(.countTooLarge) { _ = try short.readArray("a", minElementBytes: 1) { try $0.readU8("a[]") } }
    }

    func testBoolAndPresenceFlagsMustBeZeroOrOne() {
        var bool = WireReader([2])
        assertWireError(.invalidValue) { _ = try bool.readBool("flag") }
        var optional = WireReader([7, 0, 0, 0, 0, 0, 0, 0, 0])
        assertWireError(.invalidValue) { _ = try optional.readOptional("o") { try $0.readF64("o") } }
    }

    func testUnknownEnumCodeIsRefused() {
        var reader = WireReader([9])
        let error = assertWireError(.invalidValue) { _ = try reader.readEnum(BudgetKind.self, "budget.kind") }
        XCTAssertEqual(error?.value, "9")
    }

    func testDuplicateMapKeyIsRefused() throws {
        var writer = WireWriter()
        writer.writeU32(2)
        for _ in 0..<2 {
            try writer.writeString("k", field: "key")
            writer.writeF64(1)
        }
        var reader = WireReader(writer.bytes)
        assertWireError(.duplicateKey) { _ = try reader.readDoubleMap("StatsReply.values") }
    }

    func testFailedArrayWriteLeavesBufferUnchanged() {
        var writer = WireWriter()
        writer.writeU8(1)
        assertWireError(.overlong) {
            try writer.writeArray(["ok", String(repeating: "z", count: 70_000)], field: "names") {
                try $0.writeString($1, field: "names[]")
            }
        }
        XCTAssertEqual(writer.bytes, [1])
    }
}
