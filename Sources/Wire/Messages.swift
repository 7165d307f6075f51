// The message catalogue: one type per frame kind, each with its payload encoding. Field order in `encode(to:)` is
// the wire order and must match PROTOCOL.md; kind codes and enum codes never change once published.

/// The kind byte of a frame header; the codes are stable.
public enum MessageKind: UInt8, Sendable, CaseIterable {
    /// Client → server, request id 0: protocol versions the client speaks, and its name.
    case hello = 0x01
    /// Server → client, request id 0: the agreed version, the server's name and version, and its limits.
    case helloReply = 0x02
    /// Client → server: asks for a `pong` with the same echo value.
    case ping = 0x03
    /// Server → client: answers a `ping`.
    case pong = 0x04
    /// Client → server, request id 0: cancel the request whose id is in the payload.
    case cancel = 0x05
    /// Server → client: the request failed (or, with request id 0, the connection is about to close).
    case error = 0x06
    /// Server → client: an admin request succeeded and has nothing else to say.
    case ok = 0x07
    /// Client → server: list the loaded supernet models.
    case listModels = 0x10
    /// Server → client: the answer to `listModels`.
    case modelsReply = 0x11
    /// Client → server: list the hardware targets.
    case listTargets = 0x12
    /// Server → client: the answer to `listTargets`.
    case targetsReply = 0x13
    /// Client → server: list the search strategies.
    case listStrategies = 0x14
    /// Server → client: the answer to `listStrategies`.
    case strategiesReply = 0x15
    /// Client → server: ask for server counters.
    case stats = 0x16
    /// Server → client: the answer to `stats`.
    case statsReply = 0x17
    /// Client → server: ask for points on the accuracy/cost Pareto front of a model on a target.
    case pareto = 0x18
    /// Server → client: the answer to `pareto`.
    case paretoReply = 0x19
    /// Client → server: find a subnet within budgets and (unless `noWeights`) send its weights.
    case specialize = 0x20
    /// Server → client: the first reply frame of a specialization.
    case specializeHeader = 0x21
    /// Server → client: the next piece of the compressed weight stream (raw bytes).
    case weightChunk = 0x22
    /// Server → client: the last frame of a successful specialization.
    case specializeEnd = 0x23
    /// Client → server (admin): list plugins.
    case pluginList = 0x30
    /// Server → client: the answer to `pluginList`.
    case pluginListReply = 0x31
    /// Client → server (admin): load a plugin file from the plugin directory.
    case pluginLoad = 0x32
    /// Client → server (admin): unload a plugin by name.
    case pluginUnload = 0x33
    /// Client → server (admin): re-measure a target's latency table.
    case targetCalibrate = 0x34

    /// The Swift type that encodes and decodes payloads of this kind.
    public var messageType: any WireMessage.Type {
        switch self {
        case .hello: Hello.self
        case .helloReply: HelloReply.self
        case .ping: Ping.self
        case .pong: Pong.self
        case .cancel: Cancel.self
        case .error: ErrorReply.self
        case .ok: Ok.self
        case .listModels: ListModels.self
        case .modelsReply: ModelsReply.self
        case .listTargets: ListTargets.self
        case .targetsReply: TargetsReply.self
        case .listStrategies: ListStrategies.self
        case .strategiesReply: StrategiesReply.self
        case .stats: Stats.self
        case .statsReply: StatsReply.self
        case .pareto: Pareto.self
        case .paretoReply: ParetoReply.self
        case .specialize: Specialize.self
        case .specializeHeader: SpecializeHeader.self
        case .weightChunk: WeightChunk.self
        case .specializeEnd: SpecializeEnd.self
        case .pluginList: PluginList.self
        case .pluginListReply: PluginListReply.self
        case .pluginLoad: PluginLoad.self
        case .pluginUnload: PluginUnload.self
        case .targetCalibrate: TargetCalibrate.self
        }
    }
}

/// A message of the catalogue: a payload encoding tied to one frame kind.
public protocol WireMessage: Sendable {
    /// The frame kind that carries this message.
    static var kind: MessageKind { get }

    /// Appends the payload encoding; throws `WireError` for values the codec cannot carry (over-long strings).
    func encode(to writer: inout WireWriter) throws

    /// Reads the payload encoding; the caller checks for trailing bytes (see `init(payload:)`).
    init(from reader: inout WireReader) throws
}

extension WireMessage {
    /// The payload bytes of this message.
    public func encodedPayload() throws -> [UInt8] {
        var writer = WireWriter()
        try encode(to: &writer)
        return writer.bytes
    }

    /// Decodes a whole payload; bytes left after the last field throw `trailingBytes`.
    public init(payload: [UInt8]) throws {
        var reader = WireReader(payload)
        self = try Self(from: &reader)
        try reader.finish(message: "\(Self.self)")
    }

    /// Decodes the payload of `frame`, which must be of this message's kind.
    public init(frame: Frame) throws {
        guard frame.kind == Self.kind else {
            throw WireError(
                .invalidValue, field: "frame.kind", value: "\(frame.kind)", expected: "\(Self.kind) for \(Self.self)")
        }
        try self.init(payload: frame.payload)
    }
}

