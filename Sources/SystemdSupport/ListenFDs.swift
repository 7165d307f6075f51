import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// What a listening socket is for; the raw value is the `FileDescriptorName=` that selects it.
public enum SocketRole: String, Sendable, CaseIterable {
    /// Clients that specialize and download subnets (`supernetd.socket`, mode 0660, group `supernet`).
    case client
    /// Administrators that load and unload plugins (`supernetd-admin.socket`, mode 0600, root).
    case admin
}

/// One descriptor passed by the service manager, with its name from `$LISTEN_FDNAMES`.
public struct PassedDescriptor: Sendable, Equatable {
    /// The descriptor number (3, 4, ...).
    public let fd: Int32
    /// Its `FileDescriptorName=`; systemd says `"unknown"` when the socket unit sets none.
    public let name: String

    /// Creates a record of a passed descriptor.
    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }
}

/// The listening sockets received by socket activation, by role. A role without a descriptor was not passed.
public struct ActivatedSockets: Sendable, Equatable {
    /// The client socket's descriptor, if passed.
    public var client: Int32?
    /// The admin socket's descriptor, if passed.
    public var admin: Int32?

    /// Creates a set of activated sockets.
    public init(client: Int32? = nil, admin: Int32? = nil) {
        self.client = client
        self.admin = admin
    }

    /// The descriptor passed for `role`, if any.
    public subscript(role: SocketRole) -> Int32? {
        switch role {
        case .client: client
        case .admin: admin
        }
    }
}

/// Why the passed descriptors cannot be used. Each case names the descriptor and what to fix in the units.
public enum SocketActivationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `sd_listen_fds_with_names` or an `fcntl` on a passed descriptor failed.
    case system(SystemCallError)
    /// A descriptor came without a name (`FileDescriptorName=` missing in its socket unit).
    case unnamed(fd: Int32)
    /// A descriptor's name is neither `client` nor `admin`.
    case unknownName(fd: Int32, name: String)
    /// Two descriptors carry the same role's name.
    case duplicateRole(SocketRole, fd: Int32, previous: Int32)
    /// A descriptor is not a listening `AF_UNIX` stream socket (`sd_is_socket_unix` said no).
    case notListeningUnixStream(fd: Int32, name: String)

    /// One line saying which descriptor is wrong and what the units should say instead.
    public var description: String {
        let expected = "expected FileDescriptorName=client or FileDescriptorName=admin"
        switch self {
        case .system(let error):
            return "socket activation: \(error)"
        case .unnamed(let fd):
            return "socket activation: fd \(fd) has no name (\(expected) in its socket unit)"
        case .unknownName(let fd, let name):
            return "socket activation: fd \(fd) is named '\(name)' (\(expected))"
        case .duplicateRole(let role, let fd, let previous):
            return "socket activation: fds \(previous) and \(fd) are both named '\(role.rawValue)'"
        case .notListeningUnixStream(let fd, let name):
            return "socket activation: fd \(fd) ('\(name)') is not a listening AF_UNIX stream socket "
                + "(use ListenStream=/path in the socket unit)"
        }
    }
}

/// Socket activation: the listening sockets systemd (or `systemd-socket-activate`) opened for this process.
public enum SocketActivation {
    /// The descriptors passed in `$LISTEN_FDS`, starting at 3, with their names; empty when none were passed.
    ///
    /// Wraps `sd_listen_fds_with_names(0, &names)`: it checks that `$LISTEN_PID` is this process, sets
    /// `FD_CLOEXEC` on every passed descriptor, and leaves the environment unchanged (unset_environment 0).
    /// Descriptors of a unit without `FileDescriptorName=` are named `"unknown"`.
    /// - Throws: `SocketActivationError.system` when the variables are malformed.
    public static func passedDescriptors() throws(SocketActivationError) -> [PassedDescriptor] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count: Int32
        do {
            count = try SystemCall.checkingNegativeErrno(
                "sd_listen_fds_with_names", sd_listen_fds_with_names(0, &names))
        } catch {
            throw .system(error)
        }
        defer { freeNames(names) }

        return (0..<count).map { index in
            let name = names?[Int(index)].map { String(cString: $0) } ?? "unknown"
            return PassedDescriptor(fd: SD_LISTEN_FDS_START + index, name: name)
        }
    }

    /// The client and admin sockets passed by socket activation, or nil when the process was not activated.
    ///
    /// Every descriptor must be a listening `AF_UNIX` stream socket (`sd_is_socket_unix(fd, SOCK_STREAM, 1,
    /// NULL, 0)`) named `client` or `admin`, each name at most once. Each gets `FD_CLOEXEC`, and `O_NONBLOCK`
    /// set when `nonBlocking` is true or cleared when false: the flag lives on the shared open file
    /// description, and socket units and `systemd-socket-activate` do not agree on it.
    ///
    /// When this returns a value, the daemon must not bind the missing role's socket itself: under the units'
    /// sandbox `/run/supernetd` is read-only. Without activation (nil), it binds both with `UnixListener`.
    /// - Throws: `SocketActivationError` naming the first descriptor that is wrong.
    public static func receive(nonBlocking: Bool) throws(SocketActivationError) -> ActivatedSockets? {
        let passed = try passedDescriptors()
        guard !passed.isEmpty else {
            return nil
        }

        for descriptor in passed {
            let isListeningStream = sd_is_socket_unix(descriptor.fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0)
            guard isListeningStream > 0 else {
                if isListeningStream < 0 {
                    throw .system(SystemCallError(call: "sd_is_socket_unix", errno: -isListeningStream))
                }
                throw .notListeningUnixStream(fd: descriptor.fd, name: descriptor.name)
            }
            do {
                try SystemCall.setCloseOnExec(descriptor.fd)
                try SystemCall.setNonBlocking(descriptor.fd, nonBlocking)
            } catch {
                throw .system(error)
            }
        }
        return try assignRoles(passed)
    }

    /// Maps names to roles: `client` and `admin` once each; `unknown` (no name) or anything else is an error.
    public static func assignRoles(_ passed: [PassedDescriptor]) throws(SocketActivationError) -> ActivatedSockets {
        var sockets = ActivatedSockets()
        for descriptor in passed {
            guard descriptor.name != "unknown", !descriptor.name.isEmpty else {
                throw .unnamed(fd: descriptor.fd)
            }
            guard let role = SocketRole(rawValue: descriptor.name) else {
                throw .unknownName(fd: descriptor.fd, name: descriptor.name)
            }
            if let previous = sockets[role] {
                throw .duplicateRole(role, fd: descriptor.fd, previous: previous)
            }

            switch role {
            case .client: sockets.client = descriptor.fd
            case .admin: sockets.admin = descriptor.fd
            }
        }
        return sockets
    }

    /// Frees the `strv` that `sd_listen_fds_with_names` allocated (each string, then the array).
    private static func freeNames(_ names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard let names else {
            return
        }
        var index = 0
        while let name = names[index] {
            free(name)
            index += 1
        }
        free(names)
    }
}
