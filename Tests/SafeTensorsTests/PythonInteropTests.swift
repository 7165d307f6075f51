import Foundation
import SafeTensors
import XCTest

/// Cross-checks our reader and writer against the reference `safetensors` Python package (numpy backend).
///
/// The interpreter is `$SUPERNET_PYTHON` when set, else `python3` from `PATH`. The tests skip when that interpreter
/// cannot import `safetensors` and `numpy`.
final class PythonInteropTests: XCTestCase {
    private var directory = ""
    private var cleanup: () -> Void = {}

    override func setUpWithError() throws {
        (directory, cleanup) = try makeTemporaryDirectory()
    }

    override func tearDown() {
        cleanup()
    }

    func testPythonReadsOurFile() throws {
        let python = try usablePython()
        var writer = SafeTensorsWriter(metadata: ["format": "supernet", "note": "quote \" and \\ and ü"])
        try writer.add(name: "weights", floats: (0..<6).map { Float($0) * 0.25 - 1 }, shape: [2, 3])
        try writer.add(name: "half", float16From: [0.5, -1, 2048, 0.1], shape: [4])
        try writer.add(name: "labels", uint8: [0, 1, 2, 9, 255], shape: [5])
        try writer.add(name: "ids", int64: [-7, 1 << 40], shape: [2, 1])
        try writer.add(name: "empty", floats: [], shape: [0, 3])
        try writer.add(name: "ñame/😀", int32: [123], shape: [])
        let path = directory + "/ours.safetensors"
        try writer.write(to: path)

        let result = try run(python, [Self.scriptPath, "check-ours", path])
        XCTAssertEqual(result.status, 0, "python could not verify our file:\n\(result.output)")
    }

    func testWeReadPythonsFile() throws {
        let python = try usablePython()
        let path = directory + "/theirs.safetensors"
        let result = try run(python, [Self.scriptPath, "write-theirs", path])
        XCTAssertEqual(result.status, 0, "python could not write its file:\n\(result.output)")

        let file = try SafeTensorsFile(contentsOf: path)
        XCTAssertEqual(file.metadata, ["producer": "python", "epoch": "3"])
        XCTAssertEqual(Set(file.tensors.map(\.name)), ["f64", "f32", "f16", "i16", "i32", "u8", "flags", "zero"])
        XCTAssertEqual(file["f64"]?.dtype, .float64)
        XCTAssertEqual(file["f64"]?.shape, [2, 2])
        let doubles = try file.withUnsafeBytes(of: "f64") { raw in
            (0..<4).map { index in
                Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
            }
        }
        XCTAssertEqual(doubles, [1.5, -2.25, 1e300, 0])
        XCTAssertEqual(file["f32"]?.shape, [3, 4])
        XCTAssertEqual(try file.floats("f32"), (0..<12).map { Float($0) / 8 })
        XCTAssertEqual(file["f16"]?.dtype, .float16)
        XCTAssertEqual(try file.floats("f16"), [1, -0.5, 65504])
        XCTAssertEqual(file["i16"]?.dtype, .int16)
        XCTAssertEqual(try file.int32s("i16"), [-32768, 32767])
        XCTAssertEqual(file["i32"]?.shape, [2, 1])
        XCTAssertEqual(try file.int64s("i32"), [-1, 2])
        XCTAssertEqual(try file.int32s("u8"), [0, 128, 255])
        XCTAssertEqual(file["flags"]?.dtype, .bool)
        XCTAssertEqual(try file.bytes("flags"), [1, 0, 1])
        XCTAssertEqual(file["zero"]?.shape, [0, 5])
        XCTAssertEqual(try file.floats("zero"), [])
    }

    // MARK: Helpers

    private static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python/interop.py").path
    }

    /// The interpreter command (executable plus leading arguments), or a skip when it lacks the packages.
    private func usablePython() throws -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let configured = environment["SUPERNET_PYTHON"] ?? "python3"
        let python = configured.contains("/") ? [configured] : ["/usr/bin/env", configured]
        let probe = try? run(python, ["-c", "import safetensors, numpy"])
        guard let probe, probe.status == 0 else {
            // `make test` sets SUPERNET_PYTHON to its venv: there a broken interpreter is a failure, not a skip.
            if environment["SUPERNET_PYTHON"] != nil {
                XCTFail("SUPERNET_PYTHON=\(configured) cannot import safetensors and numpy")
            }
            throw XCTSkip(
                "\(python.joined(separator: " ")) cannot import safetensors and numpy; create a venv with "
                    + "`python3 -m venv .venv && .venv/bin/pip install safetensors numpy` and run "
                    + "`SUPERNET_PYTHON=$PWD/.venv/bin/python swift test` (the project's Makefile sets this up)")
        }
        return python
    }

    /// Runs `command + arguments`, returning the exit status and the combined stdout/stderr text.
    private func run(_ command: [String], _ arguments: [String]) throws -> (status: Int32, output: String) {
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
}
