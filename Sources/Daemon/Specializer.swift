import Engine
import Foundation
import Supernet
import Synchronization
import Wire

extension BudgetKind: CustomStringConvertible {
    /// The unit name used in messages.
    public var description: String {
        switch self {
        case .latencyMs: return "latency_ms"
        case .macs: return "macs"
        case .params: return "params"
        case .memoryKB: return "memory_kb"
        }
    }
}

/// A subnet's cost on a hardware target.
public struct TargetCost: Sendable, Equatable {
    /// Latency in milliseconds.
    public var latencyMs: Double
    /// Energy in millijoules (NaN when the target does not know).
    public var energyMJ: Double
    /// Peak memory in bytes as the target counts it (NaN when unknown).
    public var peakMemoryBytes: Double

    /// Creates a cost.
    public init(latencyMs: Double, energyMJ: Double = .nan, peakMemoryBytes: Double = .nan) {
        self.latencyMs = latencyMs
        self.energyMJ = energyMJ
        self.peakMemoryBytes = peakMemoryBytes
    }
}

/// A hardware target as the specializer uses it (a plugin behind it).
public protocol CostModel: Sendable {
    /// Name clients use.
    var name: String { get }
    /// Costs of a subnet given its layer list.
    func cost(of layers: [LayerShape]) throws -> TargetCost
    /// Changes whenever the costs may change (a new plugin file or version, a recalibration): Pareto archives
    /// are kept per revision.
    var revision: String { get }
}

extension CostModel {
    /// Targets whose costs never change answer their name.
    public var revision: String { name }
}

/// A candidate's score: predicted accuracy, exact costs and the target's latency and energy.
public struct CandidateScore: Sendable {
    /// Predicted accuracy in [0, 1].
    public var accuracy: Double
    /// Exact MACs, parameters and peak activation bytes.
    public var costs: SubnetCosts
    /// The target's estimate.
    public var target: TargetCost

    /// Creates a score.
    public init(accuracy: Double, costs: SubnetCosts, target: TargetCost) {
        self.accuracy = accuracy
        self.costs = costs
        self.target = target
    }
}

/// What a search strategy gets to score candidates, batched. Returns nil when the search must stop
/// (deadline or cancellation).
public typealias CandidateScorer = @Sendable ([ArchConfig]) -> [CandidateScore]?

/// The outcome of a search.
public struct SearchOutcome: Sendable {
    /// The best feasible architecture found, nil if none was.
    public var best: ArchConfig?
    /// Candidates scored.
    public var evaluations: Int
    /// Wall time in milliseconds.
    public var milliseconds: Double
}

/// A search strategy as the specializer uses it (a plugin behind it).
public protocol ArchitectureSearch: Sendable {
    /// Name clients use.
    var name: String { get }
    /// Searches `space` for the most accurate architecture meeting every budget (judged by `feasible`).
    func search(
        space: SearchSpace, budgets: [Budget], deadline: Double, seed: UInt64,
        score: @escaping CandidateScorer
    ) throws -> SearchOutcome
}

/// A specialization failure with the protocol's error code.
public struct SpecializationError: Error, CustomStringConvertible, Sendable {
    /// The stable error code (see PROTOCOL.md).
    public let code: ErrorCode
    /// A message that says what to do next.
    public let message: String
    /// For an infeasible budget: the smallest achievable value of the budget that failed, and its kind.
    public var smallestAchievable: (kind: BudgetKind, value: Double)?

    /// Creates an error.
    public init(_ code: ErrorCode, _ message: String, smallestAchievable: (kind: BudgetKind, value: Double)? = nil) {
        self.code = code
        self.message = message
        self.smallestAchievable = smallestAchievable
    }

    /// The message.
    public var description: String { message }
}

/// A bounded least-recently-used map. Thread-safe.
final class LRUCache<Value: Sendable>: Sendable {
    private struct State {
        var entries: [String: (value: Value, stamp: UInt64)] = [:]
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func value(_ key: String) -> Value? {
        state.withLock { s in
            guard let entry = s.entries[key] else { return nil }
            s.clock += 1
            s.entries[key] = (entry.value, s.clock)
            return entry.value
        }
    }

