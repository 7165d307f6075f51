import Foundation
import Wire
import XCTest

/// A small deterministic generator (SplitMix64) so that "random" test inputs are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A standard normal sample (Box–Muller).
    mutating func gaussian() -> Float {
        let first = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let second = Double.random(in: 0..<1, using: &self)
        return Float((-2 * Foundation.log(first)).squareRoot() * Foundation.cos(2 * Double.pi * second))
    }

    /// `count` random bytes.
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// Asserts that `body` throws a `WireError` with `code` and returns it for further checks.
@discardableResult
func assertWireError(
    _ code: WireError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) -> WireError? {
    do {
        try body()
        XCTFail("expected \(code.rawValue) but nothing was thrown", file: file, line: line)
    } catch let error as WireError {
        XCTAssertEqual(error.code, code, "message: \(error.message)", file: file, line: line)
        return error
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
    return nil
}

/// The little-endian bytes of `value`.
func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

/// A 16-byte frame header assembled by hand, independent of `FrameHeader.write`.
func rawHeader(
    magic: [UInt8] = Array("SNRP".utf8), version: UInt8 = 1, kind: UInt8, flags: UInt16 = 0, requestID: UInt32 = 1,
    length: UInt32
) -> [UInt8] {
    magic + [version, kind] + littleEndian(flags) + littleEndian(requestID) + littleEndian(length)
}

/// Hex text of `bytes` with a space between bytes, e.g. `53 4e 52 50`.
func spacedHex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
}

/// Conv-like tensors: Gaussian weights with a different scale per output channel, plus a bias, a scalar, an empty
/// tensor and an all-zero channel, `scale` multiplying every size.
func sampleTensors(seed: UInt64, scale: Int = 1) -> [WeightTensor] {
    var generator = SeededGenerator(seed: seed)
    var tensors: [WeightTensor] = []
    for (index, shape) in [[8 * scale, 3, 3, 3], [16 * scale, 8, 1, 1], [16 * scale], [], [4, 0]].enumerated() {
        let count = shape.reduce(1, *)
        let channels = shape.first ?? 1
        let perChannel = channels == 0 ? 0 : count / channels
        var values = [Float](repeating: 0, count: count)
        for channel in 0..<channels {
            let channelScale = Float(0.01 + 0.2 * Double(channel % 5))
            for element in 0..<perChannel where channel != 1 {
                values[channel * perChannel + element] = generator.gaussian() * channelScale
            }
        }
        tensors.append(WeightTensor(name: "layer\(index).weight", shape: shape, values: values))
    }
    return tensors
}

/// Runs `command + arguments`, returning the exit status and the combined stdout/stderr text.
func runProcess(_ command: [String], _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst()) + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A fresh temporary directory and a closure that removes it.
func makeTemporaryDirectory() throws -> (path: String, cleanup: () -> Void) {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("wire-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    return (url.path, { try? FileManager.default.removeItem(at: url) })
}
