import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// An error from a system call: which call, on what, and errno.
public struct SystemCallError: Error, CustomStringConvertible {
    /// The C call that failed.
    public let call: String
    /// What it was applied to (a path, an fd), for the message.
    public let subject: String
    /// errno after the call.
    public let errno: Int32

    /// Creates an error from the current `errno`.
    public init(_ call: String, _ subject: String = "", errno code: Int32 = Glibc.errno) {
        self.call = call
        self.subject = subject
        self.errno = code
    }

    /// "call(subject): strerror".
    public var description: String {
        "\(call)(\(subject)): \(String(cString: strerror(errno)))"
    }
}

/// Retries `body` while it fails with EINTR; returns its result (−1 with errno set on other failures).
@inline(__always)
func retryingOnInterrupt<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result >= 0 || errno != EINTR {
            return result
        }
    }
}

/// Level-triggered epoll readiness loop with an eventfd for cross-thread wake-ups.
///
/// Only the loop thread calls `wait`; `wake()` is safe from any thread.
final class EventLoop: @unchecked Sendable {
    // @unchecked: the epoll and eventfd descriptors are immutable after init and the kernel serializes their use.
    let epollFD: Int32
    let wakeFD: Int32
    static let wakeToken: UInt64 = .max

    init() throws {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else {
            throw SystemCallError("epoll_create1")
        }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            throw SystemCallError("eventfd")
        }
        try add(wakeFD, events: UInt32(EPOLLIN.rawValue), token: Self.wakeToken)
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    /// Registers `fd` for `events` (EPOLLIN, EPOLLOUT, …), reported with `token`.
    func add(_ fd: Int32, events: UInt32, token: UInt64) throws {
        var event = epoll_event(events: events, data: epoll_data_t(u64: token))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw SystemCallError("epoll_ctl(ADD)", "fd \(fd)")
        }
    }

    /// Changes the events `fd` is watched for.
    func modify(_ fd: Int32, events: UInt32, token: UInt64) {
        var event = epoll_event(events: events, data: epoll_data_t(u64: token))
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    /// Stops watching `fd` (call before closing it).
    func remove(_ fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    /// Waits up to `timeoutMilliseconds` and returns the ready (token, events) pairs; wake-ups are consumed
    /// and reported as the token `wakeToken`.
    func wait(timeoutMilliseconds: Int32, into events: inout [epoll_event]) -> ArraySlice<epoll_event> {
        let count = events.withUnsafeMutableBufferPointer {
            epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeoutMilliseconds)
        }
        guard count > 0 else {
            return []
        }
        for i in 0..<Int(count) where events[i].data.u64 == Self.wakeToken {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
        return events[0..<Int(count)]
    }

    /// Makes a pending or the next `wait` return (thread-safe).
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }
}
