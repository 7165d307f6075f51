import Digest

/// Bits of the u16 `flags` field of a frame header.
public struct FrameFlags: OptionSet, Sendable, Hashable {
    /// The raw u16 as carried in the header.
    public let rawValue: UInt16

    /// Wraps a raw flags value.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// Bit 0: more frames follow for this request (the reply is not finished yet).
    public static let moreFollows = FrameFlags(rawValue: 1)

    /// Every bit a version-1 peer may set; the others are reserved and must be zero.
    public static let known: FrameFlags = [.moreFollows]
}

/// The fixed 16-byte header in front of every frame's payload.
///
/// Layout, little-endian: magic "SNRP" (4 bytes), version (u8), kind (u8), flags (u16), request id (u32), payload
/// length (u32).
public struct FrameHeader: Sendable, Hashable {
    /// The header size in bytes.
    public static let byteCount = 16
    /// The four bytes every frame starts with: ASCII "SNRP".
    public static let magic: [UInt8] = [0x53, 0x4E, 0x52, 0x50]
    /// The framing version this build writes and the only one it reads.
    public static let currentVersion: UInt8 = 1
    /// The default largest payload a connection accepts, in bytes (16 MiB).
    public static let defaultMaxFrameBytes = 16 * 1024 * 1024

    /// The framing version (1).
    public var version: UInt8
    /// What the payload holds.
    public var kind: MessageKind
    /// Per-frame flags; only `moreFollows` is defined.
    public var flags: FrameFlags
    /// The request this frame belongs to, chosen by the client; 0 means the connection itself.
    public var requestID: UInt32
    /// The payload size in bytes.
    public var payloadLength: UInt32

    /// Creates a header for a version-1 frame.
    public init(kind: MessageKind, requestID: UInt32, flags: FrameFlags = [], payloadLength: UInt32) {
        version = Self.currentVersion
        self.kind = kind
        self.flags = flags
        self.requestID = requestID
        self.payloadLength = payloadLength
    }

    /// Parses and checks the first 16 bytes of `raw` (which must hold at least 16).
    ///
    /// Checks, in order: magic, version, kind, reserved flags, and `payloadLength <= maxFrameBytes`. Nothing past the
    /// header is looked at, so an oversize frame is refused before its payload is read or allocated.
    public static func parse(_ raw: UnsafeRawBufferPointer, maxFrameBytes: Int) throws -> FrameHeader {
        precondition(raw.count >= byteCount, "a frame header needs 16 bytes")
        let magicBytes = Array(raw[0..<4])
        guard magicBytes == magic else {
            throw WireError(
                .badMagic, field: "frame.magic", value: "0x" + hexString(magicBytes), expected: "0x534e5250 (\"SNRP\")")
        }
        let version = raw[4]
        guard version == currentVersion else {
            throw WireError(.unsupportedVersion, field: "frame.version", value: "\(version)", expected: "1")
        }
        let kindCode = raw[5]
        guard let kind = MessageKind(rawValue: kindCode) else {
            throw WireError(.unknownKind, field: "frame.kind", value: "\(kindCode)", expected: "a catalogue kind code")
        }
        let flags = FrameFlags(rawValue: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
        guard FrameFlags.known.isSuperset(of: flags) else {
            throw WireError(
                .reservedFlags, field: "frame.flags", value: "0x" + String(flags.rawValue, radix: 16),
                expected: "only bit 0 set or clear")
        }
        let requestID = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let length = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard UInt64(length) <= UInt64(max(0, maxFrameBytes)) else {
            throw WireError(
                .frameTooLarge, field: "frame.length", value: "\(length)", expected: "at most \(maxFrameBytes)")
        }
        return FrameHeader(kind: kind, requestID: requestID, flags: flags, payloadLength: length)
    }

    /// Appends the 16 header bytes to `writer`.
    public func write(to writer: inout WireWriter) {
        writer.writeRaw(Self.magic)
        writer.writeU8(version)
        writer.writeU8(kind.rawValue)
        writer.writeU16(flags.rawValue)
        writer.writeU32(requestID)
        writer.writeU32(payloadLength)
    }
}

/// One complete frame: its header and its payload bytes.
public struct Frame: Sendable, Hashable {
    /// The checked header; `header.payloadLength == payload.count`.
    public var header: FrameHeader
    /// The payload, exactly `header.payloadLength` bytes.
    public var payload: [UInt8]

