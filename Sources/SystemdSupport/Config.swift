#if canImport(Glibc)
import Glibc
#endif

/// supernetd's settings: built-in defaults, then the config file, then command-line flags, each overriding the
/// one before.
///
/// ## The config file
///
/// `/etc/supernetd/supernetd.conf` unless `--config FILE` names another. One setting per line:
///
///     # Clients in group "supernet" may connect.
///     socket = /run/supernetd/client.sock
///     plugins = /usr/lib/supernetd/plugins, /usr/local/lib/supernetd/plugins
///     max_connections = 128
///
/// - A line that is empty or whose first non-blank character is `#` is ignored. A `#` after a value is part of
///   the value (there are no trailing comments), and there is no quoting.
/// - Blanks around the key and the value are ignored; the value runs to the end of the line.
/// - Each key may appear once. `plugins` takes a comma-separated list of directories.
/// - An unknown key, a line without `=`, a repeated key or a bad value is an error naming the file and line.
/// - A missing default file is fine (all defaults); a missing file given with `--config` is an error.
///
/// ## Flags
///
/// Every key is also a flag with `-` for `_` (`--admin-socket PATH` or `--admin-socket=PATH`). A flag
/// overrides the file. `--plugins DIR` may be repeated; the flags' directories then replace the file's list.
/// Other flags may be given once. `--config FILE` chooses the file.
public struct DaemonConfiguration: Sendable, Equatable {
    /// The config file read when `--config` is not given.
    public static let defaultPath = "/etc/supernetd/supernetd.conf"

    /// `socket`: the client socket's path (default `/run/supernetd/client.sock`); unused when socket-activated.
    public var socket = "/run/supernetd/client.sock"
    /// `admin_socket`: the admin socket's path (default `/run/supernetd/admin.sock`); unused when activated.
    public var adminSocket = "/run/supernetd/admin.sock"
    /// `models`: the directory of `.supernet` model files (default `/usr/share/supernetd/models`).
    public var models = "/usr/share/supernetd/models"
    /// `plugins`: directories plugins may be loaded from, in search order (default `/usr/lib/supernetd/plugins`).
    public var plugins = ["/usr/lib/supernetd/plugins"]
    /// `state_dir`: the writable state directory (default `/var/lib/supernetd`, systemd's `StateDirectory=`).
    public var stateDirectory = "/var/lib/supernetd"
    /// `admin_group`: a group whose members may use admin operations besides root; nil (empty value, the
    /// default) means root only.
    public var adminGroup: String?
    /// `max_connections`: concurrent client connections; more are refused (default 64, 1...65536).
    public var maxConnections = 64
    /// `max_inflight_per_connection`: requests one connection may have open at once (default 8, 1...1024).
    public var maxInflightPerConnection = 8
    /// `max_frame_bytes`: the largest protocol frame accepted, checked before allocating (default 16 MiB,
    /// 4 KiB...1 GiB).
    public var maxFrameBytes = 16 << 20
    /// `idle_timeout_s`: seconds before an idle connection is closed; 0 never (default 300, 0...86400).
    public var idleTimeoutSeconds = 300
    /// `cache_entries`: specialized subnets kept in memory (default 32, 0...100000; 0 disables the cache).
    public var cacheEntries = 32
    /// `worker_threads`: threads for searches and kernels; 0 means one per online processor (default 0, 0...1024).
    public var workerThreads = 0
    /// `default_strategy`: the search strategy used when a request names none (default `evolution`).
    public var defaultStrategy = "evolution"
    /// `default_deadline_ms`: the search deadline when a request gives none; the search returns its best so far
    /// (default 100, 1...3600000).
    public var defaultDeadlineMilliseconds = 100
    /// `calibration_images`: images used to recalibrate BatchNorm for a served subnet, at most what the model
    /// file holds; 0 means all of them, as `supernet extract` does (default 0, 0...1000000).
    public var calibrationImages = 0
    /// `pareto_rung_ms`: search time per budget rung when building a (model, target) Pareto archive in the
    /// background, which then answers default-strategy requests by lookup; 0 turns archives off (default 250,
    /// 0...60000).
    public var paretoRungMilliseconds = 250
    /// The config file that was read, or nil when none was (the default file is missing).
    public var sourceFile: String?

