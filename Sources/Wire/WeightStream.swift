import Digest

/// A named float32 tensor as the engine holds it: row-major values and a shape, outermost dimension first.
public struct WeightTensor: Sendable, Hashable {
    /// The tensor's name in the subnet file.
    public var name: String
    /// Dimensions, outermost (output channels) first; empty for a scalar.
    public var shape: [Int]
    /// Row-major values; `values.count` must equal the product of `shape` (1 for a scalar).
    public var values: [Float]

    /// Creates a tensor.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// The byte-shuffle filter: regroups the bytes of fixed-size elements by significance.
///
/// For n elements of size k, output byte `j * n + i` is byte `j` of element `i`: first every element's byte 0, then
/// every byte 1, and so on (the layout blosc calls "shuffle"). Bytes of similar significance end up side by side,
/// which lets LZ4 find the repeats in sign and exponent bytes of float data.
public enum ByteShuffle {
    /// Shuffles `source` into `destination`; both hold the same whole number of `elementSize`-byte elements.
    public static func shuffle(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, elementSize: Int
    ) {
        precondition(elementSize >= 1 && source.count % elementSize == 0, "shuffle needs whole elements")
        precondition(destination.count == source.count, "shuffle needs equal-sized buffers")
        let count = source.count / elementSize
        guard count > 0 else {
            return
        }
        let input = source.bindMemory(to: UInt8.self)
        let output = destination.bindMemory(to: UInt8.self)
        for byte in 0..<elementSize {
            let lane = byte * count
            for element in 0..<count {
                output[lane + element] = input[element * elementSize + byte]
            }
        }
    }

    /// Undoes `shuffle`: `source` holds the shuffled layout, `destination` receives the elements.
    public static func unshuffle(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, elementSize: Int
    ) {
        precondition(elementSize >= 1 && source.count % elementSize == 0, "unshuffle needs whole elements")
        precondition(destination.count == source.count, "unshuffle needs equal-sized buffers")
        let count = source.count / elementSize
        guard count > 0 else {
            return
        }
        let input = source.bindMemory(to: UInt8.self)
        let output = destination.bindMemory(to: UInt8.self)
        for byte in 0..<elementSize {
            let lane = byte * count
            for element in 0..<count {
                output[element * elementSize + byte] = input[lane + element]
            }
        }
    }

    /// The shuffled copy of `bytes`.
    public static func shuffled(_ bytes: [UInt8], elementSize: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { source in
            result.withUnsafeMutableBytes { shuffle(source, into: $0, elementSize: elementSize) }
        }
        return result
    }

    /// The unshuffled copy of `bytes`.
    public static func unshuffled(_ bytes: [UInt8], elementSize: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { source in
            result.withUnsafeMutableBytes { unshuffle(source, into: $0, elementSize: elementSize) }
        }
        return result
    }
}

/// A weight stream ready to send: the tensor table and totals for `SpecializeHeader`, and the compressed bytes.
public struct EncodedWeights: Sendable {
    /// The element type of the decoded stream.
    public let dtype: WeightDType
    /// Whether each tensor was byte-shuffled.
    public let shuffle: Bool
    /// The tensor table, in stream order.
    public let tensors: [TensorEntry]
    /// The decoded stream's length in bytes.
    public let decodedBytes: UInt64
    /// SHA-256 of the decoded stream.
    public let sha256: [UInt8]
    /// The whole LZ4 frame.
    public let compressed: [UInt8]
    /// The largest chunk, in bytes.
    public let chunkBytes: Int

    /// How many chunks the compressed stream splits into (at least 1: an LZ4 frame is never empty).
    public var chunkCount: Int {
        (compressed.count + chunkBytes - 1) / chunkBytes
    }

    /// Chunk `index` (0-based): `chunkBytes` bytes, the last one possibly fewer.
    public func chunk(_ index: Int) -> ArraySlice<UInt8> {
        let start = index * chunkBytes
        return compressed[start..<min(start + chunkBytes, compressed.count)]
    }

    /// Every chunk in order.
    public var chunks: [ArraySlice<UInt8>] {
        (0..<chunkCount).map(chunk)
    }

    /// The `SpecializeEnd` message that closes this stream.
    public var end: SpecializeEnd {
        SpecializeEnd(chunkCount: UInt32(chunkCount), compressedBytes: UInt64(compressed.count))
    }
}

/// Turns float32 tensors into the protocol's weight stream: convert to the dtype, optionally shuffle, then LZ4.
public enum WeightStreamEncoder {
    /// The default chunk size, in bytes (1 MiB).
    public static let defaultChunkBytes = 1 << 20

