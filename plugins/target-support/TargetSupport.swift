// What the table-driven targets share: the header, the layer conversion and the cost of a priced layer list.
// Linked statically into each plugin, so every plugin has its own copy and its own globals. The header itself is
// built by PluginSupport, which the Swift strategies and target-analytic use too.
import LatencyTable
import PluginSupport
import SupernetPluginABI

/// A call a target refuses, with the ABI status to return and a message for the host.
public struct TargetFailure: Error {
    /// A negative supernet_status value.
    public let status: Int32
    /// What is wrong, naming the layer or the setting.
    public let message: String

    /// Creates a failure.
    public init(_ status: supernet_status, _ message: String) {
        self.status = status.rawValue
        self.message = message
    }

    /// Writes the message into the host's buffer and returns the status.
    public func report(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int32 {
        supernet_copy_message(buffer, size, message)
        return status
    }
}

/// Builds a target's header and function table in memory that is never freed (PluginSupport's `permanentHeader`,
/// under a name of its own so that the targets need not import PluginSupport).
public func permanentTargetHeader(
    name: String, version: String, description: String, functions: supernet_target_functions
) -> UnsafeMutablePointer<supernet_plugin_header> {
    permanentHeader(name: name, version: version, description: description, functions: functions)
}

/// The keys of the host's layer list, checked; throws naming the first bad layer by index.
public func layerKeys(_ layers: UnsafePointer<supernet_layer>?, _ count: Int) throws(TargetFailure) -> [LayerKey] {
    guard let layers, count > 0 else {
        throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "the call needs a non-empty layer list")
    }

    var keys: [LayerKey] = []
    keys.reserveCapacity(count)
    for index in 0..<count {
        let layer = layers[index]
        guard let op = LayerOp(code: layer.op) else {
            throw TargetFailure(SUPERNET_ERROR_UNSUPPORTED, "layer \(index): unknown op \(layer.op) (known: 0 to 5)")
        }
        guard let activation = LayerActivation(code: layer.activation) else {
            throw TargetFailure(
                SUPERNET_ERROR_UNSUPPORTED, "layer \(index): unknown activation \(layer.activation) (known: 0 to 3)")
        }
        let raw = LayerKey(
            op: op, inputChannels: Int(layer.input_channels), outputChannels: Int(layer.output_channels),
            kernel: Int(layer.kernel), stride: Int(layer.stride), size: Int(layer.input_size), activation: activation,
            hidden: Int(layer.hidden))
        do throws(LayerShapeProblem) {
            keys.append(try raw.validated(outputSize: Int(layer.output_size)))
        } catch {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "layer \(index): \(error.message)")
        }
    }
    return keys
}

/// The cost of a layer list whose layers are priced one by one: the latencies plus a fixed per-inference
/// overhead, MACs and parameters counted as the analytic target counts them, energy and peak memory unknown.
/// TODO: peak memory could follow the analytic target's walk over the list; it is NaN (a memory budget is then
/// never met on these targets).
public func tableCost(keys: [LayerKey], latencies: [Double], overheadMilliseconds: Double) -> supernet_cost {
    let latency = latencies.reduce(0, +) + overheadMilliseconds
    return supernet_cost(
        latency_ms: max(latency, 0), energy_mj: .nan, peak_memory_bytes: .nan,
        macs: keys.reduce(0) { $0 + $1.macs }, params: keys.reduce(0) { $0 + $1.params })
}

/// Writes `values` into the host's array of `values.count` doubles.
public func store(_ values: [Double], into output: UnsafeMutablePointer<Double>) {
    for (index, value) in values.enumerated() {
        output[index] = value
    }
}

/// The pairs of a configure object; throws a configuration failure naming the plugin.
public func configurationPairs(
    _ json: UnsafePointer<CChar>?, plugin: String
) throws(TargetFailure) -> [(key: String, value: JSONValue)] {
    guard let json else {
        throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "\(plugin) configure: needs a JSON object, got NULL")
    }

    do throws(JSONProblem) {
        guard let pairs = try JSONValue.parse(String(cString: json)).objectPairs else {
            throw JSONProblem("the configuration must be a JSON object")
        }
        return pairs
    } catch {
        throw TargetFailure(SUPERNET_ERROR_CONFIG, "\(plugin) configure: \(error.message)")
    }
}
