import Foundation
import PluginHost
import Synchronization
import XCTest

final class RegistryTests: XCTestCase {
    private let probe = [NetworkLayer(op: .pointwise, inputChannels: 2, outputChannels: 3, inputSize: 1, outputSize: 1)]

    /// A registry over a fresh directory holding copies of the two "reloadable" versions (fresh inodes).
    private func freshRegistry() throws -> (PluginRegistry, directory: String) {
        let fixtures = try Fixtures.shared()
        let directory = fixtures.outside + "/registry-\(UInt32.random(in: 0...UInt32.max))"
        try makeDirectory(directory)
        for version in ["v1", "v2"] {
            try FileManager.default.copyItem(
                atPath: fixtures.registry + "/reload-\(version).so", toPath: directory + "/reload-\(version).so")
        }
        return (PluginRegistry(loader: try PluginLoader(directories: [directory])), directory)
    }

    func testUnloadRetiresOnlyAfterTheLastConcurrentLeaseEnds() throws {
        let (registry, directory) = try freshRegistry()
        try registry.load(path: directory + "/reload-v1.so")
        let events = Mutex<[String]>([])
        let acquired = DispatchSemaphore(value: 0)
        let mayRelease = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let probe = probe

        for worker in 0..<4 {
            Thread {
                guard let lease = try? registry.acquire("reloadable") else {
                    events.withLock { $0.append("acquire failed") }
                    acquired.signal()
                    finished.signal()
                    return
                }
                acquired.signal()
                let latency = (try? lease.plugin.target?.cost(of: probe))?.latencyMilliseconds
                mayRelease.wait()
                events.withLock { $0.append("release \(worker) \(latency ?? -1)") }
                lease.release()
                finished.signal()
            }.start()
        }
        for _ in 0..<4 {
            acquired.wait()
        }
        XCTAssertEqual(registry.list().map(\.inFlight), [4])

        XCTAssertEqual(try registry.unload("reloadable"), .retiring)
        XCTAssertThrowsError(try registry.acquire("reloadable")) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .notAvailable)
        }
        XCTAssertFalse(try registry.waitUntilRetired("reloadable", timeout: .milliseconds(50)))
        Thread {
            let retired = (try? registry.waitUntilRetired("reloadable", timeout: .seconds(20))) ?? false
            events.withLock { $0.append("retired \(retired)") }
            finished.signal()
        }.start()
        for _ in 0..<3 {
            mayRelease.signal()
        }
        while events.withLock({ $0.count }) < 3 {
            usleep(1_000)
        }
        usleep(20_000)
        XCTAssertEqual(registry.state(of: "reloadable"), .retiring)
        XCTAssertEqual(registry.list().map(\.inFlight), [1])
        mayRelease.signal()
        for _ in 0..<5 {
            XCTAssertEqual(finished.wait(timeout: .now() + 20), .success)
        }

        let log = events.withLock { $0 }
        XCTAssertEqual(log.count, 5)
        XCTAssertEqual(log.last, "retired true")
        XCTAssertEqual(log.filter { $0.hasPrefix("release") && $0.hasSuffix(" 1.0") }.count, 4, "\(log)")
        XCTAssertEqual(registry.state(of: "reloadable"), .retired)
        XCTAssertEqual(registry.list().map(\.inFlight), [0])
    }

    func testUnloadWithoutLeasesRetiresAtOnceAndDroppedLeasesRelease() throws {
        let (registry, directory) = try freshRegistry()
        try registry.load(path: directory + "/reload-v1.so")

        do {
            let lease = try registry.acquire("reloadable")
            XCTAssertEqual(registry.list().first?.inFlight, 1)
            lease.release()
            lease.release()
        }
        XCTAssertEqual(registry.list().first?.inFlight, 0)
        _ = try registry.acquire("reloadable")
        XCTAssertEqual(registry.list().first?.inFlight, 0)

        XCTAssertEqual(try registry.unload("reloadable"), .retired)
        XCTAssertTrue(try registry.waitUntilRetired("reloadable", timeout: .zero))
        XCTAssertThrowsError(try registry.unload("absent")) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .notFound)
        }
    }

    func testRetiredNameComesBackOnlyFromANewFile() throws {
        let (registry, directory) = try freshRegistry()
        let first = try registry.load(path: directory + "/reload-v1.so")
        XCTAssertEqual(first.version, "1.0")

        XCTAssertThrowsError(try registry.load(path: directory + "/reload-v2.so")) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .nameTaken)
        }
        XCTAssertThrowsError(try registry.waitUntilRetired("reloadable", timeout: .zero)) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .notRetiring)
        }
        try registry.unload("reloadable")
        XCTAssertThrowsError(try registry.load(path: directory + "/reload-v1.so")) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .sameFile)
        }
        XCTAssertEqual(link(directory + "/reload-v1.so", directory + "/hardlink-v1.so"), 0)
        XCTAssertThrowsError(try registry.load(path: directory + "/hardlink-v1.so")) { error in
            XCTAssertEqual((error as? RegistryError)?.kind, .sameFile)
        }

        let second = try registry.load(path: directory + "/reload-v2.so")

        XCTAssertEqual(second.version, "2.0")
        XCTAssertEqual(registry.state(of: "reloadable"), .loaded)
        let lease = try registry.acquire("reloadable")
        defer { lease.release() }
        XCTAssertEqual(try lease.plugin.target?.cost(of: probe).latencyMilliseconds, 2.0)
        let rows = registry.list()
        XCTAssertEqual(rows.map(\.version), ["1.0", "2.0"])
        XCTAssertEqual(rows.map(\.state), [.retired, .loaded])
        XCTAssertEqual(rows.map(\.kind), [.target, .target])
        XCTAssertTrue(rows[1].path.hasSuffix("/reload-v2.so"))
    }

    func testScanLoadsTheGoodAndReportsEachBadFile() throws {
        let fixtures = try Fixtures.shared()
        let registry = PluginRegistry(loader: try PluginLoader(directories: [fixtures.plugins]))

        let report = registry.scanDirectories()

        XCTAssertEqual(report.loaded.map(\.name), ["fixture"])
        var kinds: [String: PluginLoadError.Kind] = [:]
        for failure in report.failures {
            kinds[URL(fileURLWithPath: failure.path).lastPathComponent] = failure.error.loadError?.kind
        }
        var expected: [String: PluginLoadError.Kind] = [
            "abi2.so": .abiVersionMismatch, "size.so": .structSizeMismatch, "noentry.so": .missingEntrySymbol,
            "execstack.so": .executableStack, "writable.so": .writableByOthers, "escape.so": .outsideDirectory,
            "text.so": .notELFSharedObject, "folder.so": .notRegularFile,
        ]
        if getuid() == 0 {
            expected["foreign.so"] = .badOwner
        }
        XCTAssertEqual(kinds, expected)

        let again = registry.scanDirectories()
        XCTAssertEqual(again.loaded.count, 0)
        XCTAssertEqual(again.skipped.map { URL(fileURLWithPath: $0).lastPathComponent }, ["good.so"])
        XCTAssertEqual(registry.list().map(\.name), ["fixture"])
    }
}
