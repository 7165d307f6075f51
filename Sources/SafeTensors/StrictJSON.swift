/// A number as written in the header, kept as its literal so that errors can quote it.
struct JSONNumber {
    /// The characters of the number exactly as they appeared in the header.
    let literal: String
    /// The value when the literal is an integer without fraction or exponent that fits in `Int`, else `nil`.
    let integer: Int?
}

/// A parsed JSON value; objects keep their keys in header order.
enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(JSONNumber)
    case bool(Bool)
    case null

    /// The JSON type name, for "expected X, found Y" messages.
    var typeName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number(let number): return "the number \(number.literal)"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// A deliberately small, strict JSON parser for safetensors headers.
///
/// Unlike Foundation's parsers it rejects duplicate keys in any object (two tensors of one name would otherwise
/// silently shadow each other). It also rejects bytes other than JSON whitespace after the top-level value and
/// nesting deeper than `maxDepth`. The input must already be valid UTF-8; the parser works on bytes.
struct StrictJSONParser {
    /// The deepest nesting of objects/arrays accepted; a valid header needs 3 (root, tensor entry, shape).
    static let maxDepth = 8

    private let bytes: [UInt8]
    private let path: String?
    private var position = 0
    private var keyPath: [String] = []

    private init(bytes: [UInt8], path: String?) {
        self.bytes = bytes
        self.path = path
    }

