// Typed calls into a search strategy plugin, with Swift closures behind the C callbacks.
import SupernetPluginABI

/// A loaded search strategy.
///
/// @unchecked Sendable: holds an immutable copy of the plugin's function table (C function pointers into a
/// mapping that is never unloaded) and the plugin; the ABI requires search to be thread-safe.
public struct SearchStrategy: @unchecked Sendable {
    /// The plugin it comes from.
    public let plugin: LoadedPlugin
    let functions: supernet_strategy_functions

    /// Searches `space` for the most accurate architecture meeting every budget.
    ///
    /// `evaluate` scores a batch (one Evaluation per architecture, in order); what it throws ends the search
    /// with a callbackFailed error carrying it. The search is asked to stop once `deadline` has passed since the
    /// call started or `isCancelled` returns true. Both closures run on the calling thread before this returns.
    /// Returns a result whose `best` is nil when the strategy found nothing feasible.
    public func search(
        space: SearchSpace, budgets: [Budget], deadline: Duration, seed: UInt64,
        isCancelled: () -> Bool = { false }, evaluate: ([SubnetArch]) throws -> [Evaluation]
    ) throws(PluginCallError) -> SearchResult {
        let name = plugin.info.name
        if let problem = space.problem {
            throw PluginCallError(kind: .invalidArgument, plugin: name, function: "search", message: problem)
        }

        // The session holds the closures, so it must not outlive this block: only plain values leave it.
        let outcome = withoutActuallyEscaping(evaluate) { evaluate in
            withoutActuallyEscaping(isCancelled) { isCancelled in
                let session = SearchSession(
                    space: space, deadline: deadline, evaluate: evaluate, isCancelled: isCancelled)
                let call = run(space: space, budgets: budgets, seed: seed, session: session)
                return (call, session.failure, session.stopRequested)
            }
        }
        let ((status, best, stats, message), failure, stopRequested) = outcome
        if let failure {
            throw PluginCallError(
                kind: failure.kind, plugin: name, function: "search", message: failure.message,
                underlying: failure.underlying)
        }
        if status == SUPERNET_ERROR_INFEASIBLE.rawValue {
            return SearchResult(best: nil, stats: stats, stoppedByHost: stopRequested)
        }
        guard status == SUPERNET_OK.rawValue else {
            throw PluginCallError(
                kind: .pluginFailed, plugin: name, function: "search", status: status,
                message: message.isEmpty ? "no message" : message)
        }
        guard let arch = SubnetArch(best), space.contains(arch) else {
            throw PluginCallError(
                kind: .invalidResult, plugin: name, function: "search",
                message: "the strategy returned an architecture outside the search space")
        }
        return SearchResult(best: arch, stats: stats, stoppedByHost: stopRequested)
    }

    /// Calls the plugin with C copies of the arguments and the session as the callback context.
    private func run(
        space: SearchSpace, budgets: [Budget], seed: UInt64, session: SearchSession
    ) -> (Int32, supernet_arch, SearchStats, String) {
        let depths = space.depths.map(clamp32)
        let kernels = space.kernels.map(clamp32)
        let ratios = space.expandRatios.map(clamp32)
        let resolutions = space.resolutions.map(clamp32)
        let cBudgets = budgets.map(\.cValue)
        var best = supernet_arch()
        var stats = supernet_search_stats()
        var buffer = [CChar](repeating: 0, count: 1024)
        let search = functions.search!

        let status = withExtendedLifetime(session) {
            depths.withUnsafeBufferPointer { depths in
                kernels.withUnsafeBufferPointer { kernels in
                    ratios.withUnsafeBufferPointer { ratios in
                        resolutions.withUnsafeBufferPointer { resolutions in
                            cBudgets.withUnsafeBufferPointer { cBudgets in
                                var cSpace = supernet_search_space(
                                    stages: UInt32(space.stages), max_depth: UInt32(space.maxDepth),
                                    depths: depths.baseAddress, depth_count: depths.count,
                                    kernels: kernels.baseAddress, kernel_count: kernels.count,
                                    expand_ratios: ratios.baseAddress, expand_ratio_count: ratios.count,
                                    resolutions: resolutions.baseAddress, resolution_count: resolutions.count)
                                var callbacks = supernet_search_callbacks(
                                    context: Unmanaged.passUnretained(session).toOpaque(),
                                    evaluate: evaluateTrampoline, now_ms: nowTrampoline)
                                return buffer.withUnsafeMutableBufferPointer { text in
                                    search(
                                        &cSpace, cBudgets.baseAddress, cBudgets.count, session.deadlineMilliseconds,
                                        &callbacks, seed, &best, &stats, text.baseAddress, text.count)
                                }
                            }
                        }
                    }
                }
            }
        }

        buffer[buffer.count - 1] = 0
        let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let swiftStats = SearchStats(
            evaluations: Int(clamping: stats.evaluations), generations: Int(clamping: stats.generations),
            wallMilliseconds: stats.wall_ms)
        return (status, best, swiftStats, message)
    }