/// Decodes `frame` into the message type its kind names; throws `WireError` for a malformed payload.
public func decodeMessage(_ frame: Frame) throws -> any WireMessage {
    try frame.kind.messageType.init(frame: frame)
}

// MARK: - Shared enums

/// A protocol error code carried by `ErrorReply`; the numbers are stable and listed in PROTOCOL.md.
///
/// It is a struct rather than an enum so that a client built today still decodes codes added later.
public struct ErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The u16 code on the wire.
    public let rawValue: UInt16

    /// Wraps a code, known or not.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 1: no model of that name.
    public static let unknownModel = ErrorCode(rawValue: 1)
    /// 2: no target of that name.
    public static let unknownTarget = ErrorCode(rawValue: 2)
    /// 3: no strategy of that name.
    public static let unknownStrategy = ErrorCode(rawValue: 3)
    /// 4: no subnet meets the budgets; `ErrorReply.infeasible` says how close one could come.
    public static let infeasibleBudget = ErrorCode(rawValue: 4)
    /// 5: a field is out of range or inconsistent (empty budgets, unknown dtype use, too many budgets, ...).
    public static let invalidArgument = ErrorCode(rawValue: 5)
    /// 6: an admin request from a peer that is not allowed to make it.
    public static let permissionDenied = ErrorCode(rawValue: 6)
    /// 7: a plugin failed to load, unload, or run.
    public static let pluginFailed = ErrorCode(rawValue: 7)
    /// 8: too many requests in flight; retry later.
    public static let overloaded = ErrorCode(rawValue: 8)
    /// 9: the request was cancelled by the client.
    public static let cancelled = ErrorCode(rawValue: 9)
    /// 10: the request's deadline passed before it finished.
    public static let deadlineExceeded = ErrorCode(rawValue: 10)
    /// 11: the peer broke the protocol (malformed frame, request before hello, reused request id, ...).
    public static let protocolError = ErrorCode(rawValue: 11)
    /// 12: no protocol version in common.
    public static let unsupportedVersion = ErrorCode(rawValue: 12)
    /// 13: a bug or resource failure inside the server.
    public static let internalError = ErrorCode(rawValue: 13)

    private static let names: [UInt16: String] = [
        1: "unknown model", 2: "unknown target", 3: "unknown strategy", 4: "infeasible budget",
        5: "invalid argument", 6: "permission denied", 7: "plugin failed", 8: "overloaded", 9: "cancelled",
        10: "deadline exceeded", 11: "protocol error", 12: "unsupported version", 13: "internal",
    ]

    /// The code and its name, e.g. `4 (infeasible budget)`.
    public var description: String {
        "\(rawValue) (\(Self.names[rawValue] ?? "unknown code"))"
    }
}

/// What a budget limits; u8 codes.
public enum BudgetKind: UInt8, Sendable, CaseIterable {
    /// Predicted latency on the target, in milliseconds.
    case latencyMs = 1
    /// Multiply-accumulate operations per inference.
    case macs = 2
    /// Parameter count.
    case params = 3
    /// Peak memory (weights plus activations), in KiB (1024 bytes).
    case memoryKB = 4
}

/// One upper bound a specialized subnet must meet.
public struct Budget: Sendable, Hashable {
    /// What is limited.
    public var kind: BudgetKind
    /// The upper bound, in the unit `kind` names; finite and positive for the server to accept it.
    public var value: Double

    /// Creates a budget.
    public init(_ kind: BudgetKind, _ value: Double) {
        self.kind = kind
        self.value = value
    }
}

/// The element type of the decoded weight stream; u8 codes.
public enum WeightDType: UInt8, Sendable, CaseIterable {
    /// IEEE binary32, 4 bytes little-endian.
    case f32 = 0
    /// IEEE binary16, 2 bytes little-endian, rounded to nearest even.
    case f16 = 1
    /// Signed 8-bit, per-output-channel symmetric scale.
    case int8 = 2

    /// Bytes per element in the decoded stream.
    public var byteWidth: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .int8: 1
        }
    }
}

/// Whether a plugin provides a target or a strategy; u8 codes.
public enum PluginKind: UInt8, Sendable, CaseIterable {
    /// A hardware target (cost model).
    case target = 1
    /// A search strategy.
    case strategy = 2
}

/// A plugin's life-cycle state; u8 codes.
public enum PluginState: UInt8, Sendable, CaseIterable {
    /// Serving new requests.
    case loaded = 1
    /// Unloaded for new requests, still finishing old ones.
    case retiring = 2
    /// Gone; kept in the list for a while so operators can see it.
    case retired = 3
}

// MARK: - Connection

/// Client → server, request id 0, first frame of a connection.
public struct Hello: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.hello
    /// Protocol versions the client speaks (u16 each), any order; at least one.
    public var versions: [UInt16]
    /// A free-form client name for the server's records (≤ 64 KiB UTF-8).
    public var clientName: String

    /// Creates a hello.
    public init(versions: [UInt16], clientName: String) {
        self.versions = versions
        self.clientName = clientName
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        versions = try reader.readArray("Hello.versions", minElementBytes: 2) { try $0.readU16("Hello.versions[]") }
        clientName = try reader.readString("Hello.clientName")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(versions, field: "Hello.versions") { $0.writeU16($1) }
        try writer.writeString(clientName, field: "Hello.clientName")
    }
}