    func store(_ key: String, _ value: Value) {
        state.withLock { s in
            s.clock += 1
            s.entries[key] = (value, s.clock)
            if s.entries.count > capacity, let oldest = s.entries.min(by: { $0.value.stamp < $1.value.stamp }) {
                s.entries.removeValue(forKey: oldest.key)
            }
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}

/// A specialization request, as decoded from the wire.
public struct SpecializeRequest: Sendable {
    /// Model name.
    public var model: String
    /// Target name.
    public var target: String
    /// Budgets (at least one).
    public var budgets: [Budget]
    /// Strategy name; nil or empty for the default.
    public var strategy: String?
    /// Search deadline in milliseconds (nil: the server default).
    public var deadlineMs: Double?

    /// Creates a request.
    public init(model: String, target: String, budgets: [Budget], strategy: String? = nil, deadlineMs: Double? = nil) {
        self.model = model
        self.target = target
        self.budgets = budgets
        self.strategy = strategy
        self.deadlineMs = deadlineMs
    }
}

/// The chosen subnet and how it was found.
public struct Specialization: Sendable {
    /// The model it came from.
    public var model: LoadedModel
    /// Canonical architecture.
    public var arch: ArchConfig
    /// SHA-256 of the canonical arch JSON.
    public var digest: String
    /// Predicted accuracy in [0, 1] (the predictor's, or NaN without one).
    public var predictedAccuracy: Double
    /// Exact MACs, parameters and peak activation memory.
    public var costs: SubnetCosts
    /// Cost on the target.
    public var targetCost: TargetCost
    /// The strategy that found it.
    public var strategy: String
    /// Whether the search result came from the cache.
    public var cached: Bool
    /// Candidates the search scored.
    public var evaluations: Int
    /// Search wall time in milliseconds (0 when cached).
    public var searchMilliseconds: Double
}

/// Finds the best subnet for a target and budgets and cuts it out; caches searches by request and subnets by
/// architecture digest.
public final class Specializer: Sendable {
    let store: ModelStore
    let targets: @Sendable (String) -> CostModel?
    let strategies: @Sendable (String) -> ArchitectureSearch?
    let defaultStrategy: String
    let defaultDeadlineMs: Double
    /// Calibration images used per subnet (0: all the model file holds).
    let calibrationLimit: Int
    private let searches: LRUCache<Specialization>
    private let subnets: LRUCache<Subnet>
    /// Subnets built from prepared statistics (no recalibration at request time).
    let preparedHits = Atomic<Int>(0)
    /// Recalibrated BatchNorm statistics by model and arch digest.
    private let statistics = LRUCache<[String: [Float]]>(capacity: 4096)
    let fronts = LRUCache<[FrontPoint]>(capacity: 64)
    /// Per-(model, target) archives that answer default-strategy requests by lookup once built.
    let archives = ParetoArchives()
    /// Search time per rung of an archive's budget ladder, seconds (0: no archives).
    let archiveRungSeconds: Double

    /// Creates a specializer over `store`, resolving targets and strategies by name through the closures.
    public init(
        store: ModelStore, targets: @escaping @Sendable (String) -> CostModel?,
        strategies: @escaping @Sendable (String) -> ArchitectureSearch?, defaultStrategy: String,
        defaultDeadlineMs: Double, cacheEntries: Int, calibrationLimit: Int = 0, archiveRungMs: Double = 250
    ) {
        self.archiveRungSeconds = archiveRungMs / 1000
        self.calibrationLimit = calibrationLimit
        self.store = store
        self.targets = targets
        self.strategies = strategies
        self.defaultStrategy = defaultStrategy
        self.defaultDeadlineMs = defaultDeadlineMs
        searches = LRUCache(capacity: cacheEntries)
        subnets = LRUCache(capacity: max(8, cacheEntries / 4))
    }

    /// Runs the search (or answers from the cache).
    /// - Throws: `SpecializationError` (unknown names, invalid or infeasible budgets, plugin failure, cancel).
    public func search(_ request: SpecializeRequest, cancel: CancelToken) throws -> Specialization {
        guard let model = store.model(request.model) else {
            throw SpecializationError(
                .unknownModel, "unknown model \"\(request.model)\"; `supernetctl models` lists them")
        }
        guard let target = targets(request.target) else {
            throw SpecializationError(
                .unknownTarget,
                "unknown target \"\(request.target)\"; `supernetctl targets` lists them")
        }
        let strategyName = (request.strategy ?? "").isEmpty ? defaultStrategy : request.strategy!
        guard let strategy = strategies(strategyName) else {
            throw SpecializationError(
                .unknownStrategy,
                "unknown strategy \"\(strategyName)\"; `supernetctl strategies` lists them")
        }
        try validate(request.budgets)

        if (request.strategy ?? "").isEmpty, strategyName == defaultStrategy {
            let archiveKey = Self.archiveKey(model: model, target: target)
            if let archive = archives.archive(archiveKey) {
                if let point = archive.best(meeting: request.budgets) {
                    return Specialization(
                        model: model, arch: point.arch, digest: point.arch.digest(maxDepth: model.space.maxDepth),
                        predictedAccuracy: model.predictor == nil ? .nan : point.score.accuracy,
                        costs: point.score.costs,
                        targetCost: point.score.target, strategy: "\(strategy.name) (pareto front)", cached: true,
                        evaluations: 0, searchMilliseconds: 0)
                }
            } else {
                warmArchive(model: model, target: target, strategy: strategy)
            }
        }

        let key =
            "\(model.name)#\(model.generation)|\(target.name)|\(strategy.name)|"
            + request.budgets.map { "\($0.kind.rawValue)=\($0.value)" }.sorted().joined(separator: ",")
        if var hit = searches.value(key) {
            hit.cached = true
            hit.searchMilliseconds = 0
            return hit
        }
        let result = try runSearch(model: model, target: target, strategy: strategy, request: request, cancel: cancel)
        searches.store(key, result)
        return result
    }

    /// The subnet for a specialization, extracted and recalibrated once per architecture.
    public func subnet(for specialization: Specialization) throws -> Subnet {
        try subnet(model: specialization.model, arch: specialization.arch, digest: specialization.digest)
    }

    /// Extracted subnets are cached whole (a few hundred), their recalibrated BatchNorm statistics far longer
    /// (small): with the statistics known, extraction skips the recalibration's forward passes.
    func subnet(model: LoadedModel, arch: ArchConfig, digest: String) throws -> Subnet {
        let key = Self.subnetKey(model: model, digest: digest)
        if let hit = subnets.value(key) {
            return hit
        }
        let subnet: Subnet
        if let known = statistics.value(key) {
            subnet = model.subnet(arch, statistics: known)
            preparedHits.add(1, ordering: .relaxed)
        } else {
            subnet = try model.subnet(arch, calibrationLimit: calibrationLimit)
            statistics.store(key, Self.runningStatistics(of: subnet))
        }
        subnets.store(key, subnet)
        return subnet
    }

    /// Cache key of a subnet (and of its statistics): model version and arch digest.
    static func subnetKey(model: LoadedModel, digest: String) -> String {
        "\(model.name)#\(model.generation)|\(digest)"
    }

    static func runningStatistics(of subnet: Subnet) -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for tensor in subnet.tensors
        where tensor.name.hasSuffix(".running_mean") || tensor.name.hasSuffix(".running_var") {
            result[tensor.name] = tensor.values
        }
        return result
    }

    private func validate(_ budgets: [Budget]) throws {
        guard !budgets.isEmpty else {
            throw SpecializationError(.invalidArgument, "give at least one budget (latency, MACs, params or memory)")
        }
        guard budgets.count <= 8 else {
            throw SpecializationError(.invalidArgument, "at most 8 budgets per request, got \(budgets.count)")
        }
        for budget in budgets where !(budget.value.isFinite && budget.value > 0) {
            throw SpecializationError(
                .invalidArgument,
                "budget \(budget.kind) must be a positive finite number, got \(budget.value)")
        }
    }

    /// The value of `kind` for an arch with these costs.
    static func measure(_ kind: BudgetKind, costs: SubnetCosts, target: TargetCost) -> Double {
        switch kind {
        case .latencyMs: return target.latencyMs
        case .macs: return Double(costs.macs)
        case .params: return Double(costs.parameters)
        case .memoryKB: return Double(costs.peakActivationBytes) / 1024
        }
    }

    private func runSearch(
        model: LoadedModel, target: CostModel, strategy: ArchitectureSearch,
        request: SpecializeRequest, cancel: CancelToken
    ) throws -> Specialization {
        let space = model.space
        let smallest = space.smallest
        let smallestCosts = space.costs(for: smallest)
        let smallestTarget = try targetCost(target, space: space, arch: smallest)
        for budget in request.budgets {
            let achievable = Self.measure(budget.kind, costs: smallestCosts, target: smallestTarget)
            if budget.value < achievable {
                throw SpecializationError(
                    .infeasibleBudget,
                    "no subnet of \(model.name) meets \(budget.kind) ≤ \(budget.value) on \(target.name): "
                        + "the smallest "
                        + "achievable is \(Self.format(achievable)) \(budget.kind)",
                    smallestAchievable: (budget.kind, achievable))
            }
        }

        let deadline = monotonicSeconds() + (request.deadlineMs ?? defaultDeadlineMs) / 1000
        let score = scorer(model: model, target: target, deadline: deadline, cancel: cancel)
        let outcome: SearchOutcome
        do {
            outcome = try strategy.search(
                space: space, budgets: request.budgets, deadline: deadline,
                seed: 0x5EED, score: score)
        } catch {
            throw SpecializationError(.pluginFailed, "strategy \(strategy.name) failed: \(error)")
        }
        if cancel.isCancelled {
            throw SpecializationError(.cancelled, "request cancelled")
        }
        // The smallest subnet met every budget above, so a strategy that found nothing (a budget that only a
        // handful of subnets meet) still gets a feasible answer: the smallest, reported as a fallback.
        let found = outcome.best?.canonical(maxDepth: space.maxDepth)
        let best = found ?? smallest.canonical(maxDepth: space.maxDepth)
        let usedStrategy = found == nil ? "\(strategy.name) (fallback: smallest)" : strategy.name
        let costs = space.costs(for: best)
        let cost = try targetCost(target, space: space, arch: best)
        for budget in request.budgets where Self.measure(budget.kind, costs: costs, target: cost) > budget.value {
            throw SpecializationError(
                .pluginFailed,
                "strategy \(strategy.name) returned \(best.json), which exceeds \(budget.kind) ≤ "
                    + "\(Self.format(budget.value)) "
                    + "(\(Self.format(Self.measure(budget.kind, costs: costs, target: cost))))"
            )
        }
        return Specialization(
            model: model, arch: best, digest: best.digest(maxDepth: space.maxDepth),
            predictedAccuracy: model.predictor?.predict(best) ?? .nan, costs: costs, targetCost: cost,
            strategy: usedStrategy, cached: false, evaluations: outcome.evaluations,
            searchMilliseconds: outcome.milliseconds)
    }

    func targetCost(_ target: CostModel, space: SearchSpace, arch: ArchConfig) throws -> TargetCost {
        do {
            return try target.cost(of: space.layers(for: arch))
        } catch {
            throw SpecializationError(.pluginFailed, "target \(target.name) failed: \(error)")
        }
    }

    /// Scores candidates with the predictor (or, without one, a MACs-based proxy that prefers larger subnets)
    /// and the target; stops the search at the deadline or on cancellation.
    private func scorer(
        model: LoadedModel, target: CostModel, deadline: Double, cancel: CancelToken
    )
        -> CandidateScorer
    {
        let space = model.space
        let largestMACs = Double(space.costs(for: space.largest).macs)
        return { archs in
            if cancel.isCancelled || monotonicSeconds() > deadline {
                return nil
            }
            let costs = archs.map { space.costs(for: $0) }
            let accuracy = model.predictor?.predict(archs) ?? costs.map { Double($0.macs) / largestMACs }
            var scores: [CandidateScore] = []
            scores.reserveCapacity(archs.count)
            for (i, arch) in archs.enumerated() {
                guard let cost = try? target.cost(of: space.layers(for: arch)) else {
                    return nil
                }
                scores.append(CandidateScore(accuracy: accuracy[i], costs: costs[i], target: cost))
            }
            return scores
        }
    }

    static func archiveKey(model: LoadedModel, target: CostModel) -> String {
        "\(model.name)#\(model.generation)|\(target.name)|\(target.revision)"
    }

    /// Builds the Pareto archives of every loaded model on the named targets in the background (the ones not
    /// built yet), with the default strategy; drops archives of models and targets that are gone or changed.
    public func warmArchives(targets names: [String]) {
        guard let strategy = strategies(defaultStrategy) else { return }
        let resolved = names.compactMap { targets($0) }
        var live = Set<String>()
        for model in store.all {
            for target in resolved {
                live.insert(Self.archiveKey(model: model, target: target))
                warmArchive(model: model, target: target, strategy: strategy)
            }
        }
        archives.prune { live.contains($0) }
    }

    /// Archive counts for `stats`.
    public var archiveCounts: (ready: Int, building: Int, failed: Int) { archives.counts }

    /// Subnets whose statistics are still to be prepared after archives were built.
    public var prewarmPending: Int { archives.prewarmPending.load(ordering: .relaxed) }

    /// Subnets built from prepared statistics so far.
    public var preparedStatisticsHits: Int { preparedHits.load(ordering: .relaxed) }

    /// Waits until no archive is being built (benchmarks and tests); true when idle within `timeout` seconds.
    public func waitForArchives(timeout: Double) -> Bool { archives.waitUntilIdle(timeout: timeout) }

    private func warmArchive(model: LoadedModel, target: CostModel, strategy: ArchitectureSearch) {
        guard archiveRungSeconds > 0 else { return }
        archives.schedule(Self.archiveKey(model: model, target: target)) { [self] in
            try buildArchive(model: model, target: target, strategy: strategy)
        } then: { [self] archive in
            prewarm(archive, model: model)
        }
    }

    /// Answers prepared per budget kind after an archive is built (evenly spread over the archive's answers when
    /// there are more). The shipped model's archives have 87–124 answers per kind, so all are prepared: with 48,
    /// a third of them were, and the median of 20 new MACs budgets came out at 14 or 160 ms from run to run,
    /// depending on which answers a run's archive held (about 280 s of background work instead of 46 s).
    static let prewarmedPerKind = 160

    /// Recalibrates, ahead of any request, the subnets the archive answers for single latency or MACs budgets
    /// (at most `prewarmedPerKind` of each) and keeps their statistics, so that a first request for a new
    /// budget needs no forward passes. Runs on the archives' background queue.
    func prewarm(_ archive: ParetoArchive, model: LoadedModel) {
        var chosen: [(arch: ArchConfig, key: String)] = []
        var seen = Set<String>()
        for kind in [BudgetKind.latencyMs, .macs] {
            let answers = archive.answers(for: kind)
            let step = max(1, (answers.count + Self.prewarmedPerKind - 1) / Self.prewarmedPerKind)
            for point in stride(from: 0, to: answers.count, by: step).map({ answers[$0] }) {
                let key = Self.subnetKey(model: model, digest: point.arch.digest(maxDepth: model.space.maxDepth))
                if seen.insert(key).inserted { chosen.append((point.arch, key)) }
            }
        }
        archives.prewarmPending.add(chosen.count, ordering: .relaxed)
        for (arch, key) in chosen {
            if statistics.value(key) == nil,
                let subnet = try? model.subnet(arch, calibrationLimit: calibrationLimit)
            {
                statistics.store(key, Self.runningStatistics(of: subnet))
            }
            archives.prewarmPending.subtract(1, ordering: .relaxed)
        }
    }

    /// Latency rungs between the smallest and the largest subnet on the target.
    static let archiveRungs = 12
    /// MACs rungs (the other budgets mostly follow MACs).
    static let archiveMACsRungs = 6

    /// Runs the strategy once per rung of a ladder of latency and MACs budgets and keeps every candidate it
    /// scored, plus the largest and smallest subnets: the non-dominated ones form the archive.
    func buildArchive(model: LoadedModel, target: CostModel, strategy: ArchitectureSearch) throws -> ParetoArchive {
        let started = monotonicSeconds()
        let space = model.space
        let recorded = Mutex<[ArchivePoint]>([])
        let never = CancelToken()
        func scored(deadline: Double) -> CandidateScorer {
            let base = scorer(model: model, target: target, deadline: deadline, cancel: never)
            let maxDepth = space.maxDepth
            return { archs in
                guard let scores = base(archs) else { return nil }
                recorded.withLock { points in
                    for (arch, score) in zip(archs, scores) {
                        points.append(ArchivePoint(arch: arch.canonical(maxDepth: maxDepth), score: score))
                    }
                }
                return scores
            }
        }
        guard let ends = scored(deadline: .infinity)([space.smallest, space.largest]), ends.count == 2 else {
            throw SpecializationError(.pluginFailed, "target \(target.name) could not score the smallest subnet")
        }
        var ladders: [Budget] = []
        let (low, high) = (ends[0].target.latencyMs, ends[1].target.latencyMs)
        if low > 0, high > low {
            for rung in 1...Self.archiveRungs {
                ladders.append(Budget(.latencyMs, low * pow(high / low, Double(rung) / Double(Self.archiveRungs))))
            }
        }
        let (fewest, most) = (Double(ends[0].costs.macs), Double(ends[1].costs.macs))
        for rung in 1...Self.archiveMACsRungs {
            ladders.append(Budget(.macs, fewest * pow(most / fewest, Double(rung) / Double(Self.archiveMACsRungs))))
        }
        for (index, budget) in ladders.enumerated() {
            let deadline = monotonicSeconds() + archiveRungSeconds
            _ = try strategy.search(
                space: space, budgets: [budget], deadline: deadline, seed: 0xA4C1 + UInt64(index),
                score: scored(deadline: deadline))
        }
        let candidates = recorded.withLock { $0 }
        return ParetoArchive(
            candidates: candidates, evaluations: candidates.count,
            milliseconds: (monotonicSeconds() - started) * 1000)
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.4g", value)
    }
}

/// One point of an accuracy-versus-latency front.
public struct FrontPoint: Sendable {
    /// Canonical architecture.
    public var arch: ArchConfig
    /// Predicted accuracy in [0, 1].
    public var accuracy: Double
    /// Exact costs.
    public var costs: SubnetCosts
    /// Latency on the target, ms.
    public var latencyMs: Double
}

extension Specializer {
    /// The non-dominated subnets (higher accuracy, lower latency), sorted by latency: from the Pareto archive once
    /// it is built, until then among `samples` random ones plus the largest and smallest. Deterministic for a
    /// model and target.
    public func front(model name: String, target targetName: String, samples: Int = 3000) throws -> [FrontPoint] {
        guard let model = store.model(name) else {
            throw SpecializationError(.unknownModel, "unknown model \"\(name)\"; `supernetctl models` lists them")
        }
        guard let target = targets(targetName) else {
            throw SpecializationError(
                .unknownTarget, "unknown target \"\(targetName)\"; `supernetctl targets` lists them")
        }
        if let archive = archives.archive(Self.archiveKey(model: model, target: target)) {
            return archive.latencyFront.map {
                FrontPoint(
                    arch: $0.arch, accuracy: model.predictor == nil ? .nan : $0.score.accuracy, costs: $0.score.costs,
                    latencyMs: $0.score.target.latencyMs)
            }
        }
        let key = "\(model.name)#\(model.generation)|\(target.name)|\(target.revision)|\(samples)"
        if let cached = fronts.value(key) {
            return cached
        }
        let space = model.space
        var random = SeededRandom(seed: 0xF207)
        let archs = [space.largest, space.smallest] + (0..<samples).map { _ in space.sample(&random) }
        let canonical = archs.map { $0.canonical(maxDepth: space.maxDepth) }
        let costs = canonical.map { space.costs(for: $0) }
        let largestMACs = Double(space.costs(for: space.largest).macs)
        let accuracy = model.predictor?.predict(canonical) ?? costs.map { Double($0.macs) / largestMACs }
        var points: [FrontPoint] = []
        for (i, arch) in canonical.enumerated() {
            let latency = try targetCost(target, space: space, arch: arch).latencyMs
            points.append(FrontPoint(arch: arch, accuracy: accuracy[i], costs: costs[i], latencyMs: latency))
        }
        points.sort { $0.latencyMs < $1.latencyMs || ($0.latencyMs == $1.latencyMs && $0.accuracy > $1.accuracy) }
        var front: [FrontPoint] = []
        for point in points where point.accuracy > (front.last?.accuracy ?? -.infinity) {
            front.append(point)
        }
        if model.predictor == nil {
            // The ordering used a MACs proxy; it is not an accuracy, so none is reported.
            front = front.map { FrontPoint(arch: $0.arch, accuracy: .nan, costs: $0.costs, latencyMs: $0.latencyMs) }
        }
        fronts.store(key, front)
        return front
    }
}
