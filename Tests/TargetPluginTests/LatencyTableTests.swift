import LatencyProfiling
import LatencyTable
import XCTest

final class LatencyTableTests: XCTestCase {
    func testJSONReaderReadsValuesAndRefusesMalformedText() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\ud83d\ude00\n", "c": {}} "#)

        XCTAssertEqual(value["a"], .array([.number(1), .number(-2500), .bool(true), .null]))
        XCTAssertEqual(value["b"]?.string, "x\"é😀\n")
        XCTAssertEqual(value["c"], .object([]))
        for bad in [
            "", "{", #"{"a": 1,}"#, #"{"a": 1, "a": 2}"#, "[01]", "1.", "tru", #""\ud800""#, "[1] 2", #""\u+12a""#,
            "\"\u{01}\"",
        ] {
            XCTAssertThrowsError(try JSONValue.parse(bad), bad)
        }
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)))
    }

    func testDocumentRoundTripsThroughItsText() throws {
        let document = LatencyTableDocument(
            device: "board \"7\"", created: "2026-12-03T16:00:00Z", perInferenceMilliseconds: -0.0125,
            entries: [
                LatencyEntry(
                    key: LayerKey(
                        op: .squeezeExcite, inputChannels: 96, outputChannels: 96, size: 5, activation: .hsigmoid,
                        hidden: 24),
                    latencyMilliseconds: 0.003_141),
                LatencyEntry(
                    key: LayerKey(
                        op: .depthwise, inputChannels: 96, outputChannels: 96, kernel: 7, stride: 2, size: 10,
                        activation: .hswish),
                    latencyMilliseconds: 0.1),
            ],
            metadata: [("threads", .number(2)), ("note", .array([.string("a"), .bool(false)]))])

        let text = document.jsonText()
        let read = try LatencyTableDocument(json: Array(text.utf8))

        XCTAssertEqual(read.device, document.device)
        XCTAssertEqual(read.entries, document.entries)
        XCTAssertEqual(read.perInferenceMilliseconds, -0.0125)
        XCTAssertEqual(read.metadata("threads"), .number(2))
        XCTAssertEqual(read.metadata("note"), .array([.string("a"), .bool(false)]))
        XCTAssertTrue(text.contains(#"{"op": "squeeze_excite", "in": 96, "out": 96, "k": 1, "stride": 1, "size": 5"#))
    }

    func testKeysAreCheckedAndGlobalPoolsCanonical() throws {
        let pool = LayerKey(op: .pool, inputChannels: 8, outputChannels: 8, kernel: 4, stride: 4, size: 4)

        XCTAssertEqual(try pool.validated(outputSize: 1).stride, 1)
        XCTAssertThrowsError(try pool.validated(outputSize: 2))
        XCTAssertThrowsError(
            try LayerKey(op: .pointwise, inputChannels: 8, outputChannels: 8, stride: 2, size: 4).validated())
        XCTAssertThrowsError(
            try LayerKey(op: .conv, inputChannels: 1, outputChannels: 8, kernel: 2, size: 4).validated())
        XCTAssertThrowsError(
            try LayerKey(op: .linear, inputChannels: 8, outputChannels: 8, size: 1, hidden: 2).validated())
        XCTAssertEqual(
            try LayerKey(op: .depthwise, inputChannels: 8, outputChannels: 8, kernel: 5, stride: 2, size: 7).validated()
                .outputSize, 4)
    }
}

final class ProfiledSpaceTests: XCTestCase {
    private let space = ProfiledSpace.fmnistMBV3

    func testLayerListMatchesTheDaemonsShapesForOneSubnet() {
        let arch = ProfiledArch(
            resolution: 20, kernels: [[3, 5], [7, 3], [5, 5]], expandRatios: [[6, 3], [4, 6], [3, 4]])
        func pw(_ input: Int, _ output: Int, _ size: Int, _ act: LayerActivation) -> LayerKey {
            LayerKey(op: .pointwise, inputChannels: input, outputChannels: output, size: size, activation: act)
        }
        func dw(_ channels: Int, _ kernel: Int, _ stride: Int, _ size: Int, _ act: LayerActivation) -> LayerKey {
            LayerKey(
                op: .depthwise, inputChannels: channels, outputChannels: channels, kernel: kernel, stride: stride,
                size: size, activation: act)
        }
        func se(_ channels: Int, _ hidden: Int, _ size: Int) -> LayerKey {
            LayerKey(
                op: .squeezeExcite, inputChannels: channels, outputChannels: channels, size: size,
                activation: .hsigmoid, hidden: hidden)
        }

        let expected = [
            LayerKey(op: .conv, inputChannels: 1, outputChannels: 16, kernel: 3, size: 20, activation: .hswish),
            pw(16, 96, 20, .relu), dw(96, 3, 2, 20, .relu), pw(96, 24, 10, .none),
            pw(24, 72, 10, .relu), dw(72, 5, 1, 10, .relu), pw(72, 24, 10, .none),
            pw(24, 96, 10, .hswish), dw(96, 7, 2, 10, .hswish), se(96, 24, 5), pw(96, 40, 5, .none),
            pw(40, 240, 5, .hswish), dw(240, 3, 1, 5, .hswish), se(240, 64, 5), pw(240, 40, 5, .none),
            pw(40, 120, 5, .hswish), dw(120, 5, 2, 5, .hswish), se(120, 32, 3), pw(120, 80, 3, .none),
            pw(80, 320, 3, .hswish), dw(320, 5, 1, 3, .hswish), se(320, 80, 3), pw(320, 80, 3, .none),
            pw(80, 320, 3, .hswish), LayerKey(op: .pool, inputChannels: 320, outputChannels: 320, kernel: 3, size: 3),
            LayerKey(op: .linear, inputChannels: 320, outputChannels: 10, size: 1),
        ]
        XCTAssertEqual(space.layers(for: arch), expected)
    }

    func testShapeSetIsExactlyTheUnionOverSubnetsCoveringEveryChoice() {
        var union = Set<LayerKey>()
        for resolution in space.resolutions {
            for kernel in space.kernels {
                for ratio in space.expandRatios {
                    let blocks = [[Int]](repeating: [Int](repeating: 0, count: 4), count: 3)
                    let arch = ProfiledArch(
                        resolution: resolution, kernels: blocks.map { $0.map { _ in kernel } },
                        expandRatios: blocks.map { $0.map { _ in ratio } })
                    union.formUnion(space.layers(for: arch))
                }
            }
        }

        let shapes = space.allLayerShapes()

        XCTAssertEqual(Set(shapes), union)
        XCTAssertEqual(Set(shapes).count, shapes.count)
        print("fmnist-mbv3 has \(shapes.count) layer shapes")
    }
}
