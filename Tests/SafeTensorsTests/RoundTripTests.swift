import SafeTensors
import XCTest

/// Writer → reader round trips, conversions, determinism and writer-side validation.
final class RoundTripTests: XCTestCase {
    func testEveryDTypeRoundTripsItsBytes() throws {
        var writer = SafeTensorsWriter()
        var expected: [String: [UInt8]] = [:]
        for (index, dtype) in DType.allCases.enumerated() {
            let bytes = (0..<(dtype.byteSize * 6)).map { UInt8(truncatingIfNeeded: $0 * 37 + index) }
            try writer.add(name: "t.\(dtype.rawValue)", dtype: dtype, shape: [2, 3], bytes: bytes)
            expected["t.\(dtype.rawValue)"] = bytes
        }
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(parsed.tensors.map(\.name), DType.allCases.map { "t.\($0.rawValue)" })
        for dtype in DType.allCases {
            let info = try XCTUnwrap(parsed["t.\(dtype.rawValue)"])
            XCTAssertEqual(info.dtype, dtype)
            XCTAssertEqual(info.shape, [2, 3])
            XCTAssertEqual(info.elementCount, 6)
            XCTAssertEqual(try parsed.bytes(info.name), expected[info.name])
        }
    }

    func testFloat32RoundTripIsExact() throws {
        let values: [Float] = [0, -0.0, 1, -1.5, .pi, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .infinity]
        var writer = SafeTensorsWriter()
        try writer.add(name: "w", floats: values, shape: [2, 4])
        let read = try SafeTensorsFile(bytes: writer.serialized()).floats("w")
        XCTAssertEqual(read.map(\.bitPattern), values.map(\.bitPattern))
    }