/// The server's limits, announced in `HelloReply`.
public struct ServerLimits: Sendable, Hashable {
    /// The largest frame payload either side may send, in bytes.
    public var maxFrameBytes: UInt32
    /// The most requests one connection may have in flight; more are answered with error 8.
    public var maxInFlight: UInt32
    /// The largest weight chunk payload the server sends, in bytes.
    public var weightChunkBytes: UInt32
    /// The most budgets one `Specialize` may carry.
    public var maxBudgetCount: UInt32

    /// Creates a limits record.
    public init(maxFrameBytes: UInt32, maxInFlight: UInt32, weightChunkBytes: UInt32, maxBudgetCount: UInt32) {
        self.maxFrameBytes = maxFrameBytes
        self.maxInFlight = maxInFlight
        self.weightChunkBytes = weightChunkBytes
        self.maxBudgetCount = maxBudgetCount
    }
}

/// Server → client, request id 0: the answer to `Hello`.
public struct HelloReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.helloReply
    /// The protocol version both sides now speak: the highest one in both lists.
    public var version: UInt16
    /// The server program's name.
    public var serverName: String
    /// The server program's version string.
    public var serverVersion: String
    /// The limits the client must respect.
    public var limits: ServerLimits

    /// Creates a hello reply.
    public init(version: UInt16, serverName: String, serverVersion: String, limits: ServerLimits) {
        self.version = version
        self.serverName = serverName
        self.serverVersion = serverVersion
        self.limits = limits
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        version = try reader.readU16("HelloReply.version")
        serverName = try reader.readString("HelloReply.serverName")
        serverVersion = try reader.readString("HelloReply.serverVersion")
        limits = ServerLimits(
            maxFrameBytes: try reader.readU32("HelloReply.maxFrameBytes"),
            maxInFlight: try reader.readU32("HelloReply.maxInFlight"),
            weightChunkBytes: try reader.readU32("HelloReply.weightChunkBytes"),
            maxBudgetCount: try reader.readU32("HelloReply.maxBudgetCount"))
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU16(version)
        try writer.writeString(serverName, field: "HelloReply.serverName")
        try writer.writeString(serverVersion, field: "HelloReply.serverVersion")
        writer.writeU32(limits.maxFrameBytes)
        writer.writeU32(limits.maxInFlight)
        writer.writeU32(limits.weightChunkBytes)
        writer.writeU32(limits.maxBudgetCount)
    }
}

/// Client → server: a liveness probe.
public struct Ping: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.ping
    /// Any value; the `Pong` carries it back.
    public var echo: UInt64

    /// Creates a ping.
    public init(echo: UInt64) {
        self.echo = echo
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        echo = try reader.readU64("Ping.echo")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU64(echo)
    }
}

/// Server → client: the answer to `Ping`.
public struct Pong: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pong
    /// The ping's value.
    public var echo: UInt64

    /// Creates a pong.
    public init(echo: UInt64) {
        self.echo = echo
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        echo = try reader.readU64("Pong.echo")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU64(echo)
    }
}

/// Client → server, request id 0: stop working on a request. No reply of its own.
public struct Cancel: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.cancel
    /// The id of the request to cancel; unknown or finished ids are ignored.
    public var requestID: UInt32

    /// Creates a cancel.
    public init(requestID: UInt32) {
        self.requestID = requestID
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        requestID = try reader.readU32("Cancel.requestID")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU32(requestID)
    }
}

/// How close the server could get to an infeasible budget.
public struct Infeasibility: Sendable, Hashable {
    /// The budget that could not be met.
    public var budgetKind: BudgetKind
    /// The smallest value of that budget's quantity any subnet achieves, in the budget's unit.
    public var smallestAchievable: Double

    /// Creates an infeasibility note.
    public init(budgetKind: BudgetKind, smallestAchievable: Double) {
        self.budgetKind = budgetKind
        self.smallestAchievable = smallestAchievable
    }
}

/// Server → client: a request failed, and this is its last frame. With request id 0, the connection is closing.
public struct ErrorReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.error
    /// What went wrong.
    public var code: ErrorCode
    /// A sentence for people.
    public var message: String
    /// For code 4 (infeasible budget): the budget that failed and the smallest value achievable.
    public var infeasible: Infeasibility?

    /// Creates an error reply.
    public init(code: ErrorCode, message: String, infeasible: Infeasibility? = nil) {
        self.code = code
        self.message = message
        self.infeasible = infeasible
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        code = ErrorCode(rawValue: try reader.readU16("ErrorReply.code"))
        message = try reader.readString("ErrorReply.message")
        infeasible = try reader.readOptional("ErrorReply.infeasible") { reader in
            let value = try reader.readF64("ErrorReply.smallestAchievable")
            let kind = try reader.readEnum(BudgetKind.self, "ErrorReply.budgetKind")
            return Infeasibility(budgetKind: kind, smallestAchievable: value)
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU16(code.rawValue)
        try writer.writeString(message, field: "ErrorReply.message")
        writer.writeOptional(infeasible) { writer, note in
            writer.writeF64(note.smallestAchievable)
            writer.writeU8(note.budgetKind.rawValue)
        }
    }
}

