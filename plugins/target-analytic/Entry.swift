// The C entry points of the analytic hardware target.
import PluginSupport
import SupernetPluginABI

/// The settings in force.
/// nonisolated(unsafe): the ABI lets the host call configure only right after loading, from one thread and before
/// any cost call; the host publishes the plugin to other threads after that under a lock, so reads never race
/// the write.
nonisolated(unsafe) private var settings = AnalyticSettings()

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed, so the address
/// handed to the host stays valid for the life of the process.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentHeader(
    name: "analytic", version: "1.0.0",
    description: "MACs, parameters, peak activation memory and a per-op throughput latency model",
    functions: supernet_target_functions(
        cost: analyticCost, layer_cost: analyticLayerCost, configure: analyticConfigure, calibrate: nil))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func analyticCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, out: UnsafeMutablePointer<supernet_cost>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    guard let out, let buffer = layerBuffer(layers, count) else {
        supernet_copy_message(errorBuffer, errorSize, "cost needs a non-empty layer list and an output")
        return SUPERNET_ERROR_INVALID_ARGUMENT.rawValue
    }

    do throws(ModelFailure) {
        out.pointee = try AnalyticModel(settings: settings).cost(of: buffer)
        return SUPERNET_OK.rawValue
    } catch {
        supernet_copy_message(errorBuffer, errorSize, error.message)
        return error.status
    }
}

private func analyticLayerCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, latencies: UnsafeMutablePointer<Double>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    guard let latencies, let buffer = layerBuffer(layers, count) else {
        supernet_copy_message(errorBuffer, errorSize, "layer_cost needs a non-empty layer list and an output array")
        return SUPERNET_ERROR_INVALID_ARGUMENT.rawValue
    }

    do throws(ModelFailure) {
        let values = try AnalyticModel(settings: settings).layerLatencies(of: buffer)
        for (index, value) in values.enumerated() {
            latencies[index] = value
        }
        return SUPERNET_OK.rawValue
    } catch {
        supernet_copy_message(errorBuffer, errorSize, error.message)
        return error.status
    }
}

private func analyticConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    configure(&settings, json: json, plugin: "analytic", errorBuffer: errorBuffer, errorSize: errorSize)
}

/// The layers as a buffer, or nil when the list is empty or missing.
private func layerBuffer(_ layers: UnsafePointer<supernet_layer>?, _ count: Int) -> UnsafeBufferPointer<supernet_layer>?
{
    guard let layers, count > 0 else {
        return nil
    }
    return UnsafeBufferPointer(start: layers, count: count)
}
