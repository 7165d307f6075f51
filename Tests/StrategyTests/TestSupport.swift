import Foundation
import PluginHost
import XCTest

/// The package root, from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A failed test set-up step.
struct SetupFailure: Error, CustomStringConvertible {
    let description: String
}

/// A fresh directory with mode 0755 (the loader refuses plugin directories writable by others).
func makeDirectory(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
}

/// The strategy plugins this package builds, by registry name, and their product file names.
let strategyProducts = [
    ("random", "libstrategy-random.so"), ("reinforce", "libstrategy-reinforce.so"),
    ("relaxed", "libstrategy-relaxed.so"), ("evolution", "libstrategy-evolution.so"),
]

/// The directory of the running test binary, where SwiftPM also puts the plugin products.
func buildDirectory() -> String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let directory = URL(fileURLWithPath: executable).deletingLastPathComponent().path
    if FileManager.default.fileExists(atPath: directory + "/libstrategy-random.so") {
        return directory
    }
    return packageRoot + "/.build/debug"
}

/// The package's strategy products, copied once into a fresh directory as an install would (once, so the process
/// maps each Swift plugin only once) and loaded from there through PluginHost.
struct BuiltStrategies: Sendable {
    /// The install directory.
    let directory: String
    /// The loaded strategies by registry name.
    let byName: [String: SearchStrategy]

    /// Installs and loads them, or returns the first attempt's result.
    static func shared() throws -> BuiltStrategies {
        try installed.get()
    }

    private static let installed: Result<BuiltStrategies, any Error> = Result { try BuiltStrategies() }

    private init() throws {
        let built = buildDirectory()
        directory = NSTemporaryDirectory() + "strategy-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makeDirectory(directory)
        let loader = try PluginLoader(directories: [directory])
        var byName: [String: SearchStrategy] = [:]
        for (name, file) in strategyProducts {
            guard FileManager.default.fileExists(atPath: built + "/" + file) else {
                throw SetupFailure(description: "\(file) is not in \(built); build the package's products first")
            }
            try FileManager.default.copyItem(atPath: built + "/" + file, toPath: directory + "/" + file)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory + "/" + file)
            let plugin = try loader.load(path: directory + "/" + file)
            guard let strategy = plugin.strategy, plugin.info.name == name else {
                throw SetupFailure(
                    description: "\(file) is \(plugin.info.kind) \(plugin.info.name), not strategy \(name)")
            }
            byName[name] = strategy
        }
        self.byName = byName
    }

    /// The strategy called `name`.
    func strategy(_ name: String) throws -> SearchStrategy {
        try XCTUnwrap(byName[name], "strategy \(name) not loaded")
    }
}

/// The fmnist-mbv3 space: 3 stages of 2 to 4 blocks, kernels 3/5/7, expansion ratios 3/4/6, resolutions 20/24/28.
let fmnistSpace = SearchSpace(
    stages: 3, maxDepth: 4, depths: [2, 3, 4], kernels: [3, 5, 7], expandRatios: [3, 4, 6], resolutions: [20, 24, 28])

/// MobileNet's channel rounding: to the nearest multiple of `divisor`, at least `divisor`, and up one more step if
/// rounding lost more than 10 %.
func makeDivisible(_ value: Double, _ divisor: Int = 8) -> Int {
    let step = Double(divisor)
    var rounded = max(step, ((value + step / 2) / step).rounded(.down) * step)
    if rounded < 0.9 * value {
        rounded += step
    }
    return Int(rounded)
}

/// Multiply-accumulates of an fmnist-mbv3 subnet at batch 1, as the real space counts them:
/// - stem: 3×3 convolution 1 → 16 channels, stride 1, at r × r: r²·16·9;
/// - each used block (input c, side s, stride t = 2 for a stage's first block, else 1, output side s' = ⌊(s−1)/t⌋+1,
///   width w = 24, 40, 80 by stage, mid = makeDivisible(c·e)): expand 1×1 at the input side s²·c·mid; depthwise k×k
///   at the output side s'²·mid·k²; on stages 2 and 3 squeeze-excite 2·mid·se with se = makeDivisible(mid/4);
///   project 1×1 s'²·mid·w;
/// - head: 1×1 80 → 320 at the final side; classifier 320 → 10.
func macs(_ arch: SubnetArch) -> Double {
    let widths = [24, 40, 80]
    let squeeze = [false, true, true]
    var side = arch.resolution
    var channels = 16
    var total = side * side * 16 * 9

    for stage in 0..<arch.depths.count {
        for block in 0..<arch.depths[stage] {
            let stride = block == 0 ? 2 : 1
            let output = (side - 1) / stride + 1
            let mid = makeDivisible(Double(channels * arch.expandRatios[stage][block]))
            let kernel = arch.kernels[stage][block]
            total += side * side * channels * mid
            total += output * output * mid * kernel * kernel
            if squeeze[stage] {
                total += 2 * mid * makeDivisible(Double(mid / 4))
            }
            total += output * output * mid * widths[stage]
            channels = widths[stage]
            side = output
        }
    }

    total += side * side * 80 * 320 + 320 * 10
    return Double(total)
}

