import Wire
import XCTest

/// One message of every kind, with distinct values in every field so that swapped or dropped fields show up.
let sampleMessages: [any WireMessage & Hashable] = [
    Hello(versions: [1, 3, 2], clientName: "tester ✓"),
    HelloReply(
        version: 1, serverName: "supernetd", serverVersion: "0.3.1",
        limits: ServerLimits(
            maxFrameBytes: 16_777_216, maxInFlight: 32, weightChunkBytes: 1_048_576, maxBudgetCount: 4)),
    Ping(echo: 0xDEAD_BEEF_0000_0001),
    Pong(echo: 77),
    Cancel(requestID: 4_000_000_000),
    ErrorReply(code: .unknownModel, message: "no model \"x\""),
    ErrorReply(
        code: .infeasibleBudget, message: "too tight",
        infeasible: Infeasibility(budgetKind: .latencyMs, smallestAchievable: 3.25)),
    ErrorReply(code: ErrorCode(rawValue: 999), message: "from the future"),
    Ok(),
    ListModels(),
    ModelsReply(models: [
        ModelInfo(
            name: "ofa-mnist", spaceName: "mbv3", filePath: "/models/a.safetensors", parameterCount: 1_234_567,
            largestMACs: 9_000_000, smallestMACs: 1_000_000, calibrationImageCount: 2000, hasPredictor: true,
            largestAccuracy: 0.991, smallestAccuracy: nil),
        ModelInfo(
            name: "b", spaceName: "s", filePath: "", parameterCount: 1, largestMACs: 3, smallestMACs: 2,
            calibrationImageCount: 0, hasPredictor: false, largestAccuracy: nil, smallestAccuracy: 0.5),
    ]),
    ListTargets(),
    TargetsReply(targets: [
        PluginDescriptor(name: "cpu", pluginFile: "", version: "builtin", summary: "this machine"),
        PluginDescriptor(name: "pi4", pluginFile: "pi4.so", version: "1.2", summary: "Raspberry Pi 4 table"),
    ]),
    ListStrategies(),
    StrategiesReply(strategies: [
        PluginDescriptor(name: "evo", pluginFile: "evo.so", version: "2", summary: "evolutionary search")
    ]),
    Stats(),
    StatsReply(values: ["requests": 12, "cache.hits": 3.5, "uptime.s": 1e9]),
    Pareto(model: "ofa-mnist", target: "cpu", points: 16),
    ParetoReply(points: [
        ParetoPoint(arch: "{\"d\":[2]}", predictedAccuracy: 0.9, macs: 100, latencyMs: 1.5),
        ParetoPoint(arch: "{\"d\":[4]}", predictedAccuracy: 0.95, macs: 200, latencyMs: 2.5),
    ]),
    Specialize(
        model: "ofa-mnist", target: "cpu", budgets: [Budget(.latencyMs, 2.5), Budget(.memoryKB, 512)],
        strategy: "evo", dtype: .int8, shuffle: true, deadlineMs: 1500, noWeights: false),
    Specialize(model: "m", target: "t", budgets: [Budget(.params, 1e5)], noWeights: true),
    SpecializeHeader(
        arch: "{\"ks\":[3,5]}", archDigest: String(repeating: "ab", count: 32), predictedAccuracy: 0.97,
        costs: CostSummary(
            macs: 5_000_000, params: 40_000, peakActivationBytes: 65_536, latencyMs: 1.25, energyMJ: 0.5),
        strategy: "evo", fromCache: true, search: SearchStatistics(evaluations: 800, wallMs: 123.5), dtype: .int8,
        shuffle: false,
        tensors: [
            TensorEntry(name: "w", dtype: .int8, shape: [2, 3], byteOffset: 0, byteLength: 6, scales: [0.5, 0.25]),
            TensorEntry(name: "b", dtype: .int8, shape: [2], byteOffset: 6, byteLength: 2, scales: [1, 2]),
        ],
        decodedBytes: 8, compressedBytes: 27, sha256: Array(0..<32), metadata: ["arch": "x", "format": "pt"]),
    WeightChunk(bytes: [4, 0x22, 0x4D, 0x18, 0, 1, 2]),
    SpecializeEnd(chunkCount: 5, compressedBytes: 4_000_000),
    PluginList(),
    PluginListReply(plugins: [
        PluginInfo(name: "pi4", kind: .target, version: "1.2", state: .loaded, path: "/plugins/pi4.so"),
        PluginInfo(name: "evo", kind: .strategy, version: "2", state: .retiring, path: "/plugins/evo.so"),
        PluginInfo(name: "old", kind: .strategy, version: "1", state: .retired, path: "/plugins/old.so"),
    ]),
    PluginLoad(fileName: "pi4.so"),
    PluginUnload(name: "evo"),
    TargetCalibrate(target: "cpu"),
]

