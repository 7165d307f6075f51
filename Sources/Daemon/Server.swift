import CLinux
import Synchronization
import SystemdSupport
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Limits that protect the daemon from clients.
public struct ServerLimits: Sendable {
    /// Open connections at most; more are accepted and closed at once.
    public var maxConnections = 256
    /// Requests in flight per connection; more get `overloaded`.
    public var maxInflightPerConnection = 32
    /// Largest frame payload accepted, bytes.
    public var maxFrameBytes = 16 * 1024 * 1024
    /// A connection with nothing in flight and nothing read for this long is closed, seconds.
    public var idleTimeout: Double = 300
    /// A connection whose pending output makes no progress for this long is closed, seconds (slow readers).
    public var stallTimeout: Double = 30
    /// Queued output per connection beyond which new replies are refused with `overloaded`, bytes.
    public var maxQueuedBytes = 256 * 1024 * 1024

    /// Default limits.
    public init() {}
}

/// What the server calls for every frame; it runs on the loop thread and must hand slow work to an executor.
public protocol FrameHandler: AnyObject, Sendable {
    /// Handles one decoded frame from `connection`.
    func handle(_ frame: Frame, from connection: ServerConnection)
    /// Called once when a connection closes (its in-flight requests were cancelled already).
    func closed(_ connection: ServerConnection)
}

/// The handle a `FrameHandler` gets: who the peer is, and how to reply.
public struct ServerConnection: Sendable {
    let connection: Connection
    let server: Server

    /// The listener it came from.
    public var role: ListenerRole { connection.role }
    /// The peer's credentials (SO_PEERCRED at accept).
    public var peer: PeerCredentials { connection.peer }
    /// A process-unique number for logs.
    public var id: UInt64 { connection.id }
    /// Whether hello was exchanged.
    public var greeted: Bool {
        get { connection.greeted }
        nonmutating set { connection.greeted = newValue }
    }

    /// Queues frames (already encoded; weight chunks shared, not copied) and wakes the loop. False when the
    /// connection is closing or its output queue is over the limit.
    @discardableResult
    public func send(_ frames: [(head: [UInt8], body: ArraySlice<UInt8>)]) -> Bool {
        guard connection.queuedBytes < server.limits.maxQueuedBytes else {
            return false
        }
        let queued = connection.enqueue(frames.map { OutboundFrame(head: $0.head, body: $0.body) })
        server.loop.wake()
        return queued
    }

    /// Registers request `id`; nil when already in flight or over the per-connection limit.
    public func begin(_ id: UInt32) -> CancelToken? {
        connection.begin(id, limit: server.limits.maxInflightPerConnection)
    }

    /// Whether `id` is in flight.
    public func isInFlight(_ id: UInt32) -> Bool { connection.isInFlight(id) }

    /// Ends request `id`.
    public func finish(_ id: UInt32) { connection.finish(id) }

    /// Cancels request `id` (unknown ids are ignored).
    public func cancel(_ id: UInt32) { connection.cancel(id) }

    /// Closes the connection after the frames already queued (protocol errors).
    public func closeAfterFlush() {
        server.closeSoon(connection)
    }
}

/// The socket server: one loop thread accepts, reads and writes; handlers run quick work inline and hand the
/// rest to an executor. Lifecycle: created → running → draining (listeners closed, in-flight requests finish)
/// → stopped.
public final class Server: @unchecked Sendable {
    // @unchecked: `connections`, `listeners`, `closing` and `nextID` are used by the loop thread only;
    // `limits` is immutable; the loop is thread-safe for `wake`; `stopRequested` is atomic.
    let loop: EventLoop
    let limits: ServerLimits
    private var listeners: [(fd: Int32, role: ListenerRole)]
    private var connections: [UInt64: Connection] = [:]
    private let closingQueue = Mutex<[UInt64]>([])
    private var nextID: UInt64 = 1
    private let stopRequested = Atomic<Bool>(false)
    private weak var handler: FrameHandler?
    private static let listenerTokenBase: UInt64 = 1 << 62
    private var extraTokens: [UInt64: (UInt32) -> Void] = [:]

    /// Creates a server over listening sockets (non-blocking is set here).
    public init(listeners: [(fd: Int32, role: ListenerRole)], limits: ServerLimits) throws {
        loop = try EventLoop()
        self.limits = limits
        self.listeners = listeners
        for (index, listener) in listeners.enumerated() {
            setNonBlocking(listener.fd)
            try loop.add(listener.fd, events: UInt32(EPOLLIN.rawValue), token: Self.listenerTokenBase + UInt64(index))
        }
    }

    /// Watches another descriptor (e.g. a signalfd) on the loop; `callback(events)` runs on the loop thread.
    public func watch(_ fd: Int32, _ callback: @escaping (UInt32) -> Void) throws {
        let token = (UInt64(1) << 61) + UInt64(fd)
        extraTokens[token] = callback
        try loop.add(fd, events: UInt32(EPOLLIN.rawValue), token: token)
    }

    /// Open connections.
    public var connectionCount: Int { connections.count }

    /// Runs the loop until `stop()`; `tick` runs every iteration (at least every `tickInterval` seconds) — the
    /// place for watchdog pings, since it proves the loop is alive. Returns after draining.
    public func run(handler: FrameHandler, tickInterval: Double, tick: () -> Void) {
        self.handler = handler
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopRequested.load(ordering: .acquiring) {
            let ready = loop.wait(timeoutMilliseconds: Int32(max(10, tickInterval * 1000)), into: &events)
            for event in ready {
                dispatch(event, buffer: &buffer)
            }
            flushAll()
            expireConnections(now: monotonicSeconds())
            tick()
        }
    }

