// Typed calls into a hardware target plugin.
import SupernetPluginABI

/// A loaded hardware target: prices layer lists.
///
/// @unchecked Sendable: holds an immutable copy of the plugin's function table (C function pointers into a
/// mapping that is never unloaded) and the plugin; the ABI requires cost and layer_cost to be thread-safe.
public struct HardwareTarget: @unchecked Sendable {
    /// The plugin it comes from.
    public let plugin: LoadedPlugin
    let functions: supernet_target_functions

    /// Whether the target gives per-layer latencies.
    public var hasLayerCost: Bool { functions.layer_cost != nil }

    /// Whether the target can be calibrated.
    public var hasCalibrate: Bool { functions.calibrate != nil }

    /// The cost of running `layers` on the target.
    public func cost(of layers: [NetworkLayer]) throws(PluginCallError) -> HardwareCost {
        let cLayers = layers.map(\.cValue)
        var result = supernet_cost()
        let cost = functions.cost!
        try callReportingErrors(plugin: plugin.info.name, function: "cost") { buffer, size in
            cLayers.withUnsafeBufferPointer { layers in
                cost(layers.baseAddress, layers.count, &result, buffer, size)
            }
        }

        let swiftCost = HardwareCost(result)
        if let problem = swiftCost.problem {
            throw PluginCallError(kind: .invalidResult, plugin: plugin.info.name, function: "cost", message: problem)
        }
        return swiftCost
    }

    /// The latency of each layer in milliseconds.
    public func layerLatencies(of layers: [NetworkLayer]) throws(PluginCallError) -> [Double] {
        guard let layerCost = functions.layer_cost else {
            throw PluginCallError(
                kind: .notProvided, plugin: plugin.info.name, function: "layer_cost",
                message: "the target has no per-layer latency")
        }
        let cLayers = layers.map(\.cValue)
        var latencies = [Double](repeating: .nan, count: layers.count)
        try callReportingErrors(plugin: plugin.info.name, function: "layer_cost") { buffer, size in
            cLayers.withUnsafeBufferPointer { layers in
                latencies.withUnsafeMutableBufferPointer { output in
                    layerCost(layers.baseAddress, layers.count, output.baseAddress, buffer, size)
                }
            }
        }

        if let bad = latencies.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw PluginCallError(
                kind: .invalidResult, plugin: plugin.info.name, function: "layer_cost",
                message: "latency of layer \(bad) is \(latencies[bad]); it must be finite and at least 0")
        }
        return latencies
    }

    /// Calibrates the target with its state under `stateDirectory`. Like configure, only before sharing.
    public func calibrate(stateDirectory: String) throws(PluginCallError) {
        guard let calibrate = functions.calibrate else {
            throw PluginCallError(
                kind: .notProvided, plugin: plugin.info.name, function: "calibrate",
                message: "the target needs no calibration")
        }
        try callReportingErrors(plugin: plugin.info.name, function: "calibrate") { buffer, size in
            calibrate(stateDirectory, buffer, size)
        }
    }
}
