// The latency-table file: per-layer latencies of one device, keyed by layer shape.
#if canImport(Glibc)
import Glibc
#endif

/// One measured layer shape.
public struct LatencyEntry: Equatable, Sendable {
    /// The shape.
    public var key: LayerKey
    /// Milliseconds for one batch-1 run of the layer.
    public var latencyMilliseconds: Double

    /// Creates an entry.
    public init(key: LayerKey, latencyMilliseconds: Double) {
        self.key = key
        self.latencyMilliseconds = latencyMilliseconds
    }
}

/// A device's latency table, as read from and written to JSON.
///
/// ```json
/// {
///   "format": "supernet-latency-table", "version": 1,
///   "device": "host-cpu AMD EPYC 2 threads", "created": "2026-12-03T16:40:00Z", "per_inference_ms": 0.021,
///   "entries": [
///     {"op": "depthwise", "in": 96, "out": 96, "k": 5, "stride": 2, "size": 28, "act": "relu", "se": 0,
///      "latency_ms": 0.0412}
///   ]
/// }
/// ```
///
/// Required: `device` (string), `created` (string, ISO 8601 UTC by convention), `per_inference_ms` (number: the
/// time of one pass not spent in any listed layer; may be negative when isolated layers add up to more than the
/// whole pass) and `entries`. Every entry has exactly the keys `op` (conv, pointwise, depthwise, squeeze_excite,
/// pool, linear), `in`, `out`, `k`, `stride`, `size` (input side), `act` (none, relu, hswish, hsigmoid), `se`
/// (squeeze-excite hidden units, else 0) and `latency_ms` (finite, at least 0); a shape may appear once.
/// `format`, when present, must be "supernet-latency-table" and `version` 1; any other top-level key is free
/// metadata and is kept as it is (the profiler writes `threads`, `method` and `image_size`).
public struct LatencyTableDocument: Equatable, Sendable {
    /// The `format` value.
    public static let formatName = "supernet-latency-table"
    /// The `version` value.
    public static let formatVersion = 1

    /// Free-form device name.
    public var device: String
    /// When the table was measured.
    public var created: String
    /// Milliseconds per pass outside the listed layers.
    public var perInferenceMilliseconds: Double
    /// The measured shapes, in the order they are written.
    public var entries: [LatencyEntry]
    /// Other top-level keys, in document order.
    public var metadata: [(key: String, value: JSONValue)]

    /// Creates a document.
    public init(
        device: String, created: String, perInferenceMilliseconds: Double, entries: [LatencyEntry],
        metadata: [(key: String, value: JSONValue)] = []
    ) {
        self.device = device
        self.created = created
        self.perInferenceMilliseconds = perInferenceMilliseconds
        self.entries = entries
        self.metadata = metadata
    }

    /// Equality of every field, metadata in order.
    public static func == (lhs: LatencyTableDocument, rhs: LatencyTableDocument) -> Bool {
        lhs.device == rhs.device && lhs.created == rhs.created
            && lhs.perInferenceMilliseconds == rhs.perInferenceMilliseconds && lhs.entries == rhs.entries
            && JSONValue.object(lhs.metadata) == JSONValue.object(rhs.metadata)
    }

    /// The value of metadata key `key`, or nil.
    public func metadata(_ key: String) -> JSONValue? {
        metadata.first { $0.key == key }?.value
    }

    /// The latencies by shape.
    public var latencies: [LayerKey: Double] {
        Dictionary(entries.map { ($0.key, $0.latencyMilliseconds) }, uniquingKeysWith: { first, _ in first })
    }

    /// Reads a document from JSON bytes; throws naming the first fault (entry index and key for entries).
    public init(json bytes: [UInt8]) throws(JSONProblem) {
        guard let pairs = try JSONValue.parse(bytes: bytes).objectPairs else {
            throw JSONProblem("a latency table is a JSON object")
        }

        var device: String?
        var created: String?
        var overhead: Double?
        var entryValues: [JSONValue]?
        var metadata: [(key: String, value: JSONValue)] = []
        for (key, value) in pairs {
            switch key {
            case "device": device = try Self.string(value, key)
            case "created": created = try Self.string(value, key)
            case "per_inference_ms": overhead = try Self.number(value, key)
            case "entries":
                guard let values = value.array else {
                    throw JSONProblem("\"entries\" must be an array, got \(value.typeName)")
                }
                entryValues = values
            case "format":
                guard value.string == Self.formatName else {
                    throw JSONProblem("\"format\" must be \"\(Self.formatName)\"")
                }
                metadata.append((key, value))
            case "version":
                guard value.number == Double(Self.formatVersion) else {
                    throw JSONProblem("unsupported \"version\"; this reader knows version \(Self.formatVersion)")
                }
                metadata.append((key, value))
            default: metadata.append((key, value))
            }
        }
        guard let device, let created, let overhead, let entryValues else {
            throw JSONProblem("a latency table needs \"device\", \"created\", \"per_inference_ms\" and \"entries\"")
        }

        var entries: [LatencyEntry] = []
        var seen = Set<LayerKey>()
        for (index, value) in entryValues.enumerated() {
            let entry = try Self.entry(value, index)
            guard seen.insert(entry.key).inserted else {
                throw JSONProblem("entry \(index): \(entry.key) appears twice")
            }
            entries.append(entry)
        }
        self.init(
            device: device, created: created, perInferenceMilliseconds: overhead, entries: entries,
            metadata: metadata)
    }