/// Server → client: an admin request succeeded. Empty payload.
public struct Ok: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.ok

    /// Creates an ok.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

// MARK: - Catalogue queries

/// Client → server: list models. Empty payload.
public struct ListModels: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.listModels

    /// Creates the request.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

/// One supernet model the server can specialize.
public struct ModelInfo: Sendable, Hashable {
    /// The model's name, used in `Specialize.model`.
    public var name: String
    /// The name of its search space.
    public var spaceName: String
    /// The supernet file on the server's disk.
    public var filePath: String
    /// Parameters of the whole supernet.
    public var parameterCount: UInt64
    /// MACs of the largest subnet.
    public var largestMACs: UInt64
    /// MACs of the smallest subnet.
    public var smallestMACs: UInt64
    /// Images held for batch-norm recalibration.
    public var calibrationImageCount: UInt32
    /// Whether an accuracy predictor is loaded for this model.
    public var hasPredictor: Bool
    /// Measured test accuracy (0...1) of the largest subnet, if known.
    public var largestAccuracy: Double?
    /// Measured test accuracy (0...1) of the smallest subnet, if known.
    public var smallestAccuracy: Double?

    /// Creates a model record.
    public init(
        name: String, spaceName: String, filePath: String, parameterCount: UInt64, largestMACs: UInt64,
        smallestMACs: UInt64, calibrationImageCount: UInt32, hasPredictor: Bool, largestAccuracy: Double?,
        smallestAccuracy: Double?
    ) {
        self.name = name
        self.spaceName = spaceName
        self.filePath = filePath
        self.parameterCount = parameterCount
        self.largestMACs = largestMACs
        self.smallestMACs = smallestMACs
        self.calibrationImageCount = calibrationImageCount
        self.hasPredictor = hasPredictor
        self.largestAccuracy = largestAccuracy
        self.smallestAccuracy = smallestAccuracy
    }

    /// Smallest encoding: three empty strings, 3 × u64, u32, bool, two absent optionals.
    static let minimumBytes = 12 + 24 + 4 + 1 + 2

    init(from reader: inout WireReader) throws {
        name = try reader.readString("ModelInfo.name")
        spaceName = try reader.readString("ModelInfo.spaceName")
        filePath = try reader.readString("ModelInfo.filePath")
        parameterCount = try reader.readU64("ModelInfo.parameterCount")
        largestMACs = try reader.readU64("ModelInfo.largestMACs")
        smallestMACs = try reader.readU64("ModelInfo.smallestMACs")
        calibrationImageCount = try reader.readU32("ModelInfo.calibrationImageCount")
        hasPredictor = try reader.readBool("ModelInfo.hasPredictor")
        largestAccuracy = try reader.readOptional("ModelInfo.largestAccuracy") {
            try $0.readF64("ModelInfo.largestAccuracy")
        }
        smallestAccuracy = try reader.readOptional("ModelInfo.smallestAccuracy") {
            try $0.readF64("ModelInfo.smallestAccuracy")
        }
    }

    func encode(to writer: inout WireWriter) throws {
        try writer.writeString(name, field: "ModelInfo.name")
        try writer.writeString(spaceName, field: "ModelInfo.spaceName")
        try writer.writeString(filePath, field: "ModelInfo.filePath")
        writer.writeU64(parameterCount)
        writer.writeU64(largestMACs)
        writer.writeU64(smallestMACs)
        writer.writeU32(calibrationImageCount)
        writer.writeBool(hasPredictor)
        writer.writeOptional(largestAccuracy) { $0.writeF64($1) }
        writer.writeOptional(smallestAccuracy) { $0.writeF64($1) }
    }
}

/// Server → client: the answer to `ListModels`.
public struct ModelsReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.modelsReply
    /// Every model, in the server's order.
    public var models: [ModelInfo]

    /// Creates the reply.
    public init(models: [ModelInfo]) {
        self.models = models
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        models = try reader.readArray("ModelsReply.models", minElementBytes: ModelInfo.minimumBytes) {
            try ModelInfo(from: &$0)
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(models, field: "ModelsReply.models") { try $1.encode(to: &$0) }
    }
}

/// Client → server: list targets. Empty payload.
public struct ListTargets: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.listTargets

    /// Creates the request.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

/// A target or strategy as listed by `TargetsReply` and `StrategiesReply`.
public struct PluginDescriptor: Sendable, Hashable {
    /// The name used in requests.
    public var name: String
    /// The plugin file it came from (empty for built-ins).
    public var pluginFile: String
    /// The plugin's version string.
    public var version: String
    /// One line for people.
    public var summary: String

    /// Creates a descriptor.
    public init(name: String, pluginFile: String, version: String, summary: String) {
        self.name = name
        self.pluginFile = pluginFile
        self.version = version
        self.summary = summary
    }

    init(from reader: inout WireReader, _ context: String) throws {
        name = try reader.readString(context + ".name")
        pluginFile = try reader.readString(context + ".pluginFile")
        version = try reader.readString(context + ".version")
        summary = try reader.readString(context + ".description")
    }

