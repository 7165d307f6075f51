import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// A listening `AF_UNIX` stream socket bound to a path, for when the daemon was not socket-activated.
///
/// The value only records the descriptor and the path; `close()` releases both. Thread-safe to share, since it
/// holds no mutable state.
public struct UnixListener: Sendable {
    /// The listening descriptor (`SOCK_CLOEXEC`; `O_NONBLOCK` as asked).
    public let fd: Int32
    /// The path it is bound to.
    public let path: String

    /// `sun_path`'s size (108 on Linux); a path needs one byte less, for the terminating NUL.
    public static let maximumPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Binds and listens on `path`: `socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC)`, `bind`,
    /// `fchmodat(AT_SYMLINK_NOFOLLOW)`, `lchown`, `listen`.
    ///
    /// An existing file at `path` is removed only when it is a socket nobody listens on (a `connect` to it is
    /// refused): a live socket fails with EADDRINUSE and any other kind of file with EEXIST, and neither is
    /// touched. The mode and group are set before `listen`, so no client can connect while they are still the
    /// defaults from the umask, and without following symlinks, so a path swapped for a symlink after `bind`
    /// fails instead of changing another file. If a step after `bind` fails, the new socket file is removed.
    /// - Parameters:
    ///   - path: an absolute or relative path of at most `maximumPathBytes` bytes.
    ///   - mode: the socket file's permission bits, e.g. 0o660 for clients or 0o600 for the admin socket.
    ///     Connecting needs write permission.
    ///   - group: a group name to own the socket file (its owner stays this process's user), or nil.
    ///   - backlog: the `listen` queue length (default `SOMAXCONN`; the kernel caps it at `net.core.somaxconn`).
    ///   - nonBlocking: whether the descriptor gets `O_NONBLOCK` (default false).
    /// - Throws: `SystemCallError` naming the call that failed and the path.
    public static func bind(
        path: String, mode: mode_t, group: String? = nil, backlog: Int32 = SOMAXCONN, nonBlocking: Bool = false
    ) throws(SystemCallError) -> UnixListener {
        let address = try UnixSocketAddress(path: path)
        try removeStaleSocket(at: address)

        let type =
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = try SystemCall.retrying("socket", path: path) { socket(AF_UNIX, type, 0) }
        do {
            try address.withSockaddr { pointer, length throws(SystemCallError) in
                try SystemCall.retrying("bind", path: path) { Glibc.bind(fd, pointer, length) }
            }
        } catch {
            SystemCall.closeDescriptor(fd)
            throw error
        }

        do {
            try SystemCall.retrying("fchmodat", path: path) {
                fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)
            }
            if let group {
                let gid = try GroupDatabase.groupID(named: group)
                try SystemCall.retrying("lchown", path: path) { lchown(path, uid_t.max, gid) }
            }
            try SystemCall.retrying("listen", path: path) { listen(fd, backlog) }
        } catch {
            SystemCall.closeDescriptor(fd)
            unlink(path)
            throw error
        }
        return UnixListener(fd: fd, path: path)
    }

    /// Closes the descriptor and, when `unlinkPath` is true, removes the socket file (default true).
    ///
    /// Call once. The file is removed only if it is still a socket; an error removing it is ignored, since the
    /// next `bind` treats a leftover socket as stale.
    public func close(unlinkPath: Bool = true) {
        SystemCall.closeDescriptor(fd)
        if unlinkPath, (try? Self.fileType(at: path)) == S_IFSOCK {
            unlink(path)
        }
    }

    /// Removes `address`'s file when it is a socket that refuses connections; throws when it is anything else.
    static func removeStaleSocket(at address: UnixSocketAddress) throws(SystemCallError) {
        let path = address.path
        guard let type = try fileType(at: path) else {
            return
        }
        guard type == S_IFSOCK else {
            throw SystemCallError(call: "lstat", errno: EEXIST, path: path, detail: "exists and is not a socket")
        }
        guard try !isListening(address) else {
            let detail = "another process listens on it"
            throw SystemCallError(call: "connect", errno: EADDRINUSE, path: path, detail: detail)
        }
        try SystemCall.retrying("unlink", path: path) { unlink(path) }
    }

    /// The `S_IFMT` bits of `path` from `lstat` (symlinks are not followed), or nil when nothing is there.
    static func fileType(at path: String) throws(SystemCallError) -> mode_t? {
        var status = stat()
        do {
            try SystemCall.retrying("lstat", path: path) { lstat(path, &status) }
        } catch  where error.errno == ENOENT {
            return nil
        }
        return status.st_mode & S_IFMT
    }

    /// Whether something accepts connections at `address`: a non-blocking `connect` that succeeds or finds the
    /// backlog full (EAGAIN) means yes; ECONNREFUSED means the socket file is stale. Other errors are thrown.
    static func isListening(_ address: UnixSocketAddress) throws(SystemCallError) -> Bool {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let probe = try SystemCall.retrying("socket", path: address.path) { socket(AF_UNIX, type, 0) }
        defer { SystemCall.closeDescriptor(probe) }

        do {
            try address.withSockaddr { pointer, length throws(SystemCallError) in
                try SystemCall.retrying("connect", path: address.path) { connect(probe, pointer, length) }
            }
            return true
        } catch  where error.errno == ECONNREFUSED {
            return false
        } catch  where error.errno == EAGAIN {
            return true
        }
    }
}

