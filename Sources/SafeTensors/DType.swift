/// The element type of a tensor, spelled exactly as the safetensors header spells it.
///
/// The raw value is the header spelling (`"F32"`, `"BF16"`, ...). Only the names listed here are accepted by the
/// reader; any other spelling in a header is rejected with `SafeTensorsError.Kind.unknownDType`.
public enum DType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case uint8 = "U8"
    case int8 = "I8"
    case float8E5M2 = "F8_E5M2"
    case float8E4M3 = "F8_E4M3"
    case int16 = "I16"
    case uint16 = "U16"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int32 = "I32"
    case uint32 = "U32"
    case float32 = "F32"
    case float64 = "F64"
    case int64 = "I64"
    case uint64 = "U64"

    /// The number of bytes one element occupies in the data buffer.
    ///
    /// `BOOL` takes one byte per element (zero is false, anything else is true).
    public var byteSize: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E5M2, .float8E4M3:
            return 1
        case .int16, .uint16, .float16, .bfloat16:
            return 2
        case .int32, .uint32, .float32:
            return 4
        case .float64, .int64, .uint64:
            return 8
        }
    }

    /// Every accepted header spelling, comma-separated, for use in error messages.
    static var allSpellings: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }
}
