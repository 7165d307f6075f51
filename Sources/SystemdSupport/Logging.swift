import CSystemd
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How important a log entry is; each maps to a syslog priority for the journal.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    /// Detail for developers (priority 7); off by default.
    case debug
    /// What an operator should know happened: started, reloaded, model loaded (priority 6).
    case info
    /// Normal but significant: a plugin retired, a client refused for credentials (priority 5).
    case notice
    /// Something is wrong but the daemon carries on: a bad plugin skipped, a deadline missed (priority 4).
    case warning
    /// An operation failed: a request, a reload, a socket (priority 3).
    case error

    /// The syslog priority, as `PRIORITY=` in the journal (`LOG_DEBUG` ... `LOG_ERR`).
    public var syslogPriority: Int32 {
        switch self {
        case .debug: LOG_DEBUG
        case .info: LOG_INFO
        case .notice: LOG_NOTICE
        case .warning: LOG_WARNING
        case .error: LOG_ERR
        }
    }

    /// The lower-case name written in plain lines.
    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        }
    }

    /// Orders levels by importance, `debug` lowest.
    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// The executables' logger: structured journal entries when stderr is the journal, else plain lines on stderr.
///
/// Libraries do not log; they throw. Values belong in fields (`model`, `target`, `request_id`), not in the
/// message text, so that `journalctl MODEL=mbv3-small` finds them.
///
/// The journal is used when `$JOURNAL_STREAM` ("DEVICE:INODE", set by systemd for a service whose stderr goes
/// to the journal) names the same file as the output descriptor; entries then go through `sd_journal_sendv`
/// with `MESSAGE=`, `PRIORITY=`, `SYSLOG_IDENTIFIER=`, `CODE_FILE=`, `CODE_LINE=`, `CODE_FUNC=` and each field
/// under its upper-case name. Otherwise (a terminal, a file, a pipe, or a child that inherited the variable
/// but not the stream) each entry is one line:
///
///     2026-12-03T15:00:00.123Z info  model loaded model=mbv3-small target=analytic
///
/// Thread-safe: entries from different threads are written whole, one at a time.
public final class ServiceLogger: Sendable {
    /// Where entries go.
    public enum Destination: Sendable, Equatable {
        /// The journal's native protocol (`sd_journal_sendv`).
        case journal
        /// Plain lines on the output descriptor.
        case lines
    }

    /// Where this logger's entries go, decided once at creation.
    public let destination: Destination
    /// `SYSLOG_IDENTIFIER=` in the journal (e.g. "supernetd").
    public let identifier: String
    /// Entries below this level are dropped.
    public let minimumLevel: LogLevel
    private let output: Int32
    private let writeLock = Mutex<Void>(())

    /// Creates a logger writing to `output` (default 2, stderr).
    /// - Parameters:
    ///   - identifier: the program name for `SYSLOG_IDENTIFIER=`.
    ///   - minimumLevel: the lowest level written (default `.info`).
    ///   - output: the descriptor for plain lines and the one compared with `$JOURNAL_STREAM` (default 2).
    ///   - journalStream: the value of `$JOURNAL_STREAM` (default: read from the environment).
    public init(
        identifier: String, minimumLevel: LogLevel = .info, output: Int32 = 2,
        journalStream: String? = ServiceLogger.environmentJournalStream()
    ) {
        self.identifier = identifier
        self.minimumLevel = minimumLevel
        self.output = output
        self.destination = Self.isJournalStream(journalStream, descriptor: output) ? .journal : .lines
    }

    /// `$JOURNAL_STREAM`, read with `getenv`.
    public static func environmentJournalStream() -> String? {
        getenv("JOURNAL_STREAM").map { String(cString: $0) }
    }

