import Foundation
import PluginHost
import XCTest

final class RooflineTargetTests: XCTestCase {
    /// Compiles roofline.c with cc as its README says and loads it from a fresh directory.
    private func compiledRoofline() throws -> HardwareTarget {
        let directory = try makeTemporaryDirectory("roofline")
        let output = directory + "/libtarget-roofline.so"
        try runCommand(
            "/usr/bin/cc",
            [
                "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I",
                packageRoot + "/plugins/include",
                "-Wl,-z,noexecstack", "-o", output, packageRoot + "/plugins/target-roofline/roofline.c",
            ])
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: output)
        guard let target = try PluginLoader(directories: [directory]).load(path: output).target else {
            throw HelperFailure(description: "roofline is not a target")
        }
        return target
    }

    /// A compute-bound 3 × 3 convolution and a memory-bound global pool.
    private let twoLayers = [
        NetworkLayer(
            op: .conv, inputChannels: 16, outputChannels: 32, kernel: 3, stride: 2, inputSize: 16, outputSize: 8,
            activation: .relu),
        NetworkLayer(op: .pool, inputChannels: 32, outputChannels: 32, kernel: 8, inputSize: 8, outputSize: 1),
    ]

    func testHandComputedCostOfTwoLayers() throws {
        let target = try compiledRoofline()
        try target.plugin.configure(
            json: #"{"peak_gflops": 100, "bandwidth_gbps": 25, "pj_per_flop": 2, "pj_per_byte": 10}"#)

        let cost = try target.cost(of: twoLayers)
        let perLayer = try target.layerLatencies(of: twoLayers)

        // conv: MACs 8²·32·16·9 = 294 912, FLOPs 589 824; params 32·16·9 + 32 = 4 640;
        // bytes 4·(16·16² + 32·8² + 4 640) = 43 136. Compute 589 824 / 100e9 = 5.89824 µs beats
        // memory 43 136 / 25e9 = 1.72544 µs.
        // pool: FLOPs 32·8² = 2 048, bytes 4·(2 048 + 32) = 8 320. Memory 0.3328 µs beats compute 0.02048 µs.
        XCTAssertEqual(perLayer[0], 5.89824e-3, accuracy: 1e-15)
        XCTAssertEqual(perLayer[1], 0.3328e-3, accuracy: 1e-15)
        XCTAssertEqual(cost.latencyMilliseconds, 5.89824e-3 + 0.3328e-3, accuracy: 1e-15)
        // Energy: (589 824 + 2 048)·2 pJ + (43 136 + 8 320)·10 pJ = 1 698 304 pJ.
        XCTAssertEqual(cost.energyMillijoules, 1_698_304e-9, accuracy: 1e-15)
        XCTAssertEqual(cost.macs, 294_912)
        XCTAssertEqual(cost.params, 4_640)
        XCTAssertTrue(cost.peakMemoryBytes.isNaN)
    }

    func testConfigureIsAllOrNothingAndRefusesBadInput() throws {
        let target = try compiledRoofline()
        try target.plugin.configure(json: #" { "peak_gflops" : 200 } "#)
        let before = try target.cost(of: twoLayers)

        for bad in [
            #"{"peak_gflops": 50, "bogus": 1}"#, #"{"bandwidth_gbps": 0}"#, #"{"pj_per_byte": -1}"#, "{",
            #"{"peak_gflops": "fast"}"#, #"{"peak_gflops": 1} trailing"#,
        ] {
            assertCallFails(try target.plugin.configure(json: bad), status: -5, mentioning: ["roofline configure"])
        }

        let after = try target.cost(of: twoLayers)
        XCTAssertEqual(after.latencyMilliseconds, before.latencyMilliseconds)
        XCTAssertEqual(after.energyMillijoules, before.energyMillijoules)
        // At 200 GFLOP/s and the default 10 GB/s both layers are memory-bound: 43 136 and 8 320 bytes.
        XCTAssertEqual(before.latencyMilliseconds, 4.3136e-3 + 0.8320e-3, accuracy: 1e-15)
        assertCallFails(
            try target.cost(of: [
                NetworkLayer(op: .conv, inputChannels: 0, outputChannels: 1, inputSize: 1, outputSize: 1)
            ]),
            status: -1, mentioning: ["layer 0"])
    }
}
