import CLZ4

/// The largest uncompressed block of an LZ4 frame; larger blocks find longer matches but buffer more.
public enum LZ4BlockSize: Sendable, CaseIterable {
    /// 64 KiB blocks.
    case kb64
    /// 256 KiB blocks.
    case kb256

    /// The block size in bytes.
    public var byteCount: Int {
        switch self {
        case .kb64: 65_536
        case .kb256: 262_144
        }
    }

    var identifier: LZ4F_blockSizeID_t {
        switch self {
        case .kb64: LZ4F_max64KB
        case .kb256: LZ4F_max256KB
        }
    }
}

/// Compresses one LZ4 frame (content checksum on, block checksums off, linked blocks) into a growing byte array.
///
/// Owns an `LZ4F_cctx`; not safe to share between tasks.
/// TODO: the compression level is fixed at LZ4's fast default (0); there is no way to ask for LZ4-HC, which would
/// trade encode speed for a slightly smaller stream on cached subnets.
final class LZ4FrameCompressor {
    private var context: OpaquePointer?
    private var preferences = LZ4F_preferences_t()
    private var scratch: [UInt8]
    private let step: Int
    /// The frame bytes produced so far.
    private(set) var output: [UInt8] = []

    /// Starts a frame of `contentSize` bytes (written into the frame header so the decoder can check it).
    init(blockSize: LZ4BlockSize, contentSize: UInt64) throws {
        let status = LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))
        try Self.check(status, "LZ4F_createCompressionContext")
        preferences.frameInfo.blockSizeID = blockSize.identifier
        preferences.frameInfo.blockMode = LZ4F_blockLinked
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum
        preferences.frameInfo.contentSize = contentSize
        step = blockSize.byteCount
        let bound = max(LZ4F_compressBound(step, &preferences), LZ4F_compressBound(0, &preferences))
        scratch = [UInt8](repeating: 0, count: max(bound, 64))
        let written = scratch.withUnsafeMutableBytes { dst in
            LZ4F_compressBegin(context, dst.baseAddress, dst.count, &preferences)
        }
        try Self.check(written, "LZ4F_compressBegin")
        output.append(contentsOf: scratch[0..<written])
    }

    deinit {
        LZ4F_freeCompressionContext(context)
    }

    /// Compresses `source`, at most one block at a time so the scratch buffer stays small.
    func write(_ source: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < source.count {
            let take = min(step, source.count - offset)
            let written = scratch.withUnsafeMutableBytes { dst in
                LZ4F_compressUpdate(context, dst.baseAddress, dst.count, source.baseAddress! + offset, take, nil)
            }
            try Self.check(written, "LZ4F_compressUpdate")
            output.append(contentsOf: scratch[0..<written])
            offset += take
        }
    }

    /// Flushes the last block and writes the end mark and content checksum; returns the whole frame.
    func finish() throws -> [UInt8] {
        let written = scratch.withUnsafeMutableBytes { dst in
            LZ4F_compressEnd(context, dst.baseAddress, dst.count, nil)
        }
        try Self.check(written, "LZ4F_compressEnd")
        output.append(contentsOf: scratch[0..<written])
        return output
    }

    private static func check(_ status: Int, _ call: String) throws {
        if LZ4F_isError(status) != 0 {
            throw WireError(
                .compressionFailed, field: call, value: String(cString: LZ4F_getErrorName(status)),
                expected: "success")
        }
    }
}

/// Decompresses one LZ4 frame incrementally. Owns an `LZ4F_dctx`; not safe to share between tasks.
final class LZ4FrameDecompressor {
    private var context: OpaquePointer?

    /// Creates a decompression context.
    init() throws {
        let status = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        if LZ4F_isError(status) != 0 {
            throw WireError(
                .compressionFailed, field: "LZ4F_createDecompressionContext",
                value: String(cString: LZ4F_getErrorName(status)), expected: "success")
        }
    }

    deinit {
        LZ4F_freeDecompressionContext(context)
    }

    /// One `LZ4F_decompress` step: how much of `source` it consumed, how much it wrote to `destination`, and
    /// whether the frame is complete. Throws `corruptStream` with LZ4's reason when the input is bad.
    func step(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) throws -> (consumed: Int, produced: Int, frameDone: Bool) {
        var sourceSize = source.count
        var destinationSize = destination.count
        let hint = LZ4F_decompress(
            context, destination.baseAddress, &destinationSize, source.baseAddress, &sourceSize, nil)
        if LZ4F_isError(hint) != 0 {
            throw WireError(
                .corruptStream, field: "weight stream", value: String(cString: LZ4F_getErrorName(hint)),
                expected: "a valid LZ4 frame")
        }
        return (sourceSize, destinationSize, hint == 0)
    }
}
