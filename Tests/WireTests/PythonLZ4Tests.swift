import Digest
import Foundation
import Wire
import XCTest

/// Cross-checks our LZ4 frame stream against the reference `lz4` Python package, in both directions.
///
/// The interpreter is `$SUPERNET_PYTHON` when set, else `python3` from `PATH`. The tests skip when that interpreter
/// cannot import `lz4.frame`.
final class PythonLZ4Tests: XCTestCase {
    private var directory = ""
    private var cleanup: () -> Void = {}

    override func setUpWithError() throws {
        (directory, cleanup) = try makeTemporaryDirectory()
    }

    override func tearDown() {
        cleanup()
    }

    func testPythonDecodesOurStreamToTheSameBytes() throws {
        let python = try usablePython()
        for (dtype, shuffle, blockSize) in [
            (WeightDType.f32, false, LZ4BlockSize.kb64), (.f16, true, .kb256), (.int8, false, .kb64),
        ] {
            let encoded = try WeightStreamEncoder.encode(
                sampleTensors(seed: 21, scale: 64), dtype: dtype, shuffle: shuffle, chunkBytes: 1000,
                blockSize: blockSize)
            let decoder = try WeightStreamDecoder(
                dtype: dtype, shuffle: shuffle, tensors: encoded.tensors, decodedBytes: encoded.decodedBytes,
                compressedBytes: UInt64(encoded.compressed.count), sha256: encoded.sha256)
            for chunk in encoded.chunks {
                try decoder.feed(chunk)
            }
            _ = try decoder.finish(end: encoded.end)
            let input = directory + "/ours.lz4"
            let output = directory + "/ours.bin"
            try Data(encoded.compressed).write(to: URL(fileURLWithPath: input))

            let result = try runProcess(python, [Self.scriptPath, "decode", input, output])
            XCTAssertEqual(result.status, 0, "python could not decode our frame:\n\(result.output)")
            let decoded = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
            XCTAssertEqual(decoded.count, Int(encoded.decodedBytes))
            XCTAssertEqual(decoded, decoder.decodedStream, "\(dtype) shuffle=\(shuffle)")
            XCTAssertEqual(SHA256.hash(decoded), encoded.sha256)
            XCTAssertTrue(result.output.contains("block_size=\(blockSize.byteCount)"), result.output)
            XCTAssertTrue(result.output.contains("content_checksum=True"), result.output)
            XCTAssertTrue(result.output.contains("block_checksum=False"), result.output)
        }
    }

    func testWeDecodePythonsFrame() throws {
        let python = try usablePython()
        let tensors = sampleTensors(seed: 22, scale: 16)
        let ours = try WeightStreamEncoder.encode(tensors, dtype: .f32, shuffle: true)
        let plainDecoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: true, tensors: ours.tensors, decodedBytes: ours.decodedBytes,
            compressedBytes: UInt64(ours.compressed.count), sha256: ours.sha256)
        try plainDecoder.feed(ours.compressed)
        _ = try plainDecoder.finish()
        let input = directory + "/stream.bin"
        let output = directory + "/theirs.lz4"
        try Data(plainDecoder.decodedStream).write(to: URL(fileURLWithPath: input))

        let result = try runProcess(python, [Self.scriptPath, "encode", input, output])
        XCTAssertEqual(result.status, 0, "python could not encode:\n\(result.output)")
        let theirs = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
        let decoder = try WeightStreamDecoder(
            dtype: .f32, shuffle: true, tensors: ours.tensors, decodedBytes: ours.decodedBytes,
            compressedBytes: UInt64(theirs.count), sha256: ours.sha256)
        var offset = 0
        while offset < theirs.count {
            let end = min(offset + 333, theirs.count)
            try decoder.feed(theirs[offset..<end])
            offset = end
        }
        let decoded = try decoder.finish()
        XCTAssertEqual(decoded.map { $0.values.map(\.bitPattern) }, tensors.map { $0.values.map(\.bitPattern) })
    }

    // MARK: Helpers

    private static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python/lz4check.py").path
    }

    /// The interpreter command (executable plus leading arguments), or a skip when it lacks `lz4`.
    private func usablePython() throws -> [String] {
        let configured = ProcessInfo.processInfo.environment["SUPERNET_PYTHON"] ?? "python3"
        let python = configured.contains("/") ? [configured] : ["/usr/bin/env", configured]
        let probe = try? runProcess(python, ["-c", "import lz4.frame"])
        guard let probe, probe.status == 0 else {
            throw XCTSkip(
                "\(python.joined(separator: " ")) cannot import lz4.frame; create a venv with "
                    + "`python3 -m venv venv2 && venv2/bin/pip install lz4` and run "
                    + "`SUPERNET_PYTHON=$PWD/venv2/bin/python swift test`")
        }
        return python
    }
}
