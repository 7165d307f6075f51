#if canImport(Glibc)
import Glibc
#endif

/// A failed system or libsystemd call: which call, on which path or descriptor, and the errno it gave.
public struct SystemCallError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"bind"` or `"sd_listen_fds_with_names"`.
    public let call: String
    /// The errno value (for libsystemd calls: the negated return value).
    public let errno: Int32
    /// The file-system path involved, if any.
    public let path: String?
    /// What the failure means for the caller, when `strerror` alone would be unclear (e.g. "another process
    /// listens on it").
    public let detail: String?

    /// Creates an error for `call` failing with `errno`.
    public init(call: String, errno: Int32, path: String? = nil, detail: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
        self.detail = detail
    }

    /// One line: `bind /run/supernetd/client.sock: Address already in use (errno 98): <detail>`.
    public var description: String {
        var text = call
        if let path {
            text += " \(path)"
        }
        text += ": \(String(cString: strerror(errno))) (errno \(errno))"
        if let detail {
            text += ": \(detail)"
        }
        return text
    }
}

/// The one place where system calls are retried on EINTR and turned into `SystemCallError`s.
enum SystemCall {
    /// Calls `body` until it does not fail with EINTR; returns its result, or throws when it returned -1.
    ///
    /// For calls that return -1 and set `errno` (`open`, `connect`, `accept4`, `fcntl`, ...). Do not use it for
    /// `close`: on Linux the descriptor is released even when `close` reports EINTR, so a retry could close a
    /// descriptor another thread just opened (see `closeDescriptor`).
    @discardableResult
    static func retrying<Result: FixedWidthInteger>(
        _ call: String, path: String? = nil, _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result != -1 {
                return result
            }
            let code = Glibc.errno
            if code != EINTR {
                throw SystemCallError(call: call, errno: code, path: path)
            }
        }
    }

    /// Calls `body` until it returns something other than EINTR, for calls that return an errno value instead of
    /// setting `errno` (`getgrnam_r`, `getpwuid_r`, ...); returns that value (0 on success).
    static func retryingReturnedCode(_ body: () -> Int32) -> Int32 {
        while true {
            let code = body()
            if code != EINTR {
                return code
            }
        }
    }

    /// Checks a libsystemd return value (negative errno on failure); returns it when it is not negative.
    @discardableResult
    static func checkingNegativeErrno(_ call: String, _ result: Int32) throws(SystemCallError) -> Int32 {
        if result < 0 {
            throw SystemCallError(call: call, errno: -result)
        }
        return result
    }

    /// `close(2)` once, never retried; errors are ignored because the descriptor is gone either way.
    static func closeDescriptor(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets or clears `O_NONBLOCK` on `fd` with `fcntl(F_GETFL/F_SETFL)`, leaving the other status flags.
    static func setNonBlocking(_ fd: Int32, _ enabled: Bool) throws(SystemCallError) {
        let flags = try retrying("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        let wanted = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags {
            try retrying("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, wanted) }
        }
    }

    /// Sets `FD_CLOEXEC` on `fd` with `fcntl(F_GETFD/F_SETFD)`.
    static func setCloseOnExec(_ fd: Int32) throws(SystemCallError) {
        let flags = try retrying("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        if flags & FD_CLOEXEC == 0 {
            try retrying("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
