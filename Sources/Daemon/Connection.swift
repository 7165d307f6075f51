import Synchronization
import SystemdSupport
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Which listening socket a connection came from.
public enum ListenerRole: String, Sendable {
    /// The client socket: queries and specialization.
    case client
    /// The admin socket: also plugin load/unload and calibration, for authorized peers.
    case admin
}

/// A flag a worker polls to learn that its request was cancelled (by the client, a disconnect or shutdown).
public final class CancelToken: Sendable {
    private let flag = Atomic<Bool>(false)

    /// Creates an uncancelled token.
    public init() {}

    /// Whether cancellation was requested.
    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    /// Requests cancellation.
    public func cancel() {
        flag.store(true, ordering: .releasing)
    }
}

/// One frame waiting to be written: a header (with any small payload) and an optional large payload that is
/// shared, not copied (weight chunks come straight from the cache).
struct OutboundFrame {
    var head: [UInt8]
    var body: ArraySlice<UInt8>
    var written = 0

    var count: Int { head.count + body.count }
}

/// A client connection: socket, inbound decoding state (loop thread only) and the outbound queue and in-flight
/// requests (shared with workers under a mutex).
///
/// Lifecycle: open → closing (no new requests; in-flight ones are cancelled) → closed (fd released by the loop).
final class Connection: @unchecked Sendable {
    // @unchecked: `fd`, `id`, `role`, `peer` are immutable; `decoder`, `greeted` and `lastRead` are touched only
    // by the loop
    // thread; everything else is inside `shared`'s mutex.
    enum State { case open, closing, closed }

    struct Shared {
        var outbound: [OutboundFrame] = []
        var head = 0
        var queuedBytes = 0
        var state = State.open
        var inflight: [UInt32: CancelToken] = [:]
        var lastWriteProgress: Double
    }

    let id: UInt64
    let fd: Int32
    let role: ListenerRole
    let peer: PeerCredentials
    var decoder: FrameDecoder
    var greeted = false
    var lastRead: Double
    let shared: Mutex<Shared>

    init(id: UInt64, fd: Int32, role: ListenerRole, peer: PeerCredentials, maxFrameBytes: Int, now: Double) {
        self.id = id
        decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        self.fd = fd
        self.role = role
        self.peer = peer
        lastRead = now
        shared = Mutex(Shared(lastWriteProgress: now))
    }

    /// Appends frames to the outbound queue unless the connection is closing; false if dropped.
    @discardableResult
    func enqueue(_ frames: [OutboundFrame]) -> Bool {
        shared.withLock { state in
            guard state.state == .open else { return false }
            if state.queuedBytes == 0 {
                state.lastWriteProgress = monotonicSeconds()
            }
            for frame in frames {
                state.outbound.append(frame)
                state.queuedBytes += frame.count
            }
            return true
        }
    }

    /// Bytes queued but not yet written.
    var queuedBytes: Int { shared.withLock { $0.queuedBytes } }

    /// Registers an in-flight request; false when the id is already in flight or the connection is closing.
    func begin(_ requestID: UInt32, limit: Int) -> CancelToken? {
        shared.withLock { state in
            guard state.state == .open, state.inflight[requestID] == nil, state.inflight.count < limit else {
                return nil
            }
            let token = CancelToken()
            state.inflight[requestID] = token
            return token
        }
    }

    /// Whether `requestID` is in flight (a second request with the same id is a protocol error).
    func isInFlight(_ requestID: UInt32) -> Bool {
        shared.withLock { $0.inflight[requestID] != nil }
    }

    /// Number of requests in flight.
    var inflightCount: Int { shared.withLock { $0.inflight.count } }

    /// Ends an in-flight request.
    func finish(_ requestID: UInt32) {
        shared.withLock { _ = $0.inflight.removeValue(forKey: requestID) }
    }

    /// Cancels one request (unknown ids are ignored).
    func cancel(_ requestID: UInt32) {
        shared.withLock { $0.inflight[requestID]?.cancel() }
    }

    /// Marks the connection closing: cancels every in-flight request and drops queued output.
    func beginClosing() {
        shared.withLock { state in
            state.state = .closing
            for token in state.inflight.values {
                token.cancel()
            }
            state.outbound.removeAll()
            state.head = 0
            state.queuedBytes = 0
        }
    }

    /// Writes as much queued output as the socket takes. Returns whether output remains, or nil when the peer is
    /// gone (the caller closes the connection).
    func flush(now: Double) -> Bool? {
        shared.withLock { state -> Bool? in
            while state.head < state.outbound.count {
                let written = writeFrame(&state.outbound[state.head])
                guard let written else { return nil }
                if written == 0 { return true }
                state.queuedBytes -= written
                state.lastWriteProgress = now
                if state.outbound[state.head].written == state.outbound[state.head].count {
                    state.head += 1
                }
            }
            state.outbound.removeAll(keepingCapacity: true)
            state.head = 0
            return false
        }
    }

    /// One writev of the unwritten part of `frame`: bytes written, 0 when the socket is full, nil on error.
    private func writeFrame(_ frame: inout OutboundFrame) -> Int? {
        let headLeft = max(0, frame.head.count - frame.written)
        let bodyOffset = max(0, frame.written - frame.head.count)
        let result: Int = frame.head.withUnsafeBytes { head in
            frame.body.withUnsafeBytes { body in
                var vectors = [
                    iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress.map { $0 + frame.written }),
                        iov_len: headLeft),
                    iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress.map { $0 + bodyOffset }),
                        iov_len: frame.body.count - bodyOffset),
                ]
                let first = headLeft > 0 ? 0 : 1
                return vectors.withUnsafeMutableBufferPointer { buffer in
                    retryingOnInterrupt { writev(fd, buffer.baseAddress! + first, Int32(2 - first)) }
                }
            }
        }
        if result < 0 {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : nil
        }
        frame.written += result
        return result
    }

    /// Seconds since output last made progress while output was pending (0 when nothing is pending).
    func stalledSeconds(now: Double) -> Double {
        shared.withLock { $0.queuedBytes > 0 ? now - $0.lastWriteProgress : 0 }
    }
}
