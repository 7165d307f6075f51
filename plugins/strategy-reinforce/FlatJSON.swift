// A reader for the one JSON shape the configure function accepts: an object whose values are all numbers.
// TODO: this file is duplicated in target-analytic and every strategy because a plugin may import only the ABI
// module; a fix needs a shared helper target the plugins can link statically.

/// A configuration the plugin refuses, with a message saying what is wrong and where.
struct ConfigProblem: Error {
    /// What is wrong, for the host's error buffer.
    let message: String
}

/// Reads `{"key": number, ...}`: keys without escapes, finite numbers, no nesting, no duplicate keys.
struct FlatJSONReader {
    private let bytes: [UInt8]
    private var index = 0

    /// Creates a reader over the UTF-8 text.
    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// The key-value pairs in the order they appear.
    mutating func readObject() throws(ConfigProblem) -> [(key: String, value: Double)] {
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
