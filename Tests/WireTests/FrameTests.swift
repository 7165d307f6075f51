import Wire
import XCTest

final class FrameTests: XCTestCase {
    // MARK: Golden bytes (the worked examples in PROTOCOL.md)

    func testPingFrameBytesMatchTheProtocolDocument() throws {
        var encoder = FrameEncoder()
        try encoder.append(Ping(echo: 0x0102_0304_0506_0708), requestID: 7)

        XCTAssertEqual(
            spacedHex(encoder.bytes),
            "53 4e 52 50 01 03 00 00 07 00 00 00 08 00 00 00 08 07 06 05 04 03 02 01")
        encoder.removeAll()
        try encoder.append(Pong(echo: 0x0102_0304_0506_0708), requestID: 7)
        XCTAssertEqual(
            spacedHex(encoder.bytes),
            "53 4e 52 50 01 04 00 00 07 00 00 00 08 00 00 00 08 07 06 05 04 03 02 01")
    }

    func testHelloFrameBytesMatchTheProtocolDocument() throws {
        var encoder = FrameEncoder()
        try encoder.append(Hello(versions: [1], clientName: "demo"), requestID: 0)

        XCTAssertEqual(
            spacedHex(encoder.bytes),
            "53 4e 52 50 01 01 00 00 00 00 00 00 0e 00 00 00 01 00 00 00 01 00 04 00 00 00 64 65 6d 6f")
    }

    func testHeaderFieldsAndMoreFollowsFlag() throws {
        var encoder = FrameEncoder()
        try encoder.append(SpecializeEnd(chunkCount: 3, compressedBytes: 99), requestID: 0xA1B2_C3D4, moreFollows: true)

        XCTAssertEqual(
            Array(encoder.bytes[0..<16]), rawHeader(kind: 0x23, flags: 1, requestID: 0xA1B2_C3D4, length: 12))
        var decoder = FrameDecoder()
        decoder.append(encoder.bytes)
        let frame = try XCTUnwrap(decoder.nextFrame())
        XCTAssertEqual(frame.kind, .specializeEnd)
        XCTAssertEqual(frame.requestID, 0xA1B2_C3D4)
        XCTAssertTrue(frame.moreFollows)
        XCTAssertEqual(try SpecializeEnd(frame: frame), SpecializeEnd(chunkCount: 3, compressedBytes: 99))
    }

    // MARK: Splitting

    /// Frames of several kinds and sizes, including an empty payload and a large raw chunk.
    private func sampleStream() throws -> (bytes: [UInt8], frames: [Frame]) {
        var encoder = FrameEncoder()
        try encoder.append(Hello(versions: [1, 2], clientName: "split-test"), requestID: 0)
        try encoder.append(Ping(echo: 42), requestID: 1)
        try encoder.append(ListModels(), requestID: 2)
        try encoder.append(
            Specialize(model: "m", target: "t", budgets: [Budget(.macs, 1e6)], dtype: .f16), requestID: 3)
        let chunk = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try chunk.withUnsafeBytes {
            try encoder.appendRaw(kind: .weightChunk, requestID: 3, moreFollows: true, payload: $0)
        }
        try encoder.append(ErrorReply(code: .cancelled, message: "cancelled"), requestID: 3)
        let frames = [
            Frame(
                kind: .hello, requestID: 0,
                payload: try Hello(versions: [1, 2], clientName: "split-test")
                    .encodedPayload()),
            Frame(kind: .ping, requestID: 1, payload: try Ping(echo: 42).encodedPayload()),
            Frame(kind: .listModels, requestID: 2, payload: []),
            Frame(
                kind: .specialize, requestID: 3,
                payload: try Specialize(model: "m", target: "t", budgets: [Budget(.macs, 1e6)], dtype: .f16)
                    .encodedPayload()),
            Frame(kind: .weightChunk, requestID: 3, flags: .moreFollows, payload: chunk),
            Frame(
                kind: .error, requestID: 3,
                payload: try ErrorReply(code: .cancelled, message: "cancelled").encodedPayload()),
        ]
        return (encoder.bytes, frames)
    }

