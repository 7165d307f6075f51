// The host-cpu latency table: measured with the engine on this machine, cached in the state directory.
import LatencyProfiling
import LatencyTable
import SupernetPluginABI
import Synchronization
import TargetSupport

/// What configure may change.
struct HostSettings: Sendable {
    /// Where the cached table lives (the daemon's state directory; calibrate passes its own).
    var stateDirectory = "/var/lib/supernetd"
    /// How the profiler measures.
    var profiler = ProfilerSettings()
    /// The engine thread count to measure with; nil keeps the engine's default (the active processors).
    var threads: Int?

    /// The cache file under the state directory.
    var cachePath: String { stateDirectory + "/host-cpu-latency.json" }

    /// Returns these settings with the pairs of a configure call applied; all or nothing.
    func applying(_ pairs: [(key: String, value: JSONValue)]) throws(TargetFailure) -> HostSettings {
        var result = self
        for (key, value) in pairs {
            func number(_ range: ClosedRange<Double>, whole: Bool = false) throws(TargetFailure) -> Double {
                guard let number = value.number, range.contains(number), !whole || number == number.rounded() else {
                    throw TargetFailure(
                        SUPERNET_ERROR_CONFIG,
                        "host-cpu configure: \"\(key)\" must be a \(whole ? "whole " : "")number from "
                            + "\(range.lowerBound) to \(range.upperBound)")
                }
                return number
            }

            switch key {
            case "state_dir":
                guard let path = value.string, path.hasPrefix("/") else {
                    throw TargetFailure(
                        SUPERNET_ERROR_CONFIG, "host-cpu configure: \"state_dir\" must be an absolute path")
                }
                result.stateDirectory = path
            case "threads": result.threads = Int(try number(1...256, whole: true))
            case "samples": result.profiler.samples = Int(try number(1...1000, whole: true))
            case "min_sample_ms": result.profiler.minimumSampleMilliseconds = try number(0.001...100)
            case "warmup_ms": result.profiler.warmupMilliseconds = try number(0...1000)
            case "overhead_networks": result.profiler.overheadNetworks = Int(try number(1...1000, whole: true))
            default:
                throw TargetFailure(
                    SUPERNET_ERROR_CONFIG,
                    "host-cpu configure: unknown key \"\(key)\"; known keys: state_dir, threads, samples, "
                        + "min_sample_ms, warmup_ms, overhead_networks")
            }
        }
        return result
    }
}

/// Counts for tests and logs: how often the target measured and where its tables came from.
struct HostStatistics: Sendable {
    /// Layer shapes measured one by one after a table was in force (unknown shapes).
    var shapesMeasuredOnTheFly = 0
    /// Tables built by measuring the whole space.
    var tablesBuilt = 0
    /// Tables read from the cache file.
    var tablesLoaded = 0
    /// Milliseconds the last build took.
    var lastBuildMilliseconds = 0.0
}

/// The target's state: settings, the table in force and the statistics. Every access holds the lock.
///
/// Building a table or measuring an unknown shape holds the lock too, so concurrent cost calls wait for the
/// measurement instead of disturbing it.
/// TODO: a table build (seconds) blocks every cost call of this target meanwhile; requests served by other
/// targets during it still run on the same cores and disturb the measurements.
struct HostState: Sendable {
    var settings = HostSettings()
    var document: LatencyTableDocument?
    var latencies: [LayerKey: Double] = [:]
    var statistics = HostStatistics()

    /// Prices `keys`, loading or building the table first when none is in force and measuring shapes the table
    /// lacks (they are added and the cache rewritten).
    mutating func price(_ keys: [LayerKey]) throws(TargetFailure) -> (latencies: [Double], overhead: Double) {
        if document == nil {
            if !loadCache() {
                build()
                _ = try? save()
            }
        }

        var result: [Double] = []
        result.reserveCapacity(keys.count)
        var added = false
        for (index, key) in keys.enumerated() {
            if let latency = latencies[key] {
                result.append(latency)
                continue
            }
            do throws(ProfilingProblem) {
                try LatencyProfiler.checkMeasurable(key)
            } catch {
                throw TargetFailure(SUPERNET_ERROR_UNSUPPORTED, "host-cpu: layer \(index): \(error.message)")
            }
            let latency = LatencyProfiler.nanosecondRounded(LatencyProfiler(settings: settings.profiler).measure(key))
            latencies[key] = latency
            document?.entries.append(LatencyEntry(key: key, latencyMilliseconds: latency))
            statistics.shapesMeasuredOnTheFly += 1
            added = true
            result.append(latency)
        }
        if added {
            _ = try? save()
        }
        return (result, document?.perInferenceMilliseconds ?? 0)
    }

    /// Measures the whole space and puts the new table in force.
    mutating func build() {
        let start = LatencyProfiler.nowMilliseconds()
        let table = LatencyProfiler(settings: settings.profiler).profile()
        statistics.lastBuildMilliseconds = LatencyProfiler.nowMilliseconds() - start
        statistics.tablesBuilt += 1
        adopt(table)
    }

    /// Puts the cached table in force when it exists and was measured on this processor, with this thread count,
    /// by this profiler version with these settings; false otherwise.
    mutating func loadCache() -> Bool {
        guard let bytes = try? TableFiles.read(settings.cachePath),
            let table = try? LatencyTableDocument(json: bytes),
            table.device == LatencyProfiler.deviceName(),
            table.metadata("threads")?.number == Double(LatencyProfiler.engineThreads),
            table.metadata("method")?.string == LatencyProfiler(settings: settings.profiler).methodDescription
        else {
            return false
        }
        statistics.tablesLoaded += 1
        adopt(table)
        return true
    }

    /// Writes the table in force to the cache file.
    func save() throws(TargetFailure) {
        guard let document else {
            return
        }
        do throws(JSONProblem) {
            try TableFiles.writeAtomically(document.jsonText(), to: settings.cachePath)
        } catch {
            throw TargetFailure(SUPERNET_ERROR_IO, "host-cpu: cannot cache the latency table: \(error.message)")
        }
    }

    private mutating func adopt(_ table: LatencyTableDocument) {
        document = table
        latencies = table.latencies
    }
}

/// The one state of the plugin.
let hostState = Mutex(HostState())
