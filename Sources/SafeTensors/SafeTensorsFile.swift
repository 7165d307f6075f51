#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A validated, read-only safetensors file, either memory-mapped from disk or held in memory.
///
/// Initialisation checks every rule of the format (see `SafeTensorsError.Kind`), so once an instance exists every
/// `TensorInfo` it reports is consistent with the data. Tensor data is never assumed to be aligned; all loads copy.
///
/// Thread safety: the class is `@unchecked Sendable` because it is immutable after `init` (every stored property is
/// a `let`), the mapping is created `PROT_READ` + `MAP_PRIVATE` so no code in this process can write through it, and
/// it is only unmapped in `deinit`, when no other reference can exist. The checker cannot see this for the raw
/// pointer, hence `@unchecked`.
public final class SafeTensorsFile: @unchecked Sendable {
    private enum Storage {
        case mapped(UnsafeRawPointer, count: Int)
        case owned([UInt8])
    }

    /// The file the tensors were mapped from, or `nil` for in-memory buffers.
    public let path: String?
    /// The `__metadata__` map; empty when the file has none.
    public let metadata: [String: String]
    /// All tensors, in the order their entries appear in the header.
    public let tensors: [TensorInfo]

    private let storage: Storage
    private let dataStart: Int
    private let indexByName: [String: Int]

    /// Maps the file at `path` read-only and validates it.
    ///
    /// The mapping stays alive as long as this object. Files shorter than 8 bytes are rejected without mapping.
    /// TODO: if another process truncates the file while it is mapped, touching the lost pages raises SIGBUS and
    /// kills this process; write files atomically (as `SafeTensorsWriter.write(to:)` does) instead of in place.
    /// - Throws: `SafeTensorsError` with `path` set; `.io` when the file cannot be opened, is not a regular file or
    ///   cannot be mapped, otherwise the kind of the first format rule that the file breaks.
    public init(contentsOf path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw Self.systemError("cannot open the file for reading", path: path)
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw Self.systemError("cannot stat the file", path: path)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError(
                .io, path: path, message: "not a regular file (a directory or device?); pass the .safetensors file")
        }
        let size = Int(status.st_size)
        guard size >= 8 else {
            throw SafeTensorsError(
                .fileTooShort, path: path,
                message: "file is \(size) bytes long, shorter than the 8-byte header length prefix; "
                    + "it is empty or truncated, so re-create or re-download it")
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw Self.systemError("cannot memory-map the file", path: path)
        }

