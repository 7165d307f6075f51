/// Limits of the payload codec that every peer enforces.
public enum CodecLimits {
    /// The longest string, in UTF-8 bytes (64 KiB).
    public static let maxStringBytes = 65_536
}

/// Appends values in the protocol's payload encoding to a growable byte buffer.
///
/// Integers and floats are little-endian and fixed-width; a bool is one byte 0 or 1; a string is a u32 byte length
/// followed by that many UTF-8 bytes (at most `CodecLimits.maxStringBytes`); an array is a u32 count followed by the
/// elements; an optional is a u8 presence flag (0 or 1) followed by the value when present. Methods that can meet an
/// unrepresentable value throw `WireError` and leave the buffer as it was before the call.
public struct WireWriter: Sendable {
    /// Everything written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer whose buffer has room for `capacity` bytes before it grows.
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The number of bytes written so far.
    public var count: Int {
        bytes.count
    }

    /// Empties the buffer but keeps its storage, so the writer can be reused without reallocating.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Drops every byte from offset `count` on; used to undo a partly written value.
    public mutating func truncate(to count: Int) {
        precondition(count >= 0 && count <= bytes.count, "truncate(to:) past the end of the buffer")
        bytes.removeSubrange(count...)
    }

    /// Writes one unsigned byte.
    public mutating func writeU8(_ value: UInt8) {
        bytes.append(value)
    }

    /// Writes a u16, little-endian (2 bytes).
    public mutating func writeU16(_ value: UInt16) {
        appendLittleEndian(value)
    }

    /// Writes a u32, little-endian (4 bytes).
    public mutating func writeU32(_ value: UInt32) {
        appendLittleEndian(value)
    }

    /// Writes a u64, little-endian (8 bytes).
    public mutating func writeU64(_ value: UInt64) {
        appendLittleEndian(value)
    }

    /// Writes an i64, two's complement little-endian (8 bytes).
    public mutating func writeI64(_ value: Int64) {
        appendLittleEndian(value)
    }

    /// Writes an IEEE 754 binary32, its bit pattern little-endian (4 bytes); NaN payloads are kept.
    public mutating func writeF32(_ value: Float) {
        appendLittleEndian(value.bitPattern)
    }

    /// Writes an IEEE 754 binary64, its bit pattern little-endian (8 bytes); NaN payloads are kept.
    public mutating func writeF64(_ value: Double) {
        appendLittleEndian(value.bitPattern)
    }

    /// Writes a bool as one byte, 1 for true and 0 for false.
    public mutating func writeBool(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    /// Writes `value` as a u32 byte length and its UTF-8 bytes; throws `overlong` above 65,536 bytes.
    public mutating func writeString(_ value: String, field: String) throws {
        let utf8 = value.utf8
        guard utf8.count <= CodecLimits.maxStringBytes else {
            throw WireError(
                .overlong, field: field, value: "a string of \(utf8.count) bytes",
                expected: "at most \(CodecLimits.maxStringBytes) bytes")
        }
        writeU32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Writes `raw` as is, with no length prefix (fixed-size fields and the rest-of-payload byte fields).
    public mutating func writeRaw(_ raw: some Collection<UInt8>) {
        bytes.append(contentsOf: raw)
    }

    /// Writes `raw` as is, with no length prefix.
    public mutating func writeRaw(_ raw: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: raw)
    }

    /// Writes a u32 count and then each element with `body`; on a throw the whole array is undone.
    public mutating func writeArray<Element>(
        _ elements: [Element], field: String, _ body: (inout WireWriter, Element) throws -> Void
    ) throws {
        guard elements.count <= Int(UInt32.max) else {
            throw WireError(
                .overlong, field: field, value: "\(elements.count) elements", expected: "at most \(UInt32.max)")
        }
        let start = bytes.count
        writeU32(UInt32(elements.count))
        do {
            for element in elements {
                try body(&self, element)
            }
        } catch {
            truncate(to: start)
            throw error
        }
    }

    /// Writes a u8 presence flag (0 absent, 1 present) and, when present, the value with `body`.
    public mutating func writeOptional<Value>(
        _ value: Value?, _ body: (inout WireWriter, Value) throws -> Void
    ) rethrows {
        guard let value else {
            writeU8(0)
            return
        }
        let start = bytes.count
        writeU8(1)
        do {
            try body(&self, value)
        } catch {
            truncate(to: start)
            throw error
        }
    }

    /// Writes a string-to-string map: a u32 count, then (key, value) string pairs sorted by key bytes.
    public mutating func writeStringMap(_ map: [String: String], field: String) throws {
        let pairs = map.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        try writeArray(pairs, field: field) { writer, pair in
            try writer.writeString(pair.key, field: field + " key")
            try writer.writeString(pair.value, field: field + "[\(pair.key)]")
        }
    }

    /// Writes a string-to-f64 map: a u32 count, then (key string, f64 value) pairs sorted by key bytes.
    public mutating func writeDoubleMap(_ map: [String: Double], field: String) throws {
        let pairs = map.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        try writeArray(pairs, field: field) { writer, pair in
            try writer.writeString(pair.key, field: field + " key")
            writer.writeF64(pair.value)
        }
    }

    /// Overwrites the 4 bytes at `offset` with `value`, little-endian; used to fill in a length after the fact.
    public mutating func patchU32(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "patchU32 outside the buffer")
        for index in 0..<4 {
            bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index)))
        }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads values in the protocol's payload encoding from a byte buffer, checking every length before trusting it.
