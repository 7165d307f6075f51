import Foundation
import PluginHost
import Supernet
import SystemdSupport
import Synchronization
import Wire

/// The daemon's plugin catalog over a `PluginRegistry`: name lookup for requests (each call holds a lease, so an
/// unload waits for it), the admin operations, and the conversions between the model's types and the ABI's.
public final class PluginCatalogHost: PluginCatalog, PluginRescanning {
    let registry: PluginRegistry
    let stateDirectory: String
    /// Recalibrations per target name: a target's revision changes with each.
    private let calibrations = Mutex<[String: Int]>([:])

    /// Loads every plugin in the configured directories; returns the catalog and the refusals.
    public static func make(_ configuration: DaemonConfiguration) throws -> (PluginCatalog & PluginRescanning, [String])
    {
        let loader = try PluginLoader(directories: configuration.plugins)
        let catalog = PluginCatalogHost(
            registry: PluginRegistry(loader: loader),
            stateDirectory: configuration.stateDirectory)
        return (catalog, catalog.rescan())
    }

    init(registry: PluginRegistry, stateDirectory: String) {
        self.registry = registry
        self.stateDirectory = stateDirectory
    }

    public func rescan() -> [String] {
        registry.scanDirectories().failures.map { "\($0.path): \($0.error)" }
    }

    public func target(_ name: String) -> CostModel? {
        guard let lease = try? registry.acquire(name) else { return nil }
        defer { lease.release() }
        guard lease.plugin.target != nil else { return nil }
        let listing = registry.list().first { $0.name == name }
        let calibrated = calibrations.withLock { $0[name] ?? 0 }
        return TargetPlugin(
            registry: registry, name: name,
            revision: "\(listing?.path ?? "?")|\(listing?.version ?? "?")|calibrated \(calibrated)")
    }

    public func strategy(_ name: String) -> ArchitectureSearch? {
        guard let lease = try? registry.acquire(name) else { return nil }
        defer { lease.release() }
        return lease.plugin.strategy == nil ? nil : StrategyPlugin(registry: registry, name: name)
    }

    public func targetDescriptors() -> [PluginDescriptor] { descriptors(.target) }

    public func strategyDescriptors() -> [PluginDescriptor] { descriptors(.strategy) }

    private func descriptors(_ kind: PluginHost.PluginKind) -> [PluginDescriptor] {
        registry.list().filter { $0.kind == kind && $0.state == .loaded }.map { listing in
            let summary =
                (try? registry.acquire(listing.name)).map { lease in
                    defer { lease.release() }
                    return lease.plugin.info.summary
                } ?? ""
            return PluginDescriptor(
                name: listing.name, pluginFile: (listing.path as NSString).lastPathComponent,
                version: listing.version, summary: summary)
        }.sorted { $0.name < $1.name }
    }

    public func plugins() -> [Wire.PluginInfo] {
        registry.list().map { listing in
            Wire.PluginInfo(
                name: listing.name, kind: listing.kind == .target ? .target : .strategy,
                version: listing.version, state: Self.state(listing.state), path: listing.path)
        }
    }

    private static func state(_ state: PluginHost.PluginState) -> Wire.PluginState {
        switch state {
        case .loaded: return .loaded
        case .retiring: return .retiring
        case .retired: return .retired
        }
    }

    public func load(file: String) throws -> Wire.PluginInfo {
        guard !file.contains("/") || registry.loader.directories.contains(where: { file.hasPrefix($0 + "/") }) else {
            throw SpecializationError(
                .permissionDenied,
                "plugins load only from the configured plugin directories "
                    + "(\(registry.loader.directories.joined(separator: ", "))); give a file name")
        }
        let candidates = file.contains("/") ? [file] : registry.loader.directories.map { "\($0)/\(file)" }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw SpecializationError(
                .invalidArgument,
                "no plugin file \(file) in "
                    + registry.loader.directories.joined(separator: ", "))
        }
        let info = try registry.load(path: path)
        return Wire.PluginInfo(
            name: info.name, kind: info.kind == .target ? .target : .strategy,
            version: info.version, state: .loaded, path: info.path)
    }

    public func unload(name: String) throws {
        guard registry.state(of: name) != nil else {
            throw SpecializationError(
                .invalidArgument, "no plugin named \(name); `supernetctl plugins list` shows them")
        }
        if try registry.unload(name) == .retiring {
            _ = try registry.waitUntilRetired(name, timeout: .seconds(30))
        }
    }

    /// Passes a JSON configuration to a strategy (e.g. its evaluation budget, for benchmarks).
    public func configure(strategy name: String, json: String) throws {
        let lease = try registry.acquire(name)
        defer { lease.release() }
        guard let strategy = lease.plugin.strategy else {
            throw SpecializationError(.unknownStrategy, "\(name) is not a strategy")
        }
        try strategy.configure(json: json)
    }

    public func calibrate(target: String) throws {
        let lease = try registry.acquire(target)
        defer { lease.release() }
        guard let plugin = lease.plugin.target, plugin.hasCalibrate else {
            throw SpecializationError(.invalidArgument, "target \(target) has nothing to calibrate")
        }
        try plugin.calibrate(stateDirectory: stateDirectory)
        calibrations.withLock { $0[target, default: 0] += 1 }
    }
}

