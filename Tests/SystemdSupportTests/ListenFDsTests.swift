import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SystemdSupport

final class ListenFDsTests: XCTestCase {
    /// Runs the probe under `systemd-socket-activate` with `options`, connects to `trigger` to start it, and
    /// returns what the probe printed.
    private func activate(
        _ options: [String], trigger: String, probeArguments: [String] = []
    ) throws -> TestSupport.Outcome {
        let activator = try TestSupport.requireTool("systemd-socket-activate")
        let probe = try TestSupport.probePath()
        let child = try TestSupport.Child(activator, options + [probe, "listen-fds"] + probeArguments)
        let connection = try TestSupport.connectStream(trigger)
        defer { close(connection) }
        return child.finish()
    }

    /// One socket named `client`: fd 3, close-on-exec, blocking, and it accepts the connection that started it.
    func testSingleNamedSocket() throws {
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let path = directory + "/client.sock"

        let outcome = try activate(["-l", path, "--fdname=client"], trigger: path)
        XCTAssertEqual(outcome.status, 0, outcome.stdout + outcome.stderr)
        let lines = outcome.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("count=1"), outcome.stdout)
        XCTAssertTrue(lines.contains("fd=3 name=client cloexec=true nonblock=false"), outcome.stdout)
        XCTAssertTrue(lines.contains("client=3 admin=none"), outcome.stdout)
        XCTAssertTrue(lines.contains("peer-uid=\(getuid()) peer-pid=\(getpid())"), outcome.stdout)
    }

    /// Two sockets named `client` and `admin` map to their roles; `nonBlocking` sets O_NONBLOCK on both.
    func testTwoSocketsByName() throws {
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let admin = directory + "/admin.sock"
        let client = directory + "/client.sock"

        let outcome = try activate(
            ["-l", admin, "-l", client, "--fdname=admin:client"], trigger: client, probeArguments: ["--nonblocking"])
        XCTAssertEqual(outcome.status, 0, outcome.stdout + outcome.stderr)
        let lines = outcome.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("fd=3 name=admin cloexec=true nonblock=true"), outcome.stdout)
        XCTAssertTrue(lines.contains("fd=4 name=client cloexec=true nonblock=true"), outcome.stdout)
        XCTAssertTrue(lines.contains("client=4 admin=3"), outcome.stdout)
    }

    /// A socket without FileDescriptorName= is refused with a message naming the fd and the fix.
    func testUnnamedSocketIsAnError() throws {
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let path = directory + "/client.sock"

        let outcome = try activate(["-l", path], trigger: path)
        XCTAssertEqual(outcome.status, 2, outcome.stdout + outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("error=socket activation: fd 3 has no name"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("FileDescriptorName=client"), outcome.stdout)
    }

    /// A name other than client or admin is refused.
    func testUnknownNameIsAnError() throws {
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let path = directory + "/client.sock"

        let outcome = try activate(["-l", path, "--fdname=metrics"], trigger: path)
        XCTAssertEqual(outcome.status, 2, outcome.stdout + outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("error=socket activation: fd 3 is named 'metrics'"), outcome.stdout)
    }

    /// A datagram socket is not a listening stream socket, whatever its name.
    func testDatagramSocketIsRefused() throws {
        let activator = try TestSupport.requireTool("systemd-socket-activate")
        let probe = try TestSupport.probePath()
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let path = directory + "/client.sock"

        let child = try TestSupport.Child(activator, ["-d", "-l", path, "--fdname=client", probe, "listen-fds"])
        let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sender) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let deadline = Date().addingTimeInterval(10)
        var sent = -1
        while sent < 0 && Date() < deadline {
            sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if sent < 0 {
                usleep(20_000)
            }
        }

        let outcome = child.finish()
        XCTAssertEqual(outcome.status, 2, outcome.stdout + outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("is not a listening AF_UNIX stream socket"), outcome.stdout)
    }

    /// Without LISTEN_FDS nothing was passed and the daemon binds its own sockets.
    func testNoActivationMeansNothing() throws {
        let probe = try TestSupport.probePath()
        let outcome = try TestSupport.run(probe, ["listen-fds"], environment: ["LISTEN_FDS": nil, "LISTEN_PID": nil])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "count=0\nactivated=false\n")
    }

    /// The role mapping alone: names once each; unknown, unnamed and duplicates refused.
    func testRoleAssignment() throws {
        let both = try SocketActivation.assignRoles([
            PassedDescriptor(fd: 3, name: "admin"), PassedDescriptor(fd: 4, name: "client"),
        ])
        XCTAssertEqual(both, ActivatedSockets(client: 4, admin: 3))
        XCTAssertEqual(both[.admin], 3)

        XCTAssertThrowsError(try SocketActivation.assignRoles([PassedDescriptor(fd: 3, name: "unknown")])) {
            XCTAssertEqual($0 as? SocketActivationError, .unnamed(fd: 3))
        }
        XCTAssertThrowsError(try SocketActivation.assignRoles([PassedDescriptor(fd: 3, name: "Client")])) {
            XCTAssertEqual($0 as? SocketActivationError, .unknownName(fd: 3, name: "Client"))
        }
        let twice = [PassedDescriptor(fd: 3, name: "client"), PassedDescriptor(fd: 4, name: "client")]
        XCTAssertThrowsError(try SocketActivation.assignRoles(twice)) {
            XCTAssertEqual($0 as? SocketActivationError, .duplicateRole(.client, fd: 4, previous: 3))
        }
    }
}
