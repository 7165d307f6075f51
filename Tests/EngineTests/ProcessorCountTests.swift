import Foundation
import XCTest

@testable import Engine

/// The default thread count follows the processors the process may run on, as the kernel lists them.
final class ProcessorCountTests: XCTestCase {
    /// Counts the processors in /proc/self/status's `Cpus_allowed_list` ("0-3,6,8-9" style).
    private func allowedByProc() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let list = line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        return try list.split(separator: ",").reduce(0) { total, range in
            let ends = try range.split(separator: "-").map { try XCTUnwrap(Int($0)) }
            return total + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
        }
    }

    func testDefaultThreadCountIsTheAllowedProcessorCount() throws {
        XCTAssertEqual(Parallel.availableProcessorCount, try allowedByProc())
    }

    /// Under `taskset -c 0`, the benchmark (which reports its thread count) runs on one thread.
    func testAnAffinityOfOneProcessorGivesOneThread() throws {
        let taskset = "/usr/bin/taskset"
        guard FileManager.default.isExecutableFile(atPath: taskset) else {
            throw XCTSkip("taskset (util-linux) is not installed")
        }
        // The build products directory holds the test runner and the executables.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let supernet = try XCTUnwrap(
            [runner, runner.deletingLastPathComponent()].map { $0.appendingPathComponent("supernet") }
                .first { FileManager.default.isExecutableFile(atPath: $0.path) },
            "the supernet executable is not beside the test runner")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: taskset)
        process.arguments = [
            "-c", "0", supernet.path, "bench", "engine", "--json", "--only", "smallest_infer_b1", "--rounds", "1",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let figures = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(figures["threads"] as? Double, 1)
        XCTAssertNil(figures["core_round_trip_ns"], "no round trip to measure with one thread")
    }
}
