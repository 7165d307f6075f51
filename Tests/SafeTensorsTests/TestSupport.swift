import Foundation
import SafeTensors
import XCTest

/// A file image with the given header text (not padded) followed by `data`.
func fileImage(header: String, data: [UInt8] = []) -> [UInt8] {
    fileImage(headerBytes: Array(header.utf8), data: data)
}

/// A file image with the given raw header bytes (not padded) followed by `data`.
func fileImage(headerBytes: [UInt8], data: [UInt8] = []) -> [UInt8] {
    lengthPrefix(UInt64(headerBytes.count)) + headerBytes + data
}

/// The 8-byte little-endian length prefix for `length`.
func lengthPrefix(_ length: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) }
}

/// Asserts that reading `bytes` fails with `kind` and, when given, that the message mentions `mention`.
func assertRejects(
    _ bytes: [UInt8], _ kind: SafeTensorsError.Kind, mentioning mention: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let parsed = try SafeTensorsFile(bytes: bytes)
        XCTFail("expected \(kind), but the file was accepted (\(parsed.tensors.count) tensors)", file: file, line: line)
    } catch let error as SafeTensorsError {
        XCTAssertEqual(error.kind, kind, "message: \(error.message)", file: file, line: line)
        if let mention {
            XCTAssertTrue(
                error.message.contains(mention), "\"\(error.message)\" does not mention \(mention)",
                file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Asserts that `body` throws a `SafeTensorsError` of `kind` and returns it for further checks.
@discardableResult
func assertThrowsKind(
    _ kind: SafeTensorsError.Kind, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) -> SafeTensorsError? {
    do {
        try body()
        XCTFail("expected \(kind) but nothing was thrown", file: file, line: line)
    } catch let error as SafeTensorsError {
        XCTAssertEqual(error.kind, kind, "message: \(error.message)", file: file, line: line)
        return error
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
    return nil
}

/// The little-endian bytes of `values`.
func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// A fresh empty directory under the system temporary directory; removed by the returned cleanup closure.
func makeTemporaryDirectory() throws -> (path: String, cleanup: () -> Void) {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    return (url.path, { try? FileManager.default.removeItem(at: url) })
}

/// The JSON text of one well-formed tensor entry, `"name":{"dtype":..,"shape":..,"data_offsets":..}`.
func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
    let dimensions = shape.map(String.init).joined(separator: ",")
    return "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(dimensions)],\"data_offsets\":[\(begin),\(end)]}"
}

/// A header object made of the given member texts, without padding.
func headerJSON(_ members: String...) -> String {
    "{" + members.joined(separator: ",") + "}"
}
