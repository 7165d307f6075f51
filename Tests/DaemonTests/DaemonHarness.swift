import Client
import Engine
import Foundation
import Supernet
import Wire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The package's build products directory (where the test bundle, the executables and the plugins are).
let binDirectory: String = {
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [runner, runner.deletingLastPathComponent()]
    where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("supernetd").path) {
        return candidate.path
    }
    return runner.path
}()

/// A temporary installation: a model with calibration images, the two plugins, and a running supernetd.
final class DaemonHarness {
    let root: String
    let models: String
    let plugins: String
    let socket: String
    let adminSocket: String
    let log: String
    private(set) var process: Process?
    /// `--pareto-rung-ms`: 0 (no background archives, which would compete with what a test measures) unless a
    /// test is about them.
    var paretoRungMs = 0

    /// Writes a random-weight `test.supernet` (with 64 calibration images) and copies the plugins.
    init(calibration: Int = 64) throws {
        root = NSTemporaryDirectory() + "supernetd-test-\(UUID().uuidString.prefix(8))"
        models = root + "/models"
        plugins = root + "/plugins"
        socket = root + "/client.sock"
        adminSocket = root + "/admin.sock"
        log = root + "/daemon.log"
        for directory in [models, plugins, root + "/state"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try Self.writeModel(to: models + "/test.supernet", calibration: calibration)
        for plugin in ["libtarget-analytic.so", "libstrategy-evolution.so"] {
            let source = binDirectory + "/" + plugin
            guard FileManager.default.fileExists(atPath: source) else {
                throw HarnessError("\(plugin) is not built (swift build --product \(plugin.dropFirst(3).dropLast(3)))")
            }
            try FileManager.default.copyItem(atPath: source, toPath: plugins + "/" + plugin)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: plugins + "/" + plugin)
        }
    }

    static func writeModel(to path: String, calibration: Int) throws {
        let space = SearchSpace.fmnistMBV3
        var random = SeededRandom(seed: 77)
        let pixels = (0..<(calibration * 784)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let file = SupernetFile(
            manifest: Manifest(space: space, normalization: .fashionMNIST),
            network: ElasticSupernet(space: space, seed: 5), calibrationImages: pixels)
        try file.write(to: path)
    }

    /// The arguments that point supernetd at this installation.
    var arguments: [String] {
        [
            "--socket", socket, "--admin-socket", adminSocket, "--models", models, "--plugins", plugins,
            "--state-dir", root + "/state", "--default-deadline-ms", "300", "--pareto-rung-ms", "\(paretoRungMs)",
        ]
    }

    /// Starts supernetd (optionally through another launcher and with extra environment) and waits for `waitFor`.
    func start(
        launcher: [String] = [], environment: [String: String] = [:], extra: [String] = [],
        waitFor: String? = nil
    ) throws {
        let process = Process()
        let command = launcher + [binDirectory + "/supernetd"] + arguments + extra
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "LISTEN_FDS")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        let path = waitFor ?? socket
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: path) {
            usleep(50_000)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw HarnessError("supernetd did not create \(path): \(logText)")
        }
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Sends `signal` and, for terminating signals, waits for the exit status.
    @discardableResult
    func signal(_ number: Int32, wait: Bool) -> Int32? {
        guard let process else { return nil }
        kill(process.processIdentifier, number)
        guard wait else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stop() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    func client() throws -> SupernetClient {
        try SupernetClient(socketPath: socket, name: "tests")
    }

    /// Runs one of the package's executables and returns (status, stdout, stderr).
    static func run(
        _ tool: String, _ arguments: [String], environment: [String: String] = [:]
    ) throws
        -> (status: Int32, out: String, err: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool.hasPrefix("/") ? tool : binDirectory + "/" + tool)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outData, as: UTF8.self),
            String(decoding: errData, as: UTF8.self)
        )
    }
}

/// A raw Unix-socket connection for sending malformed bytes.
final class RawConnection {
    let fd: Int32

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else { throw HarnessError("cannot connect to \(path)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send<M: WireMessage>(_ message: M, id: UInt32) throws {
        var encoder = FrameEncoder()
        try encoder.append(message, requestID: id)
        send(encoder.bytes)
    }

    /// Reads until the peer closes or `timeout` passes; returns the bytes and whether it closed.
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (all, true) }
            if n < 0 { return (all, false) }
            all += buffer[0..<n]
        }
    }

    /// Reads frames until one arrives for `id`.
    func frame(for id: UInt32) throws -> Frame {
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            while let frame = try decoder.nextFrame() {
                if frame.requestID == id { return frame }
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw HarnessError("connection closed before a reply to \(id)") }
            decoder.append(buffer[0..<n])
        }
    }
}

func hello() -> Hello { Hello(versions: [1], clientName: "raw-test") }

/// A set-up problem in a daemon test (reported as a failure, never a skip).
struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
