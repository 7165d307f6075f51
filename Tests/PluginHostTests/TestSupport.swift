import Foundation
import PluginHost
import XCTest

/// The package root, from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The directory holding the ABI header.
let headerDirectory = packageRoot + "/plugins/include"

/// A failed helper command, with its output.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
}

/// Runs a program and returns its standard output; throws with its standard error when it exits non-zero.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailure(
            description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                + String(decoding: errorData, as: UTF8.self))
    }
    return String(decoding: outputData, as: UTF8.self)
}

/// A fresh directory with mode 0755 under the system temp directory.
func makeDirectory(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
}

/// The C source of the fixture target plugin; macros select the defects.
let fixtureSource = """
    #include <math.h>
    #include "supernet_plugin.h"

    #ifndef FIXTURE_NAME
    #define FIXTURE_NAME "fixture"
    #endif
    #ifndef FIXTURE_VERSION
    #define FIXTURE_VERSION "1.0"
    #endif
    #ifndef FIXTURE_ABI
    #define FIXTURE_ABI SUPERNET_PLUGIN_ABI_VERSION
    #endif
    #ifndef FIXTURE_EXTRA_SIZE
    #define FIXTURE_EXTRA_SIZE 0
    #endif
    #ifndef FIXTURE_ENTRY
    #define FIXTURE_ENTRY supernet_plugin_entry
    #endif
    #ifndef FIXTURE_LATENCY
    #define FIXTURE_LATENCY 1.5
    #endif

    /* latency = FIXTURE_LATENCY per layer, macs = sum of in * out channels, params = layer count. */
    static int fixture_cost(const struct supernet_layer *layers, size_t count, struct supernet_cost *out,
                            char *error, size_t error_size) {
        double macs = 0.0;

        if (out == NULL || layers == NULL || count == 0) {
            supernet_copy_message(error, error_size, "fixture: empty layer list");
            return SUPERNET_ERROR_INVALID_ARGUMENT;
        }
        for (size_t index = 0; index < count; index++) {
            macs += (double)layers[index].input_channels * (double)layers[index].output_channels;
        }
        out->latency_ms = FIXTURE_LATENCY * (double)count;
        out->energy_mj = 0.25;
        out->peak_memory_bytes = NAN;
        out->macs = macs;
        out->params = (double)count;
        return SUPERNET_OK;
    }

    static const struct supernet_target_functions functions = {fixture_cost, NULL, NULL, NULL};

    static const struct supernet_plugin_header header = {
        FIXTURE_ABI, (uint32_t)(sizeof(struct supernet_target_functions) + FIXTURE_EXTRA_SIZE),
        SUPERNET_PLUGIN_KIND_TARGET, 0, FIXTURE_NAME, FIXTURE_VERSION, "a test fixture", &functions};

    __attribute__((visibility("default"))) const struct supernet_plugin_header *FIXTURE_ENTRY(void) {
        return &header;
    }
    """

/// Compiled fixture plugins in a temp tree, built once per test run.
struct Fixtures: Sendable {
    /// The plugin directory holding one good and many bad files.
    let plugins: String
    /// A directory outside `plugins`.
    let outside: String
    /// A plugin directory for registry tests: two versions of plugin "reloadable".
    let registry: String
    /// The fixture source.
    let source: String

    /// Builds the tree, or returns the first build's result.
    static func shared() throws -> Fixtures {
        try built.get()
    }

    private static let built: Result<Fixtures, any Error> = Result { try Fixtures() }

    private init() throws {
        let root = NSTemporaryDirectory() + "pluginhost-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        plugins = root + "/plugins"
        outside = root + "/outside"
        registry = root + "/registry"
        source = root + "/fixture.c"
        for directory in [root, plugins, outside, registry] {
            try makeDirectory(directory)
        }
        try fixtureSource.write(toFile: source, atomically: true, encoding: .utf8)

        try compile(plugins + "/good.so")
        try compile(plugins + "/abi2.so", ["-DFIXTURE_ABI=2"])
        try compile(plugins + "/size.so", ["-DFIXTURE_EXTRA_SIZE=8"])
        try compile(plugins + "/noentry.so", ["-DFIXTURE_ENTRY=some_other_entry"])
        try compile(plugins + "/execstack.so", ["-Wl,-z,execstack"])
        try compile(plugins + "/writable.so")
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: plugins + "/writable.so")
        try compile(outside + "/elsewhere.so")
        try FileManager.default.createSymbolicLink(
            atPath: plugins + "/escape.so", withDestinationPath: outside + "/elsewhere.so")
        try "not a shared object\n".write(toFile: plugins + "/text.so", atomically: true, encoding: .utf8)
        try makeDirectory(plugins + "/folder.so")
        if getuid() == 0 {
            try compile(plugins + "/foreign.so")
            try runCommand("/bin/chown", ["4242", plugins + "/foreign.so"])
        }

