import CLinux
import Engine
import Foundation
import Supernet
import SystemdSupport
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Composes the daemon from its configuration: models, plugins, listeners (socket-activated or bound), the
/// server loop, systemd notifications, SIGHUP reload and SIGTERM drain.
public final class DaemonRunner {
    let configuration: DaemonConfiguration
    let logger: ServiceLogger
    let notifier = ServiceNotifier()
    let version: String

    /// Creates a runner; nothing starts until `run`.
    public init(configuration: DaemonConfiguration, logger: ServiceLogger, version: String) {
        self.configuration = configuration
        self.logger = logger
        self.version = version
    }

    /// Runs until SIGTERM or SIGINT; returns the exit status.
    /// - Parameter makeCatalog: builds the plugin catalog (loads the plugin directories) and returns it with the
    ///   files it refused.
    public func run(
        makeCatalog: (DaemonConfiguration) throws -> (PluginCatalog & PluginRescanning, [String])
    )
        throws -> Int32
    {
        let signals = try blockSignals()
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory,
            withIntermediateDirectories: true)

        let store = ModelStore(directory: configuration.models)
        for failure in store.reload() {
            logger.warning("model refused", ["path": failure.path, "reason": failure.reason])
        }
        let (catalog, refused) = try makeCatalog(configuration)
        for reason in refused {
            logger.warning("plugin refused", ["reason": reason])
        }
        let service = makeService(store: store, catalog: catalog)
        service.warmParetoArchives()
        let (listeners, owned) = try openListeners()
        var limits = serverLimits()
        limits.maxConnections = configuration.maxConnections
        let server = try Server(listeners: listeners, limits: limits)

        try server.watch(signals) { [self] _ in
            switch readSignal(signals) {
            case SIGHUP:
                reload(store: store, catalog: catalog, service: service)
            case SIGTERM, SIGINT:
                server.stop()
            default:
                break
            }
        }
        _ = try? notifier.ready(status: service.statusLine())
        logger.info(
            "ready",
            [
                "models": "\(store.all.count)", "socket": configuration.socket,
                "admin_socket": configuration.adminSocket,
            ])

        let watchdog = (try? notifier.watchdogInterval()).flatMap { $0 }.map(Self.seconds)
        var lastPing = 0.0
        let tick = { [self] in
            let now = monotonicSeconds()
            if let watchdog, now - lastPing >= watchdog {
                _ = try? notifier.watchdog()
                lastPing = now
            }
        }
        server.run(handler: service, tickInterval: min(watchdog ?? 1, 1), tick: tick)

        _ = try? notifier.stopping(status: "draining \(service.pendingRequests) requests")
        logger.info("stopping: draining in-flight requests", ["pending": "\(service.pendingRequests)"])
        server.closeListeners()
        server.drain(timeout: 20, tick: tick)
        _ = service.drain(timeout: 5)
        for listener in owned {
            listener.close(unlinkPath: true)
        }
        logger.info("stopped")
        return 0
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    private func serverLimits() -> ServerLimits {
        var limits = ServerLimits()
        limits.maxInflightPerConnection = configuration.maxInflightPerConnection
        limits.maxFrameBytes = configuration.maxFrameBytes
        limits.idleTimeout = Double(configuration.idleTimeoutSeconds)
        return limits
    }

    private func makeService(store: ModelStore, catalog: PluginCatalog) -> DaemonService {
        let specializer = Specializer(
            store: store, targets: { catalog.target($0) }, strategies: { catalog.strategy($0) },
            defaultStrategy: configuration.defaultStrategy,
            defaultDeadlineMs: Double(configuration.defaultDeadlineMilliseconds),
            cacheEntries: max(configuration.cacheEntries, 1) * 32, calibrationLimit: configuration.calibrationImages,
            archiveRungMs: Double(configuration.paretoRungMilliseconds))
        let threads =
            configuration.workerThreads > 0
            ? configuration.workerThreads : Parallel.availableProcessorCount
        return DaemonService(
            store: store, catalog: catalog, specializer: specializer, workerThreads: threads,
            queueCapacity: 4 * configuration.maxConnections, limits: serverLimits(), chunkBytes: 1 << 20,
            cacheEntries: max(configuration.cacheEntries, 1), adminGroup: configuration.adminGroup,
            serverVersion: version)
    }

    /// SIGHUP: RELOADING=1, rescan models and plugins, READY=1 with the new summary.
    private func reload(store: ModelStore, catalog: PluginRescanning, service: DaemonService) {
        _ = try? notifier.reloading(status: "rescanning models and plugins")
        logger.info("reloading")
        for failure in store.reload() {
            logger.warning("model refused", ["path": failure.path, "reason": failure.reason])
        }
        for reason in catalog.rescan() {
            logger.warning("plugin refused", ["reason": reason])
        }
        service.warmParetoArchives()
        _ = try? notifier.ready(status: service.statusLine())
        logger.info("reloaded", ["models": "\(store.all.count)"])
    }

    /// Socket-activated descriptors when systemd passed them, else sockets bound at the configured paths.
    private func openListeners() throws -> ([(fd: Int32, role: ListenerRole)], [UnixListener]) {
        if let activated = try SocketActivation.receive(nonBlocking: true) {
            var listeners: [(fd: Int32, role: ListenerRole)] = []
            if let fd = activated.client { listeners.append((fd, .client)) }
            if let fd = activated.admin { listeners.append((fd, .admin)) }
            logger.info("socket-activated", ["sockets": "\(listeners.count)"])
            return (listeners, [])
        }
        let client = try UnixListener.bind(path: configuration.socket, mode: 0o666, nonBlocking: true)
        let admin = try UnixListener.bind(path: configuration.adminSocket, mode: 0o600, nonBlocking: true)
        return ([(client.fd, .client), (admin.fd, .admin)], [client, admin])
    }

    /// Routes SIGHUP, SIGTERM and SIGINT to a pipe the loop watches (self-pipe: the handler only writes the signal
    /// number, which is async-signal-safe) and ignores SIGPIPE (a vanished client is an EPIPE, not a crash).
    /// A signalfd would need the signals blocked in every thread, and OpenBLAS starts threads before `main`.
    private func blockSignals() throws -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw SystemCallError("pipe")
        }
        for fd in fds {
            setNonBlocking(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        signalPipe = fds[1]
        for number in [SIGHUP, SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        return fds[0]
    }

    /// The next signal number written by the handler, 0 when none is pending.
    private func readSignal(_ fd: Int32) -> Int32 {
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 ? Int32(byte) : 0
    }
}

/// The write end of the signal pipe, set once before the handlers are installed and only read afterwards.
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// A catalog that can rescan its plugin directories (SIGHUP).
public protocol PluginRescanning: Sendable {
    /// Loads plugins that appeared; returns refusals.
    func rescan() -> [String]
}