    /// Feeds `bytes` cut at `cuts` (sorted offsets) and collects every frame.
    private func decode(_ bytes: [UInt8], cuts: [Int]) throws -> [Frame] {
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        var start = 0
        for end in cuts + [bytes.count] {
            decoder.append(bytes[start..<end])
            start = end
            while let frame = try decoder.nextFrame() {
                frames.append(frame)
            }
        }
        try decoder.finish()
        return frames
    }

    func testWholeStreamAtOnce() throws {
        let (bytes, frames) = try sampleStream()

        XCTAssertEqual(try decode(bytes, cuts: []), frames)
    }

    func testByteByByte() throws {
        let (bytes, frames) = try sampleStream()

        XCTAssertEqual(try decode(bytes, cuts: Array(1..<bytes.count)), frames)
    }

    func testEverySingleSplitPoint() throws {
        let (bytes, frames) = try sampleStream()

        for cut in 0...bytes.count {
            XCTAssertEqual(try decode(bytes, cuts: [cut]), frames, "cut at \(cut)")
        }
    }

    func testEveryPairOfSplitPointsInTheFirstFrames() throws {
        let (bytes, frames) = try sampleStream()
        let span = 80

        for first in 0...span {
            for second in first...span {
                XCTAssertEqual(try decode(bytes, cuts: [first, second]), frames, "cuts at \(first), \(second)")
            }
        }
    }

    func testRandomSplits() throws {
        let (bytes, frames) = try sampleStream()
        var generator = SeededGenerator(seed: 11)

        for _ in 0..<300 {
            let pieces = Int.random(in: 1...20, using: &generator)
            let cuts = (0..<pieces).map { _ in Int.random(in: 0...bytes.count, using: &generator) }.sorted()
            XCTAssertEqual(try decode(bytes, cuts: cuts), frames, "cuts \(cuts)")
        }
    }

    // MARK: Bad headers

    /// Feeds `bytes` in one piece and expects `code` from `nextFrame`.
    @discardableResult
    private func assertRejected(
        _ bytes: [UInt8], _ code: WireError.Code, maxFrameBytes: Int = FrameHeader.defaultMaxFrameBytes,
        file: StaticString = #filePath, line: UInt = #line
    ) -> WireError? {
        var decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        decoder.append(bytes)
        return assertWireError(code, file: file, line: line) {
            while try decoder.nextFrame() != nil {}
        }
    }

    func testWrongMagic() {
        let header = rawHeader(magic: Array("SNRX".utf8), kind: 3, length: 8)
        let error = assertRejected(header + [UInt8](repeating: 0, count: 8), .badMagic)

        XCTAssertEqual(error?.field, "frame.magic")
        XCTAssertEqual(error?.value, "0x534e5258")
    }

    func testUnknownVersion() {
        let error = assertRejected(rawHeader(version: 2, kind: 3, length: 0), .unsupportedVersion)

        XCTAssertEqual(error?.field, "frame.version")
        XCTAssertEqual(error?.value, "2")
        XCTAssertEqual(error?.protocolCode, .unsupportedVersion)
    }

    func testUnknownKind() {
        for kind: UInt8 in [0, 0x08, 0x24, 0x35, 0xFF] {
            let error = assertRejected(rawHeader(kind: kind, length: 0), .unknownKind)
            XCTAssertEqual(error?.value, "\(kind)")
        }
    }

    func testReservedFlags() {
        assertRejected(rawHeader(kind: 3, flags: 2, length: 0), .reservedFlags)
    }

    func testOversizeLengthIsRefusedFromTheHeaderAlone() {
        let error = assertRejected(rawHeader(kind: 0x22, length: 1025), .frameTooLarge, maxFrameBytes: 1024)

        XCTAssertEqual(error?.field, "frame.length")
        XCTAssertEqual(error?.value, "1025")
        assertRejected(rawHeader(kind: 0x22, length: UInt32.max), .frameTooLarge)
    }

