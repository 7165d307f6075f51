import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SystemdSupport

final class NotifyTests: XCTestCase {
    /// The probe's notifications arrive on a NOTIFY_SOCKET this test owns, in order and with the right content.
    func testNotificationsReachTheNotifySocket() throws {
        let probe = try TestSupport.probePath()
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let socketPath = directory + "/notify"
        let receiver = try TestSupport.boundSocket(socketPath, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(receiver) }

        let outcome = try TestSupport.run(probe, ["notify"], environment: ["NOTIFY_SOCKET": socketPath])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("supervised=true"))
        XCTAssertFalse(outcome.stdout.contains("=false"), "every call should report a sent message")

        let messages = TestSupport.pendingDatagrams(receiver)
        XCTAssertEqual(messages.count, 6)
        guard messages.count == 6 else {
            return
        }
        XCTAssertEqual(messages[0], "READY=1\nSTATUS=probe starting done")
        XCTAssertEqual(messages[1], "STATUS=serving 2 models second line")
        XCTAssertEqual(messages[2], "WATCHDOG=1")
        let reloading = messages[3].split(separator: "\n").map(String.init)
        XCTAssertEqual(reloading.first, "RELOADING=1")
        XCTAssertEqual(reloading.last, "STATUS=reloading")
        let monotonic = reloading.first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { UInt64($0.dropFirst(15)) }
        XCTAssertNotNil(monotonic)
        XCTAssertGreaterThan(monotonic ?? 0, 0)
        XCTAssertEqual(messages[4], "READY=1")
        XCTAssertEqual(messages[5], "STOPPING=1\nSTATUS=draining")
    }

    /// Without NOTIFY_SOCKET every call is a no-op that says so.
    func testUnsupervisedCallsSendNothing() throws {
        let probe = try TestSupport.probePath()
        let outcome = try TestSupport.run(probe, ["notify"], environment: ["NOTIFY_SOCKET": nil])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("supervised=false"))
        XCTAssertFalse(outcome.stdout.contains("=true"))
    }

    /// A NOTIFY_SOCKET nobody listens on is an error, not a silent success.
    func testUnreachableNotifySocketIsAnError() throws {
        let probe = try TestSupport.probePath()
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }

        let outcome = try TestSupport.run(probe, ["notify"], environment: ["NOTIFY_SOCKET": directory + "/absent"])
        XCTAssertEqual(outcome.status, 1)
        XCTAssertTrue(outcome.stderr.contains("sd_notify"), outcome.stderr)
    }

    /// The interval is half of WATCHDOG_USEC, and nil when the watchdog is off or meant for another process.
    func testWatchdogIntervalIsHalfOfWatchdogUsec() throws {
        let probe = try TestSupport.probePath()
        let enabled = try TestSupport.run(probe, ["watchdog-interval"], environment: ["WATCHDOG_USEC": "3000000"])
        XCTAssertEqual(enabled.stdout, "1500000\n")

        let off = try TestSupport.run(probe, ["watchdog-interval"], environment: ["WATCHDOG_USEC": nil])
        XCTAssertEqual(off.stdout, "none\n")

        let otherProcess = try TestSupport.run(
            probe, ["watchdog-interval"], environment: ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"])
        XCTAssertEqual(otherProcess.stdout, "none\n")
    }

    /// Status text cannot inject further assignments.
    func testValuesAreFlattenedToOneLine() {
        XCTAssertEqual(ServiceNotifier.oneLine("a\nREADY=1\r\nb\0c"), "a READY=1 b c")
    }
}
