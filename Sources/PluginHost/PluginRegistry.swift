// The registry of loaded plugins: names, leases for in-flight calls, and retirement instead of unloading.
import Dispatch
import Glibc
import Synchronization

/// Where a registered plugin is in its life. Plugins are never unmapped: retired only means no new calls.
public enum PluginState: String, Sendable {
    /// Takes new calls.
    case loaded
    /// Unloaded while calls were in flight: takes no new calls, retires when the last one ends.
    case retiring
    /// Takes no calls; the name may be loaded again from a different file.
    case retired
}

/// One row of `PluginRegistry.list()`.
public struct PluginListing: Sendable, Equatable {
    /// Registry name.
    public let name: String
    /// Target or strategy.
    public let kind: PluginKind
    /// The plugin's version string.
    public let version: String
    /// Where it is in its life.
    public let state: PluginState
    /// The real path it was loaded from.
    public let path: String
    /// Leases not yet released.
    public let inFlight: Int
}

/// What `scanDirectories()` did.
public struct ScanReport: Sendable {
    /// Plugins loaded by this scan.
    public var loaded: [PluginInfo] = []
    /// Files refused, with why.
    public var failures: [(path: String, error: RegistryError)] = []
    /// Files skipped because they are already registered.
    public var skipped: [String] = []
}

/// A counted use of a plugin: the plugin cannot retire until every lease on it is released.
public final class PluginLease: Sendable {
    /// The plugin to call.
    public let plugin: LoadedPlugin
    private let registry: PluginRegistry
    private let serial: UInt64
    private let released = Mutex(false)

    init(plugin: LoadedPlugin, registry: PluginRegistry, serial: UInt64) {
        self.plugin = plugin
        self.registry = registry
        self.serial = serial
    }

    /// Ends the use; later calls do nothing. A lease that is dropped unreleased releases itself.
    public func release() {
        let first = released.withLock { released in
            defer { released = true }
            return !released
        }
        if first {
            registry.endCall(serial: serial)
        }
    }

    deinit {
        release()
    }
}

/// The plugins of a daemon, by name; thread-safe.
public final class PluginRegistry: Sendable {
    private struct Entry {
        let plugin: LoadedPlugin
        let serial: UInt64
        var state: PluginState
        var inFlight: Int
        var waiters: [DispatchSemaphore]
    }

    private struct Table {
        var current: [String: Entry] = [:]
        var history: [Entry] = []
        var nextSerial: UInt64 = 1
    }

    /// The loader used for every file.
    public let loader: PluginLoader
    private let table = Mutex(Table())

    /// Creates an empty registry that loads through `loader`.
    public init(loader: PluginLoader) {
        self.loader = loader
    }

    /// Loads the plugin at `path`, applies `configuration` (JSON for its configure function) if given, and
    /// registers it under its name. The name must be free or retired; a retired name comes back only from a
    /// different file.
    @discardableResult
    public func load(path: String, configuration: String? = nil) throws(RegistryError) -> PluginInfo {
        if let real = resolvedPath(path), let identity = fileIdentity(real) {
            let holder = table.withLock { table in
                (Array(table.current.values) + table.history).first { $0.plugin.identity == identity }
            }
            if let holder {
                throw sameFileError(path: path, holder: holder)
            }
        }

        let plugin: LoadedPlugin
        do throws(PluginLoadError) {
            plugin = try loader.load(path: path)
            if let configuration {
                do throws(PluginCallError) {
                    try plugin.configure(json: configuration)
                } catch {
                    throw PluginLoadError(
                        kind: .configureFailed, path: path, message: "refusing plugin \(path): \(error)")
                }
            }
        } catch {
            throw RegistryError(kind: .loadFailed, subject: path, message: error.message, loadError: error)
        }

        let name = plugin.info.name
        try table.withLock { (table: inout Table) throws(RegistryError) in
            if let holder = (Array(table.current.values) + table.history).first(where: {
                $0.plugin.identity == plugin.identity || $0.plugin.handle == plugin.handle
            }) {
                throw sameFileError(path: path, holder: holder)
            }
            if let existing = table.current[name] {
                guard existing.state == .retired else {
                    throw RegistryError(
                        kind: .nameTaken, subject: name,
                        message: "plugin \(name) from \(path) not registered: a plugin of that name is "
                            + "\(existing.state.rawValue) (from \(existing.plugin.info.path)); unload it and wait "
                            + "until it has retired")
                }
                table.history.append(existing)
            }
            table.current[name] = Entry(
                plugin: plugin, serial: table.nextSerial, state: .loaded, inFlight: 0, waiters: [])
            table.nextSerial += 1
        }
        return plugin.info
    }

