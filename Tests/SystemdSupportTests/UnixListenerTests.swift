import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SystemdSupport

final class UnixListenerTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try TestSupport.makeScratchDirectory()
    }

    override func tearDown() {
        TestSupport.removeTree(directory)
    }

    private func status(_ path: String) -> stat? {
        var result = stat()
        return lstat(path, &result) == 0 ? result : nil
    }

    /// A fresh bind gives a listening socket with the asked mode and group, and close removes the file.
    func testBindSetsModeGroupAndListens() throws {
        let path = directory + "/client.sock"
        let listener = try UnixListener.bind(path: path, mode: 0o660, group: "daemon", backlog: 8)
        let file = try XCTUnwrap(status(path))
        XCTAssertEqual(file.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(file.st_mode & 0o777, 0o660)
        XCTAssertEqual(file.st_gid, try GroupDatabase.groupID(named: "daemon"))
        XCTAssertEqual(fcntl(listener.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(fcntl(listener.fd, F_GETFL) & O_NONBLOCK, 0)

        let connection = try TestSupport.connectStream(path, within: 0)
        close(connection)
        listener.close()
        XCTAssertNil(status(path))
    }

    /// The admin mode without a group; non-blocking as asked.
    func testAdminModeAndNonBlocking() throws {
        let path = directory + "/admin.sock"
        let listener = try UnixListener.bind(path: path, mode: 0o600, nonBlocking: true)
        defer { listener.close() }
        XCTAssertEqual(try XCTUnwrap(status(path)).st_mode & 0o777, 0o600)
        XCTAssertEqual(fcntl(listener.fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK)
    }

    /// A socket file left behind by a dead process is replaced.
    func testStaleSocketIsReplaced() throws {
        let path = directory + "/client.sock"
        let old = try TestSupport.boundSocket(path, type: Int32(SOCK_STREAM.rawValue))
        close(old)
        XCTAssertThrowsError(try TestSupport.connectStream(path, within: 0)) { error in
            XCTAssertEqual((error as? POSIXError)?.code, .ECONNREFUSED)
        }

        // bind(2) cannot reuse an existing path, so a listening socket there means the stale one was removed.
        let listener = try UnixListener.bind(path: path, mode: 0o660)
        defer { listener.close() }
        close(try TestSupport.connectStream(path, within: 0))
    }

    /// A socket someone listens on is left alone and reported as in use.
    func testLiveSocketIsNotStolen() throws {
        let path = directory + "/client.sock"
        let first = try UnixListener.bind(path: path, mode: 0o660)
        defer { first.close() }
        let inode = try XCTUnwrap(status(path)).st_ino

        XCTAssertThrowsError(try UnixListener.bind(path: path, mode: 0o660)) { error in
            let failure = error as? SystemCallError
            XCTAssertEqual(failure?.errno, EADDRINUSE)
            XCTAssertEqual(failure?.call, "connect")
            XCTAssertEqual(failure?.path, path)
        }
        XCTAssertEqual(try XCTUnwrap(status(path)).st_ino, inode)
    }

    /// A regular file at the path is never unlinked.
    func testRegularFileIsNeverRemoved() throws {
        let path = directory + "/client.sock"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))

        XCTAssertThrowsError(try UnixListener.bind(path: path, mode: 0o660)) { error in
            XCTAssertEqual((error as? SystemCallError)?.errno, EEXIST)
            XCTAssertTrue("\(error)".contains(path))
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep".utf8))
    }

    /// A path longer than sun_path can hold is refused before any file is touched.
    func testOverlongPathIsRefused() throws {
        let path = directory + "/" + String(repeating: "s", count: 120)
        XCTAssertEqual(UnixListener.maximumPathBytes, 107)
        XCTAssertThrowsError(try UnixListener.bind(path: path, mode: 0o660)) { error in
            XCTAssertEqual((error as? SystemCallError)?.errno, ENAMETOOLONG)
        }

        let longest = directory + "/" + String(repeating: "s", count: 107 - directory.utf8.count - 1)
        let listener = try UnixListener.bind(path: longest, mode: 0o660)
        listener.close()
    }

    /// A missing directory fails in bind, naming the call and the path.
    func testErrorsNameCallAndPath() throws {
        let path = directory + "/missing/client.sock"
        XCTAssertThrowsError(try UnixListener.bind(path: path, mode: 0o660)) { error in
            XCTAssertEqual(error as? SystemCallError, SystemCallError(call: "bind", errno: ENOENT, path: path))
            XCTAssertTrue("\(error)".hasPrefix("bind \(path): "), "\(error)")
        }
    }

    /// An unknown group is an error naming the group, and the half-made socket file is removed again.
    func testUnknownGroupFails() throws {
        let path = directory + "/client.sock"
        XCTAssertThrowsError(try UnixListener.bind(path: path, mode: 0o660, group: "no-such-group-x")) { error in
            XCTAssertEqual((error as? SystemCallError)?.errno, ENOENT)
            XCTAssertTrue("\(error)".contains("no-such-group-x"))
        }
        XCTAssertNil(status(path))
    }

    /// SO_PEERCRED over a socket pair reports this process.
    func testPeerCredentialsOverSocketPair() throws {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { pair.forEach { close($0) } }

        let peer = try PeerCredentials.of(pair[0])
        XCTAssertEqual(peer, PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
    }

    /// SO_PEERCRED on something that is not a socket fails with ENOTSOCK.
    func testPeerCredentialsOfNonSocket() throws {
        var pipeEnds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { pipeEnds.forEach { close($0) } }
        XCTAssertThrowsError(try PeerCredentials.of(pipeEnds[0])) { error in
            XCTAssertEqual((error as? SystemCallError)?.errno, ENOTSOCK)
        }
    }

    /// Root always, members of the admin group by primary or supplementary group, nobody else.
    func testAdministratorCheck() throws {
        let root = PeerCredentials(pid: 1, uid: 0, gid: 0)
        XCTAssertTrue(try root.isAdministrator(adminGroup: nil))

        let nobody = try XCTUnwrap(getpwnam("nobody")?.pointee)
        let nobodyPeer = PeerCredentials(pid: 1, uid: nobody.pw_uid, gid: nobody.pw_gid)
        XCTAssertFalse(try nobodyPeer.isAdministrator(adminGroup: nil))
        XCTAssertFalse(try nobodyPeer.isAdministrator(adminGroup: "root"))
        let nobodyGroup = String(cString: try XCTUnwrap(getgrgid(nobody.pw_gid)?.pointee.gr_name))
        XCTAssertTrue(try nobodyPeer.isAdministrator(adminGroup: nobodyGroup))

        // A peer whose effective gid differs still counts through the user's group list (primary group here).
        let switchedGroup = PeerCredentials(pid: 1, uid: nobody.pw_uid, gid: 12_345)
        XCTAssertTrue(try switchedGroup.isAdministrator(adminGroup: nobodyGroup))

        XCTAssertThrowsError(try nobodyPeer.isAdministrator(adminGroup: "no-such-group-x")) { error in
            XCTAssertEqual((error as? GroupLookupError)?.underlying.errno, ENOENT)
        }
    }

    /// A user's group list holds its primary group; a uid without a user entry has none.
    func testGroupListOfUsers() throws {
        XCTAssertTrue(try GroupDatabase.groups(ofUser: 0).contains(0))
        XCTAssertEqual(try GroupDatabase.groups(ofUser: 4_000_000_000), [])
    }

    /// A user's group list holds the supplementary groups /etc/group lists it in, and they make an admin.
    func testSupplementaryGroupMakesAdministrator() throws {
        guard let membership = supplementaryMembership() else {
            throw XCTSkip("no user on this machine has a supplementary group in /etc/group")
        }
        XCTAssertTrue(try GroupDatabase.groups(ofUser: membership.uid).contains(membership.gid))

        let groupName = String(cString: try XCTUnwrap(getgrgid(membership.gid)?.pointee.gr_name))
        let peer = PeerCredentials(pid: 1, uid: membership.uid, gid: 12_345)
        XCTAssertTrue(try peer.isAdministrator(adminGroup: groupName))
    }

    /// Some user listed as a member in /etc/group whose primary group is a different one.
    private func supplementaryMembership() -> (uid: uid_t, gid: gid_t)? {
        guard let text = try? String(contentsOfFile: "/etc/group", encoding: .utf8) else {
            return nil
        }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 4, let gid = gid_t(fields[2]) else {
                continue
            }
            for member in fields[3].split(separator: ",") {
                if let user = getpwnam(String(member))?.pointee, user.pw_gid != gid {
                    return (user.pw_uid, gid)
                }
            }
        }
        return nil
    }
}
