import Foundation
import XCTest

/// Checks the files in `systemd/` with systemd's own tools, as the acceptance check does: ExecStart paths
/// replaced by an existing binary, `verify` silent, `security` exposure at most 2.0.
final class UnitFilesTests: XCTestCase {
    private let units = ["supernetd.service", "supernetd.socket", "supernetd-admin.socket"]

    /// Copies the units into a scratch directory with `/usr/bin/supernetd` replaced by `/bin/true`.
    private func preparedUnits() throws -> String {
        let directory = try TestSupport.makeScratchDirectory()
        for unit in units {
            let source = TestSupport.packageRoot.appendingPathComponent("systemd/\(unit)")
            let text = try String(contentsOf: source, encoding: .utf8)
            let replaced = text.replacingOccurrences(of: "/usr/bin/supernetd", with: "/bin/true")
            try replaced.write(toFile: "\(directory)/\(unit)", atomically: true, encoding: .utf8)
        }
        return directory
    }

    func testVerifyPrintsNothing() throws {
        let analyze = try TestSupport.requireTool("systemd-analyze")
        let directory = try preparedUnits()
        defer { TestSupport.removeTree(directory) }

        // All three, and the service with its same-named socket alone (what the acceptance check copies).
        for selection in [units, Array(units.prefix(2))] {
            let outcome = try TestSupport.run(analyze, ["verify"] + selection.map { "\(directory)/\($0)" })
            XCTAssertEqual(outcome.stdout + outcome.stderr, "", "verify \(selection)")
            XCTAssertEqual(outcome.status, 0)
        }
    }

    /// The check above can fail: a misspelled key makes verify talk.
    func testVerifyReportsUnknownKeys() throws {
        let analyze = try TestSupport.requireTool("systemd-analyze")
        let directory = try preparedUnits()
        defer { TestSupport.removeTree(directory) }
        let service = "\(directory)/supernetd.service"
        let text = try String(contentsOfFile: service, encoding: .utf8)
        try text.replacingOccurrences(of: "PrivateTmp=", with: "PrivateTemp=")
            .write(toFile: service, atomically: true, encoding: .utf8)

        let outcome = try TestSupport.run(analyze, ["verify", service, "\(directory)/supernetd.socket"])
        XCTAssertTrue(outcome.stderr.contains("Unknown key 'PrivateTemp'"), outcome.stderr)
    }

    func testSecurityExposureAtMostTwo() throws {
        let analyze = try TestSupport.requireTool("systemd-analyze")
        let directory = try preparedUnits()
        defer { TestSupport.removeTree(directory) }

        let outcome = try TestSupport.run(
            analyze, ["security", "--offline=true", "--no-pager", "\(directory)/supernetd.service"])
        let marker = "Overall exposure level for supernetd.service: "
        let line = try XCTUnwrap(
            outcome.stdout.split(separator: "\n").first { $0.contains(marker) }, outcome.stdout + outcome.stderr)
        let score = try XCTUnwrap(Double(line.components(separatedBy: marker)[1].split(separator: " ")[0]))
        XCTAssertLessThanOrEqual(score, 2.0, String(line))
    }

    /// sysusers.d creates the daemon's user and both groups (into a scratch root).
    func testSysusersCreatesUserAndGroups() throws {
        let sysusers = try TestSupport.requireTool("systemd-sysusers")
        let root = try TestSupport.makeScratchDirectory()
        defer { TestSupport.removeTree(root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: false)
        let config = TestSupport.packageRoot.appendingPathComponent("systemd/sysusers.d/supernetd.conf").path

        let outcome = try TestSupport.run(sysusers, ["--root=\(root)", config])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        let group = try String(contentsOfFile: root + "/etc/group", encoding: .utf8)
        XCTAssertTrue(passwd.contains("supernetd:x:"), passwd)
        XCTAssertTrue(passwd.contains(":/var/lib/supernetd:"), passwd)
        XCTAssertTrue(group.contains("\nsupernet:x:") || group.hasPrefix("supernet:x:"), group)
        XCTAssertTrue(group.contains("supernetd:x:"), group)
    }
}