    func encode(to writer: inout WireWriter, _ context: String) throws {
        try writer.writeString(name, field: context + ".name")
        try writer.writeString(pluginFile, field: context + ".pluginFile")
        try writer.writeString(version, field: context + ".version")
        try writer.writeString(summary, field: context + ".description")
    }
}

/// Server → client: the answer to `ListTargets`.
public struct TargetsReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.targetsReply
    /// Every target.
    public var targets: [PluginDescriptor]

    /// Creates the reply.
    public init(targets: [PluginDescriptor]) {
        self.targets = targets
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        targets = try reader.readArray("TargetsReply.targets", minElementBytes: 16) {
            try PluginDescriptor(from: &$0, "TargetsReply.targets[]")
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(targets, field: "TargetsReply.targets") {
            try $1.encode(to: &$0, "TargetsReply.targets[]")
        }
    }
}

/// Client → server: list strategies. Empty payload.
public struct ListStrategies: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.listStrategies

    /// Creates the request.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

/// Server → client: the answer to `ListStrategies`.
public struct StrategiesReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.strategiesReply
    /// Every strategy.
    public var strategies: [PluginDescriptor]

    /// Creates the reply.
    public init(strategies: [PluginDescriptor]) {
        self.strategies = strategies
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        strategies = try reader.readArray("StrategiesReply.strategies", minElementBytes: 16) {
            try PluginDescriptor(from: &$0, "StrategiesReply.strategies[]")
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(strategies, field: "StrategiesReply.strategies") {
            try $1.encode(to: &$0, "StrategiesReply.strategies[]")
        }
    }
}

/// Client → server: ask for counters. Empty payload.
public struct Stats: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.stats

    /// Creates the request.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

/// Server → client: counters by name.
public struct StatsReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.statsReply
    /// Counter values by name; the set of names is the server's and may grow.
    public var values: [String: Double]

    /// Creates the reply.
    public init(values: [String: Double]) {
        self.values = values
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        values = try reader.readDoubleMap("StatsReply.values")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeDoubleMap(values, field: "StatsReply.values")
    }
}

/// Client → server: sample the Pareto front of a model on a target.
public struct Pareto: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pareto
    /// The model name.
    public var model: String
    /// The target name.
    public var target: String
    /// How many points to return at most.
    public var points: UInt32

    /// Creates the request.
    public init(model: String, target: String, points: UInt32) {
        self.model = model
        self.target = target
        self.points = points
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        model = try reader.readString("Pareto.model")
        target = try reader.readString("Pareto.target")
        points = try reader.readU32("Pareto.points")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeString(model, field: "Pareto.model")
        try writer.writeString(target, field: "Pareto.target")
        writer.writeU32(points)
    }
}

/// One point of a Pareto front.
public struct ParetoPoint: Sendable, Hashable {
    /// The architecture as JSON.
    public var arch: String
    /// Predicted accuracy, 0...1.
    public var predictedAccuracy: Double
    /// Multiply-accumulates per inference.
    public var macs: UInt64
    /// Predicted latency on the target in milliseconds (NaN if unknown).
    public var latencyMs: Double

    /// Creates a point.
    public init(arch: String, predictedAccuracy: Double, macs: UInt64, latencyMs: Double) {
        self.arch = arch
        self.predictedAccuracy = predictedAccuracy
        self.macs = macs
        self.latencyMs = latencyMs
    }
}

/// Server → client: the answer to `Pareto`, ordered by increasing cost.
public struct ParetoReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.paretoReply
    /// The points.
    public var points: [ParetoPoint]

    /// Creates the reply.
    public init(points: [ParetoPoint]) {
        self.points = points
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        points = try reader.readArray("ParetoReply.points", minElementBytes: 28) { reader in
            ParetoPoint(
                arch: try reader.readString("ParetoReply.points[].arch"),
                predictedAccuracy: try reader.readF64("ParetoReply.points[].predictedAccuracy"),
                macs: try reader.readU64("ParetoReply.points[].macs"),
                latencyMs: try reader.readF64("ParetoReply.points[].latencyMs"))
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(points, field: "ParetoReply.points") { writer, point in
            try writer.writeString(point.arch, field: "ParetoReply.points[].arch")
            writer.writeF64(point.predictedAccuracy)
            writer.writeU64(point.macs)
            writer.writeF64(point.latencyMs)
        }
    }
}

// MARK: - Specialization

