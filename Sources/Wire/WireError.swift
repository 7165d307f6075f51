/// An error raised while framing, decoding or encoding protocol bytes, or while encoding or decoding a weight stream.
///
/// `code` is stable and meant for programs; `field` names the header field, message field or stream part at fault,
/// `value` is the offending value as text, and `expected` says what would have been accepted. `message` joins the
/// three into one sentence for people. A server that meets any of these while reading a connection closes that
/// connection only.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, one case per rule the wire layer enforces. The raw values never change.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// A frame header does not start with the bytes "SNRP".
        case badMagic = "bad_magic"
        /// A frame header carries a framing version this build does not speak.
        case unsupportedVersion = "unsupported_version"
        /// A frame header carries a message kind that is not in the catalogue.
        case unknownKind = "unknown_kind"
        /// A frame header sets flag bits that are reserved (every bit but bit 0).
        case reservedFlags = "reserved_flags"
        /// A frame's payload length is above the connection's maximum frame size.
        case frameTooLarge = "frame_too_large"
        /// The bytes end before a frame, a field or a stream is complete.
        case truncated = "truncated"
        /// A string is longer than 65,536 bytes, or an array or map has more than 2^32 - 1 entries.
        case overlong = "overlong"
        /// A string's bytes are not valid UTF-8.
        case invalidUTF8 = "invalid_utf8"
        /// Bytes are left over after a complete message or after the end of the LZ4 frame.
        case trailingBytes = "trailing_bytes"
        /// An array or map count promises more entries than the remaining bytes could hold.
        case countTooLarge = "count_too_large"
        /// A field holds a value outside its domain (a bool other than 0/1, an unknown enum code, ...).
        case invalidValue = "invalid_value"
        /// A map holds the same key twice.
        case duplicateKey = "duplicate_key"
        /// The caller passed something the encoder cannot represent (shape mismatch, non-finite int8 input, ...).
        case invalidArgument = "invalid_argument"
        /// The tensor table of a specialization header is inconsistent with itself or with the stream totals.
        case invalidTensorTable = "invalid_tensor_table"
        /// LZ4 rejected the compressed weight stream (bad block, bad checksum, bad frame header).
        case corruptStream = "corrupt_stream"
        /// The weight stream decodes to more bytes than the header announced.
        case streamTooLong = "stream_too_long"
        /// The SHA-256 of the decoded weight stream differs from the one in the header.
        case digestMismatch = "digest_mismatch"
        /// The weight stream's chunk count or compressed size differs from what the header or end message says.
        case countMismatch = "count_mismatch"
        /// LZ4 failed while compressing; this is a bug or an out-of-memory condition, not bad input.
        case compressionFailed = "compression_failed"
    }

    /// What went wrong, for programs.
    public let code: Code
    /// The field, header part or stream part at fault, e.g. `frame.length` or `Specialize.budgets`.
    public let field: String
    /// The offending value as text, e.g. `"16777217"`.
    public let value: String
    /// What would have been accepted, e.g. `"at most 16777216"`.
    public let expected: String

    /// Creates an error; the library builds these itself, callers normally only inspect them.
    public init(_ code: Code, field: String, value: String, expected: String) {
        self.code = code
        self.field = field
        self.value = value
        self.expected = expected
    }

    /// One sentence for people naming the field, the value and what was expected.
    public var message: String {
        "\(field) is \(value); expected \(expected) (\(code.rawValue))"
    }

    /// Same as `message`.
    public var description: String {
        message
    }

    /// The protocol error code a server sends (with request id 0) before closing a connection that failed this way.
    public var protocolCode: ErrorCode {
        switch code {
        case .unsupportedVersion:
            return .unsupportedVersion
        case .invalidArgument:
            return .invalidArgument
        case .compressionFailed:
            return .internalError
        default:
            return .protocolError
        }
    }
}
