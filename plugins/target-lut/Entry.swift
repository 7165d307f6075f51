// The lut hardware target: latencies looked up in a per-layer table measured on some device.
//
// The table is the JSON format of `LatencyTableDocument` (see plugins/target-lut/README.md). configure takes
// {"table": "/path/DEVICE.json"}; without it the target uses the sample table compiled in from
// plugins/target-lut/sample-device.json (this build machine, measured by profile-probe). A layer whose shape is
// not in the table is an error naming the shape: interpolating by MACs is badly wrong for small layers, whose
// time is mostly fixed cost, and a silent guess would steer a latency-bounded search.
// TODO: an opt-in "nearest": "macs" setting could price unknown shapes of a known op from their nearest entries.
import LatencyTable
import SupernetPluginABI
import Synchronization
import TargetSupport

/// A loaded table: lookups and where it came from.
struct LoadedTable: Sendable {
    /// Latency by shape.
    let latencies: [LayerKey: Double]
    /// `per_inference_ms`.
    let overheadMilliseconds: Double
    /// The device and the source, for messages.
    let label: String

    init(_ document: LatencyTableDocument, source: String) {
        latencies = document.latencies
        overheadMilliseconds = document.perInferenceMilliseconds
        label = "table \"\(document.device)\" (\(source))"
    }

    /// The latency of each key, or a failure naming the first shape the table lacks.
    func price(_ keys: [LayerKey]) throws(TargetFailure) -> [Double] {
        var result: [Double] = []
        result.reserveCapacity(keys.count)
        for (index, key) in keys.enumerated() {
            guard let latency = latencies[key] else {
                throw TargetFailure(
                    SUPERNET_ERROR_UNSUPPORTED, "lut: layer \(index) has a shape the \(label) does not list: \(key)")
            }
            result.append(latency)
        }
        return result
    }

    /// The compiled-in sample table.
    static func sample() throws(TargetFailure) -> LoadedTable {
        do throws(JSONProblem) {
            return LoadedTable(
                try LatencyTableDocument(json: PackageResources.sample_device_json), source: "built-in sample")
        } catch {
            throw TargetFailure(SUPERNET_ERROR_INTERNAL, "lut: the built-in sample table is broken: \(error.message)")
        }
    }

    /// The table at `path`.
    static func file(_ path: String) throws(TargetFailure) -> LoadedTable {
        do throws(JSONProblem) {
            return LoadedTable(try LatencyTableDocument(json: try TableFiles.read(path)), source: path)
        } catch {
            throw TargetFailure(SUPERNET_ERROR_CONFIG, "lut configure: table \(path): \(error.message)")
        }
    }
}

/// The table in force; nil until configure loads one or the first call loads the sample.
private let current = Mutex<LoadedTable?>(nil)

/// The table in force, loading the sample on first use.
private func table() throws(TargetFailure) -> LoadedTable {
    try current.withLock { (table: inout LoadedTable?) throws(TargetFailure) -> LoadedTable in
        if let table {
            return table
        }
        let sample = try LoadedTable.sample()
        table = sample
        return sample
    }
}

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentTargetHeader(
    name: "lut", version: "1.0.0",
    description: "per-layer latencies from a JSON table measured on a device (configure {\"table\": PATH})",
    functions: supernet_target_functions(
        cost: lutCost, layer_cost: lutLayerCost, configure: lutConfigure, calibrate: nil))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func lutCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, out: UnsafeMutablePointer<supernet_cost>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        guard let out else {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "lut: cost needs an output")
        }
        let keys = try layerKeys(layers, count)
        let loaded = try table()
        out.pointee = tableCost(
            keys: keys, latencies: try loaded.price(keys), overheadMilliseconds: loaded.overheadMilliseconds)
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}

/// Per-layer latencies: the table's entries, without the per-inference overhead (so they add up to the cost's
/// latency minus `per_inference_ms`).
private func lutLayerCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, latencies: UnsafeMutablePointer<Double>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        guard let latencies else {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "lut: layer_cost needs an output array")
        }
        let keys = try layerKeys(layers, count)
        store(try table().price(keys), into: latencies)
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}

/// Keys: "table" (a path to a latency table; loaded and checked now, replacing the one in force only when it is
/// good).
private func lutConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        var loaded: LoadedTable?
        for (key, value) in try configurationPairs(json, plugin: "lut") {
            guard key == "table" else {
                throw TargetFailure(SUPERNET_ERROR_CONFIG, "lut configure: unknown key \"\(key)\"; known keys: table")
            }
            guard let path = value.string, path.hasPrefix("/") else {
                throw TargetFailure(SUPERNET_ERROR_CONFIG, "lut configure: \"table\" must be an absolute path")
            }
            loaded = try LoadedTable.file(path)
        }
        if let loaded {
            current.withLock { $0 = loaded }
        }
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}
