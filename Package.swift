// swift-tools-version:6.0
// supernetd: trains weight-sharing supernets and serves specialized subnets over Unix sockets.
// Layers, each using only the ones above it in this file:
// C shims → kernels and wire → model → services → executables.
import PackageDescription

/// Kernels are compiled for x86-64-v3 (AVX2 + FMA): measured on these machines, see README "Engine".
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]

let package = Package(
    name: "supernetd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "supernet", targets: ["supernet"])
    ],
    targets: [
        // C: one shim per system library.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        // Kernels.
        .target(name: "Engine", dependencies: ["COpenBLAS"], swiftSettings: kernelFlags),
        .target(name: "Digest"),

        // Model.
        .target(name: "SafeTensors"),
        .target(name: "Supernet", dependencies: ["Engine", "SafeTensors", "Digest"], swiftSettings: kernelFlags),

        // Services.
        .target(name: "Training", dependencies: ["Supernet", "Engine", "SafeTensors", "CZlib"]),
        .target(name: "Benchmarks", dependencies: ["Supernet", "Engine", "Training"]),

        // Executables.
        .target(name: "CommandLineSupport"),
        .executableTarget(
            name: "supernet",
            dependencies: ["CommandLineSupport", "Supernet", "Engine", "SafeTensors", "Training", "Benchmarks"]),

        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"], exclude: ["Python"]),
        .testTarget(name: "DigestTests", dependencies: ["Digest"]),
        .testTarget(name: "SupernetTests", dependencies: ["Supernet", "Engine", "SafeTensors"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Supernet", "Engine"]),
    ]
)