/// A hardware-target plugin as a `CostModel`; every call holds a lease.
struct TargetPlugin: CostModel {
    let registry: PluginRegistry
    let name: String
    let revision: String

    func cost(of layers: [LayerShape]) throws -> TargetCost {
        let lease = try registry.acquire(name)
        defer { lease.release() }
        guard let target = lease.plugin.target else {
            throw SpecializationError(.unknownTarget, "\(name) is not a target")
        }
        let cost = try target.cost(of: layers.map(Self.layer))
        return TargetCost(
            latencyMs: cost.latencyMilliseconds, energyMJ: cost.energyMillijoules,
            peakMemoryBytes: cost.peakMemoryBytes)
    }

    static func layer(_ shape: LayerShape) -> NetworkLayer {
        let op: NetworkLayer.Op
        switch shape.operation {
        case .convolution: op = .conv
        case .pointwise: op = .pointwise
        case .depthwise: op = .depthwise
        case .squeezeExcite: op = .squeezeExcite
        case .pool: op = .pool
        case .linear: op = .linear
        }
        let activation: NetworkLayer.Activation
        switch shape.activation {
        case .none: activation = .none
        case .relu: activation = .relu
        case .hswish: activation = .hswish
        case .hsigmoid: activation = .hsigmoid
        }
        return NetworkLayer(
            op: op, inputChannels: shape.inputChannels, outputChannels: shape.outputChannels,
            kernel: shape.kernel, stride: shape.stride, inputSize: shape.inputSize,
            outputSize: shape.outputSize, activation: activation, hidden: shape.hidden)
    }
}

/// A search-strategy plugin as an `ArchitectureSearch`; the call holds a lease for its whole duration.
struct StrategyPlugin: ArchitectureSearch {
    let registry: PluginRegistry
    let name: String

    func search(
        space: Supernet.SearchSpace, budgets: [Wire.Budget], deadline: Double, seed: UInt64,
        score: @escaping CandidateScorer
    ) throws -> SearchOutcome {
        let lease = try registry.acquire(name)
        defer { lease.release() }
        guard let strategy = lease.plugin.strategy else {
            throw SpecializationError(.unknownStrategy, "\(name) is not a strategy")
        }
        let start = monotonicSeconds()
        let stopped = Mutex(false)
        let remaining = max(0, deadline - start)
        let result = try strategy.search(
            space: Self.space(space), budgets: budgets.map(Self.budget),
            deadline: .milliseconds(Int64(remaining * 1000)), seed: seed,
            isCancelled: { stopped.withLock { $0 } || monotonicSeconds() > deadline }
        ) { archs in
            let configs = archs.map { Self.config($0, space: space) }
            guard let scores = score(configs) else {
                stopped.withLock { $0 = true }
                return configs.map { _ in
                    Evaluation(accuracy: .nan, cost: HardwareCost(latencyMilliseconds: .nan, macs: .nan, params: .nan))
                }
            }
            return scores.map { score in
                Evaluation(
                    accuracy: score.accuracy,
                    cost: HardwareCost(
                        latencyMilliseconds: score.target.latencyMs, energyMillijoules: score.target.energyMJ,
                        peakMemoryBytes: Double(score.costs.peakActivationBytes), macs: Double(score.costs.macs),
                        params: Double(score.costs.parameters)))
            }
        }
        return SearchOutcome(
            best: result.best.map { Self.config($0, space: space) },
            evaluations: result.stats.evaluations,
            milliseconds: (monotonicSeconds() - start) * 1000)
    }

    static func space(_ space: Supernet.SearchSpace) -> PluginHost.SearchSpace {
        PluginHost.SearchSpace(
            stages: space.stages.count, maxDepth: space.maxDepth, depths: space.depths,
            kernels: space.kernels, expandRatios: space.expandRatios,
            resolutions: space.resolutions)
    }

    static func budget(_ budget: Wire.Budget) -> PluginHost.Budget {
        let kind: PluginHost.Budget.Kind
        switch budget.kind {
        case .latencyMs: kind = .latencyMilliseconds
        case .macs: kind = .macs
        case .params: kind = .params
        case .memoryKB: kind = .memoryKilobytes
        }
        return PluginHost.Budget(kind, budget.value)
    }

    /// The ABI's per-stage lists as the model's flat slot arrays (inactive slots 0).
    static func config(_ arch: SubnetArch, space: Supernet.SearchSpace) -> ArchConfig {
        let slots = space.stages.count * space.maxDepth
        var kernels = [Int](repeating: 0, count: slots)
        var ratios = [Int](repeating: 0, count: slots)
        for stage in 0..<min(arch.depths.count, space.stages.count) {
            for block in 0..<min(arch.kernels[stage].count, space.maxDepth) {
                kernels[stage * space.maxDepth + block] = arch.kernels[stage][block]
                ratios[stage * space.maxDepth + block] = arch.expandRatios[stage][block]
            }
        }
        return ArchConfig(resolution: arch.resolution, depths: arch.depths, kernels: kernels, expandRatios: ratios)
    }
}
