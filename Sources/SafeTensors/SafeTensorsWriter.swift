#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a safetensors file from tensors added one by one.
///
/// Output is deterministic: tensors appear in the header and in the data buffer in the order they were added,
/// metadata keys are sorted by their UTF-8 bytes, the JSON has no whitespace, and the header is padded with spaces
/// to a multiple of 8 bytes. The `__metadata__` key is written first and only when `metadata` is not empty.
/// Each `add` validates its tensor at once, so a mistake is reported where it was made.
///
/// Data is packed without alignment padding, so a tensor's bytes start wherever the previous tensor's end; callers
/// that want naturally aligned data for zero-copy consumers should add tensors with larger elements first.
public struct SafeTensorsWriter: Sendable {
    private struct Entry: Sendable {
        let name: String
        let dtype: DType
        let shape: [Int]
        let bytes: [UInt8]
    }

    /// String-to-string metadata stored under `__metadata__`.
    public var metadata: [String: String]

    private var entries: [Entry] = []
    private var names: Set<String> = []

    /// Creates an empty writer with the given metadata.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// The number of tensors added so far.
    public var count: Int {
        entries.count
    }

    /// Adds a tensor from raw little-endian bytes.
    ///
    /// - Throws: `.invalidTensorName` for `__metadata__` or a name already added (names that are equal under
    ///   Unicode canonical equivalence count as the same name), `.invalidShape` for a negative dimension,
    ///   `.shapeOverflow`, or `.byteLengthMismatch` when `bytes.count` != product(shape) × dtype size.
    public mutating func add(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws {
        guard name != HeaderReader.metadataKey else {
            throw SafeTensorsError(
                .invalidTensorName, tensor: name,
                message: "\"\(name)\" is reserved for metadata and cannot name a tensor; choose another name")
        }
        guard !names.contains(name) else {
            throw SafeTensorsError(
                .invalidTensorName, tensor: name,
                message: "a tensor named \"\(name)\" was already added; tensor names must be unique")
        }
        if let dimension = shape.first(where: { $0 < 0 }) {
            throw SafeTensorsError(
                .invalidShape, tensor: name, field: "shape",
                message: "tensor \"\(name)\": shape \(shape) has the negative dimension \(dimension)")
        }
        guard let (_, expected) = checkedByteCount(shape: shape, byteSize: dtype.byteSize) else {
            throw SafeTensorsError(
                .shapeOverflow, tensor: name, field: "shape",
                message: "tensor \"\(name)\": shape \(shape) of \(dtype.rawValue) overflows a 64-bit byte count")
        }
        guard bytes.count == expected else {
            throw SafeTensorsError(
                .byteLengthMismatch, tensor: name,
                message: "tensor \"\(name)\": got \(bytes.count) bytes but shape \(shape) of \(dtype.rawValue) "
                    + "needs \(expected); check the shape and the dtype")
        }
        names.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    /// Adds an F32 tensor holding `floats` exactly.
    ///
    /// - Throws: as `add(name:dtype:shape:bytes:)`, e.g. when `floats.count` does not match `shape`.
    public mutating func add(name: String, floats: [Float], shape: [Int]) throws {
        try add(name: name, dtype: .float32, shape: shape, bytes: littleEndianBytes(floats.map(\.bitPattern)))
    }

    /// Adds an F16 tensor, rounding each value to the nearest half-precision value (ties to even).
    ///
    /// Values beyond ±65504 become ±infinity; NaN stays NaN.
    /// - Throws: as `add(name:dtype:shape:bytes:)`.
    public mutating func add(name: String, float16From floats: [Float], shape: [Int]) throws {
        let bits = floats.map { Float16($0).bitPattern }
        try add(name: name, dtype: .float16, shape: shape, bytes: littleEndianBytes(bits))
    }

    /// Adds a BF16 tensor, rounding each value to the nearest bfloat16 value (ties to even); NaN stays NaN.
    ///
    /// - Throws: as `add(name:dtype:shape:bytes:)`.
    public mutating func add(name: String, bfloat16From floats: [Float], shape: [Int]) throws {
        let bits = floats.map { value -> UInt16 in
            let pattern = value.bitPattern
            if value.isNaN {
                return UInt16(truncatingIfNeeded: pattern >> 16) | 0x0040
            }
            let roundingBias: UInt32 = 0x7FFF + ((pattern >> 16) & 1)
            return UInt16(truncatingIfNeeded: (pattern &+ roundingBias) >> 16)
        }
        try add(name: name, dtype: .bfloat16, shape: shape, bytes: littleEndianBytes(bits))
    }

    /// Adds a U8 tensor, e.g. class labels or quantised weights.
    ///
    /// - Throws: as `add(name:dtype:shape:bytes:)`.
    public mutating func add(name: String, uint8 values: [UInt8], shape: [Int]) throws {
        try add(name: name, dtype: .uint8, shape: shape, bytes: values)
    }

    /// Adds an I32 tensor.
    ///
    /// - Throws: as `add(name:dtype:shape:bytes:)`.
    public mutating func add(name: String, int32 values: [Int32], shape: [Int]) throws {
        try add(name: name, dtype: .int32, shape: shape, bytes: littleEndianBytes(values))
    }

    /// Adds an I64 tensor.
    ///
    /// - Throws: as `add(name:dtype:shape:bytes:)`.
    public mutating func add(name: String, int64 values: [Int64], shape: [Int]) throws {
        try add(name: name, dtype: .int64, shape: shape, bytes: littleEndianBytes(values))
    }

    /// The complete file image: length prefix, padded header, data buffer.
    ///
    /// - Throws: `.headerTooLarge` when the header would exceed the reader's 100,000,000-byte limit.
    public func serialized() throws -> [UInt8] {
        var output = try encodedPrefixAndHeader()
        for entry in entries {
            output.append(contentsOf: entry.bytes)
        }
        return output
    }

    /// Writes the file to `path` atomically: a temporary file in the same directory is written, fsynced and renamed
    /// over `path`, so readers see either the old file or the complete new one, never a partial one.
    ///
    /// The directory must exist. On failure the temporary file is removed and `path` is untouched.
    /// - Throws: `.headerTooLarge`, or `.io` (with `path`) naming the system call that failed and why.
    public func write(to path: String) throws {
        let prefixAndHeader = try encodedPrefixAndHeader()
        let directory = parentDirectory(of: path)
        let temporary = directory + "/." + baseName(of: path) + ".\(getpid()).\(UInt32.random(in: .min ... .max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw systemError("cannot create the temporary file \(temporary)", path: path)
        }

        var succeeded = false
        defer {
            if !succeeded {
                unlink(temporary)
            }
        }
        do {
            defer { close(descriptor) }
            try writeAll(descriptor, prefixAndHeader, path: path)
            for entry in entries {
                try writeAll(descriptor, entry.bytes, path: path)
            }
            guard fsync(descriptor) == 0 else {
                throw systemError("cannot fsync the temporary file \(temporary)", path: path)
            }
        }
        guard rename(temporary, path) == 0 else {
            throw systemError("cannot rename \(temporary) over the destination", path: path)
        }
        succeeded = true

        // The rename already happened, so a failing directory fsync is not reported as a failed write: the file is
        // complete and in place, only its durability across a power cut is weaker.
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// The 8-byte length prefix followed by the space-padded JSON header.
    private func encodedPrefixAndHeader() throws -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        if !metadata.isEmpty {
            appendJSONString(HeaderReader.metadataKey, to: &json)
            json.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 {
                    json.append(UInt8(ascii: ","))
                }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for entry in entries {
            if !first {
                json.append(UInt8(ascii: ","))
            }
            first = false
            appendJSONString(entry.name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            appendJSONString(entry.dtype.rawValue, to: &json)
            let dimensions = entry.shape.map(String.init).joined(separator: ",")
            let end = offset + entry.bytes.count
            json.append(contentsOf: Array(",\"shape\":[\(dimensions)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        guard UInt64(json.count) <= HeaderReader.maxHeaderLength else {
            throw SafeTensorsError(
                .headerTooLarge,
                message: "the header would be \(json.count) bytes, above the \(HeaderReader.maxHeaderLength)-byte "
                    + "limit readers accept; store fewer tensors or shorter names and metadata per file")
        }
        return littleEndianBytes([UInt64(json.count)]) + json
    }
}

/// Appends `text` as a JSON string literal: quotes, backslashes and control characters escaped, everything else
/// copied as UTF-8.
private func appendJSONString(_ text: String, to json: inout [UInt8]) {
    json.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            json.append(UInt8(ascii: "\\"))
            json.append(byte)
        case 0x0A:
            json.append(contentsOf: Array("\\n".utf8))
        case 0x09:
            json.append(contentsOf: Array("\\t".utf8))
        case 0x0D:
            json.append(contentsOf: Array("\\r".utf8))
        case 0..<0x20:
            json.append(contentsOf: Array("\\u00\(hex(byte))".utf8))
        default:
            json.append(byte)
        }
    }
    json.append(UInt8(ascii: "\""))
}

/// The little-endian bytes of `values`, element after element.
private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
    for value in values {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    return bytes
}

private func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws {
    try bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR {
                    continue
                }
                throw systemError("cannot write the temporary file", path: path)
            }
            offset += written
        }
    }
}

private func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else {
        return "."
    }
    let parent = String(path[..<slash])
    return parent.isEmpty ? "/" : parent
}

private func baseName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else {
        return path
    }
    return String(path[path.index(after: slash)...])
}

private func systemError(_ what: String, path: String) -> SafeTensorsError {
    let code = errno
    return SafeTensorsError(.io, path: path, message: "\(what): \(String(cString: strerror(code))) (errno \(code))")
}
