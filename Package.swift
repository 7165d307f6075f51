// swift-tools-version:6.0
// supernetd: trains weight-sharing supernets and serves specialized subnets over Unix sockets.
// Layers, each using only the ones above it in this file:
// C shims → kernels and wire → model → services → executables.
import PackageDescription

/// Kernels are compiled for x86-64-v3 (AVX2 + FMA): measured on these machines, see README "Engine".
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]
/// The AVX-512 kernels: F, CD, BW, DQ and VL (Engine checks the processor for all five before calling them).
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "skylake-avx512"])]

let package = Package(
    name: "supernetd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "supernet", targets: ["supernet"]),
        .executable(name: "supernetd", targets: ["supernetd"]),
        .executable(name: "supernetctl", targets: ["supernetctl"]),

        // Plugins: shared objects that the daemon loads with dlopen, never linked into it.
        .library(name: "target-analytic", type: .dynamic, targets: ["TargetAnalytic"]),
        .library(name: "strategy-evolution", type: .dynamic, targets: ["StrategyEvolution"]),
        .library(name: "strategy-random", type: .dynamic, targets: ["StrategyRandom"]),
        .library(name: "strategy-reinforce", type: .dynamic, targets: ["StrategyReinforce"]),
        .library(name: "strategy-relaxed", type: .dynamic, targets: ["StrategyRelaxed"]),
        .library(name: "target-host-cpu", type: .dynamic, targets: ["TargetHostCPU"]),
        .library(name: "target-lut", type: .dynamic, targets: ["TargetLUT"]),
    ],
    targets: [
        // C: one shim per system library.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        // The plugin ABI header; a module map beside it makes it a Swift module (nothing compiled or linked).
        .systemLibrary(name: "SupernetPluginABI", path: "plugins/include"),

        // Kernels. EngineAVX512 alone is compiled for AVX-512; Engine calls it only on processors that have it.
        .target(name: "EngineAVX512", swiftSettings: avx512Flags),
        .target(name: "Engine", dependencies: ["COpenBLAS", "CLinux", "EngineAVX512"], swiftSettings: kernelFlags),
        .target(name: "Digest"),
        .target(name: "LatencyTable"),
        .target(name: "Wire", dependencies: ["CLZ4", "Digest"]),

        // Model.
        .target(name: "SafeTensors"),
        .target(name: "Supernet", dependencies: ["Engine", "SafeTensors", "Digest"], swiftSettings: kernelFlags),

        // Services.
        .target(name: "LatencyProfiling", dependencies: ["Engine", "LatencyTable"], swiftSettings: kernelFlags),
        .target(name: "Training", dependencies: ["Supernet", "Engine", "SafeTensors", "CZlib"]),
        .target(name: "SystemdSupport", dependencies: ["CSystemd"]),
        .target(name: "PluginHost", dependencies: ["SupernetPluginABI"]),
        .target(
            name: "Daemon",
            dependencies: [
                "Supernet", "Engine", "SafeTensors", "Wire", "Digest", "SystemdSupport", "PluginHost", "CLinux",
            ]),
        .target(name: "Client", dependencies: ["Supernet", "SafeTensors", "Wire"]),
        .target(
            name: "Benchmarks", dependencies: ["Supernet", "Engine", "Training", "Client", "Daemon", "SystemdSupport"]),

        // Executables.
        .target(name: "CommandLineSupport"),
        .executableTarget(
            name: "supernet",
            dependencies: [
                "CommandLineSupport", "Supernet", "Engine", "SafeTensors", "Training", "Benchmarks", "LatencyProfiling",
                "LatencyTable",
            ]),

        .executableTarget(name: "supernetctl", dependencies: ["CommandLineSupport", "Client", "Wire"]),
        .executableTarget(
            name: "supernetd", dependencies: ["CommandLineSupport", "Daemon", "Engine", "SystemdSupport"]),

        // Plugins: each exports supernet_plugin_entry. The strategies and the analytic target share PluginSupport
        // (search plumbing, configuration reader, seeded generator, header and configure glue), linked into each.
        .target(name: "PluginSupport", dependencies: ["SupernetPluginABI"], path: "plugins/plugin-support"),
        .target(
            name: "TargetAnalytic", dependencies: ["SupernetPluginABI", "PluginSupport"],
            path: "plugins/target-analytic"),
        .target(
            name: "StrategyEvolution", dependencies: ["SupernetPluginABI", "PluginSupport"],
            path: "plugins/strategy-evolution"),
        .target(
            name: "StrategyRandom", dependencies: ["SupernetPluginABI", "PluginSupport"],
            path: "plugins/strategy-random"),
        .target(
            name: "StrategyReinforce", dependencies: ["SupernetPluginABI", "PluginSupport"],
            path: "plugins/strategy-reinforce"),
        .target(
            name: "StrategyRelaxed", dependencies: ["SupernetPluginABI", "PluginSupport"],
            path: "plugins/strategy-relaxed"),
        // Targets: the shared helpers, and (host-cpu only) the profiler and engine, linked into each object.
        .target(
            name: "TargetSupport", dependencies: ["SupernetPluginABI", "PluginSupport", "LatencyTable"],
            path: "plugins/target-support"),
        .target(
            name: "TargetHostCPU",
            dependencies: ["SupernetPluginABI", "TargetSupport", "LatencyTable", "LatencyProfiling", "Engine"],
            path: "plugins/target-host-cpu"),
        .target(
            name: "TargetLUT", dependencies: ["SupernetPluginABI", "TargetSupport", "LatencyTable"],
            path: "plugins/target-lut",
            resources: [.embedInCode("sample-device.json")]),

        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"], exclude: ["Python"]),
        .testTarget(name: "DigestTests", dependencies: ["Digest"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Digest"], exclude: ["Python"]),
        .testTarget(name: "SupernetTests", dependencies: ["Supernet", "Engine", "SafeTensors"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Supernet", "Engine"]),
        .executableTarget(name: "notify-probe", dependencies: ["SystemdSupport"], path: "Tests/Support/notify-probe"),
        // The plugin tests load the plugins from the build directory, so they must not link them.
        .testTarget(name: "PluginHostTests", dependencies: ["PluginHost", "SupernetPluginABI"]),
        .testTarget(name: "StrategyTests", dependencies: ["PluginHost", "SupernetPluginABI"]),
        .testTarget(
            name: "TargetPluginTests",
            dependencies: ["PluginHost", "SupernetPluginABI", "Engine", "LatencyTable", "LatencyProfiling"]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "Client", "Wire", "Supernet", "SafeTensors", "Training", "Engine", "supernetd",
                "supernetctl", "supernet",
            ]),
        .testTarget(name: "SystemdSupportTests", dependencies: ["SystemdSupport", "notify-probe"]),
    ]
)