    /// Loads every `*.so` in the loader's directories that is not registered yet; refusals are reported, the
    /// rest loaded.
    public func scanDirectories() -> ScanReport {
        var report = ScanReport()
        for path in loader.candidatePaths() {
            do throws(RegistryError) {
                report.loaded.append(try load(path: path))
            } catch  where error.kind == .sameFile {
                report.skipped.append(path)
            } catch {
                report.failures.append((path, error))
            }
        }
        return report
    }

    /// Starts a call on the loaded plugin `name`; release the lease when the call is done.
    public func acquire(_ name: String) throws(RegistryError) -> PluginLease {
        try table.withLock { (table: inout Table) throws(RegistryError) in
            guard var entry = table.current[name] else {
                throw RegistryError(kind: .notFound, subject: name, message: "no plugin named \(name) is registered")
            }
            guard entry.state == .loaded else {
                throw RegistryError(
                    kind: .notAvailable, subject: name,
                    message: "plugin \(name) is \(entry.state.rawValue) and takes no new calls")
            }
            entry.inFlight += 1
            table.current[name] = entry
            return PluginLease(plugin: entry.plugin, registry: self, serial: entry.serial)
        }
    }

    /// Stops new calls to `name`; it retires now if no call is in flight, else when the last lease is released.
    /// Returns the state after the call. Unloading a retiring or retired plugin changes nothing.
    @discardableResult
    public func unload(_ name: String) throws(RegistryError) -> PluginState {
        let (state, waiters) = try table.withLock { (table: inout Table) throws(RegistryError) in
            guard var entry = table.current[name] else {
                throw RegistryError(kind: .notFound, subject: name, message: "no plugin named \(name) is registered")
            }
            var waiters: [DispatchSemaphore] = []
            if entry.state == .loaded {
                entry.state = entry.inFlight == 0 ? .retired : .retiring
                if entry.state == .retired {
                    waiters = entry.waiters
                    entry.waiters = []
                }
                table.current[name] = entry
            }
            return (entry.state, waiters)
        }
        waiters.forEach { $0.signal() }
        return state
    }

    /// Blocks until the unloaded plugin `name` has retired or `timeout` passes; returns whether it retired.
    public func waitUntilRetired(_ name: String, timeout: Duration) throws(RegistryError) -> Bool {
        let semaphore = DispatchSemaphore(value: 0)
        let state = try table.withLock { (table: inout Table) throws(RegistryError) in
            guard var entry = table.current[name] else {
                throw RegistryError(kind: .notFound, subject: name, message: "no plugin named \(name) is registered")
            }
            if entry.state == .retiring {
                entry.waiters.append(semaphore)
                table.current[name] = entry
            }
            return entry.state
        }

        switch state {
        case .retired:
            return true
        case .loaded:
            throw RegistryError(
                kind: .notRetiring, subject: name, message: "plugin \(name) is loaded; unload it before waiting")
        case .retiring:
            let nanoseconds = max(0, milliseconds(timeout) * 1e6)
            return semaphore.wait(timeout: .now() + .nanoseconds(Int(min(nanoseconds, 1e18)))) == .success
        }
    }

    /// The state of `name`, or nil when no plugin of that name is registered.
    public func state(of name: String) -> PluginState? {
        table.withLock { $0.current[name]?.state }
    }

    /// Every registered plugin (retired ones replaced by a newer file included), by name and load order.
    public func list() -> [PluginListing] {
        table.withLock { table in
            (table.history + Array(table.current.values))
                .sorted { ($0.plugin.info.name, $0.serial) < ($1.plugin.info.name, $1.serial) }
                .map {
                    PluginListing(
                        name: $0.plugin.info.name, kind: $0.plugin.info.kind, version: $0.plugin.info.version,
                        state: $0.state, path: $0.plugin.info.path, inFlight: $0.inFlight)
                }
        }
    }

    /// Ends one call of the entry with `serial`; retires it if it was retiring and this was the last call.
    func endCall(serial: UInt64) {
        let waiters = table.withLock { table -> [DispatchSemaphore] in
            guard let name = table.current.first(where: { $0.value.serial == serial })?.key,
                var entry = table.current[name]
            else {
                return []
            }
            entry.inFlight -= 1
            var waiters: [DispatchSemaphore] = []
            if entry.state == .retiring, entry.inFlight == 0 {
                entry.state = .retired
                waiters = entry.waiters
                entry.waiters = []
            }
            table.current[name] = entry
            return waiters
        }
        waiters.forEach { $0.signal() }
    }

    private func sameFileError(path: String, holder: Entry) -> RegistryError {
        let name = holder.plugin.info.name
        return RegistryError(
            kind: .sameFile, subject: path,
            message: "\(path) is the file of plugin \(name) (\(holder.state.rawValue)); the dynamic loader would "
                + "hand back that mapping, so a new version must come under a new file name")
    }
}

/// Device and inode of an existing file.
private func fileIdentity(_ path: String) -> FileIdentity? {
    var status = stat()
    guard stat(path, &status) == 0 else {
        return nil
    }
    return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
}
