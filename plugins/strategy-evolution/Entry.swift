// The C entry points of the evolutionary search strategy.
import PluginSupport
import SupernetPluginABI

/// The settings in force.
/// nonisolated(unsafe): the ABI lets the host call configure only right after loading, from one thread and before
/// any search; the host publishes the plugin to other threads after that under a lock, so reads never race the
/// write.
nonisolated(unsafe) private var settings = EvolutionSettings()

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed, so the address
/// handed to the host stays valid for the life of the process.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header = permanentHeader(
    name: "evolution", version: "1.0.0",
    description:
        "Once-for-All evolutionary search: mutation and crossover of the best quarter, budgets as hard limits",
    functions: supernet_strategy_functions(search: evolutionSearch, configure: evolutionConfigure))

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func evolutionSearch(
    space: UnsafePointer<supernet_search_space>?, budgets: UnsafePointer<supernet_budget>?, budgetCount: Int,
    deadline: Double, callbacks: UnsafePointer<supernet_search_callbacks>?, seed: UInt64,
    best: UnsafeMutablePointer<supernet_arch>?, stats: UnsafeMutablePointer<supernet_search_stats>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    guard let space, let callbacks, let best, let stats, budgetCount == 0 || budgets != nil else {
        supernet_copy_message(errorBuffer, errorSize, "search needs a space, callbacks, best and stats")
        return SUPERNET_ERROR_INVALID_ARGUMENT.rawValue
    }

    stats.pointee = supernet_search_stats()
    let start = callbacks.pointee.now_ms?(callbacks.pointee.context) ?? 0
    let budgetList = budgets.map { Array(UnsafeBufferPointer(start: $0, count: budgetCount)) } ?? []
    var search: EvolutionSearch
    do throws(SearchFailure) {
        search = try EvolutionSearch(
            settings: settings, space: try DecisionSpace(space.pointee), budgets: budgetList, deadline: deadline,
            callbacks: callbacks.pointee, seed: seed)
        try search.run()
    } catch {
        supernet_copy_message(errorBuffer, errorSize, "evolution: \(error.message)")
        return error.status
    }

    stats.pointee = supernet_search_stats(
        evaluations: search.evaluations, generations: search.generations,
        wall_ms: (callbacks.pointee.now_ms?(callbacks.pointee.context) ?? start) - start)
    guard let arch = search.bestArch() else {
        let why = search.stopped ? "before the search was stopped" : "within the sampling limits"
        supernet_copy_message(
            errorBuffer, errorSize, "evolution: no architecture meeting every budget was found \(why)")
        return SUPERNET_ERROR_INFEASIBLE.rawValue
    }
    best.pointee = arch
    return SUPERNET_OK.rawValue
}

private func evolutionConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    configure(&settings, json: json, plugin: "evolution", errorBuffer: errorBuffer, errorSize: errorSize)
}