    /// Parses one JSON value that must fill `bytes` entirely, apart from surrounding JSON whitespace.
    static func parse(_ bytes: [UInt8], path: String?) throws -> JSONValue {
        var parser = StrictJSONParser(bytes: bytes, path: path)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 1)
        parser.skipWhitespace()
        if parser.position < bytes.count {
            throw parser.failure(
                "unexpected byte 0x\(hex(bytes[parser.position])) after the end of the top-level JSON value; "
                    + "only spaces may pad a header, so the file is corrupt or was written by a broken writer")
        }
        return value
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard position < bytes.count else {
            throw failure("the header ends where a JSON value was expected; it is truncated")
        }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            return try parseObject(depth: depth)
        case UInt8(ascii: "["):
            return try parseArray(depth: depth)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            throw failure("unexpected byte 0x\(hex(bytes[position])) where a JSON value was expected")
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if try consumeIf(UInt8(ascii: "}")) {
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw failure("expected a quoted object key")
            }
            let key = try parseString()
            if seen.contains(key) {
                throw duplicateKeyFailure(key, previous: members.first { $0.key == key }!.key)
            }
            seen.insert(key)
            skipWhitespace()
            try expect(UInt8(ascii: ":"), what: "':' after object key \"\(key)\"")
            skipWhitespace()
            keyPath.append(key)
            let value = try parseValue(depth: depth + 1)
            keyPath.removeLast()
            members.append((key: key, value: value))
            skipWhitespace()
            if try consumeIf(UInt8(ascii: "}")) {
                return .object(members)
            }
            try expect(UInt8(ascii: ","), what: "',' or '}' after the value of key \"\(key)\"")
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if try consumeIf(UInt8(ascii: "]")) {
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if try consumeIf(UInt8(ascii: "]")) {
                return .array(elements)
            }
            try expect(UInt8(ascii: ","), what: "',' or ']' in an array")
        }
    }

    private mutating func parseString() throws -> String {
        let start = position
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard position < bytes.count else {
                throw failure("the string starting at header offset \(start) is never closed")
            }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0..<0x20:
                throw failure("raw control byte 0x\(hex(byte)) inside a string; JSON requires it to be escaped")
            default:
                utf8.append(byte)
                position += 1
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws {
        position += 1
        guard position < bytes.count else {
            throw failure("the header ends inside a string escape")
        }
        let letter = bytes[position]
        position += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
            utf8.append(letter)
        case UInt8(ascii: "b"):
            utf8.append(0x08)
        case UInt8(ascii: "f"):
            utf8.append(0x0C)
        case UInt8(ascii: "n"):
            utf8.append(0x0A)
        case UInt8(ascii: "r"):
            utf8.append(0x0D)
        case UInt8(ascii: "t"):
            utf8.append(0x09)
        case UInt8(ascii: "u"):
            let scalar = try parseUnicodeEscape()
            UTF8.encode(scalar) { utf8.append($0) }
        default:
            throw failure("invalid string escape '\\\(Character(Unicode.Scalar(letter)))'")
        }
    }

    /// Parses the hex digits after `\u`, joining a high surrogate with the `\uXXXX` low surrogate that must follow.
    private mutating func parseUnicodeEscape() throws -> Unicode.Scalar {
        let first = try parseHexQuad()
        switch first {
        case 0xD800...0xDBFF:
            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                bytes[position + 1] == UInt8(ascii: "u")
            else {
                throw failure("\\u\(hex16(first)) is a high surrogate that is not followed by a \\u low surrogate")
            }
            position += 2
            let second = try parseHexQuad()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw failure("\\u\(hex16(first)) is followed by \\u\(hex16(second)), which is not a low surrogate")
            }
            let value = 0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00)
            return Unicode.Scalar(value)!
        case 0xDC00...0xDFFF:
            throw failure("\\u\(hex16(first)) is a low surrogate without a preceding high surrogate")
        default:
            return Unicode.Scalar(first)!
        }
    }

    private mutating func parseHexQuad() throws -> UInt16 {
        guard position + 4 <= bytes.count else {
            throw failure("a \\u escape needs four hex digits but the header ends")
        }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"):
                digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"):
                digit = byte - UInt8(ascii: "A") + 10
            default:
                throw failure("a \\u escape needs four hex digits, found byte 0x\(hex(byte))")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    /// Parses a number by the JSON grammar; only plain integers that fit in `Int` get an integer value.
    private mutating func parseNumber() throws -> JSONNumber {
        let start = position
        var negative = false
        var magnitude: Int? = 0
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard position < bytes.count, isDigit(bytes[position]) else {
            throw failure("a '-' must be followed by a digit")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) {
                throw failure("numbers must not have leading zeros")
            }
        } else {
            while position < bytes.count, isDigit(bytes[position]) {
                magnitude = magnitude.flatMap { accumulate($0, digit: bytes[position]) }
                position += 1
            }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            try skipDigits(after: "'.'")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            try skipDigits(after: "an exponent marker")
        }
        let literal = String(decoding: bytes[start..<position], as: UTF8.self)
        let integer = isInteger ? magnitude.map { negative ? -$0 : $0 } : nil
        return JSONNumber(literal: literal, integer: integer)
    }

    private func accumulate(_ value: Int, digit: UInt8) -> Int? {
        let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflowB) = shifted.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
        return overflowA || overflowB ? nil : sum
    }

    private mutating func skipDigits(after what: String) throws {
        guard position < bytes.count, isDigit(bytes[position]) else {
            throw failure("\(what) in a number must be followed by a digit")
        }
        while position < bytes.count, isDigit(bytes[position]) {
            position += 1
        }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func expectLiteral(_ word: String) throws {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count,
            bytes[position..<(position + expected.count)].elementsEqual(expected)
        else {
            throw failure("unknown bare word; expected \(word)")
        }
        position += expected.count
    }

    private mutating func expect(_ byte: UInt8, what: String) throws {
        guard position < bytes.count else {
            throw failure("the header ends where \(what) was expected; it is truncated")
        }
        guard bytes[position] == byte else {
            throw failure("expected \(what), found byte 0x\(hex(bytes[position]))")
        }
        position += 1
    }

    private mutating func consumeIf(_ byte: UInt8) throws -> Bool {
        guard position < bytes.count else {
            throw failure("the header ends inside an object or array; it is truncated")
        }
        if bytes[position] == byte {
            position += 1
            return true
        }
        return false
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D:
                position += 1
            default:
                return
            }
        }
    }

    private func checkDepth(_ depth: Int) throws {
        if depth > Self.maxDepth {
            throw SafeTensorsError(
                .jsonTooDeep, path: path, tensor: keyPath.first,
                message: "header JSON nests deeper than \(Self.maxDepth) levels at offset \(position) (under "
                    + "\(describeKeyPath())); a safetensors header needs 3, so the file is corrupt or hostile")
        }
    }

    private func duplicateKeyFailure(_ key: String, previous: String) -> SafeTensorsError {
        let sameBytes = Array(key.utf8) == Array(previous.utf8)
        let how =
            sameBytes
            ? "appears twice"
            : "appears twice under Unicode canonical equivalence (same text, different code points), which this "
                + "reader cannot tell apart"
        return SafeTensorsError(
            .duplicateKey, path: path, tensor: keyPath.first ?? key, field: keyPath.isEmpty ? nil : key,
            message: "key \"\(key)\" \(how) in \(describeKeyPath()) of the header; each key must be unique, so "
                + "re-export the file with distinct names")
    }

    private func describeKeyPath() -> String {
        keyPath.isEmpty ? "the top-level object" : "the object at \"" + keyPath.joined(separator: "\" → \"") + "\""
    }

    private func failure(_ why: String) -> SafeTensorsError {
        SafeTensorsError(
            .invalidJSON, path: path, tensor: keyPath.first,
            message: "header is not valid JSON at byte offset \(position) of the header: \(why)")
    }
}

/// Two lowercase hex digits for a byte.
func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
}

private func hex16(_ value: UInt16) -> String {
    hex(UInt8(value >> 8)) + hex(UInt8(value & 0xFF))
}