/// A `sockaddr_un` for a file-system path, checked to fit `sun_path` with its NUL.
struct UnixSocketAddress {
    /// The path.
    let path: String
    private var storage = sockaddr_un()

    /// Fails with ENAMETOOLONG when `path` has more than `UnixListener.maximumPathBytes` bytes, and with EINVAL
    /// when it is empty or holds a NUL (abstract sockets are not supported).
    init(path: String) throws(SystemCallError) {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else {
            throw SystemCallError(call: "bind", errno: EINVAL, path: path, detail: "empty path or NUL in the path")
        }
        guard bytes.count <= UnixListener.maximumPathBytes else {
            let detail = "\(bytes.count) bytes, at most \(UnixListener.maximumPathBytes) fit in sun_path"
            throw SystemCallError(call: "bind", errno: ENAMETOOLONG, path: path, detail: detail)
        }
        self.path = path
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length (family plus path plus NUL).
    @discardableResult
    func withSockaddr<Result>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemCallError) -> Result
    ) throws(SystemCallError) -> Result {
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count + 1)
        var copy = storage
        return try withUnsafePointer(to: &copy) { pointer throws(SystemCallError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SystemCallError) in
                try body(address, length)
            }
        }
    }
}

/// The peer of a connected Unix socket as the kernel recorded it at `connect` time.
public struct PeerCredentials: Sendable, Equatable {
    /// The peer's process id (in this process's pid namespace; 0 if it is not visible there).
    public let pid: pid_t
    /// The peer's effective user id.
    public let uid: uid_t
    /// The peer's effective group id (not its supplementary groups).
    public let gid: gid_t

    /// Creates a credentials record.
    public init(pid: pid_t, uid: uid_t, gid: gid_t) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Reads the credentials of `fd`'s peer with `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`.
    ///
    /// They are those of the process that connected (or created the socket pair), fixed at that moment; a
    /// later `setuid` in the peer does not change them. Clients cannot forge them.
    /// - Throws: `SystemCallError` (call `getsockopt(SO_PEERCRED)`), e.g. ENOTSOCK, or EINVAL when the kernel
    ///   returned a record of an unexpected size.
    public static func of(_ fd: Int32) throws(SystemCallError) -> PeerCredentials {
        var record = KernelCredentials()
        var length = socklen_t(MemoryLayout<KernelCredentials>.size)
        try SystemCall.retrying("getsockopt(SO_PEERCRED)") {
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &record, &length)
        }
        guard length == MemoryLayout<KernelCredentials>.size else {
            throw SystemCallError(call: "getsockopt(SO_PEERCRED)", errno: EINVAL, detail: "returned \(length) bytes")
        }
        return PeerCredentials(pid: record.pid, uid: record.uid, gid: record.gid)
    }

    /// Whether the peer may use admin operations: uid 0, or a member of `adminGroup` (by `gid` or by the user's
    /// group list). With `adminGroup` nil only root is allowed.
    ///
    /// TODO: membership comes from the group database (`getgrouplist` of the uid's user), not from the peer
    /// process's own supplementary groups; a peer that dropped the admin group with `setgroups` still counts
    /// as a member, and a uid without a passwd entry counts only through its gid. `SO_PEERGROUPS` (Linux 4.13)
    /// returns the groups the peer really had at `connect`.
    /// - Throws: `GroupLookupError` when `adminGroup` does not exist or the databases cannot be read.
    public func isAdministrator(adminGroup: String?) throws(GroupLookupError) -> Bool {
        if uid == 0 {
            return true
        }
        guard let adminGroup else {
            return false
        }
        let adminGID: gid_t
        do {
            adminGID = try GroupDatabase.groupID(named: adminGroup)
        } catch {
            throw GroupLookupError(error)
        }
        if gid == adminGID {
            return true
        }
        do {
            return try GroupDatabase.groups(ofUser: uid).contains(adminGID)
        } catch {
            throw GroupLookupError(error)
        }
    }
}

