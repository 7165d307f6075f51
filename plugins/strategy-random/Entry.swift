// The C entry points of the random search strategy.
import PluginSupport
import SupernetPluginABI

/// The settings in force.
/// nonisolated(unsafe): the ABI lets the host call configure only right after loading, from one thread and before
/// any search; the host publishes the plugin to other threads after that under a lock, so reads never race the
/// write.
nonisolated(unsafe) private var settings = RandomSettings()

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed, so the address
/// handed to the host stays valid for the life of the process.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentHeader(
    name: "random", version: "1.0.0",
    description:
        "Random search baseline: uniformly sampled architectures in batches, the best one meeting the budgets",
    functions: supernet_strategy_functions(search: randomSearch, configure: randomConfigure))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func randomSearch(
    space: UnsafePointer<supernet_search_space>?, budgets: UnsafePointer<supernet_budget>?, budgetCount: Int,
    deadline: Double, callbacks: UnsafePointer<supernet_search_callbacks>?, seed: UInt64,
    best: UnsafeMutablePointer<supernet_arch>?, stats: UnsafeMutablePointer<supernet_search_stats>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    let settings = settings
    return performSearch(
        name: "random", evaluationLimit: settings.evaluations, space: space, budgets: budgets,
        budgetCount: budgetCount, deadline: deadline, callbacks: callbacks, best: best, stats: stats,
        errorBuffer: errorBuffer, errorSize: errorSize
    ) { (scorer: inout Scorer) throws(SearchFailure) -> UInt64 in
        try runRandomSearch(settings: settings, scorer: &scorer, seed: seed)
    }
}

private func randomConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    configure(&settings, json: json, plugin: "random", errorBuffer: errorBuffer, errorSize: errorSize)
}
