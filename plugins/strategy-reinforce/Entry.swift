// The C entry points of the REINFORCE search strategy.
import SupernetPluginABI

/// The settings in force.
/// nonisolated(unsafe): the ABI lets the host call configure only right after loading, from one thread and before
/// any search; the host publishes the plugin to other threads after that under a lock, so reads never race the
/// write.
nonisolated(unsafe) private var settings = ReinforceSettings()

/// The plugin header, built once by the global's thread-safe lazy initializer and never freed, so the address
/// handed to the host stays valid for the life of the process.
/// nonisolated(unsafe): the pointee is written only inside that initializer and only read afterwards.
nonisolated(unsafe) private let header: UnsafeMutablePointer<supernet_plugin_header> = {
    let functions = UnsafeMutablePointer<supernet_strategy_functions>.allocate(capacity: 1)
    functions.initialize(to: supernet_strategy_functions(search: reinforceSearch, configure: reinforceConfigure))
    let header = UnsafeMutablePointer<supernet_plugin_header>.allocate(capacity: 1)
    header.initialize(
        to: supernet_plugin_header(
            abi_version: UInt32(SUPERNET_PLUGIN_ABI_VERSION),
            struct_size: UInt32(MemoryLayout<supernet_strategy_functions>.size),
            kind: SUPERNET_PLUGIN_KIND_STRATEGY.rawValue,
            reserved: 0,
            name: permanentCString("reinforce"),
            version: permanentCString("1.0.0"),
            description: permanentCString(
                "ENAS-style REINFORCE: a softmax policy per decision, rewarded by accuracy less the budget excess"),
            functions: UnsafeRawPointer(functions)))
    return header
}()

/// Returns the plugin header; the one symbol the host looks up.
@_cdecl("supernet_plugin_entry")
public func supernetPluginEntry() -> UnsafePointer<supernet_plugin_header> {
    UnsafePointer(header)
}

private func reinforceSearch(
    space: UnsafePointer<supernet_search_space>?, budgets: UnsafePointer<supernet_budget>?, budgetCount: Int,
    deadline: Double, callbacks: UnsafePointer<supernet_search_callbacks>?, seed: UInt64,
    best: UnsafeMutablePointer<supernet_arch>?, stats: UnsafeMutablePointer<supernet_search_stats>?,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    let settings = settings
    return performSearch(
        name: "reinforce", evaluationLimit: settings.evaluations, space: space, budgets: budgets,
        budgetCount: budgetCount, deadline: deadline, callbacks: callbacks, best: best, stats: stats,
        errorBuffer: errorBuffer, errorSize: errorSize
    ) { (scorer: inout Scorer) throws(SearchFailure) -> UInt64 in
        var search = ReinforceSearch(settings: settings, space: scorer.space, seed: seed)
        return try search.run(scorer: &scorer)
    }
}

private func reinforceConfigure(
    json: UnsafePointer<CChar>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
) -> Int32 {
    guard let json else {
        supernet_copy_message(errorBuffer, errorSize, "configure needs a JSON object, got NULL")
        return SUPERNET_ERROR_INVALID_ARGUMENT.rawValue
    }

    do throws(ConfigProblem) {
        var reader = FlatJSONReader(String(cString: json))
        settings = try settings.applying(try reader.readObject())
        return SUPERNET_OK.rawValue
    } catch {
        supernet_copy_message(errorBuffer, errorSize, "reinforce configure: \(error.message)")
        return SUPERNET_ERROR_CONFIG.rawValue
    }
}
