// notify-probe: drives SystemdSupport from a child process for the tests, and prints what it saw on stdout.
//
//   notify-probe notify                 ready, status, watchdog, reloading, ready, stopping; prints each result
//   notify-probe watchdog-interval      the interval in microseconds, or "none"
//   notify-probe listen-fds [--nonblocking]
//                                       the passed descriptors with names and flags, the roles, and the peer
//                                       of one connection accepted on the client socket
//   notify-probe log                    a few entries through ServiceLogger; prints the destination
//   notify-probe bench-notify N         the mean cost of N STATUS= notifications in nanoseconds
import SystemdSupport
#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` and a line break to `fd` unbuffered, so a parent reading a pipe sees it at once.
func write(_ text: String, to fd: Int32) {
    var bytes = Array((text + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        guard written > 0 || (written < 0 && errno == EINTR) else {
            return
        }
        offset += max(0, written)
    }
}

/// Prints `text` on stdout.
func say(_ text: String) {
    write(text, to: 1)
}

/// Ends the probe with `message` on stderr and status 1.
func fail(_ message: String) -> Never {
    write("notify-probe: \(message)", to: 2)
    exit(1)
}

func sendNotifications() throws {
    let notifier = ServiceNotifier()
    say("supervised=\(notifier.isSupervised)")
    say("ready=\(try notifier.ready(status: "probe starting done"))")
    say("status=\(try notifier.status("serving 2 models\nsecond line"))")
    say("watchdog=\(try notifier.watchdog())")
    say("reloading=\(try notifier.reloading(status: "reloading"))")
    say("ready=\(try notifier.ready())")
    say("stopping=\(try notifier.stopping(status: "draining"))")
}

func printWatchdogInterval() throws {
    guard let interval = try ServiceNotifier().watchdogInterval() else {
        say("none")
        return
    }
    let (seconds, attoseconds) = interval.components
    say(String(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
}

func describeListenFDs(nonBlocking: Bool) {
    let passed: [PassedDescriptor]
    do {
        passed = try SocketActivation.passedDescriptors()
    } catch {
        fail("\(error)")
    }
    say("count=\(passed.count)")

    let sockets: ActivatedSockets?
    do {
        sockets = try SocketActivation.receive(nonBlocking: nonBlocking)
    } catch {
        say("error=\(error)")
        exit(2)
    }
    for descriptor in passed {
        let cloexec = fcntl(descriptor.fd, F_GETFD) & FD_CLOEXEC != 0
        let nonblock = fcntl(descriptor.fd, F_GETFL) & O_NONBLOCK != 0
        say("fd=\(descriptor.fd) name=\(descriptor.name) cloexec=\(cloexec) nonblock=\(nonblock)")
    }
    guard let sockets else {
        say("activated=false")
        return
    }
    say("client=\(sockets.client.map(String.init) ?? "none") admin=\(sockets.admin.map(String.init) ?? "none")")

    // systemd-socket-activate starts the probe on the first connection attempt; accept it to show the
    // descriptor works, and report who connected.
    if let client = sockets.client {
        if nonBlocking {
            var ready = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            _ = poll(&ready, 1, 5000)
        }
        let connection = accept(client, nil, nil)
        guard connection >= 0 else {
            fail("accept: errno \(errno)")
        }
        do {
            let peer = try PeerCredentials.of(connection)
            say("peer-uid=\(peer.uid) peer-pid=\(peer.pid)")
        } catch {
            fail("\(error)")
        }
        close(connection)
    }
}

func logSamples() {
    let logger = ServiceLogger(identifier: "notify-probe", minimumLevel: .debug)
    say("destination=\(logger.destination)")
    logger.info("probe started", ["model": "mbv3-small", "request_id": "42"])
    logger.warning("deadline missed", ["target": "analytic", "deadline_ms": "2000"])
    logger.debug("detail with\nnewline")
}

func benchNotify(count: Int) throws {
    let notifier = ServiceNotifier()
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    for index in 0..<count {
        try notifier.status("request \(index)")
    }
    clock_gettime(CLOCK_MONOTONIC, &end)
    let nanoseconds = (end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec)
    say("ns_per_notify=\(nanoseconds / max(1, count))")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "notify":
        try sendNotifications()
    case "watchdog-interval":
        try printWatchdogInterval()
    case "listen-fds":
        describeListenFDs(nonBlocking: arguments.dropFirst().contains("--nonblocking"))
    case "log":
        logSamples()
    case "bench-notify":
        try benchNotify(count: arguments.count > 1 ? Int(arguments[1]) ?? 1000 : 1000)
    default:
        fail("usage: notify-probe notify|watchdog-interval|listen-fds [--nonblocking]|log|bench-notify N")
    }
} catch {
    fail("\(error)")
}
