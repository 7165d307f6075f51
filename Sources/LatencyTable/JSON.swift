// A small JSON reader and writer without Foundation, so plugins that link this module stay free of it.

/// A JSON document the reader refuses, with what is wrong and where.
public struct JSONProblem: Error, CustomStringConvertible {
    /// What is wrong, with a byte offset or a path into the document.
    public let message: String

    /// Creates a problem.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// A parsed JSON value; objects keep their keys in document order.
public enum JSONValue: Equatable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// Any number, as a double.
    case number(Double)
    /// A string with its escapes resolved.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object as key-value pairs in document order (keys are unique: the reader refuses duplicates).
    case object([(key: String, value: JSONValue)])

    /// Parses a whole document: one value, optionally surrounded by white space.
    public static func parse(_ text: String) throws(JSONProblem) -> JSONValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a whole document given as UTF-8 bytes.
    public static func parse(bytes: [UInt8]) throws(JSONProblem) -> JSONValue {
        var reader = JSONReader(bytes)
        return try reader.readDocument()
    }

    /// The pairs of an object, or nil for any other value.
    public var objectPairs: [(key: String, value: JSONValue)]? {
        if case .object(let pairs) = self {
            return pairs
        }
        return nil
    }

    /// The value of `key` in an object, or nil (also for any other value).
    public subscript(key: String) -> JSONValue? {
        objectPairs?.first { $0.key == key }?.value
    }

    /// The number, or nil for any other value.
    public var number: Double? {
        if case .number(let value) = self {
            return value
        }
        return nil
    }

    /// The string, or nil for any other value.
    public var string: String? {
        if case .string(let value) = self {
            return value
        }
        return nil
    }

    /// The elements of an array, or nil for any other value.
    public var array: [JSONValue]? {
        if case .array(let values) = self {
            return values
        }
        return nil
    }

    /// The name of the value's JSON type, for messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Equality; objects compare their pairs in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

/// Encodes JSON text.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// A finite double as a JSON number that reads back to the same double (Swift's shortest round trip).
    public static func number(_ value: Double) -> String {
        precondition(value.isFinite, "JSON has no infinities or NaN")
        if value == value.rounded(), abs(value) < 1e15 {
            return String(Int64(value))
        }
        return "\(value)"
    }
}

