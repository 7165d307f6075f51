import Foundation
import LatencyProfiling
import LatencyTable
import PluginHost
import XCTest

final class LUTTargetTests: XCTestCase {
    private let samplePath = packageRoot + "/plugins/target-lut/sample-device.json"

    /// A table of three shapes with exactly representable latencies.
    private let tinyTable = """
        {"device": "tiny", "created": "2026-12-03T00:00:00Z", "per_inference_ms": 0.125, "entries": [
          {"op": "conv", "in": 1, "out": 16, "k": 3, "stride": 1, "size": 28, "act": "hswish", "se": 0,
           "latency_ms": 0.5},
          {"op": "pool", "in": 320, "out": 320, "k": 4, "stride": 1, "size": 4, "act": "none", "se": 0,
           "latency_ms": 0.25},
          {"op": "linear", "in": 320, "out": 10, "k": 1, "stride": 1, "size": 1, "act": "none", "se": 0,
           "latency_ms": 0.0625}
        ]}
        """

    private let tinyLayers = [
        NetworkLayer(
            op: .conv, inputChannels: 1, outputChannels: 16, kernel: 3, inputSize: 28, outputSize: 28,
            activation: .hswish),
        NetworkLayer(
            op: .pool, inputChannels: 320, outputChannels: 320, kernel: 4, stride: 4, inputSize: 4, outputSize: 1),
        NetworkLayer(op: .linear, inputChannels: 320, outputChannels: 10, inputSize: 1, outputSize: 1),
    ]

    private func writeTable(_ text: String) throws -> String {
        let path = try makeTemporaryDirectory("lut") + "/DEVICE.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testHeaderOfTheBuiltPlugin() throws {
        let target = try loadProduct("target-lut")

        XCTAssertEqual(target.plugin.info.name, "lut")
        XCTAssertEqual(target.plugin.info.kind, .target)
        XCTAssertTrue(target.hasLayerCost)
        XCTAssertFalse(target.hasCalibrate)
    }

    func testBuiltInSampleIsTheShippedFileAndCoversTheSpace() throws {
        let target = try loadProduct("target-lut")
        let sample = try LatencyTableDocument(json: TableFiles.read(samplePath))
        let space = ProfiledSpace.fmnistMBV3
        let keys = space.layers(
            for: ProfiledArch(
                resolution: 20, kernels: [[7, 7, 7], [3, 5], [5, 3, 7, 3]],
                expandRatios: [[6, 4, 3], [3, 6], [4, 4, 6, 3]]))

        let cost = try target.cost(of: keys.map(networkLayer))

        let latencies = keys.map { sample.latencies[$0]! }
        XCTAssertEqual(cost.latencyMilliseconds, latencies.reduce(0, +) + sample.perInferenceMilliseconds)
        XCTAssertEqual(try target.layerLatencies(of: keys.map(networkLayer)), latencies)
        XCTAssertEqual(cost.macs, keys.reduce(0) { $0 + $1.macs })
        XCTAssertEqual(Set(sample.entries.map(\.key)), Set(space.allLayerShapes()))
    }

    func testConfiguredTableGivesTheExactSum() throws {
        let target = try loadProduct("target-lut")
        try target.plugin.configure(json: #"{"table": "\#(try writeTable(tinyTable))"}"#)

        let cost = try target.cost(of: tinyLayers)

        XCTAssertEqual(cost.latencyMilliseconds, 0.5 + 0.25 + 0.0625 + 0.125)
        XCTAssertEqual(try target.layerLatencies(of: tinyLayers), [0.5, 0.25, 0.0625])
        XCTAssertEqual(cost.macs, 28 * 28 * 16 * 9 + 3200)
        XCTAssertEqual(cost.params, 16 * 9 + 16 + 3210)
    }

    func testUnknownShapeIsAnErrorNamingIt() throws {
        let target = try loadProduct("target-lut")
        try target.plugin.configure(json: #"{"table": "\#(try writeTable(tinyTable))"}"#)
        let unknown = NetworkLayer(
            op: .depthwise, inputChannels: 96, outputChannels: 96, kernel: 9, stride: 2, inputSize: 14, outputSize: 7,
            activation: .relu)

        assertCallFails(
            try target.cost(of: tinyLayers + [unknown]), status: -2,
            mentioning: ["layer 3", "depthwise in=96 out=96 k=9 stride=2 size=14 act=relu se=0", "tiny"])
        assertCallFails(try target.layerLatencies(of: [unknown]), status: -2, mentioning: ["layer 0", "k=9"])
    }

    func testBadTablesAreRefusedWithAMessageAndTheOldTableStays() throws {
        let target = try loadProduct("target-lut")
        let good = try writeTable(tinyTable)
        try target.plugin.configure(json: #"{"table": "\#(good)"}"#)
        let cases: [(String, [String])] = [
            (String(tinyTable.dropLast(3)), ["byte"]),
            (
                tinyTable.replacingOccurrences(of: "\"se\": 0,\n   \"latency_ms\": 0.5", with: "\"se\": 0"),
                ["entry 0", "latency_ms"]
            ),
            (
                tinyTable.replacingOccurrences(of: "\"k\": 3", with: "\"kernel\": 3"),
                ["entry 0", "unknown key \"kernel\""]
            ),
            (tinyTable.replacingOccurrences(of: "\"op\": \"pool\"", with: "\"op\": \"maxpool\""), ["entry 1", "op"]),
            (tinyTable.replacingOccurrences(of: "\"device\": \"tiny\", ", with: ""), ["device"]),
            (tinyTable.replacingOccurrences(of: "\"k\": 4", with: "\"k\": 2"), ["entry 1", "global"]),
        ]

        for (text, words) in cases {
            let path = try writeTable(text)
            XCTAssertNotEqual(text, tinyTable)
            assertCallFails(
                try target.plugin.configure(json: #"{"table": "\#(path)"}"#), status: -5, mentioning: [path] + words)
        }
        assertCallFails(
            try target.plugin.configure(json: #"{"table": "/no/such/table.json"}"#), status: -5,
            mentioning: ["cannot open"])
        assertCallFails(try target.plugin.configure(json: #"{"table": 3}"#), status: -5, mentioning: ["absolute path"])
        assertCallFails(
            try target.plugin.configure(json: #"{"tables": "/x"}"#), status: -5, mentioning: ["unknown key"])
        assertCallFails(try target.plugin.configure(json: #"{"table": "/x""#), status: -5, mentioning: ["byte"])
        XCTAssertEqual(try target.cost(of: tinyLayers).latencyMilliseconds, 0.9375)
    }
}