        let reloadable = ["-DFIXTURE_NAME=\"reloadable\""]
        try compile(registry + "/reload-v1.so", reloadable + ["-DFIXTURE_VERSION=\"1.0\"", "-DFIXTURE_LATENCY=1.0"])
        try compile(registry + "/reload-v2.so", reloadable + ["-DFIXTURE_VERSION=\"2.0\"", "-DFIXTURE_LATENCY=2.0"])
    }

    /// Compiles the fixture into `output` with extra flags (a new inode every time).
    func compile(_ output: String, _ flags: [String] = []) throws {
        try runCommand(
            "/usr/bin/cc", ["-shared", "-fPIC", "-O1", "-I", headerDirectory] + flags + ["-o", output, source])
    }
}

/// The directory of the running test binary, where SwiftPM also puts the plugin products.
func buildDirectory() -> String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let directory = URL(fileURLWithPath: executable).deletingLastPathComponent().path
    if FileManager.default.fileExists(atPath: directory + "/libtarget-analytic.so") {
        return directory
    }
    return packageRoot + "/.build/debug"
}

/// The package's plugin products, copied once into a fresh directory as an install would (once, so the process
/// maps each Swift plugin only once) and loaded from there.
struct BuiltPlugins: Sendable {
    /// The install directory.
    let directory: String
    /// The analytic target.
    let analytic: HardwareTarget
    /// The evolution strategy.
    let evolution: SearchStrategy

    /// Installs and loads them, or returns the first attempt's result.
    static func shared() throws -> BuiltPlugins {
        try installed.get()
    }

    private static let installed: Result<BuiltPlugins, any Error> = Result { try BuiltPlugins() }

    private init() throws {
        let built = buildDirectory()
        directory = NSTemporaryDirectory() + "pluginhost-installed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makeDirectory(directory)
        for name in ["libtarget-analytic.so", "libstrategy-evolution.so"] {
            guard FileManager.default.fileExists(atPath: built + "/" + name) else {
                throw CommandFailure(description: "\(name) is not in \(built); build the package's products first")
            }
            try FileManager.default.copyItem(atPath: built + "/" + name, toPath: directory + "/" + name)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory + "/" + name)
        }
        let loader = try PluginLoader(directories: [directory])
        let analyticPlugin = try loader.load(path: directory + "/libtarget-analytic.so")
        let evolutionPlugin = try loader.load(path: directory + "/libstrategy-evolution.so")
        guard let analytic = analyticPlugin.target, let evolution = evolutionPlugin.strategy else {
            throw CommandFailure(description: "the built plugins have the wrong kinds")
        }
        self.analytic = analytic
        self.evolution = evolution
    }
}

/// Asserts that loading `path` fails with `kind` and a message holding every string of `mentioning`.
func assertRefused(
    _ loader: PluginLoader, _ path: String, _ kind: PluginLoadError.Kind, mentioning: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let plugin = try loader.load(path: path)
        XCTFail("\(path) loaded as \(plugin.info.name) but should fail with \(kind)", file: file, line: line)
    } catch {
        XCTAssertEqual(error.kind, kind, error.message, file: file, line: line)
        XCTAssertEqual(error.path, path, file: file, line: line)
        for text in mentioning + [path] {
            XCTAssertTrue(
                error.message.contains(text), "\"\(text)\" missing from: \(error.message)", file: file, line: line)
        }
    }
}

