// Loading plugin files: the checks, dlopen (never dlclose), the entry symbol and the header.
import Glibc
import SupernetPluginABI
import Synchronization

/// A plugin mapped into the process for good, with its header copied into Swift values.
///
/// @unchecked Sendable: every stored property is an immutable `let`; the handle is never closed and the function
/// tables are copies whose pointers point into a mapping that lives as long as the process; the ABI requires
/// the plugin's cost, layer_cost and search to be thread-safe.
public final class LoadedPlugin: @unchecked Sendable {
    /// The header, copied.
    public let info: PluginInfo
    /// Device and inode of the file that was checked and loaded.
    public let identity: FileIdentity
    /// The dlopen handle; kept forever.
    let handle: UnsafeMutableRawPointer
    /// The target functions when kind is target.
    let targetFunctions: supernet_target_functions?
    /// The strategy functions when kind is strategy.
    let strategyFunctions: supernet_strategy_functions?

    init(
        info: PluginInfo, identity: FileIdentity, handle: UnsafeMutableRawPointer,
        targetFunctions: supernet_target_functions?, strategyFunctions: supernet_strategy_functions?
    ) {
        self.info = info
        self.identity = identity
        self.handle = handle
        self.targetFunctions = targetFunctions
        self.strategyFunctions = strategyFunctions
    }

    /// The hardware target interface, or nil for a strategy.
    public var target: HardwareTarget? {
        targetFunctions.map { HardwareTarget(plugin: self, functions: $0) }
    }

    /// The search strategy interface, or nil for a target.
    public var strategy: SearchStrategy? {
        strategyFunctions.map { SearchStrategy(plugin: self, functions: $0) }
    }

    /// Applies a JSON configuration through the plugin's configure function. The ABI allows this only before
    /// the plugin is shared with other threads (the registry does it inside `load`).
    /// TODO: nothing enforces that: called while other threads are in cost or search, the plugin's settings race.
    /// A fix is to make configure registry-only (internal) once the daemon's configuration flow is settled.
    public func configure(json: String) throws(PluginCallError) {
        let function = targetFunctions?.configure ?? strategyFunctions?.configure
        guard let function else {
            throw PluginCallError(
                kind: .notProvided, plugin: info.name, function: "configure",
                message: "the plugin takes no configuration")
        }
        try callReportingErrors(plugin: info.name, function: "configure") { buffer, size in
            function(json, buffer, size)
        }
    }
}

/// Loads plugin files from configured directories after checking them.
public final class PluginLoader: Sendable {
    /// The configured directories, resolved.
    public let directories: [String]
    /// Users that may own plugin files and directories.
    public let allowedOwners: Set<UInt32>
    /// Files seen by dlopen handle, to spot the dynamic loader handing back an old mapping.
    private let mapped = Mutex<[UInt: (identity: FileIdentity, path: String)]>([:])

    /// Creates a loader for `directories`; owners default to root and the daemon's own user.
    public init(directories: [String], allowedOwners: Set<UInt32>? = nil) throws(PluginLoadError) {
        let owners = allowedOwners ?? [0, getuid()]
        var resolved: [String] = []
        for directory in directories {
            resolved.append(try checkDirectory(directory, allowedOwners: owners))
        }
        self.directories = resolved
        self.allowedOwners = owners
    }