/// Client → server: find the best subnet within budgets and stream its weights.
public struct Specialize: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.specialize
    /// The model name.
    public var model: String
    /// The target name.
    public var target: String
    /// Upper bounds the subnet must meet; at least one, at most `ServerLimits.maxBudgetCount`.
    public var budgets: [Budget]
    /// The strategy name; empty picks the server's default.
    public var strategy: String
    /// The element type of the weight stream.
    public var dtype: WeightDType
    /// Whether to byte-shuffle each tensor before compression.
    public var shuffle: Bool
    /// Milliseconds the client will wait; 0 means the server's default.
    public var deadlineMs: UInt32
    /// Search only: the reply is a header with an empty tensor table and no chunks.
    public var noWeights: Bool

    /// Creates a request.
    public init(
        model: String, target: String, budgets: [Budget], strategy: String = "", dtype: WeightDType = .f32,
        shuffle: Bool = false, deadlineMs: UInt32 = 0, noWeights: Bool = false
    ) {
        self.model = model
        self.target = target
        self.budgets = budgets
        self.strategy = strategy
        self.dtype = dtype
        self.shuffle = shuffle
        self.deadlineMs = deadlineMs
        self.noWeights = noWeights
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        model = try reader.readString("Specialize.model")
        target = try reader.readString("Specialize.target")
        budgets = try reader.readArray("Specialize.budgets", minElementBytes: 9) { reader in
            let kind = try reader.readEnum(BudgetKind.self, "Specialize.budgets[].kind")
            return Budget(kind, try reader.readF64("Specialize.budgets[].value"))
        }
        strategy = try reader.readString("Specialize.strategy")
        dtype = try reader.readEnum(WeightDType.self, "Specialize.dtype")
        shuffle = try reader.readBool("Specialize.shuffle")
        deadlineMs = try reader.readU32("Specialize.deadlineMs")
        noWeights = try reader.readBool("Specialize.noWeights")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeString(model, field: "Specialize.model")
        try writer.writeString(target, field: "Specialize.target")
        try writer.writeArray(budgets, field: "Specialize.budgets") { writer, budget in
            writer.writeU8(budget.kind.rawValue)
            writer.writeF64(budget.value)
        }
        try writer.writeString(strategy, field: "Specialize.strategy")
        writer.writeU8(dtype.rawValue)
        writer.writeBool(shuffle)
        writer.writeU32(deadlineMs)
        writer.writeBool(noWeights)
    }
}

/// Costs of a specialized subnet.
public struct CostSummary: Sendable, Hashable {
    /// Multiply-accumulates per inference.
    public var macs: UInt64
    /// Parameter count.
    public var params: UInt64
    /// Peak activation memory in bytes.
    public var peakActivationBytes: UInt64
    /// Predicted latency on the target in milliseconds; NaN if the target has no latency model.
    public var latencyMs: Double
    /// Predicted energy per inference in millijoules; NaN if unknown.
    public var energyMJ: Double

    /// Creates a costs record.
    public init(macs: UInt64, params: UInt64, peakActivationBytes: UInt64, latencyMs: Double, energyMJ: Double) {
        self.macs = macs
        self.params = params
        self.peakActivationBytes = peakActivationBytes
        self.latencyMs = latencyMs
        self.energyMJ = energyMJ
    }
}

/// How much work the search did.
public struct SearchStatistics: Sendable, Hashable {
    /// Candidate subnets evaluated.
    public var evaluations: UInt64
    /// Wall-clock time of the search in milliseconds (0 when served from cache).
    public var wallMs: Double

    /// Creates a statistics record.
    public init(evaluations: UInt64, wallMs: Double) {
        self.evaluations = evaluations
        self.wallMs = wallMs
    }
}

/// One tensor's place in the decoded weight stream.
public struct TensorEntry: Sendable, Hashable {
    /// The tensor's name in the subnet file.
    public var name: String
    /// The element type in the decoded stream (the same for every tensor of a stream).
    public var dtype: WeightDType
    /// Dimensions, outermost first; the first is the output channel count; empty for a scalar.
    public var shape: [UInt32]
    /// Where the tensor's bytes start in the decoded stream.
    public var byteOffset: UInt64
    /// How many bytes the tensor takes: element count × dtype width.
    public var byteLength: UInt64
    /// For int8, one scale per output channel (first dimension; 1 for a scalar); empty otherwise.
    public var scales: [Float]

    /// Creates an entry.
    public init(
        name: String, dtype: WeightDType, shape: [UInt32], byteOffset: UInt64, byteLength: UInt64, scales: [Float]
    ) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteOffset = byteOffset
        self.byteLength = byteLength
        self.scales = scales
    }

    /// Smallest encoding: empty name, dtype, empty shape, offset, length, empty scales.
    static let minimumBytes = 4 + 1 + 4 + 8 + 8 + 4
}

