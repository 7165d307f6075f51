// The checks a plugin file passes before it is handed to dlopen: place, type, owner, mode and ELF headers.
import Glibc

/// A file's identity on disk: device and inode.
public struct FileIdentity: Sendable, Hashable {
    /// st_dev.
    public let device: UInt64
    /// st_ino.
    public let inode: UInt64
}

/// A file that passed every check, ready for dlopen.
struct CheckedFile {
    /// The resolved path inside a plugin directory.
    let realPath: String
    /// Device and inode of the checked file.
    let identity: FileIdentity
}

/// The real path of `path`, or nil (with errno set) when it cannot be resolved.
func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else {
        return nil
    }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// The text of the current errno.
func errnoText() -> String {
    String(cString: strerror(errno))
}

/// Runs the file checks on `path` against the configured (resolved) directories.
///
/// TODO: the checks read the file by path and dlopen opens it again, so a file swapped between the two is not
/// the file that was checked; only root or the daemon may write the directory (checked), which narrows but
/// does not close that window. Opening once and loading from the descriptor needs a loader that accepts one.
func checkPluginFile(
    _ path: String, directories: [String], allowedOwners: Set<UInt32>
) throws(PluginLoadError) -> CheckedFile {
    func refuse(_ kind: PluginLoadError.Kind, _ what: String) -> PluginLoadError {
        PluginLoadError(kind: kind, path: path, message: "refusing plugin \(path): \(what)")
    }

    var linkStatus = stat()
    guard lstat(path, &linkStatus) == 0 else {
        throw refuse(.notFound, "lstat failed: \(errnoText())")
    }
    let parent = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    guard let parentReal = resolvedPath(parent.isEmpty ? "/" : parent),
        let directory = directories.first(where: {
            $0 == parentReal
        })
    else {
        throw refuse(
            .notInPluginDirectory,
            "its directory is not a configured plugin directory (\(directories.joined(separator: ", ")))")
    }
    guard let real = resolvedPath(path) else {
        throw refuse(.notFound, "cannot resolve the path: \(errnoText())")
    }
    guard real.hasPrefix(directory == "/" ? "/" : directory + "/") else {
        throw refuse(.outsideDirectory, "it resolves to \(real), outside the plugin directory \(directory)")
    }

    var status = stat()
    guard stat(real, &status) == 0 else {
        throw refuse(.notFound, "stat of \(real) failed: \(errnoText())")
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
        throw refuse(.notRegularFile, "\(real) is not a regular file")
    }
    guard allowedOwners.contains(status.st_uid) else {
        let owners = allowedOwners.sorted().map(String.init).joined(separator: ", ")
        throw refuse(.badOwner, "\(real) is owned by uid \(status.st_uid), not by one of \(owners)")
    }
    guard status.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
        let mode = String(status.st_mode & 0o7777, radix: 8)
        throw refuse(.writableByOthers, "\(real) has mode \(mode): group or others may write it; chmod go-w it")
    }
    try checkELF(real, refuse: refuse)
    return CheckedFile(
        realPath: real, identity: FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
}

/// Checks a configured directory: it exists, is a directory, and only allowed owners may write it.
func checkDirectory(_ path: String, allowedOwners: Set<UInt32>) throws(PluginLoadError) -> String {
    func refuse(_ what: String) -> PluginLoadError {
        PluginLoadError(kind: .unusableDirectory, path: path, message: "plugin directory \(path): \(what)")
    }

    guard let real = resolvedPath(path) else {
        throw refuse("cannot resolve it: \(errnoText())")
    }
    var status = stat()
    guard stat(real, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
        throw refuse("\(real) is not a directory")
    }
    guard allowedOwners.contains(status.st_uid), status.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
        throw refuse(
            "\(real) is owned by uid \(status.st_uid) with mode \(String(status.st_mode & 0o7777, radix: 8)); "
                + "it must belong to an allowed owner and not be writable by group or others")
    }
    return real
}

/// Reads the ELF header and program headers: a 64-bit little-endian shared object for this machine whose
/// PT_GNU_STACK does not ask for an executable stack.
private func checkELF(
    _ path: String, refuse: (PluginLoadError.Kind, String) -> PluginLoadError
) throws(PluginLoadError) {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw refuse(.notELFSharedObject, "cannot open it: \(errnoText())")
    }
    defer { close(descriptor) }

    func read(_ count: Int, at offset: UInt64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
        return got == count ? bytes : nil
    }
    func little<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as type: T.Type) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size {
            value |= T(bytes[offset + index]) << (8 * index)
        }
        return value
    }

    guard let header = read(64, at: 0), header[0..<4].elementsEqual([0x7F, 0x45, 0x4C, 0x46]) else {
        throw refuse(.notELFSharedObject, "it does not start with the ELF magic")
    }
    guard header[4] == 2, header[5] == 1 else {
        throw refuse(.notELFSharedObject, "ELF class \(header[4]) and data \(header[5]): not 64-bit little-endian")
    }
    let type = little(header, 16, as: UInt16.self)
    guard type == 3 else {
        throw refuse(.notELFSharedObject, "ELF type \(type) is not ET_DYN (a shared object)")
    }
    #if arch(x86_64)
    let machine: UInt16 = 62
    #elseif arch(arm64)
    let machine: UInt16 = 183
    #else
    let machine = little(header, 18, as: UInt16.self)
    #endif
    guard little(header, 18, as: UInt16.self) == machine else {
        throw refuse(.notELFSharedObject, "ELF machine \(little(header, 18, as: UInt16.self)) is not this host's")
    }

    let tableOffset = little(header, 32, as: UInt64.self)
    let entrySize = Int(little(header, 54, as: UInt16.self))
    let entryCount = Int(little(header, 56, as: UInt16.self))
    guard entrySize >= 56, entryCount > 0, entryCount < 0xFFFF,
        let table = read(entrySize * entryCount, at: tableOffset)
    else {
        throw refuse(
            .notELFSharedObject, "its program header table (\(entryCount) × \(entrySize) bytes) is unreadable")
    }
    let gnuStack: UInt32 = 0x6474_E551
    let executable: UInt32 = 0x1
    for entry in 0..<entryCount where little(table, entry * entrySize, as: UInt32.self) == gnuStack {
        let flags = little(table, entry * entrySize + 4, as: UInt32.self)
        guard flags & executable == 0 else {
            throw refuse(.executableStack, "its PT_GNU_STACK has PF_X: it asks for an executable stack")
        }
        return
    }
    throw refuse(
        .executableStack, "it has no PT_GNU_STACK header, which the dynamic loader treats as an executable stack")
}
