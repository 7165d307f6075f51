import Foundation
import PluginHost
import SupernetPluginABI
import XCTest

final class LoaderTests: XCTestCase {
    func testGoodCPluginLoadsAndCosts() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])
        let plugin = try loader.load(path: fixtures.plugins + "/good.so")

        XCTAssertEqual(plugin.info.name, "fixture")
        XCTAssertEqual(plugin.info.kind, .target)
        XCTAssertEqual(plugin.info.version, "1.0")
        XCTAssertEqual(plugin.info.summary, "a test fixture")
        XCTAssertEqual(plugin.info.abiVersion, 1)
        XCTAssertNil(plugin.strategy)
        let target = try XCTUnwrap(plugin.target)
        XCTAssertFalse(target.hasLayerCost)
        let cost = try target.cost(of: [
            NetworkLayer(op: .pointwise, inputChannels: 3, outputChannels: 5, inputSize: 4, outputSize: 4),
            NetworkLayer(op: .linear, inputChannels: 7, outputChannels: 2, inputSize: 1, outputSize: 1),
        ])
        XCTAssertEqual(cost.macs, 29)
        XCTAssertEqual(cost.latencyMilliseconds, 3)
        XCTAssertEqual(cost.energyMillijoules, 0.25)
        XCTAssertTrue(cost.peakMemoryBytes.isNaN)
    }

    func testPluginErrorMessageReachesTheCaller() throws {
        let fixtures = try Fixtures.shared()
        let target = try XCTUnwrap(
            try PluginLoader(directories: [fixtures.plugins]).load(path: fixtures.plugins + "/good.so").target)

        XCTAssertThrowsError(try target.cost(of: [])) { error in
            let failure = error as? PluginCallError
            XCTAssertEqual(failure?.kind, .pluginFailed)
            XCTAssertEqual(failure?.status, -1)
            XCTAssertEqual(failure?.message, "fixture: empty layer list")
        }
        XCTAssertThrowsError(try target.layerLatencies(of: [])) { error in
            XCTAssertEqual((error as? PluginCallError)?.kind, .notProvided)
        }
    }

    func testWrongABIVersionIsRefusedNamingBoth() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(
            loader, fixtures.plugins + "/abi2.so", .abiVersionMismatch, mentioning: ["version 2", "version 1"])
    }

    func testWrongStructSizeIsRefusedNamingBoth() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])
        let size = MemoryLayout<supernet_target_functions>.size

        assertRefused(
            loader, fixtures.plugins + "/size.so", .structSizeMismatch,
            mentioning: ["\(size + 8) bytes", "\(size) bytes"])
    }

    func testMissingEntrySymbolIsRefusedWithDlerror() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(
            loader, fixtures.plugins + "/noentry.so", .missingEntrySymbol,
            mentioning: ["supernet_plugin_entry", "undefined symbol"])
    }

    func testExecutableStackIsRefusedBeforeDlopen() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(loader, fixtures.plugins + "/execstack.so", .executableStack, mentioning: ["PF_X"])
    }

    func testWorldWritableFileIsRefused() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(loader, fixtures.plugins + "/writable.so", .writableByOthers, mentioning: ["666"])
    }

    func testSymlinkEscapingTheDirectoryIsRefused() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(loader, fixtures.plugins + "/escape.so", .outsideDirectory, mentioning: ["elsewhere.so"])
    }

    func testSymlinkInsideTheDirectoryIsAccepted() throws {
        let fixtures = try Fixtures.shared()
        let link = fixtures.plugins + "/inside-link.so"
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fixtures.plugins + "/good.so")
        defer { try? FileManager.default.removeItem(atPath: link) }

        let plugin = try PluginLoader(directories: [fixtures.plugins]).load(path: link)

        XCTAssertTrue(plugin.info.path.hasSuffix("/good.so"))
    }

    func testOtherChecksEachHaveTheirOwnError() throws {
        let fixtures = try Fixtures.shared()
        let loader = try PluginLoader(directories: [fixtures.plugins])

        assertRefused(loader, fixtures.outside + "/elsewhere.so", .notInPluginDirectory)
        assertRefused(loader, fixtures.plugins + "/missing.so", .notFound)
        assertRefused(loader, fixtures.plugins + "/folder.so", .notRegularFile)
        assertRefused(loader, fixtures.plugins + "/text.so", .notELFSharedObject, mentioning: ["ELF magic"])
        assertRefused(loader, "/proc/self/exe", .notInPluginDirectory)
        if getuid() == 0 {
            assertRefused(loader, fixtures.plugins + "/foreign.so", .badOwner, mentioning: ["uid 4242"])
        }
    }

    func testUnusableDirectoryIsRefused() throws {
        let fixtures = try Fixtures.shared()
        let open = fixtures.outside + "/open"
        try makeDirectory(open)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: open)

        XCTAssertThrowsError(try PluginLoader(directories: [open])) { error in
            XCTAssertEqual((error as? PluginLoadError)?.kind, .unusableDirectory)
        }
        XCTAssertThrowsError(try PluginLoader(directories: [fixtures.outside + "/absent"])) { error in
            XCTAssertEqual((error as? PluginLoadError)?.kind, .unusableDirectory)
        }
    }

    func testFileReplacedAtALoadedPathIsRefused() throws {
        let fixtures = try Fixtures.shared()
        let directory = fixtures.outside + "/replaced"
        try makeDirectory(directory)
        let path = directory + "/target.so"
        try fixtures.compile(path, ["-DFIXTURE_NAME=\"replaced\""])
        let loader = try PluginLoader(directories: [directory])
        XCTAssertEqual(try loader.load(path: path).info.name, "replaced")

        try fixtures.compile(directory + "/next.tmp", ["-DFIXTURE_NAME=\"replaced\"", "-DFIXTURE_VERSION=\"2.0\""])
        XCTAssertEqual(rename(directory + "/next.tmp", path), 0)

        assertRefused(loader, path, .alreadyMapped, mentioning: ["new file name"])
    }

    /// The header compiled by cc and imported by Swift agree on every size and offset.
    func testStructLayoutMatchesTheCCompiler() throws {
        let fixtures = try Fixtures.shared()
        let program = fixtures.outside + "/layout"
        try """
        #include <stdio.h>
        #include "supernet_plugin.h"
        #define SHOW(type, field) printf("%zu ", offsetof(struct type, field))
        int main(void) {
            printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu ", sizeof(struct supernet_layer),
                   sizeof(struct supernet_cost), sizeof(struct supernet_budget),
                   sizeof(struct supernet_search_space), sizeof(struct supernet_arch),
                   sizeof(struct supernet_search_callbacks), sizeof(struct supernet_search_stats),
                   sizeof(struct supernet_target_functions), sizeof(struct supernet_strategy_functions),
                   sizeof(struct supernet_plugin_header));
            SHOW(supernet_layer, hidden); SHOW(supernet_budget, value); SHOW(supernet_search_space, resolutions);
            SHOW(supernet_arch, kernels); SHOW(supernet_arch, expand_ratios); SHOW(supernet_plugin_header, name);
            SHOW(supernet_plugin_header, functions); SHOW(supernet_search_stats, wall_ms);
            return 0;
        }
        """.write(toFile: program + ".c", atomically: true, encoding: .utf8)
        try runCommand("/usr/bin/cc", ["-std=c99", "-I", headerDirectory, "-o", program, program + ".c"])

        let fromC = try runCommand(program, []).split(separator: " ").map { Int($0)! }

        let fromSwift = [
            MemoryLayout<supernet_layer>.size, MemoryLayout<supernet_cost>.size, MemoryLayout<supernet_budget>.size,
            MemoryLayout<supernet_search_space>.size, MemoryLayout<supernet_arch>.size,
            MemoryLayout<supernet_search_callbacks>.size, MemoryLayout<supernet_search_stats>.size,
            MemoryLayout<supernet_target_functions>.size, MemoryLayout<supernet_strategy_functions>.size,
            MemoryLayout<supernet_plugin_header>.size,
            MemoryLayout<supernet_layer>.offset(of: \.hidden)!, MemoryLayout<supernet_budget>.offset(of: \.value)!,
            MemoryLayout<supernet_search_space>.offset(of: \.resolutions)!,
            MemoryLayout<supernet_arch>.offset(of: \.kernels)!,
            MemoryLayout<supernet_arch>.offset(of: \.expand_ratios)!,
            MemoryLayout<supernet_plugin_header>.offset(of: \.name)!,
            MemoryLayout<supernet_plugin_header>.offset(of: \.functions)!,
            MemoryLayout<supernet_search_stats>.offset(of: \.wall_ms)!,
        ]
        XCTAssertEqual(fromC, fromSwift)
        XCTAssertEqual(MemoryLayout<supernet_arch>.size, 4 * (2 + 8 + 64 + 64))
    }
}