    /// Asks the loop to return (thread-safe).
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        loop.wake()
    }

    /// Stops accepting: closes the listening sockets (the daemon drains afterwards).
    public func closeListeners() {
        for listener in listeners {
            loop.remove(listener.fd)
            close(listener.fd)
        }
        listeners.removeAll()
    }

    /// Runs the loop until every connection's in-flight requests ended and output flushed, or `timeout` seconds.
    public func drain(timeout: Double, tick: () -> Void) {
        let deadline = monotonicSeconds() + timeout
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        stopRequested.store(false, ordering: .releasing)
        while monotonicSeconds() < deadline {
            let busy = connections.values.contains { $0.inflightCount > 0 || $0.queuedBytes > 0 }
            if !busy { break }
            let ready = loop.wait(timeoutMilliseconds: 50, into: &events)
            for event in ready {
                dispatch(event, buffer: &buffer)
            }
            flushAll()
            tick()
        }
        for connection in Array(connections.values) {
            closeConnection(connection)
        }
    }

    func closeSoon(_ connection: Connection) {
        closingQueue.withLock { $0.append(connection.id) }
        loop.wake()
    }

    private func dispatch(_ event: epoll_event, buffer: inout [UInt8]) {
        let token = event.data.u64
        if token == EventLoop.wakeToken {
            return
        }
        if token >= Self.listenerTokenBase {
            accept(listener: Int(token - Self.listenerTokenBase))
            return
        }
        if let callback = extraTokens[token] {
            callback(event.events)
            return
        }
        guard let connection = connections[token] else {
            return
        }
        if event.events & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            read(connection, buffer: &buffer)
        }
    }

    /// Send buffer asked for each connection (the kernel caps it at net.core.wmem_max, 4 MiB on these machines):
    /// a largest-subnet reply (about 5 MB) then goes out in a few writes instead of one per 208 KiB default
    /// buffer, each after an EPOLLOUT wake-up.
    static let sendBufferBytes = 4 << 20

    private func accept(listener index: Int) {
        guard index < listeners.count else { return }
        let (listenFD, role) = listeners[index]
        while true {
            let fd = retryingOnInterrupt { Glibc.accept(listenFD, nil, nil) }
            if fd < 0 {
                return
            }
            setNonBlocking(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var sendBuffer = Int32(Self.sendBufferBytes)
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<Int32>.size))
            guard connections.count < limits.maxConnections, let peer = try? PeerCredentials.of(fd) else {
                close(fd)
                continue
            }
            let id = nextID
            nextID += 1
            let connection = Connection(
                id: id, fd: fd, role: role, peer: peer, maxFrameBytes: limits.maxFrameBytes,
                now: monotonicSeconds())
            do {
                try loop.add(fd, events: UInt32(EPOLLIN.rawValue | EPOLLRDHUP.rawValue), token: id)
                connections[id] = connection
            } catch {
                close(fd)
            }
        }
    }

    private func read(_ connection: Connection, buffer: inout [UInt8]) {
        let count = buffer.withUnsafeMutableBytes { raw in
            retryingOnInterrupt { recv(connection.fd, raw.baseAddress, raw.count, 0) }
        }
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            closeConnection(connection)
            return
        }
        guard count > 0 else { return }
        connection.lastRead = monotonicSeconds()
        buffer.withUnsafeBytes { connection.decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        do {
            while let frame = try connection.decoder.nextFrame() {
                handler?.handle(frame, from: ServerConnection(connection: connection, server: self))
                if connection.shared.withLock({ $0.state }) != .open {
                    return
                }
            }
        } catch {
            protocolFailure(connection, error)
        }
    }

    /// A malformed frame: answer with a protocol error (best effort) and close this connection only.
    private func protocolFailure(_ connection: Connection, _ error: Error) {
        let message = ErrorReply(code: .protocolError, message: "\(error)")
        var encoder = FrameEncoder()
        if (try? encoder.append(message, requestID: 0)) != nil {
            connection.enqueue([OutboundFrame(head: encoder.bytes, body: [][...])])
            _ = connection.flush(now: monotonicSeconds())
        }
        closeConnection(connection)
    }

    private func flushAll() {
        let now = monotonicSeconds()
        let closing = closingQueue.withLock { ids -> [UInt64] in
            defer { ids.removeAll() }
            return ids
        }
        for connection in connections.values {
            guard let remaining = connection.flush(now: now) else {
                closeConnection(connection)
                continue
            }
            let events = UInt32(EPOLLIN.rawValue | EPOLLRDHUP.rawValue) | (remaining ? UInt32(EPOLLOUT.rawValue) : 0)
            loop.modify(connection.fd, events: events, token: connection.id)
        }
        for id in closing {
            if let connection = connections[id] {
                _ = connection.flush(now: now)
                closeConnection(connection)
            }
        }
    }

    private func expireConnections(now: Double) {
        for connection in Array(connections.values) {
            let stalled = connection.stalledSeconds(now: now) > limits.stallTimeout
            let idle =
                connection.inflightCount == 0 && connection.queuedBytes == 0
                && now - connection.lastRead > limits.idleTimeout
            if stalled || idle {
                closeConnection(connection)
            }
        }
    }

    private func closeConnection(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        connection.beginClosing()
        loop.remove(connection.fd)
        close(connection.fd)
        handler?.closed(ServerConnection(connection: connection, server: self))
    }
}

/// Sets O_NONBLOCK on `fd`.
func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
}
