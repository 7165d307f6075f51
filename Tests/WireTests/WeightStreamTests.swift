import Digest
import Wire
import XCTest

final class WeightStreamTests: XCTestCase {
    /// Decodes `encoded` fed in the given chunks, checking the end message too.
    private func decode(_ encoded: EncodedWeights, chunks: [ArraySlice<UInt8>]? = nil) throws -> [WeightTensor] {
        let decoder = try WeightStreamDecoder(
            dtype: encoded.dtype, shuffle: encoded.shuffle, tensors: encoded.tensors,
            decodedBytes: encoded.decodedBytes, compressedBytes: UInt64(encoded.compressed.count),
            sha256: encoded.sha256)
        let pieces = chunks ?? encoded.chunks
        for piece in pieces {
            try decoder.feed(piece)
        }
        let end = SpecializeEnd(chunkCount: UInt32(pieces.count), compressedBytes: UInt64(encoded.compressed.count))
        return try decoder.finish(end: end)
    }

    /// Asserts that every value is back within the dtype's precision.
    private func assertClose(
        _ decoded: [WeightTensor], _ original: [WeightTensor], _ encoded: EncodedWeights,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(decoded.map(\.name), original.map(\.name), file: file, line: line)
        XCTAssertEqual(decoded.map(\.shape), original.map(\.shape), file: file, line: line)
        for (index, (got, want)) in zip(decoded, original).enumerated() {
            XCTAssertEqual(got.values.count, want.values.count, file: file, line: line)
            let channels = want.shape.first ?? 1
            let perChannel = channels == 0 ? 0 : want.values.count / channels
            for (element, (value, expected)) in zip(got.values, want.values).enumerated() {
                switch encoded.dtype {
                case .f32:
                    XCTAssertEqual(value.bitPattern, expected.bitPattern, file: file, line: line)
                case .f16:
                    XCTAssertEqual(value, Float(Float16(expected)), file: file, line: line)
                    XCTAssertLessThanOrEqual(abs(value - expected), abs(expected) / 2048 + 6e-8, file: file, line: line)
                case .int8:
                    let scale = encoded.tensors[index].scales[element / perChannel]
                    XCTAssertLessThanOrEqual(
                        abs(value - expected), scale / 2 * 1.0001 + 1e-12, "\(got.name)[\(element)]",
                        file: file, line: line)
                }
            }
        }
    }

    func testRoundTripForEveryDTypeAndShuffle() throws {
        let tensors = sampleTensors(seed: 1)

        for dtype in WeightDType.allCases {
            for shuffle in [false, true] {
                let encoded = try WeightStreamEncoder.encode(tensors, dtype: dtype, shuffle: shuffle)
                let decoded = try decode(encoded)
                assertClose(decoded, tensors, encoded)
            }
        }
    }

    func testInt8ChannelsAndRounding() throws {
        let tensor = WeightTensor(name: "w", shape: [3, 3], values: [127, -63.5, 0.4, 0, 0, 0, -2, 1.02, 0.5])

        let encoded = try WeightStreamEncoder.encode([tensor], dtype: .int8, shuffle: false)
        XCTAssertEqual(encoded.tensors[0].scales, [1, 0, 2 / Float(127)])
        let decoder = try WeightStreamDecoder(
            dtype: .int8, shuffle: false, tensors: encoded.tensors, decodedBytes: 9,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
        try decoder.feed(encoded.compressed)
        let values = try decoder.finish()[0].values
        XCTAssertEqual(decoder.decodedStream.map { Int8(bitPattern: $0) }, [127, -64, 0, 0, 0, 0, -127, 65, 32])
        XCTAssertEqual(values[0], 127)
        XCTAssertEqual(values[3...5], [0, 0, 0])
    }

    func testScalarTensorHasOneChannel() throws {
        let encoded = try WeightStreamEncoder.encode(
            [WeightTensor(name: "gain", shape: [], values: [-3.5])], dtype: .int8, shuffle: true)

        XCTAssertEqual(encoded.tensors[0].scales, [3.5 / 127])
        XCTAssertEqual(try decode(encoded)[0].values, [-3.5])
    }

    func testStreamLayoutIsBackToBackLittleEndianAndShuffled() throws {
        let tensors = [
            WeightTensor(name: "a", shape: [2], values: [1.0, -2.0]),
            WeightTensor(name: "b", shape: [1, 1], values: [0.5]),
        ]

        let encoded = try WeightStreamEncoder.encode(tensors, dtype: .f32, shuffle: true)
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: true, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
        try decoder.feed(encoded.compressed)
        _ = try decoder.finish()
        // 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0: shuffled by significance; then 0.5 = 00 00 00 3f.
        let expected: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x3F, 0xC0] + [0x00, 0x00, 0x00, 0x3F]
        XCTAssertEqual(decoder.decodedStream, expected)
        XCTAssertEqual(encoded.sha256, SHA256.hash(expected))
        XCTAssertEqual(encoded.tensors.map(\.byteOffset), [0, 8])
        XCTAssertEqual(encoded.tensors.map(\.byteLength), [8, 4])
    }