final class MessageTests: XCTestCase {
    func testEveryKindHasASample() {
        let covered = Set(sampleMessages.map { type(of: $0).kind })

        XCTAssertEqual(covered, Set(MessageKind.allCases))
    }

    func testKindCodesAreStable() {
        let codes = MessageKind.allCases.map { "\($0)=\($0.rawValue)" }.joined(separator: ",")

        XCTAssertEqual(
            codes,
            "hello=1,helloReply=2,ping=3,pong=4,cancel=5,error=6,ok=7,listModels=16,modelsReply=17,listTargets=18,"
                + "targetsReply=19,listStrategies=20,strategiesReply=21,stats=22,statsReply=23,pareto=24,"
                + "paretoReply=25,specialize=32,specializeHeader=33,weightChunk=34,specializeEnd=35,pluginList=48,"
                + "pluginListReply=49,pluginLoad=50,pluginUnload=51,targetCalibrate=52")
        XCTAssertEqual(ErrorCode.internalError.rawValue, 13)
        XCTAssertEqual(ErrorCode.protocolError.rawValue, 11)
        XCTAssertEqual(ErrorCode.cancelled.rawValue, 9)
    }

    func testRoundTripOfEveryMessage() throws {
        for message in sampleMessages {
            try assertRoundTrip(message)
        }
    }

    private func assertRoundTrip<M: WireMessage & Hashable>(_ message: M) throws {
        var encoder = FrameEncoder()
        try encoder.append(message, requestID: 9)
        var decoder = FrameDecoder()
        decoder.append(encoder.bytes)
        let frame = try XCTUnwrap(decoder.nextFrame())

        XCTAssertEqual(frame.kind, M.kind)
        let decoded = try decodeMessage(frame)
        XCTAssertEqual(decoded as? M, message, "\(M.self)")
        XCTAssertEqual(try M(payload: frame.payload), message)
    }

    func testNaNCostsSurvive() throws {
        var header = try XCTUnwrap(sampleMessages.compactMap { $0 as? SpecializeHeader }.first)
        header.costs.latencyMs = .nan
        header.costs.energyMJ = .nan

        let decoded = try SpecializeHeader(payload: header.encodedPayload())
        XCTAssertTrue(decoded.costs.latencyMs.isNaN)
        XCTAssertTrue(decoded.costs.energyMJ.isNaN)
        XCTAssertEqual(decoded.costs.macs, header.costs.macs)
    }

    func testEveryPrefixOfEveryPayloadIsTruncated() throws {
        for message in sampleMessages where !(message is WeightChunk) {
            let payload = try message.encodedPayload()
            let type = type(of: message)
            for length in 0..<payload.count {
                do {
                    _ = try type.init(payload: Array(payload[0..<length]))
                    XCTFail("\(type) accepted the first \(length) of \(payload.count) bytes")
                } catch let error as WireError {
                    // A cut inside an array shows up as a count the remaining bytes cannot hold.
                    XCTAssertTrue([.truncated, .countTooLarge].contains(error.code), error.message)
                }
            }
        }
    }