    func testFloat16RoundsToNearestAndWidensExactly() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "h", float16From: [1, 0.1, -65504, 70000, 1.0009765625], shape: [5])
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(parsed["h"]?.dtype, .float16)
        XCTAssertEqual(try parsed.bytes("h").prefix(2), [0x00, 0x3C])
        XCTAssertEqual(try parsed.floats("h"), [1, 0.0999755859375, -65504, .infinity, 1.0009765625])
    }

    func testBFloat16RoundsToNearestEven() throws {
        var writer = SafeTensorsWriter()
        // 1 + 2^-8 is exactly halfway between two bfloat16 values and rounds to the even one (1.0);
        // 1 + 3 * 2^-8 is halfway too and rounds up to 1 + 2^-6.
        try writer.add(name: "b", bfloat16From: [1, -2.5, 1.00390625, 1.01171875, .nan], shape: [5])
        let read = try SafeTensorsFile(bytes: writer.serialized()).floats("b")
        XCTAssertEqual(Array(read.prefix(4)), [1, -2.5, 1, 1.015625])
        XCTAssertTrue(read[4].isNaN)
    }

    func testIntegerAccessors() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "u8", uint8: [0, 7, 255], shape: [3])
        try writer.add(name: "i32", int32: [-5, 0, .max], shape: [3])
        try writer.add(name: "i64", int64: [-1, 1 << 40], shape: [2])
        try writer.add(name: "i8", dtype: .int8, shape: [2], bytes: [0xFF, 0x7F])
        try writer.add(name: "u64", dtype: .uint64, shape: [1], bytes: littleEndian([UInt64.max]))
        try writer.add(name: "f", floats: [1], shape: [1])
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(try parsed.int32s("u8"), [0, 7, 255])
        XCTAssertEqual(try parsed.int32s("i32"), [-5, 0, .max])
        XCTAssertEqual(try parsed.int64s("i64"), [-1, 1 << 40])
        XCTAssertEqual(try parsed.int32s("i8"), [-1, 127])
        assertThrowsKind(.valueOutOfRange) { _ = try parsed.int32s("i64") }
        assertThrowsKind(.valueOutOfRange) { _ = try parsed.int64s("u64") }
        let error = assertThrowsKind(.unsupportedDType) { _ = try parsed.int32s("f") }
        XCTAssertTrue(error?.message.contains("F32") ?? false)
    }

    func testFloatsRefusesNonFloatDTypeNamingIt() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "labels", uint8: [1, 2], shape: [2])
        try writer.add(name: "d", dtype: .float64, shape: [1], bytes: littleEndian([Double(1).bitPattern]))
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        let error = assertThrowsKind(.unsupportedDType) { _ = try parsed.floats("labels") }
        XCTAssertTrue(error?.message.contains("U8") ?? false)
        XCTAssertEqual(error?.tensor, "labels")
        assertThrowsKind(.unsupportedDType) { _ = try parsed.floats("d") }
    }

    func testZeroSizeTensorsAndScalars() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "empty", floats: [], shape: [0, 16])
        try writer.add(name: "scalar", floats: [42], shape: [])
        try writer.add(name: "empty2", uint8: [], shape: [3, 0, 2])
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(parsed["empty"]?.shape, [0, 16])
        XCTAssertEqual(parsed["empty"]?.dataRange, 0..<0)
        XCTAssertEqual(try parsed.floats("empty"), [])
        XCTAssertEqual(parsed["scalar"]?.shape, [])
        XCTAssertEqual(parsed["scalar"]?.elementCount, 1)
        XCTAssertEqual(try parsed.floats("scalar"), [42])
        XCTAssertEqual(parsed["empty2"]?.dataRange, 4..<4)
        try parsed.withUnsafeBytes(of: "empty2") { XCTAssertEqual($0.count, 0) }
    }

    func testUnicodeAndEscapedNames() throws {
        let names = ["encoder.层.0", "emoji 😀", "quote\"back\\slash", "tab\tnew\nline\u{1}", "", "cafe\u{301}"]
        var writer = SafeTensorsWriter(metadata: ["ключ": "значение", "ctl": "\u{0}\u{1F}\r", "😀": "\\"])
        for (index, name) in names.enumerated() {
            try writer.add(name: name, uint8: [UInt8(index)], shape: [1])
        }
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(parsed.tensors.map(\.name).map { Array($0.utf8) }, names.map { Array($0.utf8) })
        for (index, name) in names.enumerated() {
            XCTAssertEqual(try parsed.bytes(name), [UInt8(index)])
        }
        XCTAssertEqual(parsed.metadata, writer.metadata)
    }

    func testExactHeaderBytes() throws {
        var writer = SafeTensorsWriter(metadata: ["z": "last", "a": "first"])
        try writer.add(name: "w", floats: [1, 2], shape: [2])
        try writer.add(name: "b", uint8: [3], shape: [1, 1])
        let bytes = try writer.serialized()
        let json =
            #"{"__metadata__":{"a":"first","z":"last"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"U8","shape":[1,1],"data_offsets":[8,9]}}"#
        let padded = json + String(repeating: " ", count: (8 - json.utf8.count % 8) % 8)
        XCTAssertEqual(Array(bytes.prefix(8)), lengthPrefix(UInt64(padded.utf8.count)))
        XCTAssertEqual(String(decoding: bytes[8..<(8 + padded.utf8.count)], as: UTF8.self), padded)
        XCTAssertEqual(bytes.count, 8 + padded.utf8.count + 9)
        XCTAssertEqual(Array(bytes.suffix(1)), [3])
    }

    func testHeaderIsPaddedWithSpacesToMultipleOfEight() throws {
        for nameLength in 1...16 {
            var writer = SafeTensorsWriter()
            try writer.add(name: String(repeating: "n", count: nameLength), uint8: [1], shape: [1])
            let bytes = try writer.serialized()
            let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
            XCTAssertEqual(headerLength % 8, 0)
            let header = bytes[8..<(8 + headerLength)]
            let closing = try XCTUnwrap(header.lastIndex(of: UInt8(ascii: "}")))
            XCTAssertTrue(header[(closing + 1)...].allSatisfy { $0 == 0x20 })
            XCTAssertLessThan(header.count - (closing - 8 + 1), 8)
        }
    }

    func testEmptyMetadataIsOmitted() throws {
        let bytes = try SafeTensorsWriter().serialized()
        XCTAssertEqual(bytes, lengthPrefix(8) + Array("{}      ".utf8))
        XCTAssertEqual(try SafeTensorsFile(bytes: bytes).metadata, [:])
    }

    func testSameContentGivesSameBytes() throws {
        func build(_ metadataOrder: [(String, String)]) throws -> [UInt8] {
            var writer = SafeTensorsWriter()
            for (key, value) in metadataOrder {
                writer.metadata[key] = value
            }
            try writer.add(name: "layer.1", floats: [1, 2, 3], shape: [3])
            try writer.add(name: "layer.0", float16From: [4, 5], shape: [1, 2])
            return try writer.serialized()
        }
        let pairs = (0..<20).map { ("key\($0)", "value\($0)") }
        let first = try build(pairs)
        XCTAssertEqual(first, try build(pairs.reversed()))
        XCTAssertEqual(first, try build(pairs.shuffled()))
    }

    func testWriterRejectsDuplicateNames() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "w", floats: [1], shape: [1])
        assertThrowsKind(.invalidTensorName) { try writer.add(name: "w", uint8: [1], shape: [1]) }
        try writer.add(name: "caf\u{E9}", floats: [1], shape: [1])
        assertThrowsKind(.invalidTensorName) { try writer.add(name: "cafe\u{301}", floats: [1], shape: [1]) }
        XCTAssertEqual(writer.count, 2)
    }

    func testWriterRejectsMetadataKeyAsTensorName() {
        var writer = SafeTensorsWriter()
        assertThrowsKind(.invalidTensorName) { try writer.add(name: "__metadata__", uint8: [], shape: [0]) }
    }

    func testWriterRejectsBadShapes() {
        var writer = SafeTensorsWriter()
        assertThrowsKind(.invalidShape) { try writer.add(name: "a", uint8: [], shape: [-1, 0]) }
        assertThrowsKind(.shapeOverflow) { try writer.add(name: "b", uint8: [], shape: [Int.max, 2]) }
        assertThrowsKind(.byteLengthMismatch) { try writer.add(name: "c", floats: [1, 2, 3], shape: [2, 2]) }
        assertThrowsKind(.byteLengthMismatch) { try writer.add(name: "d", dtype: .int64, shape: [1], bytes: [1]) }
        XCTAssertEqual(writer.count, 0)
    }

    func testInfoReportsRangesInAddOrder() throws {
        var writer = SafeTensorsWriter()
        try writer.add(name: "a", uint8: [1, 2, 3], shape: [3])
        try writer.add(name: "b", floats: [1], shape: [1])
        let parsed = try SafeTensorsFile(bytes: writer.serialized())
        XCTAssertEqual(
            parsed.tensors,
            [
                TensorInfo(name: "a", dtype: .uint8, shape: [3], dataRange: 0..<3),
                TensorInfo(name: "b", dtype: .float32, shape: [1], dataRange: 3..<7),
            ])
        XCTAssertEqual(parsed["b"]?.byteCount, 4)
    }
}
