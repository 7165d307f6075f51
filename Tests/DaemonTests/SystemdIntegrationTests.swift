import Client
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// supernetd under systemd's protocols without PID 1: notifications on a NOTIFY_SOCKET this test owns, and
/// socket activation through `systemd-socket-activate`.
final class SystemdIntegrationTests: XCTestCase {
    private var harness: DaemonHarness!

    override func setUpWithError() throws {
        harness = try DaemonHarness()
    }

    override func tearDown() {
        harness?.stop()
    }

    /// Binds a datagram socket at `path` and returns its fd (receive timeout 200 ms).
    private func notifySocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else { throw HarnessError("bind \(path) failed") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Datagrams received until `stop` holds or `seconds` pass.
    private func collect(_ fd: Int32, seconds: Double, until stop: ([String]) -> Bool) -> [String] {
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline && !stop(messages) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
        return messages
    }

    func testReadyWatchdogReloadingAndStoppingNotifications() throws {
        let path = harness.root + "/notify.sock"
        let fd = try notifySocket(path)
        defer { close(fd) }
        try harness.start(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"])

        let startup = collect(fd, seconds: 20) { $0.filter { $0.contains("WATCHDOG=1") }.count >= 3 }
        let ready = startup.first { $0.contains("READY=1") }
        XCTAssertNotNil(ready, "\(startup)")
        XCTAssertTrue(ready?.contains("STATUS=1 models") ?? false, ready ?? "")
        XCTAssertGreaterThanOrEqual(
            startup.filter { $0.contains("WATCHDOG=1") }.count, 3,
            "watchdog pings at half of WATCHDOG_USEC")

        harness.signal(SIGHUP, wait: false)
        let reload = collect(fd, seconds: 20) { messages in
            messages.contains { $0.contains("RELOADING=1") } && messages.contains { $0.contains("READY=1") }
        }
        let reloading = reload.firstIndex { $0.contains("RELOADING=1") }
        let readyAgain = reload.lastIndex { $0.contains("READY=1") }
        XCTAssertNotNil(reloading, "\(reload)")
        XCTAssertNotNil(readyAgain, "\(reload)")
        XCTAssertLessThan(reloading ?? 1, readyAgain ?? 0, "RELOADING=1 comes before READY=1")
        XCTAssertGreaterThan(try harness.client().ping(), 0, "still serving after the reload")

        let status = harness.signal(SIGTERM, wait: true)
        let shutdown = collect(fd, seconds: 2) { $0.contains { $0.contains("STOPPING=1") } }
        XCTAssertTrue(shutdown.contains { $0.contains("STOPPING=1") }, "\(shutdown)")
        XCTAssertEqual(status, 0, harness.logText)
    }

    func testSocketActivationWithNamedDescriptors() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else {
            throw HarnessError("systemd-socket-activate is missing (Debian package systemd)")
        }
        let socket = harness.root + "/activated.sock"
        let admin = harness.root + "/activated-admin.sock"
        try harness.start(
            launcher: [activate, "-l", socket, "-l", admin, "--fdname=client:admin"],
            waitFor: socket)
        let client = try SupernetClient(socketPath: socket, name: "activation-test")
        XCTAssertGreaterThan(try client.ping(), 0)
        XCTAssertEqual(try client.models().map(\.name), ["test"])
        XCTAssertEqual(try SupernetClient(socketPath: admin, name: "activation-test").plugins().count, 2)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: harness.socket),
            "an activated daemon does not bind its own sockets")
        XCTAssertTrue(harness.logText.contains("socket-activated"), harness.logText)
    }
}
