/// The validated contents of a safetensors header.
struct ParsedHeader {
    /// Tensors in the order their entries appear in the header.
    let tensors: [TensorInfo]
    /// The `__metadata__` map, empty when the key is absent.
    let metadata: [String: String]
    /// The offset of the data buffer from the start of the file (8 + header length).
    let dataStart: Int
}

/// Validates a complete safetensors file image and extracts its header.
enum HeaderReader {
    /// The largest header length accepted, in bytes.
    static let maxHeaderLength: UInt64 = 100_000_000

    /// The key reserved for the string-to-string metadata map.
    static let metadataKey = "__metadata__"

    /// Parses and validates the whole file image `file`; every rule of the format is checked before returning.
    static func read(_ file: UnsafeRawBufferPointer, path: String?) throws -> ParsedHeader {
        guard file.count >= 8 else {
            throw SafeTensorsError(
                .fileTooShort, path: path,
                message: "file is \(file.count) bytes long, shorter than the 8-byte header length prefix; "
                    + "it is empty or truncated, so re-create or re-download it")
        }
        let headerLength = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard headerLength <= maxHeaderLength else {
            throw SafeTensorsError(
                .headerTooLarge, path: path,
                message: "header length prefix is \(headerLength) bytes, above the \(maxHeaderLength)-byte limit; "
                    + "the file is not a safetensors file or is corrupt")
        }
        let available = file.count - 8
        guard headerLength <= UInt64(available) else {
            throw SafeTensorsError(
                .headerExceedsFile, path: path,
                message: "header length prefix is \(headerLength) bytes but only \(available) bytes follow it; "
                    + "the file is truncated or not a safetensors file")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = Array(file[8..<dataStart])
        try checkUTF8(headerBytes, path: path)
        let root = try StrictJSONParser.parse(headerBytes, path: path)
        guard case .object(let members) = root else {
            throw SafeTensorsError(
                .headerNotObject, path: path,
                message: "header JSON is \(root.typeName), expected an object mapping tensor names to entries")
        }

        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        for (key, value) in members {
            if key == metadataKey {
                metadata = try readMetadata(value, path: path)
            } else {
                tensors.append(try readEntry(name: key, value, path: path))
            }
        }
        try checkLayout(tensors, dataLength: file.count - dataStart, path: path)
        return ParsedHeader(tensors: tensors, metadata: metadata, dataStart: dataStart)
    }

    private static func checkUTF8(_ bytes: [UInt8], path: String?) throws {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                offset += UTF8.width(scalar)
            case .emptyInput:
                return
            case .error:
                throw SafeTensorsError(
                    .headerNotUTF8, path: path,
                    message: "header is not valid UTF-8 near byte offset \(offset) of the header; the file is "
                        + "corrupt or the writer did not encode names as UTF-8")
            }
        }
    }

    private static func readMetadata(_ value: JSONValue, path: String?) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw SafeTensorsError(
                .invalidMetadata, path: path, field: metadataKey,
                message: "\(metadataKey) is \(value.typeName), expected an object mapping strings to strings")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in members {
            guard case .string(let text) = entry else {
                throw SafeTensorsError(
                    .invalidMetadata, path: path, field: metadataKey,
                    message: "\(metadataKey) key \"\(key)\" maps to \(entry.typeName), expected a string; "
                        + "store non-string metadata as text (for example JSON-encoded)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func readEntry(name: String, _ value: JSONValue, path: String?) throws -> TensorInfo {
        func fail(_ kind: SafeTensorsError.Kind, _ field: String?, _ why: String) -> SafeTensorsError {
            SafeTensorsError(kind, path: path, tensor: name, field: field, message: "tensor \"\(name)\": \(why)")
        }

        guard case .object(let fields) = value else {
            throw fail(
                .wrongFieldType, nil,
                "entry is \(value.typeName), expected an object with dtype, shape and data_offsets")
        }
        var dtypeValue: JSONValue?
        var shapeValue: JSONValue?
        var offsetsValue: JSONValue?
        for (field, fieldValue) in fields {
            switch field {
            case "dtype":
                dtypeValue = fieldValue
            case "shape":
                shapeValue = fieldValue
            case "data_offsets":
                offsetsValue = fieldValue
            default:
                throw fail(
                    .unknownField, field,
                    "unknown field \"\(field)\"; an entry may only contain dtype, shape and data_offsets")
            }
        }
        guard let dtypeValue else {
            throw fail(.missingField, "dtype", "entry has no \"dtype\" field; expected a dtype name such as \"F32\"")
        }
        guard let shapeValue else {
            throw fail(.missingField, "shape", "entry has no \"shape\" field; expected an array of dimensions")
        }
        guard let offsetsValue else {
            throw fail(.missingField, "data_offsets", "entry has no \"data_offsets\" field; expected [begin, end]")
        }

        guard case .string(let dtypeName) = dtypeValue else {
            throw fail(.wrongFieldType, "dtype", "dtype is \(dtypeValue.typeName), expected a string such as \"F32\"")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail(
                .unknownDType, "dtype",
                "dtype \"\(dtypeName)\" is not a safetensors dtype; expected one of \(DType.allSpellings)")
        }
        guard case .array(let dimensionValues) = shapeValue else {
            throw fail(.wrongFieldType, "shape", "shape is \(shapeValue.typeName), expected an array of integers")
        }
        var shape: [Int] = []
        for (index, dimension) in dimensionValues.enumerated() {
            shape.append(try nonNegativeInteger(dimension, label: "shape[\(index)]", field: "shape", fail: fail))
        }
        guard case .array(let offsetValues) = offsetsValue, offsetValues.count == 2 else {
            throw fail(
                .wrongFieldType, "data_offsets",
                "data_offsets is \(offsetsValue.typeName) of the wrong form, expected an array of exactly two "
                    + "integers [begin, end]")
        }
        let begin = try nonNegativeInteger(offsetValues[0], label: "data_offsets[0]", field: "data_offsets", fail: fail)
        let end = try nonNegativeInteger(offsetValues[1], label: "data_offsets[1]", field: "data_offsets", fail: fail)
        guard end >= begin else {
            throw fail(.offsetsReversed, "data_offsets", "data_offsets [\(begin), \(end)] ends before it begins")
        }

        guard let (_, expectedBytes) = checkedByteCount(shape: shape, byteSize: dtype.byteSize) else {
            throw fail(
                .shapeOverflow, "shape",
                "shape \(shape) times the \(dtype.byteSize)-byte size of \(dtype.rawValue) overflows a 64-bit "
                    + "byte count; the header is corrupt")
        }
        guard end - begin == expectedBytes else {
            throw fail(
                .byteLengthMismatch, "data_offsets",
                "data_offsets [\(begin), \(end)] span \(end - begin) bytes, but shape \(shape) of \(dtype.rawValue) "
                    + "needs \(expectedBytes) bytes; the header or the writer is wrong")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    private static func nonNegativeInteger(
        _ value: JSONValue, label: String, field: String,
        fail: (SafeTensorsError.Kind, String?, String) -> SafeTensorsError
    ) throws -> Int {
        guard case .number(let number) = value else {
            throw fail(.wrongFieldType, field, "\(label) is \(value.typeName), expected a non-negative integer")
        }
        guard let integer = number.integer else {
            throw fail(
                .invalidNumber, field,
                "\(label) is \(number.literal), expected a non-negative integer without fraction or exponent that "
                    + "fits in 64 bits")
        }
        guard integer >= 0 else {
            throw fail(.invalidNumber, field, "\(label) is \(number.literal), expected a non-negative integer")
        }
        return integer
    }

    /// Checks that the tensors, sorted by begin offset, cover the data buffer exactly: no hole, no overlap, nothing
    /// past the last tensor. Zero-byte tensors may sit at any tensor boundary.
    private static func checkLayout(_ tensors: [TensorInfo], dataLength: Int, path: String?) throws {
        for tensor in tensors where tensor.dataRange.upperBound > dataLength {
            throw SafeTensorsError(
                .offsetsOutOfBounds, path: path, tensor: tensor.name, field: "data_offsets",
                message: "tensor \"\(tensor.name)\": data_offsets end \(tensor.dataRange.upperBound) lies past the "
                    + "end of the \(dataLength)-byte data buffer; the file is truncated")
        }
        let sorted = tensors.sorted {
            ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound)
        }
        var covered = 0
        var previous: TensorInfo?
        for tensor in sorted {
            let begin = tensor.dataRange.lowerBound
            if begin > covered {
                let after = previous.map { "after tensor \"\($0.name)\"" } ?? "at the start of the data buffer"
                throw SafeTensorsError(
                    .offsetsHole, path: path, tensor: tensor.name, field: "data_offsets",
                    message: "tensor \"\(tensor.name)\" begins at \(begin), leaving \(begin - covered) unused bytes "
                        + "\(after) (which ends at \(covered)); tensors must tile the data buffer exactly")
            }
            if begin < covered {
                throw SafeTensorsError(
                    .offsetsOverlap, path: path, tensor: tensor.name, field: "data_offsets",
                    message: "tensor \"\(tensor.name)\" begins at \(begin), inside tensor \"\(previous?.name ?? "")\" "
                        + "which ends at \(covered); tensors must not share bytes")
            }
            covered = tensor.dataRange.upperBound
            previous = tensor
        }
        if covered < dataLength {
            throw SafeTensorsError(
                .trailingBytes, path: path, tensor: previous?.name,
                message: "the data buffer is \(dataLength) bytes but the tensors end at \(covered), leaving "
                    + "\(dataLength - covered) trailing bytes; the file is corrupt or was appended to")
        }
    }
}