/// The fmnist-mbv3-like space used by the search tests.
let testSpace = SearchSpace(
    stages: 4, maxDepth: 4, depths: [2, 3, 4], kernels: [3, 5, 7], expandRatios: [3, 4, 6], resolutions: [24, 28, 32])

/// The layer list of an architecture of `testSpace`: a stride-2 3×3 stem (1 → 16), inverted residual blocks
/// (expand, depthwise, optional squeeze-excite, project) of widths 24, 40, 80, 112, a 1×1 head to 256, a global
/// pool and a 10-way classifier.
func layers(for arch: SubnetArch) -> [NetworkLayer] {
    let widths = [24, 40, 80, 112]
    let strides = [2, 2, 2, 1]
    let squeeze = [false, true, false, true]
    var size = arch.resolution
    let stem = (size + 1) / 2
    var result = [
        NetworkLayer(
            op: .conv, inputChannels: 1, outputChannels: 16, kernel: 3, stride: 2, inputSize: size, outputSize: stem,
            activation: .hswish)
    ]
    size = stem
    var channels = 16
    for stage in 0..<arch.depths.count {
        for block in 0..<arch.depths[stage] {
            let stride = block == 0 ? strides[stage] : 1
            let output = (size + stride - 1) / stride
            let middle = channels * arch.expandRatios[stage][block]
            result.append(
                NetworkLayer(
                    op: .pointwise, inputChannels: channels, outputChannels: middle, inputSize: size, outputSize: size,
                    activation: .relu))
            result.append(
                NetworkLayer(
                    op: .depthwise, inputChannels: middle, outputChannels: middle, kernel: arch.kernels[stage][block],
                    stride: stride, inputSize: size, outputSize: output, activation: .relu))
            if squeeze[stage] {
                result.append(
                    NetworkLayer(
                        op: .squeezeExcite, inputChannels: middle, outputChannels: middle, inputSize: output,
                        outputSize: output, hidden: middle / 4))
            }
            result.append(
                NetworkLayer(
                    op: .pointwise, inputChannels: middle, outputChannels: widths[stage], inputSize: output,
                    outputSize: output))
            channels = widths[stage]
            size = output
        }
    }
    result.append(
        NetworkLayer(
            op: .pointwise, inputChannels: channels, outputChannels: 256, inputSize: size, outputSize: size,
            activation: .hswish))
    result.append(
        NetworkLayer(
            op: .pool, inputChannels: 256, outputChannels: 256, kernel: size, stride: size, inputSize: size,
            outputSize: 1))
    result.append(NetworkLayer(op: .linear, inputChannels: 256, outputChannels: 10, inputSize: 1, outputSize: 1))
    return result
}

/// The synthetic accuracy: every decision's choice index scaled to [0, 1], summed over the decisions in use,
/// divided by the most decisions an architecture can have. Bigger choices score higher.
func syntheticAccuracy(_ arch: SubnetArch, in space: SearchSpace = testSpace) -> Double {
    func scaled(_ value: Int, _ choices: [Int]) -> Double {
        Double(choices.firstIndex(of: value)!) / Double(max(choices.count - 1, 1))
    }

    var sum = scaled(arch.resolution, space.resolutions)
    for stage in 0..<arch.depths.count {
        sum += scaled(arch.depths[stage], space.depths)
        for block in 0..<arch.depths[stage] {
            sum += scaled(arch.kernels[stage][block], space.kernels)
            sum += scaled(arch.expandRatios[stage][block], space.expandRatios)
        }
    }
    return sum / Double(1 + space.stages + 2 * space.stages * space.maxDepth)
}

/// A uniformly random architecture of `space`.
func randomArch(in space: SearchSpace, using generator: inout some RandomNumberGenerator) -> SubnetArch {
    let depths = (0..<space.stages).map { _ in space.depths.randomElement(using: &generator)! }
    return SubnetArch(
        resolution: space.resolutions.randomElement(using: &generator)!, depths: depths,
        kernels: depths.map { depth in (0..<depth).map { _ in space.kernels.randomElement(using: &generator)! } },
        expandRatios: depths.map { depth in
            (0..<depth).map { _ in space.expandRatios.randomElement(using: &generator)! }
        })
}

/// A seeded generator for test sampling (splitmix64).
struct TestRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
