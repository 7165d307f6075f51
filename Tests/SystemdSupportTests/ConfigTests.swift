import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SystemdSupport

final class ConfigTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try TestSupport.makeScratchDirectory()
    }

    override func tearDown() {
        TestSupport.removeTree(directory)
    }

    /// Writes `text` to a file in the scratch directory and returns its path.
    private func file(_ text: String, named name: String = "supernetd.conf") -> String {
        let path = directory + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        return path
    }

    /// Loads with `arguments` and a default file that does not exist, unless a test passes one.
    private func load(_ arguments: [String], defaultFile: String? = nil) throws -> DaemonConfiguration {
        try DaemonConfiguration.load(arguments: arguments, defaultFile: defaultFile ?? directory + "/absent.conf")
    }

    /// Asserts that loading fails with `kind` for `key` at `source`.
    private func assertFails(
        _ arguments: [String], _ kind: ConfigurationError.Kind, key: String?, source: ConfigurationError.Source,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try load(arguments), line: line) { error in
            XCTAssertEqual(error as? ConfigurationError, ConfigurationError(kind, key: key, source: source), line: line)
        }
    }

    func testDefaultsWhenTheDefaultFileIsMissing() throws {
        let configuration = try load([])
        XCTAssertEqual(configuration, DaemonConfiguration())
        XCTAssertNil(configuration.sourceFile)
        XCTAssertEqual(configuration.socket, "/run/supernetd/client.sock")
        XCTAssertEqual(configuration.adminSocket, "/run/supernetd/admin.sock")
        XCTAssertEqual(configuration.models, "/usr/share/supernetd/models")
        XCTAssertEqual(configuration.plugins, ["/usr/lib/supernetd/plugins"])
        XCTAssertEqual(configuration.stateDirectory, "/var/lib/supernetd")
        XCTAssertNil(configuration.adminGroup)
        XCTAssertEqual(DaemonConfiguration.defaultPath, "/etc/supernetd/supernetd.conf")
    }

    func testEveryKeyFromTheDefaultFile() throws {
        let path = file(
            """
            # a comment, then a blank line

              socket = /run/s/c.sock
            admin_socket=/run/s/a.sock
            models = /srv/models
            plugins = /opt/p1 , /opt/p2
            state_dir = /srv/state
            admin_group = supernet-admin
            max_connections = 10
            max_inflight_per_connection = 2
            max_frame_bytes = 65536
            idle_timeout_s = 0
            cache_entries = 0
            worker_threads = 3
            default_strategy = random-search
            default_deadline_ms = 750
            calibration_images = 64
            """)
        let configuration = try load([], defaultFile: path)
        var expected = DaemonConfiguration()
        expected.socket = "/run/s/c.sock"
        expected.adminSocket = "/run/s/a.sock"
        expected.models = "/srv/models"
        expected.plugins = ["/opt/p1", "/opt/p2"]
        expected.stateDirectory = "/srv/state"
        expected.adminGroup = "supernet-admin"
        expected.maxConnections = 10
        expected.maxInflightPerConnection = 2
        expected.maxFrameBytes = 65536
        expected.idleTimeoutSeconds = 0
        expected.cacheEntries = 0
        expected.workerThreads = 3
        expected.defaultStrategy = "random-search"
        expected.defaultDeadlineMilliseconds = 750
        expected.calibrationImages = 64
        expected.sourceFile = path
        XCTAssertEqual(configuration, expected)
    }

    func testFlagsOverrideTheFile() throws {
        let path = file("socket = /run/s/c.sock\nplugins = /opt/p1\nmax_connections = 10\nadmin_group = wheel\n")
        let configuration = try load([
            "--config", path, "--max-connections=20", "--plugins", "/opt/a", "--plugins=/opt/b",
            "--admin-group", "", "--default-deadline-ms", "99",
        ])
        XCTAssertEqual(configuration.socket, "/run/s/c.sock")
        XCTAssertEqual(configuration.maxConnections, 20)
        XCTAssertEqual(configuration.plugins, ["/opt/a", "/opt/b"])
        XCTAssertNil(configuration.adminGroup)
        XCTAssertEqual(configuration.defaultDeadlineMilliseconds, 99)
        XCTAssertEqual(configuration.sourceFile, path)
    }

    func testEveryKeyIsAFlag() throws {
        let configuration = try load([
            "--socket", "/a", "--admin-socket", "/b", "--models", "/c", "--plugins", "/d", "--state-dir", "/e",
            "--admin-group", "g", "--max-connections", "1", "--max-inflight-per-connection", "1",
            "--max-frame-bytes", "4096", "--idle-timeout-s", "1", "--cache-entries", "1", "--worker-threads", "1",
            "--default-strategy", "s", "--default-deadline-ms", "1", "--calibration-images", "1",
        ])
        XCTAssertEqual(configuration.socket, "/a")
        XCTAssertEqual(configuration.adminSocket, "/b")
        XCTAssertEqual(configuration.models, "/c")
        XCTAssertEqual(configuration.plugins, ["/d"])
        XCTAssertEqual(configuration.stateDirectory, "/e")
        XCTAssertEqual(configuration.adminGroup, "g")
        XCTAssertEqual(configuration.maxFrameBytes, 4096)
        XCTAssertEqual(configuration.calibrationImages, 1)
        XCTAssertTrue(DaemonConfiguration.usage.contains("--max-inflight-per-connection N"))
    }

    func testFileErrorsNameTheFileAndLine() throws {
        let cases: [(text: String, kind: ConfigurationError.Kind, key: String?, line: Int)] = [
            ("# ok\nmax_conections = 5\n", .unknownKey, "max_conections", 2),
            ("socket /run/x.sock\n", .syntax, nil, 1),
            ("models = /a\n\nmodels = /b\n", .repeated, "models", 3),
            ("max_connections = 0\n", .badValue("'0' is not an integer in 1...65536"), "max_connections", 1),
            (
                "max_connections = 64 # default\n", .badValue("'64 # default' is not an integer in 1...65536"),
                "max_connections", 1
            ),
            ("models = relative/dir\n", .badValue("'relative/dir' is not an absolute path"), "models", 1),
            ("plugins = /a,,/b\n", .badValue("'' is not an absolute path"), "plugins", 1),
            (
                "default_strategy = \n", .badValue("'' is not a strategy name (letters, digits, '_', '-', '.')"),
                "default_strategy", 1
            ),
            (
                "admin_group = bad group\n",
                .badValue("'bad group' is not a group name (letters, digits, '_', '-', '.')"),
                "admin_group", 1
            ),
        ]
        for (index, testCase) in cases.enumerated() {
            let path = file(testCase.text, named: "case\(index).conf")
            XCTAssertThrowsError(try load(["--config", path]), "case \(index)") { error in
                let expected = ConfigurationError(
                    testCase.kind, key: testCase.key, source: .file(path: path, line: testCase.line))
                XCTAssertEqual(error as? ConfigurationError, expected, "case \(index)")
            }
        }
    }

    func testOverlongSocketPathIsABadValue() throws {
        let path = "/run/" + String(repeating: "x", count: 110)
        XCTAssertThrowsError(try load(["--socket", path])) { error in
            XCTAssertTrue("\(error)".hasPrefix("command line: --socket: '\(path)' is 115 bytes"), "\(error)")
        }
    }

    func testCommandLineErrors() {
        assertFails(["--sockett", "/x"], .unknownFlag, key: "--sockett", source: .commandLine)
        assertFails(["--models"], .missingValue, key: "--models", source: .commandLine)
        assertFails(["--models", "/a", "--models=/b"], .repeated, key: "--models", source: .commandLine)
        assertFails(["serve"], .unexpectedArgument, key: "serve", source: .commandLine)
        assertFails(
            ["--worker-threads", "many"], .badValue("'many' is not an integer in 0...1024"), key: "--worker-threads",
            source: .commandLine)
        assertFails(
            ["--plugins", "/a", "--plugins", "b"], .badValue("'b' is not an absolute path"), key: "--plugins",
            source: .commandLine)
    }

    func testMissingExplicitFileIsAnError() {
        let path = directory + "/nope.conf"
        XCTAssertThrowsError(try load(["--config", path])) { error in
            guard case .unreadableFile(let cause)? = (error as? ConfigurationError)?.kind else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(cause, SystemCallError(call: "open", errno: ENOENT, path: path))
            XCTAssertEqual((error as? ConfigurationError)?.source, .file(path: path, line: nil))
        }
    }

    func testUnreadableDefaultFileIsAnError() {
        // A directory opens but cannot be read: only a missing default file is silently skipped.
        XCTAssertThrowsError(try load([], defaultFile: directory)) { error in
            guard case .unreadableFile(let cause)? = (error as? ConfigurationError)?.kind else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(cause.errno, EISDIR)
        }
    }

    /// The shipped systemd/supernetd.conf parses, and with every "# key = value" line uncommented it lists
    /// every key at exactly the built-in default.
    func testShippedExampleListsTheDefaults() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("systemd/supernetd.conf").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(try load([], defaultFile: path).socket, DaemonConfiguration().socket)

        let settings = text.split(separator: "\n").map(String.init)
            .filter { $0.range(of: #"^# [a-z_]+ ="#, options: .regularExpression) != nil }
            .map { String($0.dropFirst(2)) }
        XCTAssertEqual(settings.count, 16)
        var uncommented = DaemonConfiguration()
        try uncommented.apply(fileText: settings.joined(separator: "\n"), path: path)
        XCTAssertEqual(uncommented, DaemonConfiguration())
    }

    func testErrorDescriptions() {
        let bad = ConfigurationError(
            .badValue("'0' is not an integer in 1...65536"), key: "max_connections",
            source: .file(path: "/etc/supernetd/supernetd.conf", line: 7))
        XCTAssertEqual(
            bad.description, "/etc/supernetd/supernetd.conf:7: max_connections: '0' is not an integer in 1...65536")
        let unknown = ConfigurationError(.unknownKey, key: "colour", source: .file(path: "/x.conf", line: 2))
        XCTAssertEqual(unknown.description, "/x.conf:2: unknown key 'colour'")
    }
}