    /// The built-in defaults.
    public init() {}

    /// The configuration from `arguments` (without the program name) and the config file they select.
    /// - Parameter defaultFile: the file read when there is no `--config` (default `defaultPath`); a missing
    ///   one is skipped.
    /// - Throws: `ConfigurationError` for an unknown or repeated flag, a flag without a value, a positional
    ///   argument, a bad value, an unreadable file or an error in it.
    public static func load(
        arguments: [String], defaultFile: String = defaultPath
    ) throws(ConfigurationError) -> DaemonConfiguration {
        let flags = try parseFlags(arguments)
        let explicitFile = flags.last { $0.key == "config" }?.value
        var configuration = DaemonConfiguration()

        if let text = try readFile(explicitFile ?? defaultFile, mustExist: explicitFile != nil) {
            try configuration.apply(fileText: text, path: explicitFile ?? defaultFile)
            configuration.sourceFile = explicitFile ?? defaultFile
        }

        try configuration.apply(flags: flags)
        return configuration
    }

    /// Applies the settings in `fileText`, read from `path` (used in errors only), over the current values.
    /// - Throws: `ConfigurationError` naming `path` and the line.
    public mutating func apply(fileText: String, path: String) throws(ConfigurationError) {
        var seen: Set<String> = []
        for (index, rawLine) in fileText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let source = ConfigurationError.Source.file(path: path, line: index + 1)
            let line = Self.trimmed(rawLine)
            if line.isEmpty || line.hasPrefix("#") {
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(.syntax, key: nil, source: source)
            }

            let key = Self.trimmed(line[..<equals])
            let value = Self.trimmed(line[line.index(after: equals)...])
            guard let setting = Self.settings.first(where: { $0.key == key }) else {
                throw ConfigurationError(.unknownKey, key: key, source: source)
            }
            guard seen.insert(key).inserted else {
                throw ConfigurationError(.repeated, key: key, source: source)
            }
            do {
                try setting.assign(&self, value)
            } catch {
                throw ConfigurationError(.badValue(Self.reason(error)), key: key, source: source)
            }
        }
    }

    /// The usage text listing every flag, one per line.
    public static var usage: String {
        var lines = ["usage: supernetd [--config FILE] [flags]", "  --config FILE  (default \(defaultPath))"]
        for setting in settings {
            let repeatable = setting.isList ? " (repeatable)" : ""
            lines.append("  --\(setting.flag) \(setting.placeholder)\(repeatable)")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Flags

    /// Splits `arguments` into `(flag name without dashes, value)` pairs, checking names and values exist.
    private static func parseFlags(_ arguments: [String]) throws(ConfigurationError) -> [(key: String, value: String)] {
        var flags: [(key: String, value: String)] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError(.unexpectedArgument, key: argument, source: .commandLine)
            }

            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard name == "config" || settings.contains(where: { $0.flag == name }) else {
                throw ConfigurationError(.unknownFlag, key: "--\(name)", source: .commandLine)
            }
            if value == nil {
                guard index < arguments.count else {
                    throw ConfigurationError(.missingValue, key: "--\(name)", source: .commandLine)
                }
                value = arguments[index]
                index += 1
            }
            let isRepeatable = name == "plugins"
            if !isRepeatable, flags.contains(where: { $0.key == name }) {
                throw ConfigurationError(.repeated, key: "--\(name)", source: .commandLine)
            }
            flags.append((name, value ?? ""))
        }
        return flags
    }

    /// Applies parsed flags (other than `--config`) over the current values.
    private mutating func apply(flags: [(key: String, value: String)]) throws(ConfigurationError) {
        var pluginDirectories: [String] = []
        for flag in flags where flag.key != "config" {
            guard let setting = Self.settings.first(where: { $0.flag == flag.key }) else {
                continue
            }
            do {
                if setting.isList {
                    pluginDirectories.append(try Self.absolutePath(flag.value))
                } else {
                    try setting.assign(&self, flag.value)
                }
            } catch {
                throw ConfigurationError(.badValue(Self.reason(error)), key: "--\(flag.key)", source: .commandLine)
            }
        }
        if !pluginDirectories.isEmpty {
            plugins = pluginDirectories
        }
    }

    // MARK: Settings

    /// One key: its file name, flag name, placeholder for the usage text, and how to store a value.
    ///
    /// `assign` throws only `InvalidValue`; it is untyped because closure literals in the table below would
    /// otherwise each need their full signature spelled out.
    private struct Setting: Sendable {
        let key: String
        let placeholder: String
        let isList: Bool
        let assign: @Sendable (inout DaemonConfiguration, String) throws -> Void

        var flag: String {
            String(key.map { $0 == "_" ? "-" : $0 })
        }

        init(
            _ key: String, _ placeholder: String, isList: Bool = false,
            _ assign: @escaping @Sendable (inout DaemonConfiguration, String) throws -> Void
        ) {
            self.key = key
            self.placeholder = placeholder
            self.isList = isList
            self.assign = assign
        }
    }

    /// Why a value was rejected, without the key or location (the caller adds those).
    private struct InvalidValue: Error {
        let reason: String
    }

    /// The reason text of an error thrown by `Setting.assign`.
    private static func reason(_ error: any Error) -> String {
        (error as? InvalidValue)?.reason ?? "\(error)"
    }

    /// Every key, in the order the usage text lists them.
    private static let settings: [Setting] = [
        Setting("socket", "PATH") { $0.socket = try socketPath($1) },
        Setting("admin_socket", "PATH") { $0.adminSocket = try socketPath($1) },
        Setting("models", "DIR") { $0.models = try absolutePath($1) },
        Setting("plugins", "DIR", isList: true) { $0.plugins = try directoryList($1) },
        Setting("state_dir", "DIR") { $0.stateDirectory = try absolutePath($1) },
        Setting("admin_group", "NAME") { $0.adminGroup = try groupName($1) },
        Setting("max_connections", "N") { $0.maxConnections = try integer($1, in: 1...65_536) },
        Setting("max_inflight_per_connection", "N") { $0.maxInflightPerConnection = try integer($1, in: 1...1024) },
        Setting("max_frame_bytes", "BYTES") { $0.maxFrameBytes = try integer($1, in: 4096...(1 << 30)) },
        Setting("idle_timeout_s", "SECONDS") { $0.idleTimeoutSeconds = try integer($1, in: 0...86_400) },
        Setting("cache_entries", "N") { $0.cacheEntries = try integer($1, in: 0...100_000) },
        Setting("worker_threads", "N") { $0.workerThreads = try integer($1, in: 0...1024) },
        Setting("default_strategy", "NAME") { $0.defaultStrategy = try pluginName($1) },
        Setting("default_deadline_ms", "MS") { $0.defaultDeadlineMilliseconds = try integer($1, in: 1...3_600_000) },
        Setting("calibration_images", "N") { $0.calibrationImages = try integer($1, in: 0...1_000_000) },
        Setting("pareto_rung_ms", "MS") { $0.paretoRungMilliseconds = try integer($1, in: 0...60_000) },
    ]

    private static func integer(_ text: String, in range: ClosedRange<Int>) throws(InvalidValue) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw InvalidValue(reason: "'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    private static func absolutePath(_ text: String) throws(InvalidValue) -> String {
        guard text.hasPrefix("/"), !text.utf8.contains(0) else {
            throw InvalidValue(reason: "'\(text)' is not an absolute path")
        }
        return text
    }

    private static func socketPath(_ text: String) throws(InvalidValue) -> String {
        let path = try absolutePath(text)
        guard path.utf8.count <= UnixListener.maximumPathBytes else {
            throw InvalidValue(
                reason: "'\(text)' is \(path.utf8.count) bytes; a socket path has at most "
                    + "\(UnixListener.maximumPathBytes)")
        }
        return path
    }

    private static func directoryList(_ text: String) throws(InvalidValue) -> [String] {
        var directories: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            directories.append(try absolutePath(trimmed(item)))
        }
        return directories
    }

    /// A group name: empty for none, else letters, digits, `_`, `-`, `.`, not starting with `-`.
    private static func groupName(_ text: String) throws(InvalidValue) -> String? {
        if text.isEmpty {
            return nil
        }
        guard isPlainName(text) else {
            throw InvalidValue(reason: "'\(text)' is not a group name (letters, digits, '_', '-', '.')")
        }
        return text
    }

    private static func pluginName(_ text: String) throws(InvalidValue) -> String {
        guard isPlainName(text) else {
            throw InvalidValue(reason: "'\(text)' is not a strategy name (letters, digits, '_', '-', '.')")
        }
        return text
    }

    private static func isPlainName(_ text: String) -> Bool {
        !text.isEmpty && !text.hasPrefix("-") && text.utf8.count <= 64
            && text.unicodeScalars.allSatisfy(isNameCharacter)
    }

    private static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == "_" || scalar == "-" || scalar == "."
    }

    // MARK: Text and files

    private static func trimmed(_ text: Substring) -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !isBlank($0) }) else {
            return ""
        }
        let last = text.lastIndex(where: { !isBlank($0) }) ?? first
        return String(text[first...last])
    }

    private static func trimmed(_ text: String) -> String {
        trimmed(text[...])
    }

    /// The file's text, or nil when it does not exist and `mustExist` is false. Files over 1 MiB are refused.
    private static func readFile(_ path: String, mustExist: Bool) throws(ConfigurationError) -> String? {
        let fd: Int32
        do {
            fd = try SystemCall.retrying("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            if error.errno == ENOENT && !mustExist {
                return nil
            }
            throw ConfigurationError(.unreadableFile(error), key: nil, source: .file(path: path, line: nil))
        }
        defer { SystemCall.closeDescriptor(fd) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count: Int
            do {
                count = try SystemCall.retrying("read", path: path) { read(fd, &chunk, chunk.count) }
            } catch {
                throw ConfigurationError(.unreadableFile(error), key: nil, source: .file(path: path, line: nil))
            }
            if count == 0 {
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes += chunk[..<count]
            guard bytes.count <= 1 << 20 else {
                let tooBig = SystemCallError(call: "read", errno: EFBIG, path: path, detail: "larger than 1 MiB")
                throw ConfigurationError(.unreadableFile(tooBig), key: nil, source: .file(path: path, line: nil))
            }
        }
    }
}