/// Reads one JSON document from UTF-8 bytes: RFC 8259, nesting at most 64 deep, duplicate keys refused.
struct JSONReader {
    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    /// The deepest nesting accepted.
    static let maximumDepth = 64

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func readDocument() throws(JSONProblem) -> JSONValue {
        skipSpace()
        let value = try readValue()
        skipSpace()
        guard index == bytes.count else {
            throw JSONProblem("unexpected text after the JSON value at byte \(index)")
        }
        return value
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipSpace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            index += 1
        }
    }

    private func found() -> String {
        guard let byte = peek() else {
            return "the end of the text"
        }
        return byte >= 0x20 && byte < 0x7F
            ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func expect(_ byte: UInt8) throws(JSONProblem) {
        guard peek() == byte else {
            throw JSONProblem("expected '\(Character(Unicode.Scalar(byte)))' at byte \(index), found \(found())")
        }
        index += 1
    }

    private mutating func readValue() throws(JSONProblem) -> JSONValue {
        switch peek() {
        case UInt8(ascii: "{"):
            return try nested { (reader: inout JSONReader) throws(JSONProblem) in try reader.readObject() }
        case UInt8(ascii: "["):
            return try nested { (reader: inout JSONReader) throws(JSONProblem) in try reader.readArray() }
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try readWord("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try readWord("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try readWord("null")
            return .null
        default:
            return .number(try readNumber())
        }
    }

    private mutating func nested(
        _ body: (inout JSONReader) throws(JSONProblem) -> JSONValue
    ) throws(JSONProblem) -> JSONValue {
        depth += 1
        guard depth <= Self.maximumDepth else {
            throw JSONProblem("nesting deeper than \(Self.maximumDepth) at byte \(index)")
        }
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func readObject() throws(JSONProblem) -> JSONValue {
        try expect(UInt8(ascii: "{"))
        var pairs: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return .object(pairs)
        }
        while true {
            skipSpace()
            let keyOffset = index
            let key = try readString()
            guard seen.insert(key).inserted else {
                throw JSONProblem("key \"\(key)\" appears twice in one object (byte \(keyOffset))")
            }
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            pairs.append((key, try readValue()))
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            return .object(pairs)
        }
    }

    private mutating func readArray() throws(JSONProblem) -> JSONValue {
        try expect(UInt8(ascii: "["))
        var values: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return .array(values)
        }
        while true {
            skipSpace()
            values.append(try readValue())
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            return .array(values)
        }
    }

    private mutating func readWord(_ word: StaticString) throws(JSONProblem) {
        let start = index
        for byte in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard peek() == byte else {
                throw JSONProblem("unknown literal at byte \(start); expected a JSON value")
            }
            index += 1
        }
    }

    private mutating func readNumber() throws(JSONProblem) -> Double {
        let start = index
        if peek() == UInt8(ascii: "-") {
            index += 1
        }
        guard let first = peek(), isDigit(first) else {
            index = start
            throw JSONProblem("expected a JSON value at byte \(start), found \(found())")
        }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            skipDigits()
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            try requireDigit(start)
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") {
                index += 1
            }
            try requireDigit(start)
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONProblem("number \(text) at byte \(start) is out of range")
        }
        return value
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) {
            index += 1
        }
    }

    private mutating func requireDigit(_ start: Int) throws(JSONProblem) {
        guard let byte = peek(), isDigit(byte) else {
            throw JSONProblem("malformed number at byte \(start)")
        }
        skipDigits()
    }

    private mutating func readString() throws(JSONProblem) -> String {
        let start = index
        try expect(UInt8(ascii: "\""))
        var scalars = String.UnicodeScalarView()
        var run = index
        func flush(_ reader: JSONReader, _ end: Int) {
            scalars.append(contentsOf: String(decoding: reader.bytes[run..<end], as: UTF8.self).unicodeScalars)
        }

        while true {
            guard let byte = peek() else {
                throw JSONProblem("unterminated string starting at byte \(start)")
            }
            if byte == UInt8(ascii: "\"") {
                flush(self, index)
                index += 1
                return String(scalars)
            }
            guard byte >= 0x20 else {
                throw JSONProblem("control character in the string starting at byte \(start)")
            }
            guard byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            flush(self, index)
            index += 1
            scalars.append(try readEscape(start))
            run = index
        }
    }

    private mutating func readEscape(_ start: Int) throws(JSONProblem) -> Unicode.Scalar {
        guard let byte = peek() else {
            throw JSONProblem("unterminated string starting at byte \(start)")
        }
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try readHex(start)
            guard (0xD800..<0xDC00).contains(high) else {
                guard let scalar = Unicode.Scalar(high) else {
                    throw JSONProblem("lone low surrogate in the string starting at byte \(start)")
                }
                return scalar
            }
            guard peek() == UInt8(ascii: "\\") else {
                throw JSONProblem("lone high surrogate in the string starting at byte \(start)")
            }
            index += 1
            guard peek() == UInt8(ascii: "u") else {
                throw JSONProblem("lone high surrogate in the string starting at byte \(start)")
            }
            index += 1
            let low = try readHex(start)
            guard (0xDC00..<0xE000).contains(low),
                let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            else {
                throw JSONProblem("bad surrogate pair in the string starting at byte \(start)")
            }
            return scalar
        default:
            throw JSONProblem("unknown escape in the string starting at byte \(start)")
        }
    }

    private mutating func readHex(_ start: Int) throws(JSONProblem) -> UInt32 {
        let isHex = { (byte: UInt8) in
            (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
        }
        guard index + 4 <= bytes.count, bytes[index..<index + 4].allSatisfy(isHex),
            let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
        else {
            throw JSONProblem("bad \\u escape in the string starting at byte \(start)")
        }
        index += 4
        return value
    }
}
