import Foundation
import LatencyTable
import PluginHost
import XCTest

/// The package root, from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A failed helper step, with its output.
struct HelperFailure: Error, CustomStringConvertible {
    let description: String
}

/// Runs a program; throws with its standard error when it exits non-zero.
func runCommand(_ executable: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw HelperFailure(
            description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                + String(decoding: errorData, as: UTF8.self))
    }
}

/// A fresh directory with mode 0755 under the system temp directory, named after `label`.
func makeTemporaryDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "targets-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    return path
}

/// The directory of the running test binary, where SwiftPM also puts the plugin products.
func buildDirectory() -> String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    return URL(fileURLWithPath: executable).deletingLastPathComponent().path
}

/// Copies `file` into a fresh directory with mode 0644, as an install would (each copy is a new inode, so the
/// process maps it anew), and loads it through PluginHost's loader.
func installAndLoad(_ file: String, as name: String? = nil) throws -> LoadedPlugin {
    guard FileManager.default.fileExists(atPath: file) else {
        throw HelperFailure(description: "\(file) is missing; build the plugin products first")
    }
    let directory = try makeTemporaryDirectory("plugins")
    let installed = directory + "/" + (name ?? URL(fileURLWithPath: file).lastPathComponent)
    try FileManager.default.copyItem(atPath: file, toPath: installed)
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: installed)
    return try PluginLoader(directories: [directory]).load(path: installed)
}

/// The target of a Swift plugin product of this package, installed and loaded.
func loadProduct(_ product: String) throws -> HardwareTarget {
    let plugin = try installAndLoad(buildDirectory() + "/lib\(product).so")
    guard let target = plugin.target else {
        throw HelperFailure(description: "\(product) is not a target")
    }
    return target
}

/// The ABI layer of a table key.
func networkLayer(_ key: LayerKey) -> NetworkLayer {
    NetworkLayer(
        op: NetworkLayer.Op(rawValue: key.op.code)!, inputChannels: key.inputChannels,
        outputChannels: key.outputChannels, kernel: key.kernel, stride: key.stride, inputSize: key.size,
        outputSize: key.outputSize, activation: NetworkLayer.Activation(rawValue: key.activation.code)!,
        hidden: key.hidden)
}

/// Asserts that `body` throws a plugin call error with `status` whose message holds every string of `mentioning`.
func assertCallFails<T>(
    _ body: @autoclosure () throws -> T, status: Int32, mentioning: [String],
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let failure = error as? PluginCallError else {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return
        }
        XCTAssertEqual(failure.status, status, failure.message, file: file, line: line)
        for text in mentioning {
            XCTAssertTrue(
                failure.message.contains(text), "\"\(text)\" missing from: \(failure.message)", file: file, line: line)
        }
    }
}