    /// Creates a frame whose header length is taken from `payload`.
    public init(kind: MessageKind, requestID: UInt32, flags: FrameFlags = [], payload: [UInt8]) {
        precondition(payload.count <= Int(UInt32.max), "a frame payload is at most 2^32 - 1 bytes")
        header = FrameHeader(kind: kind, requestID: requestID, flags: flags, payloadLength: UInt32(payload.count))
        self.payload = payload
    }

    /// The message kind of the payload.
    public var kind: MessageKind {
        header.kind
    }

    /// The request id, 0 for connection-level frames.
    public var requestID: UInt32 {
        header.requestID
    }

    /// Whether more frames follow for this request.
    public var moreFollows: Bool {
        header.flags.contains(.moreFollows)
    }
}

/// Reassembles frames from bytes as they arrive from a socket, split anywhere.
///
/// Feed bytes with `append`, then call `nextFrame()` until it returns nil. The header is checked as soon as its 16
/// bytes are in, before the payload has arrived, so a bad magic, version, kind, flags or an oversize length is
/// reported without buffering or allocating the payload. After an error the decoder stays failed: every later call
/// throws the same error, and the connection should be closed.
public struct FrameDecoder: Sendable {
    /// The largest payload accepted, in bytes.
    public let maxFrameBytes: Int
    /// Received bytes live in storage[start..<end]; storage[end...] is room for the next receive.
    private var storage: [UInt8] = []
    private var start = 0
    private var end = 0
    private var header: FrameHeader?
    private var failure: WireError?

    /// Creates a decoder that refuses payloads above `maxFrameBytes` (default 16 MiB).
    public init(maxFrameBytes: Int = FrameHeader.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// Bytes received but not yet returned as part of a frame.
    public var bufferedByteCount: Int {
        end - start
    }

    /// Adds bytes received from the peer.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        storage.withUnsafeMutableBytes { raw in
            UnsafeMutableRawBufferPointer(rebasing: raw[end..<(end + bytes.count)]).copyMemory(from: bytes)
        }
        end += bytes.count
    }

    /// Adds bytes received from the peer.
    public mutating func append(_ bytes: some Collection<UInt8>) {
        Array(bytes).withUnsafeBytes { append($0) }
    }

    /// Lets `fill` write up to `atMost` received bytes straight into the buffer (e.g. a `recv` call, saving a
    /// copy) and keeps the count it returns; a negative count (an error) adds nothing and is passed back.
    public mutating func receive(atMost: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> Int {
        reserve(atMost)
        let count = try storage.withUnsafeMutableBytes { raw in
            try fill(UnsafeMutableRawBufferPointer(rebasing: raw[end..<(end + atMost)]))
        }
        if count > 0 {
            end += min(count, atMost)
        }
        return count
    }

    /// The next complete frame, nil when more bytes are needed; throws `WireError` for a malformed header.
    public mutating func nextFrame() throws -> Frame? {
        try nextFrame { header, payload in
            Frame(kind: header.kind, requestID: header.requestID, flags: header.flags, payload: Array(payload))
        }
    }

    /// Like `nextFrame()`, but lends the payload in place to `body` instead of copying it out (valid only inside
    /// `body`): nil when more bytes are needed.
    public mutating func nextFrame<R>(
        _ body: (FrameHeader, UnsafeRawBufferPointer) throws -> R
    ) throws -> R? {
        if let failure {
            throw failure
        }
        if header == nil {
            guard bufferedByteCount >= FrameHeader.byteCount else {
                return nil
            }
            do {
                header = try storage.withUnsafeBytes { raw in
                    try FrameHeader.parse(
                        UnsafeRawBufferPointer(rebasing: raw[start..<end]), maxFrameBytes: maxFrameBytes)
                }
            } catch let error as WireError {
                failure = error
                throw error
            }
            start += FrameHeader.byteCount
        }
        guard let header, bufferedByteCount >= Int(header.payloadLength) else {
            return nil
        }
        let payloadEnd = start + Int(header.payloadLength)
        let payloadStart = start
        start = payloadEnd
        self.header = nil
        return try storage.withUnsafeBytes { raw in
            try body(header, UnsafeRawBufferPointer(rebasing: raw[payloadStart..<payloadEnd]))
        }
    }

    /// Call when the peer closed its side: throws `truncated` if part of a frame is still buffered.
    public func finish() throws {
        if let failure {
            throw failure
        }
        if let header {
            throw WireError(
                .truncated, field: "frame.payload", value: "\(bufferedByteCount) of \(header.payloadLength) bytes",
                expected: "the whole payload before the connection closed")
        }
        guard bufferedByteCount == 0 else {
            throw WireError(
                .truncated, field: "frame.header", value: "\(bufferedByteCount) of 16 bytes",
                expected: "the whole header before the connection closed")
        }
    }

    /// Makes room for `count` more bytes after `end`: moves the unconsumed bytes to the front when that frees
    /// enough (or when nothing is left), grows the storage otherwise. Appends stay amortised O(1).
    private mutating func reserve(_ count: Int) {
        if start == end {
            start = 0
            end = 0
        } else if storage.count - end < count && start > 0 {
            let live = end - start
            storage.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: live)
            }
            start = 0
            end = live
        }
        if storage.count - end < count {
            storage.append(contentsOf: repeatElement(0, count: max(end + count, 2 * storage.count) - storage.count))
        }
    }
}