    func testTrailingByteAfterEveryPayloadIsRefused() throws {
        for message in sampleMessages where !(message is WeightChunk) {
            let payload = try message.encodedPayload() + [0]
            let type = type(of: message)
            assertWireError(.trailingBytes) { _ = try type.init(payload: payload) }
        }
    }

    func testGarbagePayloadIsRefusedOrCanonical() throws {
        var generator = SeededGenerator(seed: 3)
        var refused = 0
        for kind in MessageKind.allCases where kind != .weightChunk {
            for _ in 0..<200 {
                let payload = generator.bytes(Int.random(in: 0...64, using: &generator))
                do {
                    let message = try decodeMessage(Frame(kind: kind, requestID: 1, payload: payload))
                    XCTAssertEqual(try message.encodedPayload(), payload, "\(kind) accepted a non-canonical payload")
                } catch is WireError {
                    refused += 1
                }
            }
        }
        XCTAssertGreaterThan(refused, 4000)
    }

    func testGarbageSpecializeNamesTheField() {
        let payload = Array("GARBAGE! not a request".utf8)

        let error = assertWireError(.overlong) { _ = try Specialize(payload: payload) }
        XCTAssertEqual(error?.field, "Specialize.model")
    }

    func testBadUTF8InsideAMessage() {
        let payload = littleEndian(UInt32(1)) + littleEndian(UInt16(1)) + littleEndian(UInt32(2)) + [0xC3, 0x28]

        let error = assertWireError(.invalidUTF8) { _ = try Hello(payload: payload) }
        XCTAssertEqual(error?.field, "Hello.clientName")
    }

    func testHugeTensorCountIsRefusedBeforeAllocating() throws {
        var header = try XCTUnwrap(sampleMessages.compactMap { $0 as? SpecializeHeader }.first)
        header.tensors = []
        header.metadata = [:]
        var payload = try header.encodedPayload()
        let countOffset = payload.count - 4 - 32 - 8 - 8 - 4
        XCTAssertEqual(Array(payload[countOffset..<countOffset + 4]), [0, 0, 0, 0])
        payload.replaceSubrange(countOffset..<countOffset + 4, with: littleEndian(UInt32(1_000_000)))

        let error = assertWireError(.countTooLarge) { _ = try SpecializeHeader(payload: payload) }
        XCTAssertEqual(error?.field, "SpecializeHeader.tensors")
    }

    func testUnknownBudgetKindAndDTypeAreRefused() throws {
        let request = Specialize(model: "m", target: "t", budgets: [Budget(.macs, 1)], dtype: .f16)
        var payload = try request.encodedPayload()
        let kindOffset = 4 + 1 + 4 + 1 + 4
        XCTAssertEqual(payload[kindOffset], 2)
        payload[kindOffset] = 5
        assertWireError(.invalidValue) { _ = try Specialize(payload: payload) }

        var dtypePayload = try request.encodedPayload()
        let dtypeOffset = dtypePayload.count - 7
        XCTAssertEqual(dtypePayload[dtypeOffset], 1)
        dtypePayload[dtypeOffset] = 3
        let error = assertWireError(.invalidValue) { _ = try Specialize(payload: dtypePayload) }
        XCTAssertEqual(error?.field, "Specialize.dtype")
    }

    func testWrongKindForTypedDecode() {
        let frame = Frame(kind: .pong, requestID: 1, payload: littleEndian(UInt64(3)))

        assertWireError(.invalidValue) { _ = try Ping(frame: frame) }
    }

    func testHeaderWithShortDigestIsNotEncoded() throws {
        var header = try XCTUnwrap(sampleMessages.compactMap { $0 as? SpecializeHeader }.first)
        header.sha256 = [1, 2, 3]

        assertWireError(.invalidArgument) { _ = try header.encodedPayload() }
    }
}
