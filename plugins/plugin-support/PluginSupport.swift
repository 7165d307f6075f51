// The C-ABI glue the Swift plugins share: the header and function table built in memory that is never freed, and
// the configure call over a flat JSON object of numbers.
// Linked statically into each plugin, so every plugin has its own copy and its own globals. The entry symbol,
// supernet_plugin_entry, stays in each plugin (a `@_cdecl` function returning the header built here), so that each
// shared object exports its own.
import SupernetPluginABI

/// Settings that a configure call replaces: the pairs of a flat JSON object applied to a copy, all or nothing.
public protocol FlatConfigurable {
    /// Returns these settings with the pairs of a configure call applied; throws without a partial change.
    func applying(_ pairs: [(key: String, value: Double)]) throws(ConfigProblem) -> Self
}

/// Builds a strategy's header and function table in memory that is never freed.
public func permanentHeader(
    name: String, version: String, description: String, functions: supernet_strategy_functions
) -> UnsafeMutablePointer<supernet_plugin_header> {
    permanentHeader(
        kind: SUPERNET_PLUGIN_KIND_STRATEGY, name: name, version: version, description: description,
        functions: functions)
}

/// Builds a target's header and function table in memory that is never freed.
public func permanentHeader(
    name: String, version: String, description: String, functions: supernet_target_functions
) -> UnsafeMutablePointer<supernet_plugin_header> {
    permanentHeader(
        kind: SUPERNET_PLUGIN_KIND_TARGET, name: name, version: version, description: description,
        functions: functions)
}

/// The header of a plugin of `kind` whose function table is `functions`, with `struct_size` its size.
private func permanentHeader<Functions>(
    kind: supernet_plugin_kind, name: String, version: String, description: String, functions: Functions
) -> UnsafeMutablePointer<supernet_plugin_header> {
    let table = UnsafeMutablePointer<Functions>.allocate(capacity: 1)
    table.initialize(to: functions)
    let header = UnsafeMutablePointer<supernet_plugin_header>.allocate(capacity: 1)
    header.initialize(
        to: supernet_plugin_header(
            abi_version: UInt32(SUPERNET_PLUGIN_ABI_VERSION),
            struct_size: UInt32(MemoryLayout<Functions>.size),
            kind: kind.rawValue,
            reserved: 0,
            name: permanentCString(name),
            version: permanentCString(version),
            description: permanentCString(description),
            functions: UnsafeRawPointer(table)))
    return header
}

/// Copies `text` into memory that is never freed and returns it NUL-terminated.
func permanentCString(_ text: String) -> UnsafePointer<CChar> {
    let bytes = Array(text.utf8)
    let storage = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
    for (index, byte) in bytes.enumerated() {
        storage[index] = CChar(bitPattern: byte)
    }
    storage[bytes.count] = 0
    return UnsafePointer(storage)
}

/// Runs a configure call of the plugin called `plugin`: reads `json` as a flat object of numbers and replaces
/// `settings` with the pairs applied. On failure `settings` is unchanged and the message goes into the host's
/// buffer: SUPERNET_ERROR_INVALID_ARGUMENT for a NULL `json`, SUPERNET_ERROR_CONFIG (the message prefixed with
/// "`plugin` configure: ") for text that does not parse or that the settings refuse.
public func configure<Settings: FlatConfigurable>(
    _ settings: inout Settings, json: UnsafePointer<CChar>?, plugin: String,
    errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int
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
        supernet_copy_message(errorBuffer, errorSize, "\(plugin) configure: \(error.message)")
        return SUPERNET_ERROR_CONFIG.rawValue
    }
}
