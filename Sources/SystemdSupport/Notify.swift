import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Reports the daemon's state to the service manager through `sd_notify(3)` (a datagram to `$NOTIFY_SOCKET`).
///
/// Each message is a few `KEY=value` lines. When `$NOTIFY_SOCKET` is unset (not started by systemd with
/// `Type=notify`, or run by hand) every call is a no-op that returns `false`. The environment is never
/// modified (`unset_environment` is 0), so the notifier is safe to use from any thread.
///
/// `sd_notify` opens a datagram socket, sends one message and closes it on every call; that costs a few
/// microseconds, which is negligible at the rates used here (one watchdog ping every several seconds).
public struct ServiceNotifier: Sendable {
    /// Creates a notifier; it reads `$NOTIFY_SOCKET` on each call, so it may be created before the environment
    /// is final.
    public init() {}

    /// Whether `$NOTIFY_SOCKET` is set, that is whether notifications go anywhere.
    public var isSupervised: Bool {
        getenv("NOTIFY_SOCKET") != nil
    }

    /// Sends `READY=1` (and `STATUS=` when `status` is given): start-up, or a reload, is complete.
    ///
    /// With `Type=notify`, systemd keeps the unit in "activating" until this arrives, and units ordered after it
    /// wait; a daemon that never sends it is killed after `TimeoutStartSec=`. Send it once models and plugins
    /// are loaded and the sockets accept, and again at the end of each reload.
    /// - Returns: `true` when a message was sent, `false` when not supervised.
    /// - Throws: `SystemCallError` (call `sd_notify`) when `$NOTIFY_SOCKET` is set but sending failed.
    @discardableResult
    public func ready(status: String? = nil) throws(SystemCallError) -> Bool {
        var fields = [("READY", "1")]
        if let status {
            fields.append(("STATUS", status))
        }
        return try send(fields)
    }

    /// Sends `STATUS=text`: a one-line human summary that `systemctl status` shows (e.g. "serving 3 models").
    ///
    /// Line breaks in `text` are replaced by spaces, because each line of a message is one assignment.
    /// - Returns: `true` when sent, `false` when not supervised.
    /// - Throws: `SystemCallError` (call `sd_notify`) when sending failed.
    @discardableResult
    public func status(_ text: String) throws(SystemCallError) -> Bool {
        try send([("STATUS", text)])
    }

    /// Sends `RELOADING=1` (plus `MONOTONIC_USEC=` and an optional `STATUS=`): a reload has begun.
    ///
    /// systemd shows the unit as "reloading" until the next `READY=1`, which the daemon must send when the
    /// reload is done, whether it succeeded or not. systemd 252 (`Type=notify`) needs no timestamp;
    /// `MONOTONIC_USEC=` (CLOCK_MONOTONIC in µs) is included anyway, because `Type=notify-reload` in later
    /// versions requires it and older versions ignore unknown assignments.
    /// - Returns: `true` when sent, `false` when not supervised.
    /// - Throws: `SystemCallError` (call `sd_notify`) when sending failed.
    @discardableResult
    public func reloading(status: String? = nil) throws(SystemCallError) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        var fields = [("RELOADING", "1"), ("MONOTONIC_USEC", String(microseconds))]
        if let status {
            fields.append(("STATUS", status))
        }
        return try send(fields)
    }

    /// Sends `STOPPING=1` (and an optional `STATUS=`): shutdown has begun and in-flight requests are draining.
    ///
    /// systemd then shows the unit as "deactivating"; the process still has `TimeoutStopSec=` to exit.
    /// - Returns: `true` when sent, `false` when not supervised.
    /// - Throws: `SystemCallError` (call `sd_notify`) when sending failed.
    @discardableResult
    public func stopping(status: String? = nil) throws(SystemCallError) -> Bool {
        var fields = [("STOPPING", "1")]
        if let status {
            fields.append(("STATUS", status))
        }
        return try send(fields)
    }

    /// Sends `WATCHDOG=1`: the daemon is alive and its main loop makes progress.
    ///
    /// With `WatchdogSec=` set, systemd kills and (with `Restart=on-failure`) restarts the service when no ping
    /// arrives within that time. Ping every `watchdogInterval()` from the code whose progress proves health,
    /// not from a timer thread of its own.
    /// - Returns: `true` when sent, `false` when not supervised.
    /// - Throws: `SystemCallError` (call `sd_notify`) when sending failed.
    @discardableResult
    public func watchdog() throws(SystemCallError) -> Bool {
        try send([("WATCHDOG", "1")])
    }

    /// How often to call `watchdog()`: half of `$WATCHDOG_USEC`, or nil when the watchdog is off.
    ///
    /// Wraps `sd_watchdog_enabled(0, &usec)`, which also checks that `$WATCHDOG_PID`, when set, is this process.
    /// - Throws: `SystemCallError` (call `sd_watchdog_enabled`) when the variables are malformed.
    public func watchdogInterval() throws(SystemCallError) -> Duration? {
        var microseconds: UInt64 = 0
        let enabled = try SystemCall.checkingNegativeErrno("sd_watchdog_enabled", sd_watchdog_enabled(0, &microseconds))
        guard enabled > 0, microseconds > 0 else {
            return nil
        }
        return .microseconds(Int64(clamping: microseconds / 2))
    }

    /// Sends `fields` as one message, one `KEY=value` line each, with `sd_notify(0, ...)`.
    ///
    /// Values have line breaks and NUL bytes replaced by spaces; keys are sent as given (upper case by
    /// convention: `READY`, `STATUS`, `ERRNO`, `EXTEND_TIMEOUT_USEC`, ...).
    /// - Returns: `true` when sent, `false` when `$NOTIFY_SOCKET` is unset.
    /// - Throws: `SystemCallError` (call `sd_notify`) when sending failed.
    @discardableResult
    public func send(_ fields: [(key: String, value: String)]) throws(SystemCallError) -> Bool {
        let message = fields.map { "\($0.key)=\(Self.oneLine($0.value))" }.joined(separator: "\n")
        let result = sd_notify(0, message)
        return try SystemCall.checkingNegativeErrno("sd_notify", result) > 0
    }

    /// `value` with `\n`, `\r` and NUL replaced by spaces.
    static func oneLine(_ value: String) -> String {
        String(value.map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" || $0 == "\0" ? " " : $0 })
    }
}
