/// Where one tensor lives in a safetensors file and how to interpret its bytes.
///
/// `dataRange` is relative to the start of the data buffer (the byte after the header), exactly like the header's
/// `data_offsets`. Every `TensorInfo` handed out by `SafeTensorsFile` has been validated: its byte count equals
/// `elementCount * dtype.byteSize` and the range lies inside the data buffer.
public struct TensorInfo: Sendable, Hashable {
    /// The tensor's key in the header.
    public let name: String
    /// The element type.
    public let dtype: DType
    /// The dimensions, outermost first; `[]` is a scalar with one element.
    public let shape: [Int]
    /// The byte range in the data buffer, `begin..<end` of the header's `data_offsets`.
    public let dataRange: Range<Int>

    /// Creates a description; the reader builds these itself after validation.
    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }

    /// The number of elements, the product of `shape` (1 for a scalar, 0 when any dimension is 0).
    ///
    /// For tensors from the reader this cannot overflow, because the reader rejects overflowing shapes.
    public var elementCount: Int {
        shape.reduce(1, *)
    }

    /// The number of bytes the tensor occupies in the data buffer.
    public var byteCount: Int {
        dataRange.count
    }
}

/// The element count of `shape` times `byteSize`, or `nil` when a dimension is negative or the product overflows.
func checkedByteCount(shape: [Int], byteSize: Int) -> (elements: Int, bytes: Int)? {
    var elements = 1
    for dimension in shape {
        guard dimension >= 0 else {
            return nil
        }
        let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
        guard !overflow else {
            return nil
        }
        elements = product
    }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: byteSize)
    return overflow ? nil : (elements, bytes)
}
