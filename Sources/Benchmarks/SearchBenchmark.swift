import Daemon
import Foundation
import Supernet
import Synchronization
import SystemdSupport
import Wire

/// Search quality of every strategy plugin on a trained model (`supernet bench search`): for each target and
/// three latency budgets, the predicted accuracy each strategy reaches with the same number of scored
/// candidates, and its wall time, averaged over seeds.
public struct SearchBenchmark {
    /// The model file (needs a predictor for meaningful accuracies).
    public var model: String
    /// Plugin directory.
    public var plugins: String
    /// Scored candidates per search (every strategy gets exactly this many at most).
    public var evaluations = 1000
    /// Seeds averaged over.
    public var seeds: [UInt64] = [1, 2, 3]
    /// Strategies compared.
    public var strategies = ["evolution", "random", "reinforce", "relaxed"]
    /// Targets measured; all loaded targets when empty.
    public var targets: [String] = []

    /// Creates a benchmark.
    public init(model: String, plugins: String) {
        self.model = model
        self.plugins = plugins
    }

    /// One row: target, budget, strategy and what it reached.
    public struct Row: Sendable {
        public var target: String
        public var budgetMs: Double
        public var strategy: String
        public var accuracies: [Double]
        public var evaluations: [Int]
        public var milliseconds: [Double]
        public var meanAccuracy: Double { accuracies.reduce(0, +) / Double(max(accuracies.count, 1)) }
    }

    /// Runs every search; rows in target, budget, strategy order.
    public func run() throws -> [Row] {
        let directory = URL(fileURLWithPath: model).deletingLastPathComponent().path
        let store = ModelStore(directory: directory)
        let failures = store.reload()
        let name = URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        guard let loaded = store.model(name) else {
            throw BenchmarkError("cannot load \(model): \(failures.map(\.description).joined(separator: "; "))")
        }
        var configuration = DaemonConfiguration()
        configuration.plugins = [plugins]
        configuration.stateDirectory = NSTemporaryDirectory() + "supernet-search-bench-\(getpid())"
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: configuration.stateDirectory) }
        let (catalog, _) = try PluginCatalogHost.make(configuration)
        guard let host = catalog as? PluginCatalogHost else { throw BenchmarkError("unexpected plugin catalog") }
        let space = loaded.space
        let targetNames = targets.isEmpty ? catalog.targetDescriptors().map(\.name) : targets
        var rows: [Row] = []
        for targetName in targetNames {
            guard let target = catalog.target(targetName) else { throw BenchmarkError("no target \(targetName)") }
            let low = try target.cost(of: space.layers(for: space.smallest)).latencyMs
            let high = try target.cost(of: space.layers(for: space.largest)).latencyMs
            // Budgets at a quarter, half and three quarters of the way from the smallest to the largest subnet's
            // latency (geometrically): tight, middle, loose.
            for fraction in [0.25, 0.5, 0.75] {
                let budget = low * pow(high / low, fraction)
                for strategyName in strategies {
                    guard let strategy = catalog.strategy(strategyName) else {
                        throw BenchmarkError("no strategy \(strategyName) in \(plugins)")
                    }
                    if strategyName != "evolution" {
                        try host.configure(strategy: strategyName, json: #"{"evaluations": \#(evaluations)}"#)
                    }
                    var row = Row(
                        target: targetName, budgetMs: budget, strategy: strategyName, accuracies: [],
                        evaluations: [], milliseconds: [])
                    for seed in seeds {
                        let counted = Atomic<Int>(0)
                        let limit = evaluations
                        let scorer: CandidateScorer = { archs in
                            // One search runs on this thread: a plain load and store count exactly.
                            let before = counted.load(ordering: .relaxed)
                            guard before + archs.count <= limit else { return nil }
                            counted.store(before + archs.count, ordering: .relaxed)
                            let costs = archs.map { space.costs(for: $0) }
                            let accuracy = loaded.predictor?.predict(archs) ?? costs.map { Double($0.macs) }
                            var scores: [CandidateScore] = []
                            for (i, arch) in archs.enumerated() {
                                guard let cost = try? target.cost(of: space.layers(for: arch)) else { return nil }
                                scores.append(CandidateScore(accuracy: accuracy[i], costs: costs[i], target: cost))
                            }
                            return scores
                        }
                        let started = Date()
                        let outcome = try strategy.search(
                            space: space, budgets: [Budget(.latencyMs, budget)],
                            deadline: monotonicSeconds() + 600, seed: seed, score: scorer)
                        row.milliseconds.append(Date().timeIntervalSince(started) * 1000)
                        row.evaluations.append(counted.load(ordering: .relaxed))
                        let best = outcome.best ?? space.smallest
                        row.accuracies.append(loaded.predictor?.predict(best) ?? .nan)
                    }
                    rows.append(row)
                }
            }
        }
        return rows
    }
}
