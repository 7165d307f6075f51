// Per-epoch metrics as JSON lines: one object per line, keys in the order given, each line written through.
import Engine
import Foundation

/// A value in a metrics record.
public enum MetricValue: Sendable, Equatable {
    /// An integer.
    case int(Int)
    /// A number; NaN and infinities are written as null (JSON has no spelling for them).
    case double(Double)
    /// A string.
    case string(String)
    /// A boolean.
    case bool(Bool)
    /// A list.
    case array([MetricValue])
    /// JSON null.
    case null

    /// The value as JSON text.
    public var json: String {
        switch self {
        case .int(let value):
            return String(value)
        case .double(let value):
            return value.isFinite ? Self.number(value) : "null"
        case .string(let value):
            return Self.quoted(value)
        case .bool(let value):
            return value ? "true" : "false"
        case .array(let values):
            return "[" + values.map(\.json).joined(separator: ",") + "]"
        case .null:
            return "null"
        }
    }

    /// Shortest round-tripping decimal; integral values keep a ".0" so readers see a float.
    private static func number(_ value: Double) -> String {
        let text = "\(value)"
        // Swift spells exponents "1e-05"/"1e+20", which JSON accepts; only the sign of zero needs care.
        return text == "-0.0" ? "0.0" : text
    }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"":
                out += "\\\""
            case "\\":
                out += "\\\\"
            case "\n":
                out += "\\n"
            case "\r":
                out += "\\r"
            case "\t":
                out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension MetricValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral
{
    /// An integer literal.
    public init(integerLiteral value: Int) {
        self = .int(value)
    }

    /// A float literal.
    public init(floatLiteral value: Double) {
        self = .double(value)
    }

    /// A string literal.
    public init(stringLiteral value: String) {
        self = .string(value)
    }

    /// A boolean literal.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }

    /// An array literal.
    public init(arrayLiteral elements: MetricValue...) {
        self = .array(elements)
    }

    /// nil.
    public init(nilLiteral: ()) {
        self = .null
    }
}

/// A failure to open or write a metrics log.
public struct MetricsLogError: Error, Sendable, CustomStringConvertible {
    /// The log file.
    public let path: String
    /// What went wrong and what to do.
    public let message: String

    /// "path: message".
    public var description: String { "\(path): \(message)" }
}

/// Appends one JSON object per line to a file; each line reaches the kernel before `append` returns.
public final class MetricsLog {
    /// The log file.
    public let path: String
    private var descriptor: Int32

    /// Opens (creating if needed) `path` for appending; `truncate` empties it first.
    public init(path: String, truncate: Bool = false) throws(MetricsLogError) {
        self.path = path
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else {
            throw MetricsLogError(
                path: path,
                message: "cannot open for appending (\(String(cString: strerror(errno)))); "
                    + "check that the directory exists and is writable")
        }
    }

    deinit {
        close()
    }

    /// One record as a JSON object line, keys in the given order.
    public static func line(_ fields: KeyValuePairs<String, MetricValue>) -> String {
        line(fields.map { ($0.key, $0.value) })
    }

    /// One record as a JSON object line, keys in the given order.
    public static func line(_ fields: [(String, MetricValue)]) -> String {
        "{" + fields.map { MetricValue.quoted($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}\n"
    }

    /// Appends a record whose keys keep the given order.
    public func append(_ fields: KeyValuePairs<String, MetricValue>) throws(MetricsLogError) {
        try write(Self.line(fields))
    }

    /// Appends a record whose keys keep the given order.
    public func append(_ fields: [(String, MetricValue)]) throws(MetricsLogError) {
        try write(Self.line(fields))
    }

    /// Appends a record with keys in sorted order (dictionaries have none of their own).
    ///
    /// A separate label, so that a dictionary literal passed to `append(_:)` keeps its written order.
    public func append(sortingKeys fields: [String: MetricValue]) throws(MetricsLogError) {
        try write(Self.line(fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
    }

    /// Closes the file; later appends fail. Idempotent.
    public func close() {
        if descriptor >= 0 {
            _ = Foundation.close(descriptor)
            descriptor = -1
        }
    }

    /// One write(2) call per line (retried if short), so concurrent readers see whole lines in practice.
    private func write(_ line: String) throws(MetricsLogError) {
        guard descriptor >= 0 else {
            throw MetricsLogError(path: path, message: "the log is closed; open a new MetricsLog")
        }
        var bytes = Array(line.utf8)
        let failure: Int32? = bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return written < 0 ? errno : ENOSPC
                }
            }
            return nil
        }
        if let failure {
            throw MetricsLogError(
                path: path, message: "write failed (\(String(cString: strerror(failure)))); check the disk")
        }
    }
}