    /// The block size used unless the caller picks one. On Gaussian conv-like weights 256 KiB blocks compressed no
    /// better than 64 KiB ones (within 0.2% for every dtype) and were no faster beyond noise, while 64 KiB blocks
    /// need about a quarter of the decoder's buffer per stream, so 64 KiB it is.
    public static let defaultBlockSize = LZ4BlockSize.kb64

    /// Encodes `tensors` in order.
    ///
    /// f32 writes the IEEE bits little-endian; f16 rounds to nearest even and throws `invalidArgument` when a finite
    /// value overflows to infinity; int8 gives each output channel (first dimension, one channel for a scalar) the
    /// scale max|w| / 127 and stores round(w / scale) clamped to ±127, and throws `invalidArgument` for non-finite
    /// values. `chunkBytes` must be at least 1; each shape's product must equal its value count and every dimension
    /// must fit a u32.
    public static func encode(
        _ tensors: [WeightTensor], dtype: WeightDType, shuffle: Bool, chunkBytes: Int = defaultChunkBytes,
        blockSize: LZ4BlockSize = defaultBlockSize
    ) throws -> EncodedWeights {
        precondition(chunkBytes >= 1, "chunkBytes must be at least 1")
        var entries: [TensorEntry] = []
        entries.reserveCapacity(tensors.count)
        var total: UInt64 = 0
        for tensor in tensors {
            let shape = try checkedShape(tensor)
            let length = UInt64(tensor.values.count * dtype.byteWidth)
            entries.append(
                TensorEntry(
                    name: tensor.name, dtype: dtype, shape: shape, byteOffset: total, byteLength: length, scales: []))
            total += length
        }

        let compressor = try LZ4FrameCompressor(blockSize: blockSize, contentSize: total)
        var hasher = SHA256()
        var staged: [UInt8] = []
        for (index, tensor) in tensors.enumerated() {
            entries[index].scales = try stage(tensor, dtype: dtype, into: &staged)
            let bytes =
                shuffle && dtype.byteWidth > 1
                ? ByteShuffle.shuffled(staged, elementSize: dtype.byteWidth) : staged
            try bytes.withUnsafeBytes { raw in
                hasher.update(raw)
                try compressor.write(raw)
            }
        }
        let compressed = try compressor.finish()

        return EncodedWeights(
            dtype: dtype, shuffle: shuffle, tensors: entries, decodedBytes: total, sha256: hasher.finalize(),
            compressed: compressed, chunkBytes: chunkBytes)
    }

    /// The tensor's shape as u32s, after checking it against the value count.
    private static func checkedShape(_ tensor: WeightTensor) throws -> [UInt32] {
        var product = 1
        for dimension in tensor.shape {
            guard dimension >= 0 && dimension <= Int(UInt32.max) else {
                throw WireError(
                    .invalidArgument, field: "\(tensor.name).shape", value: "\(tensor.shape)",
                    expected: "dimensions in 0...\(UInt32.max)")
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw WireError(
                    .invalidArgument, field: "\(tensor.name).shape", value: "\(tensor.shape)",
                    expected: "a product that fits an Int")
            }
            product = next
        }
        guard product == tensor.values.count else {
            throw WireError(
                .invalidArgument, field: "\(tensor.name).values", value: "\(tensor.values.count) values",
                expected: "\(product) (the product of shape \(tensor.shape))")
        }
        return tensor.shape.map { UInt32($0) }
    }

    /// Writes the tensor's decoded-stream bytes (unshuffled) into `staged`; returns the int8 scales, else [].
    private static func stage(
        _ tensor: WeightTensor, dtype: WeightDType, into staged: inout [UInt8]
    ) throws -> [Float] {
        let count = tensor.values.count
        staged = [UInt8](repeating: 0, count: count * dtype.byteWidth)
        switch dtype {
        case .f32:
            staged.withUnsafeMutableBytes { out in
                tensor.values.withUnsafeBufferPointer { source in
                    for index in source.indices {
                        let bits = source[index].bitPattern.littleEndian
                        out.storeBytes(of: bits, toByteOffset: index * 4, as: UInt32.self)
                    }
                }
            }
            return []
        case .f16:
            var overflowIndex: Int?
            staged.withUnsafeMutableBytes { out in
                for (index, value) in tensor.values.enumerated() {
                    let half = Float16(value)
                    if value.isFinite && !half.isFinite && overflowIndex == nil {
                        overflowIndex = index
                    }
                    out.storeBytes(of: half.bitPattern.littleEndian, toByteOffset: index * 2, as: UInt16.self)
                }
            }
            if let overflowIndex {
                throw WireError(
                    .invalidArgument, field: "\(tensor.name)[\(overflowIndex)]",
                    value: "\(tensor.values[overflowIndex])", expected: "a magnitude float16 can hold (≤ 65504)")
            }
            return []
        case .int8:
            return try quantize(tensor, into: &staged)
        }
    }

