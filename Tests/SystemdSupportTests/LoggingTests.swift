import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SystemdSupport

final class LoggingTests: XCTestCase {
    /// `DEVICE:INODE` of the file open on `fd`.
    private func identity(of fd: Int32) -> String {
        var status = stat()
        fstat(fd, &status)
        return "\(status.st_dev):\(status.st_ino)"
    }

    func testJournalStreamDetection() throws {
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { ends.forEach { close($0) } }
        let own = identity(of: ends[1])

        XCTAssertTrue(ServiceLogger.isJournalStream(own, descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream(nil, descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream(identity(of: ends[0]) + "9", descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream("1:2", descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream("garbage", descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream(own + ":1", descriptor: ends[1]))
        XCTAssertFalse(ServiceLogger.isJournalStream(own, descriptor: 9999))

        XCTAssertEqual(ServiceLogger(identifier: "t", output: ends[1], journalStream: own).destination, .journal)
        XCTAssertEqual(ServiceLogger(identifier: "t", output: ends[1], journalStream: "1:2").destination, .lines)
    }

    /// A JOURNAL_STREAM that names another file (inherited by a child whose stderr was redirected) gives
    /// plain lines.
    func testMismatchedJournalStreamGivesPlainLines() throws {
        let probe = try TestSupport.probePath()
        let outcome = try TestSupport.run(probe, ["log"], environment: ["JOURNAL_STREAM": "8:12345"])
        XCTAssertEqual(outcome.stdout, "destination=lines\n")

        let lines = outcome.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, outcome.stderr)
        guard lines.count == 3 else {
            return
        }
        let pattern = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  probe started model=mbv3-small request_id=42$"#
        XCTAssertNotNil(lines[0].range(of: pattern, options: .regularExpression), lines[0])
        XCTAssertTrue(lines[1].hasSuffix("Z warning deadline missed target=analytic deadline_ms=2000"), lines[1])
        XCTAssertTrue(lines[2].hasSuffix("Z debug detail with\\nnewline"), lines[2])
    }

    func testLineFormat() {
        let time = timespec(tv_sec: 1_796_310_000, tv_nsec: 123_456_789)
        let line = ServiceLogger.formatLine(
            time: time, level: .info, message: "model loaded",
            fields: [("model", "mbv3-small"), ("path", "/a b"), ("empty", ""), ("quote", "say \"hi\"")])
        XCTAssertEqual(
            line,
            "2026-12-03T15:00:00.123Z info  model loaded model=mbv3-small path=\"/a b\" empty=\"\" "
                + "quote=\"say \\\"hi\\\"\"\n")

        let escaped = ServiceLogger.formatLine(
            time: timespec(tv_sec: 0, tv_nsec: 5_000_000), level: .error, message: "two\nlines\tand \\ \u{1b}",
            fields: [])
        XCTAssertEqual(escaped, "1970-01-01T00:00:00.005Z error two\\nlines\\tand \\\\ \\u{1b}\n")
    }

    func testJournalFieldNames() {
        XCTAssertEqual(ServiceLogger.journalFieldName("request_id"), "REQUEST_ID")
        XCTAssertEqual(ServiceLogger.journalFieldName("model"), "MODEL")
        XCTAssertEqual(ServiceLogger.journalFieldName("peer.uid"), "PEER_UID")
        XCTAssertEqual(ServiceLogger.journalFieldName("_trusted"), "F_TRUSTED")
        XCTAssertEqual(ServiceLogger.journalFieldName("9lives"), "F9LIVES")
        XCTAssertEqual(ServiceLogger.journalFieldName(String(repeating: "a", count: 80)).count, 64)
    }

    func testLevelsFilterAndMapToPriorities() throws {
        XCTAssertEqual(LogLevel.allCases.map(\.syslogPriority), [7, 6, 5, 4, 3])
        XCTAssertTrue(LogLevel.debug < LogLevel.error)

        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]) }
        let logger = ServiceLogger(identifier: "t", minimumLevel: .notice, output: ends[1], journalStream: nil)
        logger.info("dropped")
        logger.notice("kept")
        close(ends[1])
        let text = String(decoding: FileHandle(fileDescriptor: ends[0]).readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.hasSuffix(" notice kept\n"), text)
        XCTAssertFalse(text.contains("dropped"))
    }

    /// Entries from many threads come out as whole lines.
    func testConcurrentEntriesStayWhole() throws {
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        let path = directory + "/log"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let logger = ServiceLogger(identifier: "t", output: fd, journalStream: nil)
        let padding = String(repeating: "x", count: 6000)

        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<50 {
                logger.info("entry", ["thread": String(thread), "index": String(index), "padding": padding])
            }
        }
        close(fd)

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 400)
        XCTAssertTrue(lines.allSatisfy { $0.hasSuffix(" padding=" + padding) && $0.contains(" info  entry thread=") })
    }

    /// With stderr really being the "journal" stream, entries go through sd_journal_sendv to the journal
    /// socket: here a datagram socket of the test's, bind-mounted over /run/systemd/journal in a private mount
    /// namespace of the probe (needs root and unshare).
    func testJournalEntriesCarryStructuredFields() throws {
        let probe = try TestSupport.probePath()
        let unshare = try TestSupport.requireTool("unshare")
        guard getuid() == 0 else {
            throw XCTSkip("a private mount namespace needs root")
        }
        let directory = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(directory) }
        try FileManager.default.createDirectory(atPath: directory + "/journal", withIntermediateDirectories: false)
        let receiver = try TestSupport.boundSocket(directory + "/journal/socket", type: Int32(SOCK_DGRAM.rawValue))
        defer { close(receiver) }

        // The probe's stderr is a file whose identity goes into JOURNAL_STREAM.
        let stderrPath = directory + "/stderr"
        let stderrFD = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(stderrFD) }
        let script =
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && "
            + "mount --bind \"$1/journal\" /run/systemd/journal && exec \"$2\" log 2>\"$1/stderr\""
        let outcome = try TestSupport.run(
            unshare, ["--mount", "/bin/sh", "-c", script, "sh", directory, probe],
            environment: ["JOURNAL_STREAM": identity(of: stderrFD)])
        guard outcome.status == 0 else {
            throw XCTSkip("no private mount namespace here: \(outcome.stderr)")
        }
        XCTAssertEqual(outcome.stdout, "destination=journal\n")

        let entries = TestSupport.pendingDatagrams(receiver)
        XCTAssertEqual(entries.count, 3)
        let first = TestSupport.assignments(entries.first ?? "")
        XCTAssertEqual(first["MESSAGE"], "probe started")
        XCTAssertEqual(first["PRIORITY"], "6")
        XCTAssertEqual(first["SYSLOG_IDENTIFIER"], "notify-probe")
        XCTAssertEqual(first["MODEL"], "mbv3-small")
        XCTAssertEqual(first["REQUEST_ID"], "42")
        XCTAssertEqual(first["CODE_FUNC"], "logSamples()")
        let second = TestSupport.assignments(entries.count > 1 ? entries[1] : "")
        XCTAssertEqual(second["TARGET"], "analytic")
        XCTAssertEqual(second["PRIORITY"], "4")
        XCTAssertEqual(try String(contentsOfFile: stderrPath, encoding: .utf8), "", "nothing should go to stderr")
    }
}
