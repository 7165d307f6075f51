/// An error raised while reading, validating, converting or writing a safetensors file.
///
/// `kind` tells callers what went wrong in a form they can switch on; `message` is a full sentence for people that
/// names the offending tensor or field, says what was expected, and what to do next. `path` is the file involved
/// when there is one (it is `nil` for in-memory buffers), `tensor` and `field` narrow the place down when known.
public struct SafeTensorsError: Error, Sendable, CustomStringConvertible {
    /// The class of failure, one case per rule the reader or writer enforces.
    public enum Kind: Sendable, Hashable {
        /// The file is shorter than the 8-byte header-length prefix.
        case fileTooShort
        /// The header length prefix exceeds the 100,000,000-byte limit.
        case headerTooLarge
        /// The header length prefix points past the end of the file.
        case headerExceedsFile
        /// The header bytes are not valid UTF-8.
        case headerNotUTF8
        /// The header is not valid JSON (syntax error, bad escape, trailing bytes after the object, ...).
        case invalidJSON
        /// The header JSON nests arrays/objects deeper than the parser's small limit.
        case jsonTooDeep
        /// The same key appears twice in one JSON object of the header.
        case duplicateKey
        /// The header JSON is valid but its top-level value is not an object.
        case headerNotObject
        /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
        case missingField
        /// A tensor entry or one of its fields has the wrong JSON type (or `data_offsets` is not a pair).
        case wrongFieldType
        /// A number that must be a non-negative integer is negative, fractional, has an exponent or is too large.
        case invalidNumber
        /// A tensor entry contains a field other than `dtype`, `shape` and `data_offsets`.
        case unknownField
        /// A `dtype` is not one of the spec's names.
        case unknownDType
        /// The product of a shape (times the dtype size) overflows `Int`.
        case shapeOverflow
        /// A tensor's byte length differs from product(shape) × dtype size.
        case byteLengthMismatch
        /// A tensor's `data_offsets` has end < begin.
        case offsetsReversed
        /// A tensor's `data_offsets` end lies past the end of the data buffer.
        case offsetsOutOfBounds
        /// Sorted by begin, two tensors leave unused bytes between them (or the first does not start at 0).
        case offsetsHole
        /// Sorted by begin, two tensors share bytes.
        case offsetsOverlap
        /// The data buffer continues past the end of the last tensor.
        case trailingBytes
        /// `__metadata__` is not an object mapping strings to strings.
        case invalidMetadata
        /// No tensor of the requested name exists.
        case tensorNotFound
        /// A conversion was requested that the tensor's dtype does not support.
        case unsupportedDType
        /// An integer value does not fit the requested result type.
        case valueOutOfRange
        /// The writer was given a tensor name it cannot store (`__metadata__`, or one already added).
        case invalidTensorName
        /// The writer was given a shape with a negative dimension.
        case invalidShape
        /// An operating-system call failed (open, stat, mmap, write, fsync, rename).
        case io
    }

    /// What went wrong, for programs.
    public let kind: Kind
    /// The file involved, or `nil` for in-memory buffers and writer calls that do not touch a file.
    public let path: String?
    /// The tensor involved, when the failure concerns one.
    public let tensor: String?
    /// The header field involved (`dtype`, `shape`, `data_offsets`, `__metadata__`, ...), when known.
    public let field: String?
    /// A sentence for people: what is wrong, what was expected, and what to do next.
    public let message: String

    /// Creates an error; the library builds these itself, callers normally only inspect them.
    public init(_ kind: Kind, path: String? = nil, tensor: String? = nil, field: String? = nil, message: String) {
        self.kind = kind
        self.path = path
        self.tensor = tensor
        self.field = field
        self.message = message
    }

    /// The message prefixed with the file path (or `<memory>` for in-memory buffers).
    public var description: String {
        "\(path ?? "<memory>"): \(message)"
    }

    /// A copy of this error that carries `path`, used when a lower layer did not know the file name.
    func withPath(_ path: String?) -> SafeTensorsError {
        SafeTensorsError(kind, path: path, tensor: tensor, field: field, message: message)
    }
}