    /// Symmetric per-output-channel int8 quantization into `staged` (already sized); returns the scales.
    private static func quantize(_ tensor: WeightTensor, into staged: inout [UInt8]) throws -> [Float] {
        let values = tensor.values
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw WireError(
                .invalidArgument, field: "\(tensor.name)[\(bad)]", value: "\(values[bad])",
                expected: "a finite value for int8 quantization")
        }
        let channels = tensor.shape.first ?? 1
        guard channels > 0 && !values.isEmpty else {
            return []
        }
        let perChannel = values.count / channels
        var scales = [Float](repeating: 0, count: channels)
        for channel in 0..<channels {
            let range = (channel * perChannel)..<((channel + 1) * perChannel)
            var largest: Float = 0
            for index in range {
                largest = max(largest, abs(values[index]))
            }
            let scale = largest / 127
            scales[channel] = scale
            for index in range {
                var level: Float = 0
                if scale > 0 {
                    level = min(127, max(-127, (values[index] / scale).rounded()))
                }
                staged[index] = UInt8(bitPattern: Int8(level))
            }
        }
        return scales
    }
}

/// Receives a weight stream chunk by chunk and rebuilds the float32 tensors, checking everything on the way.
///
/// Construction checks the tensor table against the header totals and refuses a decoded size above
/// `maxDecodedBytes` before allocating. `feed` decompresses each chunk as it arrives into a buffer of exactly the
/// announced decoded size: a stream that would decode to more is refused at once (`streamTooLong`), a bad block or
/// content checksum is `corruptStream`, bytes after the LZ4 end mark are `trailingBytes`. `finish` checks that the
/// frame ended, the sizes and counts match, and the SHA-256 matches, then un-shuffles and dequantizes. After any
/// error the decoder stays failed. Owns an LZ4 context: use it from one task at a time.
public final class WeightStreamDecoder {
    /// The element type of the decoded stream.
    public let dtype: WeightDType
    /// Whether each tensor's bytes are shuffled.
    public let shuffle: Bool
    /// The tensor table.
    public let tensors: [TensorEntry]
    /// The announced decoded length in bytes.
    public let decodedBytes: UInt64
    /// The announced compressed length in bytes.
    public let compressedBytes: UInt64
    /// The announced SHA-256 of the decoded stream.
    public let sha256: [UInt8]

    private let lz4: LZ4FrameDecompressor
    private var output: [UInt8]
    private var produced = 0
    private var received: UInt64 = 0
    private var chunkCount: UInt32 = 0
    private var frameDone = false
    private var hasher = SHA256()
    private var overflowScratch = [UInt8](repeating: 0, count: 64)
    private var failure: WireError?

    /// The default ceiling on the decoded size a header may announce, in bytes (2 GiB).
    public static let defaultMaxDecodedBytes: UInt64 = 1 << 31

    /// Prepares to receive the stream that `header` announces.
    public convenience init(header: SpecializeHeader, maxDecodedBytes: UInt64 = defaultMaxDecodedBytes) throws {
        try self.init(
            dtype: header.dtype, shuffle: header.shuffle, tensors: header.tensors, decodedBytes: header.decodedBytes,
            compressedBytes: header.compressedBytes, sha256: header.sha256, maxDecodedBytes: maxDecodedBytes)
    }

    /// Prepares to receive a stream with the given table and totals; throws `invalidTensorTable` if inconsistent.
    public init(
        dtype: WeightDType, shuffle: Bool, tensors: [TensorEntry], decodedBytes: UInt64, compressedBytes: UInt64,
        sha256: [UInt8], maxDecodedBytes: UInt64 = defaultMaxDecodedBytes
    ) throws {
        try Self.validate(
            dtype: dtype, tensors: tensors, decodedBytes: decodedBytes, sha256: sha256,
            maxDecodedBytes: maxDecodedBytes)
        self.dtype = dtype
        self.shuffle = shuffle
        self.tensors = tensors
        self.decodedBytes = decodedBytes
        self.compressedBytes = compressedBytes
        self.sha256 = sha256
        lz4 = try LZ4FrameDecompressor()
        output = [UInt8](repeating: 0, count: Int(decodedBytes))
    }