///
/// Every read names the field it reads, so a failure says which field was truncated, too long, not UTF-8 or out of
/// range. Counts of arrays and maps are checked against the bytes that remain before anything is allocated. Call
/// `finish()` after the last field: bytes left over are an error (`trailingBytes`).
public struct WireReader: Sendable {
    private let bytes: [UInt8]
    /// The offset of the next unread byte.
    public private(set) var offset: Int

    /// Creates a reader positioned at the first byte of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        offset = 0
    }

    /// The number of bytes not yet read.
    public var remaining: Int {
        bytes.count - offset
    }

    /// Throws `trailingBytes` unless every byte has been read.
    public func finish(message: String) throws {
        guard remaining == 0 else {
            throw WireError(
                .trailingBytes, field: message, value: "\(remaining) unread bytes after the last field",
                expected: "the payload to end with the message")
        }
    }

    /// Reads one unsigned byte.
    public mutating func readU8(_ field: String) throws -> UInt8 {
        try require(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads a little-endian u16.
    public mutating func readU16(_ field: String) throws -> UInt16 {
        try readLittleEndian(field)
    }

    /// Reads a little-endian u32.
    public mutating func readU32(_ field: String) throws -> UInt32 {
        try readLittleEndian(field)
    }

    /// Reads a little-endian u64.
    public mutating func readU64(_ field: String) throws -> UInt64 {
        try readLittleEndian(field)
    }

    /// Reads a little-endian two's complement i64.
    public mutating func readI64(_ field: String) throws -> Int64 {
        try readLittleEndian(field)
    }

    /// Reads an IEEE 754 binary32 from its little-endian bit pattern.
    public mutating func readF32(_ field: String) throws -> Float {
        Float(bitPattern: try readLittleEndian(field))
    }

    /// Reads an IEEE 754 binary64 from its little-endian bit pattern.
    public mutating func readF64(_ field: String) throws -> Double {
        Double(bitPattern: try readLittleEndian(field))
    }

    /// Reads a bool; throws `invalidValue` for any byte other than 0 or 1.
    public mutating func readBool(_ field: String) throws -> Bool {
        let byte = try readU8(field)
        guard byte <= 1 else {
            throw WireError(.invalidValue, field: field, value: "\(byte)", expected: "a bool byte, 0 or 1")
        }
        return byte == 1
    }

    /// Reads a u8 code and maps it to `T`; throws `invalidValue` for a code `T` does not define.
    public mutating func readEnum<T: RawRepresentable>(_ type: T.Type, _ field: String) throws -> T
    where T.RawValue == UInt8 {
        let raw = try readU8(field)
        guard let value = T(rawValue: raw) else {
            throw WireError(.invalidValue, field: field, value: "\(raw)", expected: "a known \(T.self) code")
        }
        return value
    }

    /// Reads a u32 byte length and that many bytes of UTF-8; at most 65,536 bytes, and the bytes must be valid UTF-8.
    public mutating func readString(_ field: String) throws -> String {
        let length = Int(try readU32(field + " length"))
        guard length <= CodecLimits.maxStringBytes else {
            throw WireError(
                .overlong, field: field, value: "a length of \(length) bytes",
                expected: "at most \(CodecLimits.maxStringBytes) bytes")
        }
        try require(length, field)
        let slice = bytes[offset..<(offset + length)]
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw WireError(
                .invalidUTF8, field: field, value: "\(length) bytes that are not UTF-8", expected: "valid UTF-8")
        }
        offset += length
        return text
    }

    /// Reads exactly `count` bytes with no length prefix.
    public mutating func readRaw(_ count: Int, _ field: String) throws -> [UInt8] {
        try require(count, field)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Reads every byte that is left (a field that runs to the end of the payload).
    public mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Reads a u32 count and that many elements with `body`.
    ///
    /// `minElementBytes` (at least 1) is the smallest encoding of one element; a count that would need more bytes
    /// than remain throws `countTooLarge` before any storage is reserved.
    public mutating func readArray<Element>(
        _ field: String, minElementBytes: Int, _ body: (inout WireReader) throws -> Element
    ) throws -> [Element] {
        precondition(minElementBytes >= 1, "every array element takes at least one byte")
        let count = Int(try readU32(field + " count"))
        guard count <= remaining / minElementBytes else {
            throw WireError(
                .countTooLarge, field: field, value: "a count of \(count)",
                expected: "at most \(remaining / minElementBytes) (the \(remaining) bytes left hold no more)")
        }
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            elements.append(try body(&self))
        }
        return elements
    }

    /// Reads a u8 presence flag (0 or 1) and, when it is 1, the value with `body`.
    public mutating func readOptional<Value>(
        _ field: String, _ body: (inout WireReader) throws -> Value
    ) throws -> Value? {
        let flag = try readU8(field + " presence")
        switch flag {
        case 0:
            return nil
        case 1:
            return try body(&self)
        default:
            throw WireError(
                .invalidValue, field: field + " presence", value: "\(flag)", expected: "a presence byte, 0 or 1")
        }
    }

    /// Reads a string-to-string map; a key seen twice throws `duplicateKey`.
    public mutating func readStringMap(_ field: String) throws -> [String: String] {
        let pairs = try readArray(field, minElementBytes: 8) { reader in
            (try reader.readString(field + " key"), try reader.readString(field + " value"))
        }
        return try Self.dictionary(pairs, field)
    }

    /// Reads a string-to-f64 map; a key seen twice throws `duplicateKey`.
    public mutating func readDoubleMap(_ field: String) throws -> [String: Double] {
        let pairs = try readArray(field, minElementBytes: 12) { reader in
            (try reader.readString(field + " key"), try reader.readF64(field + " value"))
        }
        return try Self.dictionary(pairs, field)
    }

    private static func dictionary<Value>(_ pairs: [(String, Value)], _ field: String) throws -> [String: Value] {
        var map: [String: Value] = [:]
        map.reserveCapacity(pairs.count)
        for (key, value) in pairs {
            guard map.updateValue(value, forKey: key) == nil else {
                throw WireError(.duplicateKey, field: field, value: "key \"\(key)\" twice", expected: "unique keys")
            }
        }
        return map
    }

    private func require(_ count: Int, _ field: String) throws {
        guard count <= remaining else {
            throw WireError(
                .truncated, field: field, value: "\(remaining) bytes left", expected: "at least \(count) bytes")
        }
    }

    private mutating func readLittleEndian<T: FixedWidthInteger>(_ field: String) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, field)
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: value)
    }
}