    /// The `*.so` files directly inside the directories, sorted per directory.
    public func candidatePaths() -> [String] {
        var result: [String] = []
        for directory in directories {
            guard let stream = opendir(directory) else {
                continue
            }
            var names: [String] = []
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name.hasSuffix(".so") {
                    names.append(name)
                }
            }
            closedir(stream)
            result += names.sorted().map { directory == "/" ? "/" + $0 : directory + "/" + $0 }
        }
        return result
    }

    /// Checks, maps and validates the plugin at `path`. A refused file that got as far as dlopen stays mapped.
    public func load(path: String) throws(PluginLoadError) -> LoadedPlugin {
        let file = try checkPluginFile(path, directories: directories, allowedOwners: allowedOwners)
        func refuse(_ kind: PluginLoadError.Kind, _ what: String) -> PluginLoadError {
            PluginLoadError(kind: kind, path: path, message: "refusing plugin \(path): \(what)")
        }

        _ = dlerror()
        guard let handle = dlopen(file.realPath, RTLD_NOW | RTLD_LOCAL) else {
            throw refuse(.dlopenFailed, "dlopen failed: \(dlerrorText())")
        }
        let earlier = mapped.withLock { table -> (identity: FileIdentity, path: String)? in
            let key = UInt(bitPattern: handle)
            if let earlier = table[key] {
                return earlier
            }
            table[key] = (file.identity, file.realPath)
            return nil
        }
        if let earlier, earlier.identity != file.identity {
            throw refuse(
                .alreadyMapped,
                "the dynamic loader returned the mapping of an earlier file loaded from \(earlier.path) "
                    + "(inode \(earlier.identity.inode), now inode \(file.identity.inode)); install a new version "
                    + "under a new file name")
        }

        _ = dlerror()
        guard let symbol = dlsym(handle, SUPERNET_PLUGIN_ENTRY_SYMBOL) else {
            throw refuse(.missingEntrySymbol, "no symbol \(SUPERNET_PLUGIN_ENTRY_SYMBOL): \(dlerrorText())")
        }
        let entry = unsafeBitCast(symbol, to: supernet_plugin_entry_fn.self)
        guard let header = entry() else {
            throw refuse(.invalidHeader, "\(SUPERNET_PLUGIN_ENTRY_SYMBOL) returned NULL")
        }
        return try readHeader(header, file: file, handle: handle, refuse: refuse)
    }

    private func readHeader(
        _ header: UnsafePointer<supernet_plugin_header>, file: CheckedFile, handle: UnsafeMutableRawPointer,
        refuse: (PluginLoadError.Kind, String) -> PluginLoadError
    ) throws(PluginLoadError) -> LoadedPlugin {
        // abi_version and struct_size are frozen at the start of the header in every ABI version.
        let raw = UnsafeRawPointer(header)
        let abiVersion = raw.load(as: UInt32.self)
        let structSize = raw.load(fromByteOffset: 4, as: UInt32.self)
        let hostVersion = UInt32(SUPERNET_PLUGIN_ABI_VERSION)
        guard abiVersion == hostVersion else {
            throw refuse(
                .abiVersionMismatch,
                "it was built for plugin ABI version \(abiVersion) and this host speaks version \(hostVersion); "
                    + "rebuild it against this host's supernet_plugin.h")
        }

        let value = header.pointee
        let kind: PluginKind
        let expectedSize: Int
        switch value.kind {
        case SUPERNET_PLUGIN_KIND_TARGET.rawValue:
            kind = .target
            expectedSize = MemoryLayout<supernet_target_functions>.size
        case SUPERNET_PLUGIN_KIND_STRATEGY.rawValue:
            kind = .strategy
            expectedSize = MemoryLayout<supernet_strategy_functions>.size
        default:
            throw refuse(.invalidHeader, "unknown plugin kind \(value.kind) (1 is target, 2 is strategy)")
        }
        guard Int(structSize) == expectedSize else {
            throw refuse(
                .structSizeMismatch,
                "its \(kind.rawValue) function table is \(structSize) bytes and this host's is \(expectedSize) "
                    + "bytes, though both say ABI version \(abiVersion); rebuild it against this host's header")
        }

        guard let namePointer = value.name, let versionPointer = value.version,
            let summaryPointer = value.description
        else {
            throw refuse(.invalidHeader, "name, version and description must not be NULL")
        }
        let name = String(cString: namePointer)
        let version = String(cString: versionPointer)
        let nameIsValid =
            (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F
            }
        guard nameIsValid else {
            throw refuse(.invalidHeader, "name \"\(name)\" is not 1 to 64 characters of [a-z0-9_-]")
        }
        guard !version.isEmpty else {
            throw refuse(.invalidHeader, "the version string is empty")
        }
        guard let functions = value.functions else {
            throw refuse(.invalidHeader, "the function table pointer is NULL")
        }

        let info = PluginInfo(
            name: name, kind: kind, version: version, summary: String(cString: summaryPointer),
            abiVersion: abiVersion, path: file.realPath)
        switch kind {
        case .target:
            let table = functions.load(as: supernet_target_functions.self)
            guard table.cost != nil else {
                throw refuse(.invalidHeader, "the target's required cost function is NULL")
            }
            return LoadedPlugin(
                info: info, identity: file.identity, handle: handle, targetFunctions: table, strategyFunctions: nil)
        case .strategy:
            let table = functions.load(as: supernet_strategy_functions.self)
            guard table.search != nil else {
                throw refuse(.invalidHeader, "the strategy's required search function is NULL")
            }
            return LoadedPlugin(
                info: info, identity: file.identity, handle: handle, targetFunctions: nil, strategyFunctions: table)
        }
    }
}

/// The text of the last dlerror, or a placeholder.
private func dlerrorText() -> String {
    guard let text = dlerror() else {
        return "no dlerror text"
    }
    return String(cString: text)
}

/// Calls a plugin function with an error buffer and turns a negative status into a PluginCallError.
func callReportingErrors(
    plugin: String, function: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32
) throws(PluginCallError) {
    let size = 1024
    var buffer = [CChar](repeating: 0, count: size)
    let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, size) }
    guard status >= 0 else {
        buffer[size - 1] = 0
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        throw PluginCallError(
            kind: .pluginFailed, plugin: plugin, function: function, status: status,
            message: text.isEmpty ? "no message" : text)
    }
}