    /// The decoded stream (complete after a successful `finish`); what the SHA-256 covers.
    public var decodedStream: [UInt8] {
        output
    }

    /// Decompresses the next chunk; chunks must come in order, and may be split anywhere.
    public func feed(_ chunk: UnsafeRawBufferPointer) throws {
        if let failure {
            throw failure
        }
        do {
            try consume(chunk)
        } catch let error as WireError {
            failure = error
            throw error
        }
    }

    /// Decompresses the next chunk.
    public func feed(_ chunk: [UInt8]) throws {
        try chunk.withUnsafeBytes { try feed($0) }
    }

    /// Decompresses the next chunk.
    public func feed(_ chunk: ArraySlice<UInt8>) throws {
        try chunk.withUnsafeBytes { try feed($0) }
    }

    /// Checks that the stream is complete and intact, and returns the tensors in table order.
    ///
    /// `end`, when given, must report the chunk count and compressed size actually fed.
    public func finish(end: SpecializeEnd? = nil) throws -> [WeightTensor] {
        if let failure {
            throw failure
        }
        guard frameDone else {
            throw WireError(
                .truncated, field: "weight stream", value: "cut off after \(received) compressed bytes",
                expected: "an LZ4 frame with its end mark and checksum")
        }
        guard produced == output.count else {
            throw WireError(
                .truncated, field: "weight stream", value: "\(produced) decoded bytes",
                expected: "\(decodedBytes) as the header announced")
        }
        guard received == compressedBytes else {
            throw WireError(
                .countMismatch, field: "SpecializeHeader.compressedBytes", value: "\(compressedBytes)",
                expected: "\(received), the bytes received")
        }
        if let end {
            guard end.chunkCount == chunkCount, end.compressedBytes == received else {
                throw WireError(
                    .countMismatch, field: "SpecializeEnd",
                    value: "\(end.chunkCount) chunks of \(end.compressedBytes) bytes",
                    expected: "\(chunkCount) chunks of \(received) bytes as received")
            }
        }
        let digest = hasher.finalize()
        guard digest == sha256 else {
            throw WireError(
                .digestMismatch, field: "SpecializeHeader.sha256", value: hexString(sha256),
                expected: hexString(digest) + ", the SHA-256 of the decoded stream")
        }
        return tensors.map(rebuild)
    }

