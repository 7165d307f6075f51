// The C entry points of the relaxed (DARTS-style) search strategy.
import PluginSupport
import SupernetPluginABI

/// The settings in force.
/// nonisolated(unsafe): the ABI lets the host call configure only right after loading, from one thread and before
/// any search; the host publishes the plugin to other threads after that under a lock, so reads never race the
/// write.
nonisolated(unsafe) private var settings = RelaxedSettings()

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed, so the address
/// handed to the host stays valid for the life of the process.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentHeader(
    name: "relaxed", version: "1.0.0",
    description:
        "DARTS-style relaxation: softmax weights ascend fitted accuracy and cost surrogates, then discretize"
        + " and repair",
    functions: supernet_strategy_functions(search: relaxedSearch, configure: relaxedConfigure))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func relaxedSearch(
    space: UnsafePointer<supernet_search_space>?, budgets: UnsafePointer<supernet_budget>?, budgetCount: Int,
    deadline: Double, callbacks: UnsafePointer<supernet_search_callbacks>?, seed: UInt64,
    best: UnsafeMutablePointer<supernet_arch>?, stats: UnsafeMutablePointer<supernet_search_stats>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    let settings = settings
    return performSearch(
        name: "relaxed", evaluationLimit: settings.evaluations, space: space, budgets: budgets,
        budgetCount: budgetCount, deadline: deadline, callbacks: callbacks, best: best, stats: stats,
        errorBuffer: errorBuffer, errorSize: errorSize
    ) { (scorer: inout Scorer) throws(SearchFailure) -> UInt64 in
        var search = RelaxedSearch(
            settings: settings, space: scorer.space, budgetCount: scorer.budgets.count, seed: seed)
        return try search.run(scorer: &scorer)
    }
}

private func relaxedConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    configure(&settings, json: json, plugin: "relaxed", errorBuffer: errorBuffer, errorSize: errorSize)
}
