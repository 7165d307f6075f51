import PluginHost
import XCTest

final class AnalyticTargetTests: XCTestCase {
    /// A 28 × 28 grey input: stem, one residual inverted block with squeeze-excite (16 → 64 → 16), pool,
    /// classifier.
    private func residualNet(projectTo projection: Int = 16) -> [NetworkLayer] {
        [
            NetworkLayer(
                op: .conv, inputChannels: 1, outputChannels: 16, kernel: 3, stride: 2, inputSize: 28, outputSize: 14,
                activation: .hswish),
            NetworkLayer(op: .pointwise, inputChannels: 16, outputChannels: 64, inputSize: 14, outputSize: 14),
            NetworkLayer(
                op: .depthwise, inputChannels: 64, outputChannels: 64, kernel: 3, inputSize: 14, outputSize: 14,
                activation: .relu),
            NetworkLayer(
                op: .squeezeExcite, inputChannels: 64, outputChannels: 64, inputSize: 14, outputSize: 14, hidden: 16),
            NetworkLayer(op: .pointwise, inputChannels: 64, outputChannels: projection, inputSize: 14, outputSize: 14),
            NetworkLayer(
                op: .pool, inputChannels: projection, outputChannels: projection, kernel: 14, stride: 14,
                inputSize: 14, outputSize: 1),
            NetworkLayer(op: .linear, inputChannels: projection, outputChannels: 10, inputSize: 1, outputSize: 1),
        ]
    }

    func testHeaderOfTheBuiltPlugin() throws {
        let plugin = try BuiltPlugins.shared().analytic.plugin

        XCTAssertEqual(plugin.info.name, "analytic")
        XCTAssertEqual(plugin.info.kind, .target)
        XCTAssertTrue(plugin.info.path.hasSuffix("/libtarget-analytic.so"))
    }

    func testMACsParamsAndPeakMemoryOfAKnownList() throws {
        let target = try BuiltPlugins.shared().analytic

        let cost = try target.cost(of: residualNet())

        // 14²·16·1·9 + 14²·64·16 + 14²·64·9 + 2·64·16 + 14²·16·64 + 0 + 16·10
        XCTAssertEqual(cost.macs, 28_224 + 200_704 + 112_896 + 2_048 + 200_704 + 160)
        // (144 + 16) + (1024 + 64) + (576 + 64) + (2·1024 + 16 + 64) + (1024 + 16) + 0 + (160 + 10)
        XCTAssertEqual(cost.params, 160 + 1_088 + 640 + 2_128 + 1_040 + 170)
        // Depthwise: 64·14²·4 in and out, plus the held 16·14²·4 block input of the residual addition.
        XCTAssertEqual(cost.peakMemoryBytes, 50_176 + 50_176 + 12_544)
        XCTAssertTrue(cost.energyMillijoules.isNaN)
    }

    func testNonResidualBlockHoldsNoInput() throws {
        let target = try BuiltPlugins.shared().analytic

        let cost = try target.cost(of: residualNet(projectTo: 24))

        XCTAssertEqual(cost.peakMemoryBytes, 50_176 + 50_176)
    }

    func testLatencyFollowsThroughputAndOverheadAndLayersAddUp() throws {
        let target = try BuiltPlugins.shared().analytic
        let net = residualNet()

        let cost = try target.cost(of: net)
        let perLayer = try target.layerLatencies(of: net)

        let macs: [Double] = [28_224, 200_704, 112_896, 2_048, 200_704, 0, 160]
        let gflops: [Double] = [10, 60, 20, 10, 60, 10, 10]
        let expected = zip(macs, gflops).map { 2 * $0 / ($1 * 1e9) * 1e3 + 0.002 }
        for (got, want) in zip(perLayer, expected) {
            XCTAssertEqual(got, want, accuracy: 1e-12)
        }
        XCTAssertEqual(cost.latencyMilliseconds, expected.reduce(0, +), accuracy: 1e-12)
        XCTAssertEqual(perLayer.reduce(0, +), cost.latencyMilliseconds, accuracy: 1e-12)
    }

    func testConfigureChangesLatencyAllOrNothing() throws {
        let target = try BuiltPlugins.shared().analytic
        let plugin = target.plugin
        defer { try? plugin.configure(json: #"{"pointwise_gflops": 60, "layer_overhead_us": 2}"#) }
        let pointwise = [
            NetworkLayer(op: .pointwise, inputChannels: 100, outputChannels: 100, inputSize: 10, outputSize: 10)
        ]

        try plugin.configure(json: #" { "pointwise_gflops": 100 , "layer_overhead_us": 0 } "#)
        XCTAssertEqual(try target.cost(of: pointwise).latencyMilliseconds, 2e6 / 100e9 * 1e3, accuracy: 1e-15)

        for bad in [#"{"pointwise_gflops": 50, "bogus": 1}"#, #"{"pointwise_gflops": -1}"#, "{", "[1]"] {
            XCTAssertThrowsError(try plugin.configure(json: bad), bad) { error in
                XCTAssertEqual((error as? PluginCallError)?.status, -5, "\(error)")
            }
        }
        XCTAssertEqual(try target.cost(of: pointwise).latencyMilliseconds, 2e6 / 100e9 * 1e3, accuracy: 1e-15)
    }

    func testMalformedLayersAreRefusedNamingTheLayer() throws {
        let target = try BuiltPlugins.shared().analytic
        let depthwise = NetworkLayer(
            op: .depthwise, inputChannels: 8, outputChannels: 16, kernel: 3, inputSize: 4, outputSize: 4)
        let empty = NetworkLayer(
            op: .conv, inputChannels: 0, outputChannels: 16, kernel: 3, inputSize: 4, outputSize: 4)

        let cases: [([NetworkLayer], String)] = [
            ([residualNet()[0], depthwise], "layer 1"), ([empty], "layer 0"), ([], "non-empty"),
        ]
        for (layers, text) in cases {
            XCTAssertThrowsError(try target.cost(of: layers)) { error in
                let failure = error as? PluginCallError
                XCTAssertEqual(failure?.kind, .pluginFailed)
                XCTAssertEqual(failure?.status, -1)
                XCTAssertTrue(failure?.message.contains(text) ?? false, "\(error)")
            }
        }
    }
}