    private func consume(_ chunk: UnsafeRawBufferPointer) throws {
        chunkCount &+= 1
        received += UInt64(chunk.count)
        guard received <= compressedBytes else {
            throw WireError(
                .countMismatch, field: "weight stream", value: "\(received) compressed bytes so far",
                expected: "at most \(compressedBytes) as the header announced")
        }
        let start = produced
        var offset = 0
        while offset < chunk.count {
            guard !frameDone else {
                throw WireError(
                    .trailingBytes, field: "weight stream", value: "\(chunk.count - offset) bytes after the end mark",
                    expected: "the stream to end with the LZ4 frame")
            }
            let rest = UnsafeRawBufferPointer(rebasing: chunk[offset...])
            let step = try decompress(rest)
            guard step.consumed > 0 || step.produced > 0 || step.frameDone else {
                throw WireError(
                    .corruptStream, field: "weight stream", value: "no progress at compressed byte \(received)",
                    expected: "LZ4 to consume or produce bytes")
            }
            offset += step.consumed
            produced += step.produced
            frameDone = step.frameDone
        }
        output.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<produced])) }
    }

    /// One LZ4 step into the unfilled part of `output`, or, once it is full, into a scratch buffer whose only
    /// purpose is to notice that the frame holds more bytes than announced.
    private func decompress(
        _ source: UnsafeRawBufferPointer
    ) throws -> (consumed: Int, produced: Int, frameDone: Bool) {
        if produced < output.count {
            let filled = produced
            return try output.withUnsafeMutableBytes { raw in
                try lz4.step(source, into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
            }
        }
        let step = try overflowScratch.withUnsafeMutableBytes { try lz4.step(source, into: $0) }
        guard step.produced == 0 else {
            throw WireError(
                .streamTooLong, field: "weight stream", value: "more than \(decodedBytes) decoded bytes",
                expected: "exactly \(decodedBytes) as the header announced")
        }
        return step
    }

    /// The float32 tensor of `entry`, un-shuffled and dequantized from the decoded stream.
    private func rebuild(_ entry: TensorEntry) -> WeightTensor {
        let start = Int(entry.byteOffset)
        let width = dtype.byteWidth
        var bytes = Array(output[start..<(start + Int(entry.byteLength))])
        if shuffle && width > 1 {
            bytes = ByteShuffle.unshuffled(bytes, elementSize: width)
        }
        let count = bytes.count / width
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            switch dtype {
            case .f32:
                for index in 0..<count {
                    let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                    values[index] = Float(bitPattern: bits)
                }
            case .f16:
                for index in 0..<count {
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
                    values[index] = Float(Float16(bitPattern: bits))
                }
            case .int8:
                let perChannel = entry.scales.isEmpty ? 0 : count / entry.scales.count
                for index in 0..<count {
                    let level = Int8(bitPattern: raw[index])
                    values[index] = Float(level) * entry.scales[index / perChannel]
                }
            }
        }
        return WeightTensor(name: entry.name, shape: entry.shape.map { Int($0) }, values: values)
    }

    /// Checks that the table lays its tensors back to back from offset 0 to `decodedBytes`, with the right lengths,
    /// dtypes and scales, unique names, and that the totals are within bounds.
    static func validate(
        dtype: WeightDType, tensors: [TensorEntry], decodedBytes: UInt64, sha256: [UInt8], maxDecodedBytes: UInt64
    ) throws {
        guard decodedBytes <= maxDecodedBytes else {
            throw WireError(
                .invalidTensorTable, field: "SpecializeHeader.decodedBytes", value: "\(decodedBytes)",
                expected: "at most \(maxDecodedBytes)")
        }
        guard sha256.count == 32 else {
            throw WireError(
                .invalidTensorTable, field: "SpecializeHeader.sha256", value: "\(sha256.count) bytes",
                expected: "32 bytes")
        }
        var names: Set<String> = []
        var next: UInt64 = 0
        for entry in tensors {
            let field = "tensor \"\(entry.name)\""
            guard names.insert(entry.name).inserted else {
                throw WireError(.invalidTensorTable, field: field, value: "listed twice", expected: "unique names")
            }
            guard entry.dtype == dtype else {
                throw WireError(
                    .invalidTensorTable, field: field + " dtype", value: "\(entry.dtype)", expected: "\(dtype)")
            }
            var count: UInt64 = 1
            for dimension in entry.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: UInt64(dimension))
                guard !overflow && product <= maxDecodedBytes else {
                    throw WireError(
                        .invalidTensorTable, field: field + " shape", value: "\(entry.shape)",
                        expected: "at most \(maxDecodedBytes) elements")
                }
                count = product
            }
            guard entry.byteLength == count * UInt64(dtype.byteWidth) else {
                throw WireError(
                    .invalidTensorTable, field: field + " byteLength", value: "\(entry.byteLength)",
                    expected: "\(count * UInt64(dtype.byteWidth)) (elements × \(dtype.byteWidth))")
            }
            guard entry.byteOffset == next else {
                throw WireError(
                    .invalidTensorTable, field: field + " byteOffset", value: "\(entry.byteOffset)",
                    expected: "\(next), right after the previous tensor")
            }
            let channels = dtype == .int8 && count > 0 ? Int(entry.shape.first ?? 1) : 0
            guard entry.scales.count == channels else {
                throw WireError(
                    .invalidTensorTable, field: field + " scales", value: "\(entry.scales.count) scales",
                    expected: "\(channels) (one per output channel for int8, none otherwise)")
            }
            guard entry.scales.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw WireError(
                    .invalidTensorTable, field: field + " scales", value: "\(entry.scales)",
                    expected: "finite, non-negative scales")
            }
            next += entry.byteLength
            guard next <= decodedBytes else {
                throw WireError(
                    .invalidTensorTable, field: field, value: "ending at byte \(next)",
                    expected: "at most \(decodedBytes), the decoded total")
            }
        }
        guard next == decodedBytes else {
            throw WireError(
                .invalidTensorTable, field: "SpecializeHeader.decodedBytes", value: "\(decodedBytes)",
                expected: "\(next), the sum of the tensor lengths")
        }
    }
}
