// The errors of loading plugins, calling them and managing the registry.

/// A plugin file the loader refuses, naming the check that failed and the path.
public struct PluginLoadError: Error, Sendable, CustomStringConvertible {
    /// The checks, in the order the loader runs them.
    public enum Kind: String, Sendable {
        /// A configured plugin directory does not exist, is not a directory, or may be written by others.
        case unusableDirectory
        /// The path's directory is not one of the configured plugin directories.
        case notInPluginDirectory
        /// Nothing exists at the path.
        case notFound
        /// After resolving symbolic links, the file lies outside the plugin directory.
        case outsideDirectory
        /// The resolved path is not a regular file.
        case notRegularFile
        /// The file is owned by a user other than root or the daemon.
        case badOwner
        /// The file may be written by its group or by anyone.
        case writableByOthers
        /// The file is not a 64-bit little-endian ELF shared object for this machine, or it cannot be read.
        case notELFSharedObject
        /// The file asks for an executable stack (PT_GNU_STACK with PF_X, or no PT_GNU_STACK at all).
        case executableStack
        /// dlopen failed.
        case dlopenFailed
        /// The dynamic loader handed back an existing mapping of a different file (same path or same inode).
        case alreadyMapped
        /// The file does not export supernet_plugin_entry.
        case missingEntrySymbol
        /// The plugin was built for another ABI version.
        case abiVersionMismatch
        /// The plugin's function table has another size than this host's.
        case structSizeMismatch
        /// The header is malformed: NULL entry result, unknown kind, bad name, NULL strings or functions.
        case invalidHeader
        /// The plugin's configure function refused the configuration.
        case configureFailed
    }

    /// Which check failed.
    public let kind: Kind
    /// The path that was being loaded, as given.
    public let path: String
    /// A sentence saying what failed, on which path, and what to do.
    public let message: String

    /// Creates an error.
    public init(kind: Kind, path: String, message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// A call into a plugin that failed, naming the plugin and the function.
public struct PluginCallError: Error, Sendable, CustomStringConvertible {
    /// The ways a call fails.
    public enum Kind: String, Sendable {
        /// The caller's arguments cannot be passed (too many stages, empty choices); the plugin was not called.
        case invalidArgument
        /// The plugin does not provide this optional function, or is of the other kind.
        case notProvided
        /// The plugin returned a negative status.
        case pluginFailed
        /// A host callback (the Swift closure) threw or answered wrongly during the call.
        case callbackFailed
        /// The plugin returned success with values that break the ABI (negative cost, arch outside the space).
        case invalidResult
    }

    /// How the call failed.
    public let kind: Kind
    /// The plugin's registry name.
    public let plugin: String
    /// The ABI function called (cost, layer_cost, configure, calibrate, search).
    public let function: String
    /// The plugin's status when kind is pluginFailed.
    public let status: Int32?
    /// The plugin's message or the host's explanation.
    public let message: String
    /// The error the Swift callback threw, when kind is callbackFailed because of it.
    public let underlying: (any Error)?

    /// Creates an error.
    public init(
        kind: Kind, plugin: String, function: String, status: Int32? = nil, message: String,
        underlying: (any Error)? = nil
    ) {
        self.kind = kind
        self.plugin = plugin
        self.function = function
        self.status = status
        self.message = message
        self.underlying = underlying
    }

    /// "plugin analytic, cost: message".
    public var description: String {
        let code = status.map { " (status \($0) \(PluginStatus.name(of: $0)))" } ?? ""
        return "plugin \(plugin), \(function)\(code): \(message)"
    }
}

/// A registry operation that cannot be done, naming the plugin.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    /// The ways a registry operation fails.
    public enum Kind: String, Sendable {
        /// Loading the file failed; `loadError` says which check.
        case loadFailed
        /// No plugin of that name is registered.
        case notFound
        /// A plugin of that name is loaded or retiring.
        case nameTaken
        /// The plugin is retiring or retired and takes no new calls.
        case notAvailable
        /// The plugin is loaded and was never unloaded, so there is nothing to wait for.
        case notRetiring
        /// The file is already registered (a retired plugin comes back only from a different file).
        case sameFile
    }

    /// What failed.
    public let kind: Kind
    /// The plugin name or, for load failures, the path.
    public let subject: String
    /// A sentence saying what failed and what to do.
    public let message: String
    /// The loader's error when kind is loadFailed.
    public let loadError: PluginLoadError?

    /// Creates an error.
    public init(kind: Kind, subject: String, message: String, loadError: PluginLoadError? = nil) {
        self.kind = kind
        self.subject = subject
        self.message = message
        self.loadError = loadError
    }

    /// The message.
    public var description: String { message }
}

/// Names of the ABI's status codes.
public enum PluginStatus {
    /// The supernet_status constant name for a status, or "unknown".
    public static func name(of status: Int32) -> String {
        switch status {
        case 0: "SUPERNET_OK"
        case -1: "SUPERNET_ERROR_INVALID_ARGUMENT"
        case -2: "SUPERNET_ERROR_UNSUPPORTED"
        case -3: "SUPERNET_ERROR_INFEASIBLE"
        case -4: "SUPERNET_ERROR_CALLBACK"
        case -5: "SUPERNET_ERROR_CONFIG"
        case -6: "SUPERNET_ERROR_IO"
        case -7: "SUPERNET_ERROR_INTERNAL"
        default: "unknown"
        }
    }
}