    /// Applies a JSON configuration; only before the plugin is shared (see LoadedPlugin.configure).
    public func configure(json: String) throws(PluginCallError) {
        try plugin.configure(json: json)
    }
}

/// The state behind one search's C callbacks: the closures, the clock, and the first failure.
/// Used only on the thread that called search, so it needs no locking.
private final class SearchSession {
    let space: SearchSpace
    let clock = ContinuousClock()
    let start: ContinuousClock.Instant
    let deadlineMilliseconds: Double
    let evaluate: ([SubnetArch]) throws -> [Evaluation]
    let isCancelled: () -> Bool
    var failure: (kind: PluginCallError.Kind, message: String, underlying: (any Error)?)?
    var stopRequested = false

    init(
        space: SearchSpace, deadline: Duration, evaluate: @escaping ([SubnetArch]) throws -> [Evaluation],
        isCancelled: @escaping () -> Bool
    ) {
        self.space = space
        start = clock.now
        deadlineMilliseconds = milliseconds(deadline)
        self.evaluate = evaluate
        self.isCancelled = isCancelled
    }

    var nowMilliseconds: Double {
        milliseconds(clock.now - start)
    }

    /// Scores a batch into the C arrays; returns an evaluate status.
    func score(
        _ archs: UnsafeBufferPointer<supernet_arch>, accuracy: UnsafeMutablePointer<Double>,
        costs: UnsafeMutablePointer<supernet_cost>
    ) -> Int32 {
        guard failure == nil else {
            return -1
        }

        var batch: [SubnetArch] = []
        batch.reserveCapacity(archs.count)
        for (index, cArch) in archs.enumerated() {
            guard let arch = SubnetArch(cArch), space.contains(arch) else {
                failure = (
                    .invalidResult,
                    "the strategy asked to evaluate architecture \(index) of a batch, "
                        + "which lies outside the search space", nil
                )
                return -1
            }
            batch.append(arch)
        }
        let answers: [Evaluation]
        do {
            answers = try evaluate(batch)
        } catch {
            failure = (.callbackFailed, "the evaluate closure threw: \(error)", error)
            return -1
        }
        guard answers.count == batch.count else {
            failure = (
                .callbackFailed,
                "the evaluate closure answered \(answers.count) of \(batch.count) "
                    + "architectures", nil
            )
            return -1
        }

        for (index, answer) in answers.enumerated() {
            accuracy[index] = answer.accuracy
            costs[index] = answer.cost.cValue
        }
        if nowMilliseconds >= deadlineMilliseconds || isCancelled() {
            stopRequested = true
            return Int32(SUPERNET_EVALUATE_STOP.rawValue)
        }
        return Int32(SUPERNET_EVALUATE_CONTINUE.rawValue)
    }
}

/// supernet_evaluate_fn: finds the session behind the context; nothing Swift crosses back into C.
private func evaluateTrampoline(
    context: UnsafeMutableRawPointer?, archs: UnsafePointer<supernet_arch>?, count: Int,
    accuracy: UnsafeMutablePointer<Double>?, costs: UnsafeMutablePointer<supernet_cost>?
) -> Int32 {
    guard let context else {
        return -1
    }
    let session = Unmanaged<SearchSession>.fromOpaque(context).takeUnretainedValue()
    guard count > 0 else {
        return Int32(SUPERNET_EVALUATE_CONTINUE.rawValue)
    }
    guard let archs, let accuracy, let costs else {
        session.failure = (.invalidResult, "the strategy called evaluate with NULL arrays", nil)
        return -1
    }
    return session.score(UnsafeBufferPointer(start: archs, count: count), accuracy: accuracy, costs: costs)
}

/// supernet_now_ms_fn: milliseconds since the search started.
private func nowTrampoline(context: UnsafeMutableRawPointer?) -> Double {
    guard let context else {
        return 0
    }
    return Unmanaged<SearchSession>.fromOpaque(context).takeUnretainedValue().nowMilliseconds
}