    /// Whether `value` ("DEVICE:INODE", both decimal) names the file open on `descriptor` (from `fstat`).
    ///
    /// False when `value` is nil or malformed, or `fstat` fails.
    public static func isJournalStream(_ value: String?, descriptor: Int32) -> Bool {
        guard let value else {
            return false
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else {
            return false
        }

        var status = stat()
        guard (try? SystemCall.retrying("fstat") { fstat(descriptor, &status) }) != nil else {
            return false
        }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// Logs `message` at `level` with `fields` in order (keys in lower_snake_case: `model`, `request_id`).
    ///
    /// In the journal a key becomes upper case with every character other than A-Z, 0-9 and `_` replaced by
    /// `_` (`request_id` → `REQUEST_ID`). If `sd_journal_sendv` fails, the entry is written as a plain line.
    public func log(
        _ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        guard level >= minimumLevel else {
            return
        }
        let pairs = fields.map { (key: $0.key, value: $0.value) }

        if destination == .journal {
            let code = CodeLocation(file: file, line: line, function: function)
            if sendToJournal(level, message, pairs, code) {
                return
            }
        }
        writeLine(Self.formatLine(time: Self.now(), level: level, message: message, fields: pairs))
    }

    /// Logs at `.debug`.
    public func debug(
        _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        log(.debug, message, fields, file: file, line: line, function: function)
    }

    /// Logs at `.info`.
    public func info(
        _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        log(.info, message, fields, file: file, line: line, function: function)
    }

    /// Logs at `.notice`.
    public func notice(
        _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        log(.notice, message, fields, file: file, line: line, function: function)
    }

    /// Logs at `.warning`.
    public func warning(
        _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        log(.warning, message, fields, file: file, line: line, function: function)
    }

    /// Logs at `.error`.
    public func error(
        _ message: String, _ fields: KeyValuePairs<String, String> = [:],
        file: String = #fileID, line: Int = #line, function: String = #function
    ) {
        log(.error, message, fields, file: file, line: line, function: function)
    }

    /// One plain line, with its final `\n`: UTC time to the millisecond, the level padded to five columns, the
    /// message, then ` key=value` per field.
    ///
    /// Line breaks, tabs, backslashes and other control characters in the message are escaped (`\n`, `\t`,
    /// `\\`, `\u{1b}`) so an entry stays on one line. A value that is empty or holds a space, `"` or `=` is
    /// quoted, with `"` escaped.
    public static func formatLine(
        time: timespec, level: LogLevel, message: String, fields: [(key: String, value: String)]
    ) -> String {
        var line = timestamp(time) + " " + level.name
        line += String(repeating: " ", count: max(1, 6 - level.name.count))
        line += escaped(message)
        for field in fields {
            line += " \(field.key)=\(quotedIfNeeded(field.value))"
        }
        return line + "\n"
    }

    /// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (`gmtime_r`).
    static func timestamp(_ time: timespec) -> String {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let milliseconds = Int(time.tv_nsec / 1_000_000)
        return "\(padded(Int(parts.tm_year) + 1900, 4))-\(padded(Int(parts.tm_mon) + 1, 2))-"
            + "\(padded(Int(parts.tm_mday), 2))T\(padded(Int(parts.tm_hour), 2)):\(padded(Int(parts.tm_min), 2)):"
            + "\(padded(Int(parts.tm_sec), 2)).\(padded(milliseconds, 3))Z"
    }

    /// A journal field name for `key`: upper case, A-Z 0-9 `_` only, starting with a letter, at most 64 bytes.
    static func journalFieldName(_ key: String) -> String {
        var name = String(
            key.uppercased().unicodeScalars.map { scalar -> Character in
                let isAllowed = ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
                return isAllowed ? Character(scalar) : "_"
            })
        if !(name.first?.isLetter ?? false) {
            name = "F" + name
        }
        return String(name.prefix(64))
    }

    /// The current wall-clock time (`clock_gettime(CLOCK_REALTIME)`).
    private static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// Sends one entry with `sd_journal_sendv`; false when it failed.
    private func sendToJournal(
        _ level: LogLevel, _ message: String, _ fields: [(key: String, value: String)], _ code: CodeLocation
    ) -> Bool {
        var assignments = [
            "MESSAGE=\(message)", "PRIORITY=\(level.syslogPriority)", "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(code.file)", "CODE_LINE=\(code.line)", "CODE_FUNC=\(code.function)",
        ]
        assignments += fields.map { "\(Self.journalFieldName($0.key))=\($0.value)" }

        // One buffer holds every assignment back to back; the iovecs point into it.
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for assignment in assignments {
            let start = bytes.count
            bytes += assignment.utf8
            ranges.append(start..<bytes.count)
        }
        return bytes.withUnsafeMutableBytes { buffer in
            let vectors = ranges.map { range in
                iovec(iov_base: buffer.baseAddress! + range.lowerBound, iov_len: range.count)
            }
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) } >= 0
        }
    }

    /// Writes `line` whole to the output descriptor under the lock, retrying short writes; drops it on error
    /// (there is nowhere left to report a failing stderr).
    private func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        writeLock.withLock { _ in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = try? SystemCall.retrying("write") {
                        write(output, buffer.baseAddress! + offset, buffer.count - offset)
                    }
                    guard let written, written > 0 else {
                        return
                    }
                    offset += written
                }
            }
        }
    }

    /// `value` zero-padded on the left to `width` digits.
    private static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// `text` with backslashes and control characters escaped, and double quotes too when `quotes` is true.
    private static func escaped(_ text: String, quotes: Bool = false) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"" where quotes: result += "\\\""
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `value` escaped, and quoted when it is empty or holds a space, `"` or `=`.
    private static func quotedIfNeeded(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
        guard needsQuotes else {
            return escaped(value)
        }
        return "\"" + escaped(value, quotes: true) + "\""
    }
}

/// Where a log call was made, for `CODE_FILE=`, `CODE_LINE=` and `CODE_FUNC=`.
private struct CodeLocation {
    let file: String
    let line: Int
    let function: String
}
