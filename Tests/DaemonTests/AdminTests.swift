import Client
import Foundation
import Wire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Plugin administration on the admin socket: authorization by peer credentials, hot load and unload while
/// clients keep specializing.
final class AdminTests: XCTestCase {
    private var harness: DaemonHarness!

    override func setUpWithError() throws {
        harness = try DaemonHarness()
        let random = binDirectory + "/libstrategy-random.so"
        guard FileManager.default.fileExists(atPath: random) else {
            throw HarnessError("libstrategy-random.so is not built (swift build --product strategy-random)")
        }
        try FileManager.default.copyItem(atPath: random, toPath: harness.plugins + "/libstrategy-random.so")
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o644],
            ofItemAtPath: harness.plugins + "/libstrategy-random.so")
    }

    override func tearDown() {
        harness?.stop()
    }

    func testANonAdminPeerIsRefusedWhateverItSends() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to act as another uid")
        }
        try harness.start()
        chmod(harness.adminSocket, 0o666)
        chmod(harness.root, 0o755)
        let result = try DaemonHarness.run(
            "/usr/bin/setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", binDirectory + "/supernetctl",
                "--admin-socket", harness.adminSocket, "plugins", "unload", "random",
            ])
        XCTAssertEqual(result.status, 77, result.err)
        XCTAssertTrue(result.err.lowercased().contains("permission denied"), result.err)
        let plugins = try SupernetClient(socketPath: harness.adminSocket, name: "admin").plugins()
        XCTAssertEqual(plugins.first { $0.name == "random" }?.state, .loaded, "the refused unload changed nothing")

        let onClientSocket = try DaemonHarness.run(
            "supernetctl", ["--admin-socket", harness.socket, "plugins", "list"])
        XCTAssertEqual(onClientSocket.status, 77, "admin requests are refused on the client socket, even from root")
    }

    func testLoadAndUnloadWhileSixteenClientsSpecialize() throws {
        try harness.start()
        let admin = try SupernetClient(socketPath: harness.adminSocket, name: "admin")
        let failures = LockedCounter()
        let served = LockedCounter()
        let socket = harness.socket
        let stop = Date().addingTimeInterval(4)
        let group = DispatchGroup()
        for i in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let client = try SupernetClient(socketPath: socket, name: "load-\(i)")
                    var round = 0
                    while Date() < stop {
                        let budget = Double(4_000_000 + (round % 5) * 1_000_000 + i)
                        _ = try client.specialize(
                            Specialize(
                                model: "test", target: "analytic", budgets: [Budget(.macs, budget)],
                                strategy: "evolution",
                                dtype: .f16, shuffle: true, deadlineMs: 50, noWeights: round % 2 == 0))
                        served.increment("ok")
                        round += 1
                    }
                } catch {
                    failures.increment("\(error)")
                }
            }
        }
        var version = 2
        while Date() < stop {
            try admin.unloadPlugin("random")
            let file = "libstrategy-random.so.\(version)"
            try FileManager.default.copyItem(
                atPath: harness.plugins + "/libstrategy-random.so",
                toPath: harness.plugins + "/" + file)
            try admin.loadPlugin(file)
            version += 1
        }
        group.wait()
        XCTAssertEqual(failures.count, 0, failures.messages.prefix(3).joined(separator: "; "))
        XCTAssertGreaterThan(served.count, 16)
        XCTAssertGreaterThan(version, 3, "several unload/load cycles happened")
        let listing = try admin.plugins().filter { $0.name == "random" }
        XCTAssertEqual(listing.filter { $0.state == .loaded }.count, 1, "\(listing)")
        XCTAssertTrue(listing.contains { $0.state == .retired }, "old versions stay mapped, retired: \(listing)")
    }
}
