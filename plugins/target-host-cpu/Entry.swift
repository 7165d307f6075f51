// The C entry points of the host-cpu hardware target: latency measured on this machine with the engine.
//
// The cost is the sum of per-layer latencies from a table keyed by layer shape, plus a measured per-inference
// overhead (see `LatencyProfiler` for the method). The table is built by micro-benchmarks of every layer shape of
// fmnist-mbv3 on first use (a few seconds), cached as <state_dir>/host-cpu-latency.json in the lut target's
// format, and read back on the next load when it was measured on the same processor with the same engine thread
// count, profiler version and measurement settings. Shapes outside the table are measured on the fly and added.
// calibrate(state_dir) always re-measures.
import LatencyProfiling
import LatencyTable
import SupernetPluginABI
import TargetSupport

#if canImport(Glibc)
import Glibc
#endif

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentTargetHeader(
    name: "host-cpu", version: "1.0.0",
    description: "latency measured on this machine with the engine: per-layer table plus per-inference overhead",
    functions: supernet_target_functions(
        cost: hostCost, layer_cost: hostLayerCost, configure: hostConfigure, calibrate: hostCalibrate))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

/// Test and diagnostics hook, not part of the ABI: writes up to `count` of [shapes measured on the fly, tables
/// built, tables read from the cache, milliseconds of the last build] into `values`; returns how many it wrote.
@_cdecl("target_host_cpu_statistics")
public func targetHostCPUStatistics(_ values: UnsafeMutablePointer<Double>?, _ count: Int) -> Int {
    guard let values else {
        return 0
    }

    let statistics = hostState.withLock { $0.statistics }
    let all = [
        Double(statistics.shapesMeasuredOnTheFly), Double(statistics.tablesBuilt), Double(statistics.tablesLoaded),
        statistics.lastBuildMilliseconds,
    ]
    let written = min(max(count, 0), all.count)
    store(Array(all.prefix(written)), into: values)
    return written
}

private func hostCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, out: UnsafeMutablePointer<supernet_cost>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        guard let out else {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "host-cpu: cost needs an output")
        }
        let keys = try layerKeys(layers, count)
        let priced = try hostState.withLock { (state: inout HostState) throws(TargetFailure) in
            try state.price(keys)
        }
        out.pointee = tableCost(keys: keys, latencies: priced.latencies, overheadMilliseconds: priced.overhead)
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}

/// Per-layer latencies without the per-inference overhead (they add up to the cost's latency minus it).
private func hostLayerCost(
    layers: UnsafePointer<supernet_layer>?, count: Int, latencies: UnsafeMutablePointer<Double>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        guard let latencies else {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "host-cpu: layer_cost needs an output array")
        }
        let keys = try layerKeys(layers, count)
        let priced = try hostState.withLock { (state: inout HostState) throws(TargetFailure) in
            try state.price(keys)
        }
        store(priced.latencies, into: latencies)
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}

/// Keys: "state_dir" (absolute path of the cache's directory), "threads" (the engine thread count to measure
/// with; default the active processors, as the daemon's inference), "samples", "min_sample_ms", "warmup_ms",
/// "overhead_networks" (see `ProfilerSettings`). All or nothing; a table already in force is kept.
private func hostConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        let pairs = try configurationPairs(json, plugin: "host-cpu")
        try hostState.withLock { (state: inout HostState) throws(TargetFailure) in
            state.settings = try state.settings.applying(pairs)
            if let threads = state.settings.threads {
                // The plugin links its own copy of the engine (the daemon exports none of its symbols), so this
                // sets the thread count of the measurements only, never the daemon's.
                LatencyProfiler.setEngineThreads(threads)
            }
        }
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}

/// Re-measures the whole space, puts the table in force and caches it under `state_dir` (which becomes the
/// state directory). A directory that is not writable fails at once (SUPERNET_ERROR_IO); when writing the cache
/// fails after measuring, the new table is in force all the same.
private func hostCalibrate(
    stateDirectory: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    do throws(TargetFailure) {
        guard let stateDirectory else {
            throw TargetFailure(SUPERNET_ERROR_INVALID_ARGUMENT, "host-cpu: calibrate needs a state directory")
        }
        let path = String(cString: stateDirectory)
        guard access(path, W_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            throw TargetFailure(SUPERNET_ERROR_IO, "host-cpu: cannot write the state directory \(path): \(reason)")
        }
        try hostState.withLock { (state: inout HostState) throws(TargetFailure) in
            state.settings.stateDirectory = path
            state.build()
            try state.save()
        }
        return SUPERNET_OK.rawValue
    } catch {
        return error.report(errorBuffer, errorSize)
    }
}