        let header: ParsedHeader
        do {
            header = try HeaderReader.read(UnsafeRawBufferPointer(start: mapping, count: size), path: path)
        } catch {
            munmap(mapping, size)
            throw error
        }
        self.path = path
        self.storage = .mapped(UnsafeRawPointer(mapping), count: size)
        self.metadata = header.metadata
        self.tensors = header.tensors
        self.dataStart = header.dataStart
        self.indexByName = Self.index(header.tensors)
    }

    /// Validates an in-memory safetensors image, such as one produced by `SafeTensorsWriter.serialized()`.
    ///
    /// - Throws: `SafeTensorsError` (with `path == nil`) of the first format rule that the bytes break.
    public init(bytes: [UInt8]) throws {
        let header = try bytes.withUnsafeBytes { try HeaderReader.read($0, path: nil) }
        self.path = nil
        self.storage = .owned(bytes)
        self.metadata = header.metadata
        self.tensors = header.tensors
        self.dataStart = header.dataStart
        self.indexByName = Self.index(header.tensors)
    }

    deinit {
        if case .mapped(let pointer, let count) = storage {
            munmap(UnsafeMutableRawPointer(mutating: pointer), count)
        }
    }

    /// The tensor called `name`, or `nil` when the file has none of that name.
    public subscript(name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// Calls `body` with the raw bytes of tensor `name` and returns its result.
    ///
    /// The buffer is valid only inside `body` and is not aligned for any element type: read it with
    /// `loadUnaligned` or copy it. Zero-element tensors give an empty buffer.
    /// - Throws: `.tensorNotFound` when there is no such tensor, or whatever `body` throws.
    public func withUnsafeBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try tensor(named: name)
        return try withFileBytes { file in
            let start = dataStart + info.dataRange.lowerBound
            return try body(UnsafeRawBufferPointer(rebasing: file[start..<(start + info.byteCount)]))
        }
    }

    /// A copy of the raw little-endian bytes of tensor `name`.
    ///
    /// - Throws: `.tensorNotFound` when there is no such tensor.
    public func bytes(_ name: String) throws -> [UInt8] {
        try withUnsafeBytes(of: name) { Array($0) }
    }

    /// The elements of tensor `name` converted to `Float`, in row-major order.
    ///
    /// F32 is copied exactly; F16 and BF16 are widened exactly. Other dtypes are refused rather than guessed at.
    /// - Throws: `.tensorNotFound`, or `.unsupportedDType` naming the tensor's dtype.
    public func floats(_ name: String) throws -> [Float] {
        let info = try tensor(named: name)
        let count = info.elementCount
        switch info.dtype {
        case .float32:
            return try withUnsafeBytes(of: name) { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for index in 0..<count {
                        let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                        buffer[index] = Float(bitPattern: bits)
                    }
                    initialized = count
                }
            }
        case .float16:
            return try withUnsafeBytes(of: name) { raw in
                (0..<count).map { index in
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
                    return Float(Float16(bitPattern: bits))
                }
            }
        case .bfloat16:
            return try withUnsafeBytes(of: name) { raw in
                (0..<count).map { index in
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
                    return Float(bitPattern: UInt32(bits) << 16)
                }
            }
        default:
            throw SafeTensorsError(
                .unsupportedDType, path: path, tensor: name, field: "dtype",
                message: "tensor \"\(name)\" has dtype \(info.dtype.rawValue); floats() converts only F32, F16 and "
                    + "BF16, so read it with bytes() or an integer accessor instead")
        }
    }

    /// The elements of integer tensor `name` widened to `Int64`, in row-major order.
    ///
    /// Accepts U8, I8, U16, I16, U32, I32, I64 and U64 (U64 values above `Int64.max` are an error).
    /// - Throws: `.tensorNotFound`, `.unsupportedDType` for non-integer dtypes, `.valueOutOfRange`.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try tensor(named: name)
        return try withUnsafeBytes(of: name) { raw in
            var values: [Int64] = []
            values.reserveCapacity(info.elementCount)
            for index in 0..<info.elementCount {
                let value: Int64?
                switch info.dtype {
                case .uint8:
                    value = Int64(raw[index])
                case .int8:
                    value = Int64(Int8(bitPattern: raw[index]))
                case .uint16:
                    value = Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
                case .int16:
                    value = Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
                case .uint32:
                    value = Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                case .int32:
                    value = Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
                case .int64:
                    value = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))
                case .uint64:
                    let wide = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                    value = Int64(exactly: wide)
                default:
                    throw SafeTensorsError(
                        .unsupportedDType, path: path, tensor: name, field: "dtype",
                        message: "tensor \"\(name)\" has dtype \(info.dtype.rawValue); integer accessors accept "
                            + "only U8, I8, U16, I16, U32, I32, I64 and U64, so use floats() or bytes() instead")
                }
                guard let value else {
                    throw outOfRange(name, index: index, type: "Int64")
                }
                values.append(value)
            }
            return values
        }
    }

    /// The elements of integer tensor `name` converted to `Int32`, e.g. class labels stored as U8, I32 or I64.
    ///
    /// Accepts the same dtypes as `int64s(_:)`; any value outside the `Int32` range is an error, not truncated.
    /// - Throws: `.tensorNotFound`, `.unsupportedDType` for non-integer dtypes, `.valueOutOfRange`.
    public func int32s(_ name: String) throws -> [Int32] {
        let wide = try int64s(name)
        var values: [Int32] = []
        values.reserveCapacity(wide.count)
        for (index, value) in wide.enumerated() {
            guard let narrow = Int32(exactly: value) else {
                throw outOfRange(name, index: index, type: "Int32")
            }
            values.append(narrow)
        }
        return values
    }

    private func outOfRange(_ name: String, index: Int, type: String) -> SafeTensorsError {
        SafeTensorsError(
            .valueOutOfRange, path: path, tensor: name,
            message: "tensor \"\(name)\" element \(index) does not fit in \(type); use a wider accessor or bytes()")
    }

    private func tensor(named name: String) throws -> TensorInfo {
        guard let info = self[name] else {
            throw SafeTensorsError(
                .tensorNotFound, path: path, tensor: name,
                message: "no tensor named \"\(name)\" (the file has \(tensors.count)); check the name against "
                    + "`tensors`")
        }
        return info
    }

    private func withFileBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .mapped(let pointer, let count):
            return try body(UnsafeRawBufferPointer(start: pointer, count: count))
        case .owned(let bytes):
            return try bytes.withUnsafeBytes(body)
        }
    }

    private static func index(_ tensors: [TensorInfo]) -> [String: Int] {
        var index: [String: Int] = [:]
        for (position, tensor) in tensors.enumerated() {
            index[tensor.name] = position
        }
        return index
    }

    private static func systemError(_ what: String, path: String) -> SafeTensorsError {
        let code = errno
        return SafeTensorsError(
            .io, path: path, message: "\(what): \(String(cString: strerror(code))) (errno \(code))")
    }
}
