import SafeTensors
import XCTest

/// One test per reader rule: each builds a broken file byte by byte and expects the specific error kind.
final class ReaderRuleTests: XCTestCase {
    private let fourFloats = [UInt8](repeating: 0, count: 16)

    // MARK: Length prefix

    func testRejectsFileShorterThanPrefix() {
        assertRejects([], .fileTooShort)
        assertRejects([2, 0, 0, 0, 0, 0, 0], .fileTooShort, mentioning: "7 bytes")
    }

    func testRejectsHeaderLengthAboveLimit() {
        assertRejects(lengthPrefix(100_000_001) + Array("{}".utf8), .headerTooLarge, mentioning: "100000001")
        assertRejects(lengthPrefix(UInt64.max), .headerTooLarge)
    }

    func testAcceptsHeaderLengthThatFitsButRejectsOneMore() throws {
        let header = Array("{}".utf8)
        XCTAssertNoThrow(try SafeTensorsFile(bytes: lengthPrefix(2) + header))
        assertRejects(lengthPrefix(3) + header, .headerExceedsFile, mentioning: "only 2 bytes")
    }

    // MARK: Header text

    func testRejectsHeaderThatIsNotUTF8() {
        var header = Array(#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#.utf8)
        header[2] = 0xFF
        assertRejects(fileImage(headerBytes: header), .headerNotUTF8, mentioning: "offset 2")
        assertRejects(fileImage(headerBytes: Array("{\"".utf8) + [0xC3] + Array("\":1}".utf8)), .headerNotUTF8)
    }

    func testRejectsHeaderThatIsNotJSON() {
        assertRejects(fileImage(header: #"{"w":{"dtype":"F32""#), .invalidJSON)
        assertRejects(fileImage(header: #"{"w" {}}"#), .invalidJSON, mentioning: "':'")
        assertRejects(fileImage(header: "{,}"), .invalidJSON)
        assertRejects(fileImage(header: #"{"a":[1,]}"#), .invalidJSON)
        assertRejects(fileImage(header: #"{'a':1}"#), .invalidJSON)
        assertRejects(fileImage(header: ""), .invalidJSON, mentioning: "truncated")
    }

    func testRejectsBadJSONStrings() {
        assertRejects(fileImage(header: "{\"a\tb\":1}"), .invalidJSON, mentioning: "control byte 0x09")
        assertRejects(fileImage(header: #"{"a\qb":1}"#), .invalidJSON, mentioning: "escape")
        assertRejects(fileImage(header: #"{"\u12G4":1}"#), .invalidJSON, mentioning: "hex")
        assertRejects(fileImage(header: #"{"\ud83d":1}"#), .invalidJSON, mentioning: "high surrogate")
        assertRejects(fileImage(header: #"{"\ud83d\u0041":1}"#), .invalidJSON, mentioning: "not a low surrogate")
        assertRejects(fileImage(header: #"{"\ude00":1}"#), .invalidJSON, mentioning: "low surrogate")
    }

    func testRejectsBadJSONNumbersAndWords() {
        assertRejects(fileImage(header: #"{"a":01}"#), .invalidJSON, mentioning: "leading zeros")
        assertRejects(fileImage(header: #"{"a":1.}"#), .invalidJSON)
        assertRejects(fileImage(header: #"{"a":-}"#), .invalidJSON)
        assertRejects(fileImage(header: #"{"a":1e}"#), .invalidJSON)
        assertRejects(fileImage(header: #"{"a":tru}"#), .invalidJSON)
        assertRejects(fileImage(header: #"{"a":nul}"#), .invalidJSON)
    }

    func testRejectsTrailingGarbageAfterHeaderObject() {
        assertRejects(fileImage(header: "{}x"), .invalidJSON, mentioning: "after the end")
        assertRejects(fileImage(header: "{}{}"), .invalidJSON)
        assertRejects(fileImage(headerBytes: Array("{}".utf8) + [0, 0]), .invalidJSON, mentioning: "0x00")
        XCTAssertNoThrow(try SafeTensorsFile(bytes: fileImage(header: "  {}  \n\t ")))
    }

    func testRejectsNestingDeeperThanLimit() {
        let nested = "{\"a\":" + String(repeating: "[", count: 20) + String(repeating: "]", count: 20) + "}"
        assertRejects(fileImage(header: nested), .jsonTooDeep)
        let justAllowed = "{\"a\":" + String(repeating: "[", count: 7) + String(repeating: "]", count: 7) + "}"
        assertRejects(fileImage(header: justAllowed), .wrongFieldType)
    }

    func testRejectsHeaderThatIsNotAnObject() {
        assertRejects(fileImage(header: "[]"), .headerNotObject, mentioning: "an array")
        assertRejects(fileImage(header: #""weights""#), .headerNotObject)
        assertRejects(fileImage(header: "42"), .headerNotObject)
        assertRejects(fileImage(header: "null"), .headerNotObject)
    }

    // MARK: Duplicate keys

    func testRejectsDuplicateTensorNames() {
        let entry = #"{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"#
        assertRejects(fileImage(header: "{\"w\":\(entry),\"w\":\(entry)}"), .duplicateKey, mentioning: "\"w\"")
    }

    func testRejectsDuplicateFieldInsideEntry() {
        let header = #"{"w":{"dtype":"U8","dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#
        assertRejects(fileImage(header: header), .duplicateKey, mentioning: "\"dtype\"")
    }

    func testRejectsDuplicateMetadataKey() {
        assertRejects(fileImage(header: #"{"__metadata__":{"k":"1","k":"2"}}"#), .duplicateKey)
        assertRejects(fileImage(header: #"{"__metadata__":{},"__metadata__":{}}"#), .duplicateKey)
    }

    func testRejectsDuplicateSpelledWithEscapes() {
        let entry = #"{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"#
        assertRejects(fileImage(header: "{\"w\":\(entry),\"\\u0077\":\(entry)}"), .duplicateKey)
    }

    func testRejectsCanonicallyEquivalentNames() {
        let entry = #"{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"#
        let header = "{\"caf\u{E9}\":\(entry),\"cafe\u{301}\":\(entry)}"
        assertRejects(fileImage(header: header), .duplicateKey, mentioning: "canonical equivalence")
    }

    // MARK: Tensor entries

    func testRejectsEntryThatIsNotAnObject() {
        assertRejects(fileImage(header: #"{"w":[1,2]}"#), .wrongFieldType, mentioning: "tensor \"w\"")
    }

    func testRejectsMissingDType() {
        assertRejects(
            fileImage(header: #"{"w":{"shape":[4],"data_offsets":[0,16]}}"#, data: fourFloats),
            .missingField, mentioning: "dtype")
    }

    func testRejectsMissingShape() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","data_offsets":[0,16]}}"#, data: fourFloats),
            .missingField, mentioning: "shape")
    }

    func testRejectsMissingDataOffsets() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","shape":[4]}}"#, data: fourFloats),
            .missingField, mentioning: "data_offsets")
    }

    func testRejectsWrongFieldTypes() {
        let cases = [
            #"{"w":{"dtype":5,"shape":[4],"data_offsets":[0,16]}}"#,
            #"{"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}}"#,
            #"{"w":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":{"begin":0}}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16,16]}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[16]}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[null,16]}}"#,
        ]
        for header in cases {
            assertRejects(fileImage(header: header, data: fourFloats), .wrongFieldType, mentioning: "tensor \"w\"")
        }
    }

    func testRejectsNegativeNumbers() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#),
            .invalidNumber, mentioning: "shape[0] is -4")
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}"#),
            .invalidNumber, mentioning: "data_offsets[0]")
    }

    func testRejectsNonIntegerNumbers() {
        let fraction = #"{"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}"#
        assertRejects(fileImage(header: fraction, data: fourFloats), .invalidNumber, mentioning: "4.0")
        let exponent = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1.6e1]}}"#
        assertRejects(fileImage(header: exponent, data: fourFloats), .invalidNumber, mentioning: "1.6e1")
        let integralExponent = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16E0]}}"#
        assertRejects(fileImage(header: integralExponent, data: fourFloats), .invalidNumber)
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}}"#),
            .invalidNumber, mentioning: "fits in 64 bits")
    }

    func testRejectsUnknownFieldInEntry() {
        let header = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"align":64}}"#
        assertRejects(fileImage(header: header, data: fourFloats), .unknownField, mentioning: "\"align\"")
    }

    func testRejectsUnknownDType() {
        for name in ["F128", "f32", "FLOAT", "", "C64"] {
            let header = "{\"w\":{\"dtype\":\"\(name)\",\"shape\":[4],\"data_offsets\":[0,16]}}"
            assertRejects(fileImage(header: header, data: fourFloats), .unknownDType, mentioning: "BF16")
        }
    }

    func testAcceptsEverySpecDType() throws {
        for dtype in DType.allCases {
            let size = dtype.byteSize * 3
            let header = "{\"w\":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[3],\"data_offsets\":[0,\(size)]}}"
            let parsed = try SafeTensorsFile(bytes: fileImage(header: header, data: Array(repeating: 1, count: size)))
            XCTAssertEqual(parsed["w"]?.dtype, dtype)
        }
    }

    // MARK: Sizes and offsets

    func testRejectsByteLengthMismatch() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, data: fourFloats),
            .byteLengthMismatch, mentioning: "needs 12 bytes")
        let halfSized = #"{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,16]}}"#
        assertRejects(fileImage(header: halfSized, data: fourFloats), .byteLengthMismatch)
    }

    func testRejectsShapeProductOverflow() {
        let huge = #"{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#
        assertRejects(fileImage(header: huge), .shapeOverflow, mentioning: "overflows")
        let hugeTimesSize = #"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#
        assertRejects(fileImage(header: hugeTimesSize), .shapeOverflow)
        let zeroAfterOverflow = #"{"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}"#
        assertRejects(fileImage(header: zeroAfterOverflow), .shapeOverflow)
    }

    func testRejectsEndBeforeBegin() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#, data: fourFloats),
            .offsetsReversed, mentioning: "[8, 4]")
    }

    func testRejectsOffsetsPastEndOfBuffer() {
        assertRejects(
            fileImage(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0]),
            .offsetsOutOfBounds, mentioning: "truncated")
    }

    func testRejectsHoleBetweenTensors() {
        let header = headerJSON(
            entry("a", "U8", [4], 0, 4),
            entry("b", "U8", [4], 8, 12)
        )
        assertRejects(
            fileImage(header: header, data: Array(repeating: 0, count: 12)), .offsetsHole,
            mentioning: "after tensor \"a\"")
    }

    func testRejectsHoleAtStartOfBuffer() {
        let header = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#
        assertRejects(
            fileImage(header: header, data: Array(repeating: 0, count: 8)), .offsetsHole,
            mentioning: "start of the data buffer")
    }

    func testRejectsOverlappingTensors() {
        let header = headerJSON(
            entry("a", "U8", [8], 0, 8),
            entry("b", "U8", [8], 4, 12)
        )
        assertRejects(
            fileImage(header: header, data: Array(repeating: 0, count: 12)), .offsetsOverlap,
            mentioning: "inside tensor \"a\"")
    }

    func testRejectsTwoTensorsSharingTheSameBytes() {
        let header = headerJSON(
            entry("a", "U8", [4], 0, 4),
            entry("b", "U8", [4], 0, 4)
        )
        assertRejects(fileImage(header: header, data: Array(repeating: 0, count: 4)), .offsetsOverlap)
    }

    func testRejectsTrailingBytesAfterLastTensor() {
        let header = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#
        assertRejects(
            fileImage(header: header, data: Array(repeating: 0, count: 5)), .trailingBytes,
            mentioning: "1 trailing")
        assertRejects(fileImage(header: "{}", data: [0]), .trailingBytes)
    }

    func testAcceptsTensorsListedOutOfDataOrder() throws {
        let header = headerJSON(
            entry("b", "U8", [2], 2, 4),
            entry("a", "U8", [2], 0, 2)
        )
        let parsed = try SafeTensorsFile(bytes: fileImage(header: header, data: [1, 2, 3, 4]))
        XCTAssertEqual(parsed.tensors.map(\.name), ["b", "a"])
        XCTAssertEqual(try parsed.bytes("b"), [3, 4])
        XCTAssertEqual(try parsed.bytes("a"), [1, 2])
    }

    func testAcceptsZeroElementTensorsAtBoundaries() throws {
        let header = headerJSON(
            entry("e1", "F32", [0, 4], 0, 0),
            entry("a", "U8", [2], 0, 2),
            entry("e2", "I64", [3, 0], 2, 2)
        )
        let parsed = try SafeTensorsFile(bytes: fileImage(header: header, data: [7, 8]))
        XCTAssertEqual(parsed["e1"]?.elementCount, 0)
        XCTAssertEqual(try parsed.floats("e1"), [])
        XCTAssertEqual(try parsed.int64s("e2"), [])
        XCTAssertEqual(try parsed.bytes("a"), [7, 8])
    }

    func testRejectsZeroElementTensorInsideAnother() {
        let header = headerJSON(
            entry("a", "U8", [4], 0, 4),
            entry("e", "U8", [0], 2, 2)
        )
        assertRejects(fileImage(header: header, data: [0, 0, 0, 0]), .offsetsOverlap)
    }

    // MARK: Metadata

    func testRejectsMetadataThatIsNotAnObject() {
        assertRejects(fileImage(header: #"{"__metadata__":"v1"}"#), .invalidMetadata, mentioning: "a string")
        assertRejects(fileImage(header: #"{"__metadata__":["a"]}"#), .invalidMetadata)
        assertRejects(fileImage(header: #"{"__metadata__":null}"#), .invalidMetadata)
    }

    func testRejectsMetadataWithNonStringValues() {
        assertRejects(fileImage(header: #"{"__metadata__":{"epochs":12}}"#), .invalidMetadata, mentioning: "\"epochs\"")
        assertRejects(fileImage(header: #"{"__metadata__":{"nested":{"a":"b"}}}"#), .invalidMetadata)
    }

    func testReadsMetadataWithEscapes() throws {
        let header = #"{"__metadata__":{"quote":"say \"hi\"\n","emoji":"\ud83d\ude00","slash":"a\/b"}}"#
        let parsed = try SafeTensorsFile(bytes: fileImage(header: header))
        XCTAssertEqual(parsed.metadata, ["quote": "say \"hi\"\n", "emoji": "😀", "slash": "a/b"])
        XCTAssertTrue(parsed.tensors.isEmpty)
    }

    // MARK: Errors and alignment

    func testErrorNamesTensorAndField() {
        let header = #"{"layer.0.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#
        do {
            _ = try SafeTensorsFile(bytes: fileImage(header: header, data: fourFloats))
            XCTFail("accepted a mismatched tensor")
        } catch let error as SafeTensorsError {
            XCTAssertEqual(error.tensor, "layer.0.weight")
            XCTAssertEqual(error.field, "data_offsets")
            XCTAssertNil(error.path)
            XCTAssertTrue(error.description.hasPrefix("<memory>: tensor \"layer.0.weight\""), error.description)
        } catch {
            XCTFail("unexpected error \(error)")
        }
    }

    func testReadsUnalignedData() throws {
        // One byte of U8 first puts the F32, I64 and F16 data at odd offsets both in the buffer and in memory.
        let header = headerJSON(
            entry("pad", "U8", [1], 0, 1),
            entry("f", "F32", [2], 1, 9),
            entry("i", "I64", [1], 9, 17),
            entry("h", "F16", [1], 17, 19)
        )
        let data: [UInt8] =
            [9] + littleEndian([Float(1.5).bitPattern, Float(-2).bitPattern])
            + littleEndian([Int64(-3)]) + littleEndian([Float16(0.25).bitPattern])
        let parsed = try SafeTensorsFile(bytes: fileImage(header: header + " ", data: data))
        XCTAssertEqual(try parsed.floats("f"), [1.5, -2])
        XCTAssertEqual(try parsed.int64s("i"), [-3])
        XCTAssertEqual(try parsed.floats("h"), [0.25])
    }

    func testTensorNotFound() throws {
        let parsed = try SafeTensorsFile(bytes: fileImage(header: "{}"))
        XCTAssertNil(parsed["missing"])
        assertThrowsKind(.tensorNotFound) { _ = try parsed.floats("missing") }
        assertThrowsKind(.tensorNotFound) { _ = try parsed.bytes("missing") }
    }
}