/// Writes frames, header and payload, into one reusable byte buffer ready for a socket write.
///
/// Append any number of frames, send `bytes`, then `removeAll()` to reuse the storage. A frame whose payload would
/// exceed `maxFrameBytes` throws `frameTooLarge` and leaves the buffer as it was.
public struct FrameEncoder: Sendable {
    /// The largest payload this encoder writes, in bytes (the peer's limit from the hello exchange).
    public let maxFrameBytes: Int
    private var writer: WireWriter

    /// Creates an encoder with room for `capacity` bytes before the buffer grows.
    public init(maxFrameBytes: Int = FrameHeader.defaultMaxFrameBytes, capacity: Int = 4096) {
        self.maxFrameBytes = maxFrameBytes
        writer = WireWriter(capacity: capacity)
    }

    /// The frames written since the last `removeAll()`, back to back.
    public var bytes: [UInt8] {
        writer.bytes
    }

    /// Forgets the written frames but keeps the storage.
    public mutating func removeAll() {
        writer.removeAll()
    }

    /// Appends one frame carrying `message`.
    public mutating func append<M: WireMessage>(_ message: M, requestID: UInt32, moreFollows: Bool = false) throws {
        let start = writer.count
        FrameHeader(kind: M.kind, requestID: requestID, flags: moreFollows ? .moreFollows : [], payloadLength: 0)
            .write(to: &writer)
        do {
            try message.encode(to: &writer)
        } catch {
            writer.truncate(to: start)
            throw error
        }
        let length = writer.count - start - FrameHeader.byteCount
        guard length <= maxFrameBytes else {
            writer.truncate(to: start)
            throw WireError(
                .frameTooLarge, field: "\(M.self) payload", value: "\(length) bytes",
                expected: "at most \(maxFrameBytes)")
        }
        writer.patchU32(UInt32(length), at: start + 12)
    }

    /// Appends one frame whose payload is `payload` as is (used for weight chunks, which are raw bytes).
    public mutating func appendRaw(
        kind: MessageKind, requestID: UInt32, moreFollows: Bool, payload: UnsafeRawBufferPointer
    ) throws {
        guard payload.count <= maxFrameBytes else {
            throw WireError(
                .frameTooLarge, field: "\(kind) payload", value: "\(payload.count) bytes",
                expected: "at most \(maxFrameBytes)")
        }
        FrameHeader(
            kind: kind, requestID: requestID, flags: moreFollows ? .moreFollows : [],
            payloadLength: UInt32(payload.count)
        ).write(to: &writer)
        writer.writeRaw(payload)
    }
}