/// Server → client: the first frame of a specialization reply; chunks and an end frame follow unless `noWeights`.
public struct SpecializeHeader: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.specializeHeader
    /// The chosen architecture as JSON.
    public var arch: String
    /// Hex SHA-256 of the canonical architecture JSON, a stable cache key.
    public var archDigest: String
    /// Predicted accuracy, 0...1.
    public var predictedAccuracy: Double
    /// The subnet's costs.
    public var costs: CostSummary
    /// The strategy that ran (resolves an empty `Specialize.strategy`).
    public var strategy: String
    /// Whether the answer came from the server's cache.
    public var fromCache: Bool
    /// Search effort.
    public var search: SearchStatistics
    /// The weight stream's element type.
    public var dtype: WeightDType
    /// Whether each tensor's bytes are shuffled.
    public var shuffle: Bool
    /// The tensors, back to back in this order in the decoded stream.
    public var tensors: [TensorEntry]
    /// Length of the decoded stream in bytes.
    public var decodedBytes: UInt64
    /// Length of the compressed (LZ4 frame) stream in bytes: the sum of all chunk payloads.
    public var compressedBytes: UInt64
    /// SHA-256 of the decoded stream (32 bytes).
    public var sha256: [UInt8]
    /// Metadata for the subnet file.
    public var metadata: [String: String]

    /// Creates a header.
    public init(
        arch: String, archDigest: String, predictedAccuracy: Double, costs: CostSummary, strategy: String,
        fromCache: Bool, search: SearchStatistics, dtype: WeightDType, shuffle: Bool, tensors: [TensorEntry],
        decodedBytes: UInt64, compressedBytes: UInt64, sha256: [UInt8], metadata: [String: String]
    ) {
        self.arch = arch
        self.archDigest = archDigest
        self.predictedAccuracy = predictedAccuracy
        self.costs = costs
        self.strategy = strategy
        self.fromCache = fromCache
        self.search = search
        self.dtype = dtype
        self.shuffle = shuffle
        self.tensors = tensors
        self.decodedBytes = decodedBytes
        self.compressedBytes = compressedBytes
        self.sha256 = sha256
        self.metadata = metadata
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        arch = try reader.readString("SpecializeHeader.arch")
        archDigest = try reader.readString("SpecializeHeader.archDigest")
        predictedAccuracy = try reader.readF64("SpecializeHeader.predictedAccuracy")
        costs = CostSummary(
            macs: try reader.readU64("SpecializeHeader.macs"),
            params: try reader.readU64("SpecializeHeader.params"),
            peakActivationBytes: try reader.readU64("SpecializeHeader.peakActivationBytes"),
            latencyMs: try reader.readF64("SpecializeHeader.latencyMs"),
            energyMJ: try reader.readF64("SpecializeHeader.energyMJ"))
        strategy = try reader.readString("SpecializeHeader.strategy")
        fromCache = try reader.readBool("SpecializeHeader.fromCache")
        search = SearchStatistics(
            evaluations: try reader.readU64("SpecializeHeader.evaluations"),
            wallMs: try reader.readF64("SpecializeHeader.wallMs"))
        dtype = try reader.readEnum(WeightDType.self, "SpecializeHeader.dtype")
        shuffle = try reader.readBool("SpecializeHeader.shuffle")
        tensors = try reader.readArray("SpecializeHeader.tensors", minElementBytes: TensorEntry.minimumBytes) {
            try Self.readTensor(&$0)
        }
        decodedBytes = try reader.readU64("SpecializeHeader.decodedBytes")
        compressedBytes = try reader.readU64("SpecializeHeader.compressedBytes")
        sha256 = try reader.readRaw(32, "SpecializeHeader.sha256")
        metadata = try reader.readStringMap("SpecializeHeader.metadata")
    }

    /// Writes the payload; throws `invalidArgument` unless `sha256` is 32 bytes.
    public func encode(to writer: inout WireWriter) throws {
        guard sha256.count == 32 else {
            throw WireError(
                .invalidArgument, field: "SpecializeHeader.sha256", value: "\(sha256.count) bytes", expected: "32")
        }
        try writer.writeString(arch, field: "SpecializeHeader.arch")
        try writer.writeString(archDigest, field: "SpecializeHeader.archDigest")
        writer.writeF64(predictedAccuracy)
        writer.writeU64(costs.macs)
        writer.writeU64(costs.params)
        writer.writeU64(costs.peakActivationBytes)
        writer.writeF64(costs.latencyMs)
        writer.writeF64(costs.energyMJ)
        try writer.writeString(strategy, field: "SpecializeHeader.strategy")
        writer.writeBool(fromCache)
        writer.writeU64(search.evaluations)
        writer.writeF64(search.wallMs)
        writer.writeU8(dtype.rawValue)
        writer.writeBool(shuffle)
        try writer.writeArray(tensors, field: "SpecializeHeader.tensors") { try Self.writeTensor($1, to: &$0) }
        writer.writeU64(decodedBytes)
        writer.writeU64(compressedBytes)
        writer.writeRaw(sha256)
        try writer.writeStringMap(metadata, field: "SpecializeHeader.metadata")
    }

    private static func readTensor(_ reader: inout WireReader) throws -> TensorEntry {
        let name = try reader.readString("TensorEntry.name")
        let dtype = try reader.readEnum(WeightDType.self, "TensorEntry.dtype")
        let shape = try reader.readArray("TensorEntry.shape", minElementBytes: 4) {
            try $0.readU32("TensorEntry.shape[]")
        }
        let offset = try reader.readU64("TensorEntry.byteOffset")
        let length = try reader.readU64("TensorEntry.byteLength")
        let scales = try reader.readArray("TensorEntry.scales", minElementBytes: 4) {
            try $0.readF32("TensorEntry.scales[]")
        }
        return TensorEntry(
            name: name, dtype: dtype, shape: shape, byteOffset: offset, byteLength: length, scales: scales)
    }

    private static func writeTensor(_ tensor: TensorEntry, to writer: inout WireWriter) throws {
        try writer.writeString(tensor.name, field: "TensorEntry.name")
        writer.writeU8(tensor.dtype.rawValue)
        try writer.writeArray(tensor.shape, field: "TensorEntry.shape") { $0.writeU32($1) }
        writer.writeU64(tensor.byteOffset)
        writer.writeU64(tensor.byteLength)
        try writer.writeArray(tensor.scales, field: "TensorEntry.scales") { $0.writeF32($1) }
    }
}

