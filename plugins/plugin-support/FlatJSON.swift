// A reader for the one JSON shape the configure functions of the strategies and of target-analytic accept: an
// object whose values are all numbers.

/// A configuration the plugin refuses, with a message saying what is wrong and where.
public struct ConfigProblem: Error {
    /// What is wrong, for the host's error buffer.
    public let message: String

    /// Creates a problem.
    public init(message: String) {
        self.message = message
    }
}

/// Reads `{"key": number, ...}`: keys without escapes, finite numbers, no nesting, no duplicate keys.
public struct FlatJSONReader {
    private let bytes: [UInt8]
    private var index = 0

    /// Creates a reader over the UTF-8 text.
    public init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// The key-value pairs in the order they appear.
    public mutating func readObject() throws(ConfigProblem) -> [(key: String, value: Double)] {
        var pairs: [(key: String, value: Double)] = []
        skipSpace()
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return try finish(pairs)
        }
        while true {
            skipSpace()
            let key = try readKey()
            if pairs.contains(where: { $0.key == key }) {
                throw ConfigProblem(message: "key \"\(key)\" appears twice")
            }
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            pairs.append((key, try readNumber(for: key)))
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            return try finish(pairs)
        }
    }

    private mutating func finish(
        _ pairs: [(key: String, value: Double)]
    ) throws(ConfigProblem) -> [(key: String, value: Double)] {
        skipSpace()
        guard index == bytes.count else {
            throw ConfigProblem(message: "unexpected text after the object at byte \(index)")
        }
        return pairs
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipSpace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            index += 1
        }
    }

    private mutating func expect(_ byte: UInt8) throws(ConfigProblem) {
        guard peek() == byte else {
            let found = peek().map { "'\(Character(Unicode.Scalar($0)))'" } ?? "the end"
            throw ConfigProblem(
                message: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(index), found \(found); "
                    + "the configuration must be a flat JSON object of numbers")
        }
        index += 1
    }

    private mutating func readKey() throws(ConfigProblem) -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        while let byte = peek(), byte != UInt8(ascii: "\"") {
            guard byte != UInt8(ascii: "\\"), byte >= 0x20 else {
                throw ConfigProblem(message: "keys may not hold escapes or control characters (byte \(index))")
            }
            index += 1
        }
        let key = String(decoding: bytes[start..<index], as: UTF8.self)
        try expect(UInt8(ascii: "\""))
        return key
    }

    private mutating func readNumber(for key: String) throws(ConfigProblem) -> Double {
        let start = index
        while let byte = peek(), (byte >= 0x30 && byte <= 0x39) || "+-.eE".utf8.contains(byte) {
            index += 1
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw ConfigProblem(message: "the value of \"\(key)\" must be a finite number")
        }
        return value
    }
}

/// Reads a whole number of at least `low` for configuration key `key`.
public func configInteger(_ key: String, _ value: Double, atLeast low: Int) throws(ConfigProblem) -> Int {
    guard value == value.rounded(), value >= Double(low), value <= 1e9 else {
        throw ConfigProblem(message: "\"\(key)\" must be a whole number of at least \(low), got \(value)")
    }
    return Int(value)
}

/// Reads a number in `range` for configuration key `key`; `open` excludes the lower end.
public func configNumber(
    _ key: String, _ value: Double, in range: ClosedRange<Double>, openBelow open: Bool = false
) throws(ConfigProblem) -> Double {
    guard range.contains(value), !open || value > range.lowerBound else {
        let low = open ? "(\(range.lowerBound)" : "[\(range.lowerBound)"
        throw ConfigProblem(message: "\"\(key)\" must lie in \(low), \(range.upperBound)], got \(value)")
    }
    return value
}