    func testHalfRoundsToNearestEven() throws {
        let values: [Float] = [1 + 1.0 / 2048, 1 + 3.0 / 2048, 65504, -0.0]

        let encoded = try WeightStreamEncoder.encode(
            [WeightTensor(name: "h", shape: [4], values: values)], dtype: .f16, shuffle: false)
        let decoder = try WeightStreamDecoder(
            dtype: .f16, shuffle: false, tensors: encoded.tensors, decodedBytes: 8,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
        try decoder.feed(encoded.compressed)
        _ = try decoder.finish()
        XCTAssertEqual(decoder.decodedStream, [0x00, 0x3C, 0x02, 0x3C, 0xFF, 0x7B, 0x00, 0x80])
    }

    func testHalfOverflowAndNonFiniteInt8AreRefused() {
        let big = WeightTensor(name: "big", shape: [2], values: [1, 70_000])
        let error = assertWireError(.invalidArgument) {
            _ = try WeightStreamEncoder.encode([big], dtype: .f16, shuffle: false)
        }
        XCTAssertEqual(error?.field, "big[1]")

        let nan = WeightTensor(name: "n", shape: [1], values: [.nan])
        assertWireError(.invalidArgument) { _ = try WeightStreamEncoder.encode([nan], dtype: .int8, shuffle: false) }
    }

    func testShapeMismatchIsRefused() {
        let tensor = WeightTensor(name: "w", shape: [2, 3], values: [1, 2, 3])

        assertWireError(.invalidArgument) { _ = try WeightStreamEncoder.encode([tensor], dtype: .f32, shuffle: false) }
    }

    func testShuffleLayout() {
        let bytes: [UInt8] = [0xA0, 0xA1, 0xA2, 0xA3, 0xB0, 0xB1, 0xB2, 0xB3, 0xC0, 0xC1, 0xC2, 0xC3]

        let shuffled = ByteShuffle.shuffled(bytes, elementSize: 4)
        XCTAssertEqual(shuffled, [0xA0, 0xB0, 0xC0, 0xA1, 0xB1, 0xC1, 0xA2, 0xB2, 0xC2, 0xA3, 0xB3, 0xC3])
        XCTAssertEqual(ByteShuffle.unshuffled(shuffled, elementSize: 4), bytes)
        XCTAssertEqual(
            ByteShuffle.shuffled(bytes, elementSize: 2),
            [0xA0, 0xA2, 0xB0, 0xB2, 0xC0, 0xC2] + [
                0xA1, 0xA3, 0xB1, 0xB3, 0xC1, 0xC3,
            ])
    }

    // MARK: Chunking

    func testChunkSizesAndArbitraryFeedBoundaries() throws {
        let tensors = sampleTensors(seed: 2, scale: 8)
        var generator = SeededGenerator(seed: 5)

        for chunkBytes in [1, 7, 100, 4096, WeightStreamEncoder.defaultChunkBytes] {
            let encoded = try WeightStreamEncoder.encode(tensors, dtype: .f16, shuffle: true, chunkBytes: chunkBytes)
            XCTAssertTrue(encoded.chunks.allSatisfy { $0.count <= chunkBytes && !$0.isEmpty })
            XCTAssertEqual(encoded.chunks.reduce(0) { $0 + $1.count }, encoded.compressed.count)
            assertClose(try decode(encoded), tensors, encoded)
        }
        let encoded = try WeightStreamEncoder.encode(tensors, dtype: .f32, shuffle: false)
        for _ in 0..<20 {
            let cuts = (0..<Int.random(in: 1...12, using: &generator))
                .map { _ in Int.random(in: 0...encoded.compressed.count, using: &generator) }.sorted()
            var pieces: [ArraySlice<UInt8>] = []
            var start = 0
            for end in cuts + [encoded.compressed.count] {
                pieces.append(encoded.compressed[start..<end])
                start = end
            }
            assertClose(try decode(encoded, chunks: pieces), tensors, encoded)
        }
    }

    func testByteByByteFeed() throws {
        let tensors = sampleTensors(seed: 4)
        let encoded = try WeightStreamEncoder.encode(tensors, dtype: .int8, shuffle: false)

        let pieces = encoded.compressed.indices.map { encoded.compressed[$0..<($0 + 1)] }
        assertClose(try decode(encoded, chunks: pieces), tensors, encoded)
    }

    // MARK: Damage

    func testEverySingleByteCorruptionIsDetected() throws {
        let tensors = sampleTensors(seed: 6)
        let encoded = try WeightStreamEncoder.encode(tensors, dtype: .f32, shuffle: true, chunkBytes: 256)

        for position in encoded.compressed.indices {
            var damaged = encoded.compressed
            damaged[position] ^= 0x5A
            let decoder = try WeightStreamDecoder(
                dtype: .f32, shuffle: true, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
                compressedBytes: UInt64(damaged.count), sha256: encoded.sha256)
            do {
                try decoder.feed(damaged)
                _ = try decoder.finish()
                XCTFail("corruption at byte \(position) of \(damaged.count) went unnoticed")
            } catch let error as WireError {
                XCTAssertTrue(
                    [.corruptStream, .digestMismatch, .truncated, .streamTooLong, .trailingBytes].contains(error.code),
                    "byte \(position): \(error.message)")
            }
        }
    }

    func testWrongDigestIsDetected() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 7), dtype: .f16, shuffle: false)
        var digest = encoded.sha256
        digest[31] ^= 1

        let decoder = try WeightStreamDecoder(
            dtype: .f16, shuffle: false, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count), sha256: digest)
        try decoder.feed(encoded.compressed)
        let error = assertWireError(.digestMismatch) { _ = try decoder.finish() }
        XCTAssertTrue(error?.message.contains(hexString(encoded.sha256)) ?? false)
    }

    func testStreamLongerThanAnnouncedIsRefused() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 8), dtype: .f32, shuffle: false)
        let shorter = Array(encoded.tensors.prefix(1))

        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: false, tensors: shorter, decodedBytes: shorter[0].byteLength,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
        assertWireError(.streamTooLong) {
            for chunk in encoded.chunks {
                try decoder.feed(chunk)
            }
        }
        assertWireError(.streamTooLong) { _ = try decoder.finish() }
    }

    func testStreamEndingEarlyIsRefused() throws {
        let encoded = try WeightStreamEncoder.encode(
            sampleTensors(seed: 9), dtype: .f32, shuffle: false, chunkBytes: 64)
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: false, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)

        for chunk in encoded.chunks.dropLast() {
            try decoder.feed(chunk)
        }
        assertWireError(.truncated) { _ = try decoder.finish() }
    }

    func testBytesAfterTheLZ4FrameAreRefused() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 10), dtype: .f16, shuffle: true)
        let padded = encoded.compressed + [0, 0, 0, 0]
        let decoder = try WeightStreamDecoder(
            dtype: .f16, shuffle: true, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(padded.count), sha256: encoded.sha256)

        assertWireError(.trailingBytes) { try decoder.feed(padded) }
    }

    func testMoreCompressedBytesThanAnnouncedAreRefused() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 12), dtype: .f32, shuffle: false)
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: false, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count - 1), sha256: encoded.sha256)

        assertWireError(.countMismatch) { try decoder.feed(encoded.compressed) }
    }

    func testEndMessageMustMatchWhatArrived() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 13), dtype: .f32, shuffle: false)
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: false, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
        try decoder.feed(encoded.compressed)

        let wrong = SpecializeEnd(chunkCount: 2, compressedBytes: UInt64(encoded.compressed.count))
        assertWireError(.countMismatch) { _ = try decoder.finish(end: wrong) }
    }

    func testInconsistentTablesAreRefusedBeforeAllocating() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 14), dtype: .int8, shuffle: false)
        let digest = encoded.sha256

        func attempt(_ tensors: [TensorEntry], decodedBytes: UInt64, maxDecodedBytes: UInt64 = 1 << 31) throws {
            _ = try WeightStreamDecoder(
                dtype: .int8, shuffle: false, tensors: tensors, decodedBytes: decodedBytes, compressedBytes: 1,
                sha256: digest, maxDecodedBytes: maxDecodedBytes)
        }
        XCTAssertNoThrow(try attempt(encoded.tensors, decodedBytes: encoded.decodedBytes))
        var gap = encoded.tensors
        gap[1].byteOffset += 1
        assertWireError(.invalidTensorTable) { try attempt(gap, decodedBytes: encoded.decodedBytes) }
        var badLength = encoded.tensors
        badLength[0].byteLength += 1
        assertWireError(.invalidTensorTable) { try attempt(badLength, decodedBytes: encoded.decodedBytes) }
        var noScales = encoded.tensors
        noScales[0].scales = []
        assertWireError(.invalidTensorTable) { try attempt(noScales, decodedBytes: encoded.decodedBytes) }
        var wrongDType = encoded.tensors
        wrongDType[2].dtype = .f32
        assertWireError(.invalidTensorTable) { try attempt(wrongDType, decodedBytes: encoded.decodedBytes) }
        assertWireError(.invalidTensorTable) { try attempt(encoded.tensors, decodedBytes: encoded.decodedBytes + 1) }
        assertWireError(.invalidTensorTable) {
            try attempt(encoded.tensors, decodedBytes: encoded.decodedBytes, maxDecodedBytes: encoded.decodedBytes - 1)
        }
        let huge = [TensorEntry(name: "x", dtype: .int8, shape: [], byteOffset: 0, byteLength: 1, scales: [1])]
        assertWireError(.invalidTensorTable) { try attempt(huge, decodedBytes: 1 << 62) }
    }

    func testFailedDecoderStaysFailed() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 15), dtype: .f32, shuffle: false)
        var damaged = encoded.compressed
        damaged[0] ^= 0xFF
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: false, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(damaged.count), sha256: encoded.sha256)

        assertWireError(.corruptStream) { try decoder.feed(damaged) }
        assertWireError(.corruptStream) { try decoder.feed(encoded.compressed) }
        assertWireError(.corruptStream) { _ = try decoder.finish() }
    }

    func testHeaderConvenienceInitializer() throws {
        let encoded = try WeightStreamEncoder.encode(sampleTensors(seed: 16), dtype: .f16, shuffle: true)
        let header = SpecializeHeader(
            arch: "{}", archDigest: "", predictedAccuracy: 0.5,
            costs: CostSummary(macs: 1, params: 2, peakActivationBytes: 3, latencyMs: .nan, energyMJ: .nan),
            strategy: "s", fromCache: false, search: SearchStatistics(evaluations: 1, wallMs: 2), dtype: encoded.dtype,
            shuffle: encoded.shuffle, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
            compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256, metadata: [:])

        let decoder = try WeightStreamDecoder(header: SpecializeHeader(payload: header.encodedPayload()))
        for chunk in encoded.chunks {
            try decoder.feed(chunk)
        }
        XCTAssertEqual(try decoder.finish(end: encoded.end).count, encoded.tensors.count)
    }
}