/// A synthetic but realistic accuracy: a concave function of a network "capacity" that sums per-block gains.
///
/// A block of stage s at position b adds w_s · 0.75^b · (0.5 + g_k + g_e + 0.3·g_k·g_e): deeper stages are worth
/// more (w = 0.6, 1.0, 1.4), each extra block of a stage less than the one before, kernel and ratio gains g_k (3: 0,
/// 5: 0.55, 7: 0.8) and g_e (3: 0, 4: 0.45, 6: 0.75) reinforce each other, and a large kernel is worth more at a
/// large resolution (g_k scaled by 0.6 + 0.4·ρ, ρ = (r − 20) / 8). Accuracy = 0.70 + 0.22 · (1 − e^(−capacity / 6))
/// + 0.03·√ρ saturates as capacity grows, so MACs spent where gains per MAC are highest pay most.
func syntheticAccuracy(_ arch: SubnetArch) -> Double {
    let kernelGain: [Int: Double] = [3: 0, 5: 0.55, 7: 0.8]
    let ratioGain: [Int: Double] = [3: 0, 4: 0.45, 6: 0.75]
    let stageWeight = [0.6, 1.0, 1.4]
    let rho = Double(arch.resolution - 20) / 8
    var capacity = 0.0

    for stage in 0..<arch.depths.count {
        for block in 0..<arch.depths[stage] {
            let kernel = kernelGain[arch.kernels[stage][block]]! * (0.6 + 0.4 * rho)
            let ratio = ratioGain[arch.expandRatios[stage][block]]!
            capacity += stageWeight[stage] * pow(0.75, Double(block)) * (0.5 + kernel + ratio + 0.3 * kernel * ratio)
        }
    }
    return 0.70 + 0.22 * (1 - exp(-capacity / 6)) + 0.03 * rho.squareRoot()
}

/// The host's answer for an architecture of the synthetic problem (latency and params are not budgeted here).
func syntheticEvaluation(_ arch: SubnetArch) -> Evaluation {
    Evaluation(
        accuracy: syntheticAccuracy(arch), cost: HardwareCost(latencyMilliseconds: 0, macs: macs(arch), params: 0))
}

/// The three MACs budgets of the comparison, in MACs: about 3 %, 36 % and 80 % of uniformly sampled architectures
/// meet them (the smallest subnet costs 2.33 M MACs, the largest 23.4 M).
let macsBudgets: [(name: String, value: Double)] = [("tight", 4.0e6), ("medium", 6.5e6), ("loose", 10e6)]

/// Counts the architectures a strategy has scored and stops it at `limit`: past the limit the closure answers NaN
/// (the ABI's "not scored") and the cancel check turns true, so every strategy gets exactly `limit` scored
/// evaluations, whether or not it has its own evaluation budget.
final class EvaluationCounter {
    /// Most architectures scored.
    let limit: Int
    /// Architectures scored so far.
    private(set) var scored = 0
    /// Calls of the evaluate closure.
    private(set) var batches = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// Whether the limit has been reached.
    var isCancelled: Bool { scored >= limit }

    /// Scores a batch with the synthetic problem, up to the limit.
    func evaluate(_ archs: [SubnetArch]) -> [Evaluation] {
        batches += 1
        return archs.map { arch in
            guard scored < limit else {
                return Evaluation(accuracy: .nan, cost: HardwareCost(latencyMilliseconds: 0, macs: 0, params: 0))
            }
            scored += 1
            return syntheticEvaluation(arch)
        }
    }
}