/// `struct ucred` from `<sys/socket.h>`, which Swift's Glibc module does not import (it needs _GNU_SOURCE).
/// Layout: three 32-bit fields, 12 bytes; `PeerCredentials.of` checks the size the kernel returns.
private struct KernelCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}

/// A failed user or group lookup, with the name or id that was looked up.
public struct GroupLookupError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The underlying failure: `getgrnam_r`/`getpwuid_r`/`getgrouplist` and its errno, or ENOENT with the
    /// missing name in `path`'s place.
    public let underlying: SystemCallError

    init(_ underlying: SystemCallError) {
        self.underlying = underlying
    }

    /// The underlying error's line.
    public var description: String {
        underlying.description
    }
}

/// Reentrant lookups in the group and user databases (NSS: /etc/group, /etc/passwd, nss-systemd, ...).
enum GroupDatabase {
    /// The id of the group called `name`, with `getgrnam_r`.
    /// - Throws: `SystemCallError` with ENOENT when there is no such group.
    static func groupID(named name: String) throws(SystemCallError) -> gid_t {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        let code = withGrowingBuffer { buffer in
            getgrnam_r(name, &entry, buffer.baseAddress!, buffer.count, &result)
        }
        guard code == 0 else {
            throw SystemCallError(call: "getgrnam_r", errno: code, detail: "looking up group '\(name)'")
        }
        guard result != nil else {
            throw SystemCallError(call: "getgrnam_r", errno: ENOENT, detail: "no group named '\(name)'")
        }
        return entry.gr_gid
    }

    /// Every group id of the user `uid`: its primary group and its supplementary groups, from `getpwuid_r` and
    /// `getgrouplist`. A uid without a user entry has no groups here (an empty list).
    static func groups(ofUser uid: uid_t) throws(SystemCallError) -> [gid_t] {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var name = ""
        var primary: gid_t = 0
        let code = withGrowingBuffer { buffer in
            let code = getpwuid_r(uid, &entry, buffer.baseAddress!, buffer.count, &result)
            if code == 0, result != nil {
                name = String(cString: entry.pw_name)
                primary = entry.pw_gid
            }
            return code
        }
        guard code == 0 else {
            throw SystemCallError(call: "getpwuid_r", errno: code, detail: "looking up uid \(uid)")
        }
        guard result != nil else {
            return []
        }
        return groupList(user: name, primary: primary)
    }

    /// `getgrouplist(user, primary, ...)`, retried with the count it asks for.
    private static func groupList(user: String, primary: gid_t) -> [gid_t] {
        var count: Int32 = 32
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var found = count
            if getgrouplist(user, primary, &groups, &found) >= 0 {
                return Array(groups.prefix(Int(found)))
            }
            count = max(found, count * 2)
        }
    }

    /// Calls `body` with a scratch buffer for a `*_r` lookup, doubling it (from 1 KiB up to 1 MiB) while the
    /// lookup returns ERANGE; returns the lookup's code (0 or an errno value). EINTR is retried.
    private static func withGrowingBuffer(_ body: (UnsafeMutableBufferPointer<CChar>) -> Int32) -> Int32 {
        var size = 1024
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let code = SystemCall.retryingReturnedCode { buffer.withUnsafeMutableBufferPointer { body($0) } }
            if code != ERANGE || size >= 1 << 20 {
                return code
            }
            size *= 2
        }
    }
}