/// Server → client: the next piece of the LZ4 frame stream. The payload is the raw bytes, with no length prefix.
public struct WeightChunk: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.weightChunk
    /// Compressed bytes, 1 to `ServerLimits.weightChunkBytes` of them.
    public var bytes: [UInt8]

    /// Creates a chunk.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Reads the payload (all of it).
    public init(from reader: inout WireReader) throws {
        bytes = reader.readRest()
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeRaw(bytes)
    }
}

/// Server → client: the last frame of a successful specialization with weights.
public struct SpecializeEnd: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.specializeEnd
    /// How many `WeightChunk` frames were sent.
    public var chunkCount: UInt32
    /// Their payload bytes added up; equals `SpecializeHeader.compressedBytes`.
    public var compressedBytes: UInt64

    /// Creates an end message.
    public init(chunkCount: UInt32, compressedBytes: UInt64) {
        self.chunkCount = chunkCount
        self.compressedBytes = compressedBytes
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        chunkCount = try reader.readU32("SpecializeEnd.chunkCount")
        compressedBytes = try reader.readU64("SpecializeEnd.compressedBytes")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        writer.writeU32(chunkCount)
        writer.writeU64(compressedBytes)
    }
}

// MARK: - Admin

/// Client → server (admin): list plugins. Empty payload.
public struct PluginList: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pluginList

    /// Creates the request.
    public init() {}

    /// Reads the (empty) payload.
    public init(from reader: inout WireReader) throws {}

    /// Writes the (empty) payload.
    public func encode(to writer: inout WireWriter) throws {}
}

/// One plugin as listed by `PluginListReply`.
public struct PluginInfo: Sendable, Hashable {
    /// The plugin's name.
    public var name: String
    /// What it provides.
    public var kind: PluginKind
    /// Its version string.
    public var version: String
    /// Where it is in its life cycle.
    public var state: PluginState
    /// The file it was loaded from.
    public var path: String

    /// Creates a record.
    public init(name: String, kind: PluginKind, version: String, state: PluginState, path: String) {
        self.name = name
        self.kind = kind
        self.version = version
        self.state = state
        self.path = path
    }
}

/// Server → client: the answer to `PluginList`.
public struct PluginListReply: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pluginListReply
    /// Every plugin.
    public var plugins: [PluginInfo]

    /// Creates the reply.
    public init(plugins: [PluginInfo]) {
        self.plugins = plugins
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        plugins = try reader.readArray("PluginListReply.plugins", minElementBytes: 14) { reader in
            PluginInfo(
                name: try reader.readString("PluginListReply.plugins[].name"),
                kind: try reader.readEnum(PluginKind.self, "PluginListReply.plugins[].kind"),
                version: try reader.readString("PluginListReply.plugins[].version"),
                state: try reader.readEnum(PluginState.self, "PluginListReply.plugins[].state"),
                path: try reader.readString("PluginListReply.plugins[].path"))
        }
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeArray(plugins, field: "PluginListReply.plugins") { writer, plugin in
            try writer.writeString(plugin.name, field: "PluginListReply.plugins[].name")
            writer.writeU8(plugin.kind.rawValue)
            try writer.writeString(plugin.version, field: "PluginListReply.plugins[].version")
            writer.writeU8(plugin.state.rawValue)
            try writer.writeString(plugin.path, field: "PluginListReply.plugins[].path")
        }
    }
}

/// Client → server (admin): load a plugin; answered by `Ok` or an error.
public struct PluginLoad: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pluginLoad
    /// A file name inside the server's plugin directory (no path separators).
    public var fileName: String

    /// Creates the request.
    public init(fileName: String) {
        self.fileName = fileName
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        fileName = try reader.readString("PluginLoad.fileName")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeString(fileName, field: "PluginLoad.fileName")
    }
}

/// Client → server (admin): unload a plugin by name; answered by `Ok` or an error.
public struct PluginUnload: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.pluginUnload
    /// The plugin's name as listed.
    public var name: String

    /// Creates the request.
    public init(name: String) {
        self.name = name
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        name = try reader.readString("PluginUnload.name")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeString(name, field: "PluginUnload.name")
    }
}

/// Client → server (admin): re-measure a target; answered by `Ok` or an error.
public struct TargetCalibrate: WireMessage, Hashable {
    /// The frame kind.
    public static let kind = MessageKind.targetCalibrate
    /// The target's name.
    public var target: String

    /// Creates the request.
    public init(target: String) {
        self.target = target
    }

    /// Reads the payload.
    public init(from reader: inout WireReader) throws {
        target = try reader.readString("TargetCalibrate.target")
    }

    /// Writes the payload.
    public func encode(to writer: inout WireWriter) throws {
        try writer.writeString(target, field: "TargetCalibrate.target")
    }
}