    /// The document as JSON text: the metadata first, then one entry per line.
    public func jsonText() -> String {
        var lines = ["{"]
        var head: [(String, String)] = []
        if metadata("format") == nil {
            head.append(("format", JSONText.quoted(Self.formatName)))
            head.append(("version", "\(Self.formatVersion)"))
        }
        head.append(("device", JSONText.quoted(device)))
        head.append(("created", JSONText.quoted(created)))
        head.append(("per_inference_ms", JSONText.number(perInferenceMilliseconds)))
        for (key, value) in metadata {
            head.append((key, Self.compact(value)))
        }
        for (key, value) in head {
            lines.append("  \(JSONText.quoted(key)): \(value),")
        }
        lines.append("  \"entries\": [")
        for (index, entry) in entries.enumerated() {
            let key = entry.key
            let fields = [
                "\"op\": \(JSONText.quoted(key.op.rawValue))", "\"in\": \(key.inputChannels)",
                "\"out\": \(key.outputChannels)", "\"k\": \(key.kernel)", "\"stride\": \(key.stride)",
                "\"size\": \(key.size)", "\"act\": \(JSONText.quoted(key.activation.rawValue))",
                "\"se\": \(key.hidden)", "\"latency_ms\": \(JSONText.number(entry.latencyMilliseconds))",
            ]
            lines.append("    {" + fields.joined(separator: ", ") + "}" + (index + 1 < entries.count ? "," : ""))
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func compact(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): JSONText.number(number)
        case .string(let text): JSONText.quoted(text)
        case .array(let values): "[" + values.map(compact).joined(separator: ", ") + "]"
        case .object(let pairs):
            "{" + pairs.map { JSONText.quoted($0.key) + ": " + compact($0.value) }.joined(separator: ", ") + "}"
        }
    }

    private static func string(_ value: JSONValue, _ key: String) throws(JSONProblem) -> String {
        guard let text = value.string else {
            throw JSONProblem("\"\(key)\" must be a string, got \(value.typeName)")
        }
        return text
    }

    private static func number(_ value: JSONValue, _ key: String) throws(JSONProblem) -> Double {
        guard let number = value.number else {
            throw JSONProblem("\"\(key)\" must be a number, got \(value.typeName)")
        }
        return number
    }

    /// The entry keys, in the order they are written.
    static let entryKeys = ["op", "in", "out", "k", "stride", "size", "act", "se", "latency_ms"]

    private static func entry(_ value: JSONValue, _ index: Int) throws(JSONProblem) -> LatencyEntry {
        guard let pairs = value.objectPairs else {
            throw JSONProblem("entry \(index) must be an object, got \(value.typeName)")
        }
        if let unknown = pairs.first(where: { !entryKeys.contains($0.key) }) {
            throw JSONProblem(
                "entry \(index): unknown key \"\(unknown.key)\"; an entry has \(entryKeys.joined(separator: ", "))")
        }
        if let missing = entryKeys.first(where: { value[$0] == nil }) {
            throw JSONProblem("entry \(index): missing \"\(missing)\"")
        }

        func integer(_ key: String) throws(JSONProblem) -> Int {
            guard let number = value[key]?.number, number == number.rounded(), number >= 0, number < 1e9 else {
                throw JSONProblem("entry \(index): \"\(key)\" must be a whole number from 0 to 10⁹")
            }
            return Int(number)
        }

        guard let opName = value["op"]?.string, let op = LayerOp(rawValue: opName) else {
            let known = LayerOp.allCases.map(\.rawValue).joined(separator: ", ")
            throw JSONProblem("entry \(index): \"op\" must be one of \(known)")
        }
        guard let actName = value["act"]?.string, let activation = LayerActivation(rawValue: actName) else {
            let known = LayerActivation.allCases.map(\.rawValue).joined(separator: ", ")
            throw JSONProblem("entry \(index): \"act\" must be one of \(known)")
        }
        guard let latency = value["latency_ms"]?.number, latency >= 0 else {
            throw JSONProblem("entry \(index): \"latency_ms\" must be a number of at least 0")
        }
        let raw = LayerKey(
            op: op, inputChannels: try integer("in"), outputChannels: try integer("out"), kernel: try integer("k"),
            stride: try integer("stride"), size: try integer("size"), activation: activation,
            hidden: try integer("se"))
        do throws(LayerShapeProblem) {
            return LatencyEntry(key: try raw.validated(), latencyMilliseconds: latency)
        } catch {
            throw JSONProblem("entry \(index): \(error.message)")
        }
    }
}

/// Reading and writing whole files with the C library (no Foundation).
public enum TableFiles {
    /// The bytes of the file at `path`; throws naming the path and the system's reason.
    public static func read(_ path: String) throws(JSONProblem) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw JSONProblem("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            bytes.append(contentsOf: chunk[0..<count])
            if count < chunk.count {
                break
            }
        }
        guard ferror(file) == 0 else {
            throw JSONProblem("cannot read \(path)")
        }
        return bytes
    }

    /// Writes `text` to `path` through a temporary file in the same directory and a rename, so readers see the
    /// old or the new file, never a partial one.
    public static func writeAtomically(_ text: String, to path: String) throws(JSONProblem) {
        let temporary = path + ".tmp-\(getpid())"
        guard let file = fopen(temporary, "wb") else {
            throw JSONProblem("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let flushed = fflush(file) == 0 && fsync(fileno(file)) == 0
        fclose(file)
        guard written == bytes.count, flushed else {
            unlink(temporary)
            throw JSONProblem("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw JSONProblem("cannot rename \(temporary) to \(path): \(reason)")
        }
    }
}