/// A configuration mistake: what is wrong, the key or flag, and where (file and line, or the command line).
public struct ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What is wrong.
    public enum Kind: Equatable, Sendable {
        /// The file has a key that is not a setting.
        case unknownKey
        /// The command line has a flag that is not a setting.
        case unknownFlag
        /// A flag is last on the command line and has no value.
        case missingValue
        /// A key or a (non-repeatable) flag appears twice.
        case repeated
        /// A file line has no `=`.
        case syntax
        /// A command-line argument does not start with `--`.
        case unexpectedArgument
        /// The value does not fit the key; the text says what is expected.
        case badValue(String)
        /// The config file cannot be opened or read (including a missing `--config` file).
        case unreadableFile(SystemCallError)
    }

    /// Where the mistake is.
    public enum Source: Equatable, Sendable {
        /// In a config file, at a 1-based line when known.
        case file(path: String, line: Int?)
        /// On the command line.
        case commandLine
    }

    /// What is wrong.
    public let kind: Kind
    /// The key (file) or flag (`--name`, command line) concerned, if any.
    public let key: String?
    /// Where it is.
    public let source: Source

    /// Creates an error.
    public init(_ kind: Kind, key: String?, source: Source) {
        self.kind = kind
        self.key = key
        self.source = source
    }

    /// One line, e.g. `/etc/supernetd/supernetd.conf:7: max_connections: '0' is not an integer in 1...65536`.
    public var description: String {
        let location: String
        switch source {
        case .file(let path, let line?): location = "\(path):\(line)"
        case .file(let path, nil): location = path
        case .commandLine: location = "command line"
        }
        let subject = key.map { "\($0): " } ?? ""
        switch kind {
        case .unknownKey: return "\(location): unknown key '\(key ?? "")'"
        case .unknownFlag: return "\(location): unknown flag '\(key ?? "")'"
        case .missingValue: return "\(location): \(subject)needs a value"
        case .repeated: return "\(location): \(subject)given more than once"
        case .syntax: return "\(location): expected 'key = value' or a '#' comment"
        case .unexpectedArgument: return "\(location): unexpected argument '\(key ?? "")'"
        case .badValue(let reason): return "\(location): \(subject)\(reason)"
        case .unreadableFile(let error): return "\(location): cannot read the config file: \(error)"
        }
    }
}