    func testLengthAtTheLimitIsAccepted() throws {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        decoder.append(rawHeader(kind: 0x22, length: 1024))

        XCTAssertNil(try decoder.nextFrame())
        decoder.append([UInt8](repeating: 5, count: 1024))
        XCTAssertEqual(try decoder.nextFrame()?.payload.count, 1024)
    }

    func testHeaderErrorComesBeforeThePayloadArrives() {
        var decoder = FrameDecoder()
        decoder.append(try! FrameEncoderHelper.ping())
        decoder.append(rawHeader(kind: 0x99, length: 100))

        XCTAssertNotNil(try? decoder.nextFrame())
        assertWireError(.unknownKind) { _ = try decoder.nextFrame() }
    }

    func testDecoderStaysFailed() {
        var decoder = FrameDecoder()
        decoder.append(rawHeader(magic: [0, 0, 0, 0], kind: 3, length: 0))
        assertWireError(.badMagic) { _ = try decoder.nextFrame() }
        decoder.append(try! FrameEncoderHelper.ping())

        assertWireError(.badMagic) { _ = try decoder.nextFrame() }
        assertWireError(.badMagic) { try decoder.finish() }
    }

    func testBadHeaderFoundInEverySplitPattern() throws {
        let good = try FrameEncoderHelper.ping()
        let bytes = good + rawHeader(version: 9, kind: 3, length: 8) + [UInt8](repeating: 0, count: 8)

        for cut in 0...bytes.count {
            var decoder = FrameDecoder()
            var frames = 0
            var failure: WireError?
            for piece in [bytes[0..<cut], bytes[cut...]] {
                decoder.append(piece)
                do {
                    while try decoder.nextFrame() != nil {
                        frames += 1
                    }
                } catch let error as WireError {
                    failure = error
                    break
                }
            }
            XCTAssertEqual(frames, 1, "cut at \(cut)")
            XCTAssertEqual(failure?.code, .unsupportedVersion, "cut at \(cut)")
        }
    }

    func testTruncatedPayloadAtEndOfStream() throws {
        var decoder = FrameDecoder()
        let frame = try FrameEncoderHelper.ping()
        decoder.append(frame.dropLast(3))

        XCTAssertNil(try decoder.nextFrame())
        let error = assertWireError(.truncated) { try decoder.finish() }
        XCTAssertEqual(error?.field, "frame.payload")
    }

    func testTruncatedHeaderAtEndOfStream() {
        var decoder = FrameDecoder()
        decoder.append([0x53, 0x4E, 0x52])

        XCTAssertNil(try decoder.nextFrame())
        assertWireError(.truncated) { try decoder.finish() }
    }

    // MARK: Encoder

    func testEncoderRefusesOversizeFrameAndKeepsEarlierFrames() throws {
        var encoder = FrameEncoder(maxFrameBytes: 64)
        try encoder.append(Ping(echo: 1), requestID: 1)
        let before = encoder.bytes

        assertWireError(.frameTooLarge) {
            let long = ErrorReply(code: .internalError, message: String(repeating: "e", count: 100))
            try encoder.append(long, requestID: 2)
        }
        XCTAssertEqual(encoder.bytes, before)
        assertWireError(.frameTooLarge) {
            try [UInt8](repeating: 0, count: 65).withUnsafeBytes {
                try encoder.appendRaw(kind: .weightChunk, requestID: 2, moreFollows: true, payload: $0)
            }
        }
        XCTAssertEqual(encoder.bytes, before)
    }

    func testEncoderBufferIsReusable() throws {
        var encoder = FrameEncoder()
        try encoder.append(Ping(echo: 1), requestID: 1)
        encoder.removeAll()
        try encoder.append(Pong(echo: 2), requestID: 1)

        var decoder = FrameDecoder()
        decoder.append(encoder.bytes)
        XCTAssertEqual(try decoder.nextFrame()?.kind, .pong)
        XCTAssertNil(try decoder.nextFrame())
    }
}

/// Small encoded frames used by several tests.
enum FrameEncoderHelper {
    static func ping() throws -> [UInt8] {
        var encoder = FrameEncoder()
        try encoder.append(Ping(echo: 5), requestID: 1)
        return encoder.bytes
    }
}
