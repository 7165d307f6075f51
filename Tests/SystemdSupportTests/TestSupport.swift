import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Helpers shared by the tests: scratch directories, the probe executable, child processes, datagram sockets.
enum TestSupport {
    /// A new empty directory under /tmp (short, so socket paths fit in sun_path); removed by `removeTree`.
    static func makeScratchDirectory() throws -> String {
        var template = Array("/tmp/sdtest.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        return String(cString: made)
    }

    /// Deletes `path` and everything below it.
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The package's root directory (two levels above this file's folder).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// The `notify-probe` executable built beside the test bundle.
    static func probePath() throws -> String {
        let buildDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [buildDirectory, buildDirectory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("notify-probe").path
            if FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
        }
        throw XCTSkip("notify-probe is not built beside the tests (run `swift build` first)")
    }

    /// The path of `tool` in /usr/bin or /bin; skips the test when it is missing.
    static func requireTool(_ tool: String) throws -> String {
        for directory in ["/usr/bin", "/bin", "/usr/sbin"]
        where FileManager.default.isExecutableFile(
            atPath: "\(directory)/\(tool)")
        {
            return "\(directory)/\(tool)"
        }
        throw XCTSkip("\(tool) is not installed")
    }

    /// What a finished child process left.
    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// A child process with captured output, killed if it outlives its deadline.
    final class Child {
        let process = Process()
        private let out = Pipe()
        private let err = Pipe()

        /// Starts `executable` with `arguments`; `environment` entries are added to (or, with nil, removed
        /// from) this process's environment.
        init(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) throws {
            var merged = ProcessInfo.processInfo.environment
            for (key, value) in environment {
                merged[key] = value
            }
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = merged
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }

        /// Waits at most `seconds` (then kills the child) and returns its status and output.
        func finish(within seconds: Double = 20) -> Outcome {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline {
                usleep(10_000)
            }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return Outcome(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        }
    }

    /// Runs a child to completion (see `Child`).
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String?] = [:], within seconds: Double = 20
    ) throws -> Outcome {
        try Child(executable, arguments, environment: environment).finish(within: seconds)
    }

    /// A bound `AF_UNIX` socket of `type` at `path`; the caller closes it.
    static func boundSocket(_ path: String, type: Int32) throws -> Int32 {
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        return fd
    }

    /// A connected `AF_UNIX` stream socket to `path`, retried for up to `seconds` while nothing listens yet.
    static func connectStream(_ path: String, within seconds: Double = 10) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result == 0 {
                return fd
            }
            let code = errno
            close(fd)
            guard Date() < deadline else {
                throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
            }
            usleep(20_000)
        }
    }

    /// Every datagram waiting on `fd`, read without blocking, as text.
    static func pendingDatagrams(_ fd: Int32) -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard count > 0 else {
                return messages
            }
            messages.append(String(decoding: buffer[..<count], as: UTF8.self))
        }
    }

    /// `key=value` lines of `text` as a dictionary (later lines win).
    static func assignments(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else {
                continue
            }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }
}
