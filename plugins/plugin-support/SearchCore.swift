// Search plumbing shared by the strategies. The random, reinforce and relaxed strategies use all of it: the space as
// categorical decisions, the budgets, and scoring through the host's evaluate callback under an evaluation budget,
// the deadline and the host's stop signal, with a cache so that an architecture is sent to the host at most once per
// search. The evolution strategy scores on its own and uses only the space, the budget checks and the failures.
import SupernetPluginABI

/// A search the strategy gives up, with the ABI status to return and a message for the host.
public struct SearchFailure: Error {
    /// A negative supernet_status value.
    public let status: Int32
    /// What went wrong.
    public let message: String

    /// Creates a failure.
    public init(status: Int32, message: String) {
        self.status = status
        self.message = message
    }
}

/// The space as a list of categorical decisions, each a choice index into one of the space's choice lists.
///
/// Decisions, in order: the resolution; one depth per stage; a kernel for every stage × maxDepth block slot; an
/// expansion ratio for every slot. A genome (`[Int]`, one choice index per decision) is kept canonical: the kernel
/// and ratio decisions of slots past their stage's depth are 0, so equal architectures have equal genomes.
public struct DecisionSpace {
    /// Searchable stages.
    public let stages: Int
    /// Block slots per stage.
    public let maxDepth: Int
    /// Allowed depths per stage.
    public let depths: [UInt32]
    /// Allowed depthwise kernel sides.
    public let kernels: [UInt32]
    /// Allowed expansion ratios.
    public let expandRatios: [UInt32]
    /// Allowed input resolutions.
    public let resolutions: [UInt32]
    /// Choices of each decision.
    public let choiceCounts: [Int]

    /// Reads and checks the C space.
    public init(_ space: supernet_search_space) throws(SearchFailure) {
        func refuse(_ what: String) -> SearchFailure {
            SearchFailure(status: SUPERNET_ERROR_INVALID_ARGUMENT.rawValue, message: "search space: \(what)")
        }
        func read(_ pointer: UnsafePointer<UInt32>?, _ count: Int, _ name: String) throws(SearchFailure) -> [UInt32] {
            guard let pointer, count > 0 else {
                throw refuse("\(name) needs at least one choice")
            }
            let values = Array(UnsafeBufferPointer(start: pointer, count: count))
            guard values.allSatisfy({ $0 > 0 }) else {
                throw refuse("\(name) choices must be positive")
            }
            return values
        }

        guard space.stages >= 1, space.stages <= UInt32(SUPERNET_MAX_STAGES) else {
            throw refuse("stages must lie in 1...\(SUPERNET_MAX_STAGES), got \(space.stages)")
        }
        guard space.max_depth >= 1, space.max_depth <= UInt32(SUPERNET_MAX_DEPTH) else {
            throw refuse("max_depth must lie in 1...\(SUPERNET_MAX_DEPTH), got \(space.max_depth)")
        }
        stages = Int(space.stages)
        maxDepth = Int(space.max_depth)
        depths = try read(space.depths, space.depth_count, "depths")
        guard depths.allSatisfy({ $0 <= space.max_depth }) else {
            throw refuse("every depth must be at most max_depth \(space.max_depth)")
        }
        kernels = try read(space.kernels, space.kernel_count, "kernels")
        expandRatios = try read(space.expand_ratios, space.expand_ratio_count, "expand_ratios")
        resolutions = try read(space.resolutions, space.resolution_count, "resolutions")
        let slots = stages * maxDepth
        choiceCounts =
            [resolutions.count] + Array(repeating: depths.count, count: stages)
            + Array(repeating: kernels.count, count: slots) + Array(repeating: expandRatios.count, count: slots)
    }

    /// Number of decisions.
    public var decisionCount: Int { choiceCounts.count }

    /// Block slots: stages × maxDepth.
    public var slotCount: Int { stages * maxDepth }

    /// The decision that picks the resolution.
    public var resolutionDecision: Int { 0 }

    /// The decision that picks the depth of `stage`.
    public func depthDecision(_ stage: Int) -> Int {
        1 + stage
    }

    /// The decision that picks the kernel of block slot `slot` (stage * maxDepth + block).
    public func kernelDecision(_ slot: Int) -> Int {
        1 + stages + slot
    }

    /// The decision that picks the expansion ratio of block slot `slot`.
    public func expandDecision(_ slot: Int) -> Int {
        1 + stages + slotCount + slot
    }

    /// The stage a decision belongs to and, for a kernel or ratio decision, its block; nil for the resolution.
    public func owner(of decision: Int) -> (stage: Int, block: Int?)? {
        if decision == resolutionDecision {
            return nil
        }
        if decision <= stages {
            return (decision - 1, nil)
        }
        let slot = (decision - 1 - stages) % slotCount
        return (slot / maxDepth, slot % maxDepth)
    }

    /// Whether block `block` of `stage` is in use in `genes`.
    public func isActive(_ genes: [Int], stage: Int, block: Int) -> Bool {
        Int(depths[genes[depthDecision(stage)]]) > block
    }

    /// Whether `decision` shapes the architecture of `genes` (the kernel and ratio of unused slots do not).
    public func matters(_ decision: Int, in genes: [Int]) -> Bool {
        guard let owner = owner(of: decision), let block = owner.block else {
            return true
        }
        return isActive(genes, stage: owner.stage, block: block)
    }

    /// `genes` with the decisions of unused slots set to 0.
    public func canonical(_ genes: [Int]) -> [Int] {
        var result = genes
        for stage in 0..<stages {
            for block in 0..<maxDepth where !isActive(genes, stage: stage, block: block) {
                result[kernelDecision(stage * maxDepth + block)] = 0
                result[expandDecision(stage * maxDepth + block)] = 0
            }
        }
        return result
    }

    /// A canonical genome drawn with every decision uniform over its choices.
    public func uniformGenes(using random: inout SeededGenerator) -> [Int] {
        canonical(choiceCounts.map { random.below($0) })
    }

    /// The architecture a genome stands for, with unused entries 0.
    public func arch(of genes: [Int]) -> supernet_arch {
        var arch = supernet_arch()
        arch.resolution = resolutions[genes[resolutionDecision]]
        arch.stages = UInt32(stages)
        let stride = Int(SUPERNET_MAX_DEPTH)
        for stage in 0..<stages {
            let depth = depths[genes[depthDecision(stage)]]
            withUnsafeMutableBytes(of: &arch.depths) {
                $0.storeBytes(of: depth, toByteOffset: stage * 4, as: UInt32.self)
            }
            for block in 0..<Int(depth) {
                let slot = stage * maxDepth + block
                let offset = (stage * stride + block) * 4
                let kernel = kernels[genes[kernelDecision(slot)]]
                let ratio = expandRatios[genes[expandDecision(slot)]]
                withUnsafeMutableBytes(of: &arch.kernels) {
                    $0.storeBytes(of: kernel, toByteOffset: offset, as: UInt32.self)
                }
                withUnsafeMutableBytes(of: &arch.expand_ratios) {
                    $0.storeBytes(of: ratio, toByteOffset: offset, as: UInt32.self)
                }
            }
        }
        return arch
    }
}

/// The budgets of a request, checked.
public struct BudgetSet {
    /// The budgets in the host's order.
    public let budgets: [supernet_budget]

    /// Checks kinds and values.
    public init(_ budgets: [supernet_budget]) throws(SearchFailure) {
        for budget in budgets {
            guard budget.kind >= SUPERNET_BUDGET_LATENCY_MS.rawValue, budget.kind <= SUPERNET_BUDGET_MEMORY_KB.rawValue
            else {
                throw SearchFailure(
                    status: SUPERNET_ERROR_UNSUPPORTED.rawValue, message: "unknown budget kind \(budget.kind)")
            }
            guard !budget.value.isNaN else {
                throw SearchFailure(status: SUPERNET_ERROR_INVALID_ARGUMENT.rawValue, message: "a budget value is NaN")
            }
        }
        self.budgets = budgets
    }

    /// Number of budgets.
    public var count: Int { budgets.count }

    /// The figure each budget limits, in the budget's unit (memory in KiB), in budget order.
    public func figures(of cost: supernet_cost) -> [Double] {
        budgets.map { budget in
            switch budget.kind {
            case SUPERNET_BUDGET_LATENCY_MS.rawValue: cost.latency_ms
            case SUPERNET_BUDGET_MACS.rawValue: cost.macs
            case SUPERNET_BUDGET_PARAMS.rawValue: cost.params
            default: cost.peak_memory_bytes / 1024
            }
        }
    }

    /// Whether every figure is at most its limit; an unknown (NaN) figure meets none.
    public func isMet(_ figures: [Double]) -> Bool {
        zip(budgets, figures).allSatisfy { $1 <= $0.value }
    }

    /// The figure as a share of its limit (1 = exactly at the limit). A limit at or below 0 is taken as the
    /// smallest positive double, so any positive figure is far over it; NaN stays NaN.
    public func relative(_ figure: Double, _ index: Int) -> Double {
        figure / max(budgets[index].value, .leastNormalMagnitude)
    }

    /// The summed relative excess Σ_b max(0, figure_b / limit_b − 1): 0 when feasible, 0.1 for 10 % over one
    /// budget. An unknown figure counts as 1 (a whole budget missed).
    public func excess(_ figures: [Double]) -> Double {
        var total = 0.0
        for index in figures.indices {
            let share = relative(figures[index], index)
            total += share.isNaN ? 1 : max(0, share - 1)
        }
        return total
    }
}

/// The host's answer for one architecture.
public struct Outcome {
    /// Predicted accuracy, finite.
    public let accuracy: Double
    /// The figures the budgets limit, in budget order.
    public let figures: [Double]
    /// Whether every budget is met.
    public let feasible: Bool
}

/// Sends genomes to the host's evaluate callback and remembers the answers and the best feasible one.
///
/// It stops sending once the evaluation budget is spent, the deadline (on the host's clock) has passed, or the
/// host answered SUPERNET_EVALUATE_STOP; `isDone` then says so and `score` answers only from the cache.
public struct Scorer {
    /// The decisions.
    public let space: DecisionSpace
    /// The budgets.
    public let budgets: BudgetSet
    /// Most architectures sent to the host.
    public let evaluationLimit: Int
    private let deadline: Double
    private let context: UnsafeMutableRawPointer?
    private let evaluate: supernet_evaluate_fn
    private let now: supernet_now_ms_fn
    private var cache: [[Int]: Outcome] = [:]

    /// Architectures sent to the host, counted once per batch entry.
    public private(set) var evaluations = 0
    /// Set once the host asked to stop or the deadline passed.
    public private(set) var stopped = false
    /// The most accurate feasible genome seen (the first of equals) and its accuracy.
    public private(set) var best: (genes: [Int], accuracy: Double)?

    /// Most genomes kept in the cache; past it new answers are not remembered (a repeat is then sent again).
    public static let cacheCapacity = 1 << 18

    /// Prepares scoring; needs both callbacks.
    public init(
        space: DecisionSpace, budgets: BudgetSet, evaluationLimit: Int, deadline: Double,
        callbacks: supernet_search_callbacks
    ) throws(SearchFailure) {
        guard let evaluate = callbacks.evaluate, let now = callbacks.now_ms else {
            throw SearchFailure(
                status: SUPERNET_ERROR_INVALID_ARGUMENT.rawValue, message: "callbacks evaluate and now_ms are required")
        }
        self.space = space
        self.budgets = budgets
        self.evaluationLimit = evaluationLimit
        self.deadline = deadline
        self.context = callbacks.context
        self.evaluate = evaluate
        self.now = now
    }

    /// Evaluations left in the budget.
    public var remaining: Int { max(0, evaluationLimit - evaluations) }

    /// Whether nothing more will be sent: the budget is spent, or the host or the deadline stopped the search.
    public var isDone: Bool { stopped || remaining == 0 }

    /// Whether the deadline has passed; sets `stopped` when it has. For the strategies' own long computations.
    public mutating func checkDeadline() -> Bool {
        if !stopped, now(context) >= deadline {
            stopped = true
        }
        return stopped
    }

    /// The cached answer for a canonical genome.
    public func cached(_ genes: [Int]) -> Outcome? {
        cache[genes]
    }

    /// Scores canonical genomes: cached ones from the cache, the others in one call to the host (each distinct
    /// genome once, as many as the budget allows). nil marks a genome the host did not score (budget spent,
    /// stopped, or NaN accuracy after a stop). Throws when the host's callback fails.
    public mutating func score(_ batch: [[Int]]) throws(SearchFailure) -> [Outcome?] {
        var answers: [Outcome?] = batch.map { cache[$0] }
        var fresh: [[Int]] = []
        var freshIndex: [[Int]: Int] = [:]
        for (index, genes) in batch.enumerated() where answers[index] == nil && freshIndex[genes] == nil {
            guard fresh.count < remaining else {
                break
            }
            freshIndex[genes] = fresh.count
            fresh.append(genes)
        }
        guard !fresh.isEmpty, !checkDeadline() else {
            return answers
        }

        let archs = fresh.map { space.arch(of: $0) }
        var accuracy = [Double](repeating: .nan, count: fresh.count)
        var costs = [supernet_cost](repeating: supernet_cost(), count: fresh.count)
        let status = archs.withUnsafeBufferPointer { archs in
            accuracy.withUnsafeMutableBufferPointer { accuracy in
                costs.withUnsafeMutableBufferPointer { costs in
                    evaluate(context, archs.baseAddress, archs.count, accuracy.baseAddress, costs.baseAddress)
                }
            }
        }
        evaluations += fresh.count
        if status < 0 {
            throw SearchFailure(
                status: SUPERNET_ERROR_CALLBACK.rawValue, message: "the host's evaluate callback failed with \(status)")
        }
        if status == SUPERNET_EVALUATE_STOP.rawValue {
            stopped = true
        }

        var outcomes: [Outcome?] = []
        outcomes.reserveCapacity(fresh.count)
        for index in fresh.indices {
            guard accuracy[index].isFinite else {
                outcomes.append(nil)
                continue
            }
            let figures = budgets.figures(of: costs[index])
            let outcome = Outcome(accuracy: accuracy[index], figures: figures, feasible: budgets.isMet(figures))
            outcomes.append(outcome)
            if cache.count < Self.cacheCapacity {
                cache[fresh[index]] = outcome
            }
            if outcome.feasible, best.map({ outcome.accuracy > $0.accuracy }) ?? true {
                best = (fresh[index], outcome.accuracy)
            }
        }
        for index in batch.indices where answers[index] == nil {
            answers[index] = freshIndex[batch[index]].flatMap { outcomes[$0] }
        }
        return answers
    }
}

/// Runs one search behind the ABI's search function: checks the arguments, builds the scorer, calls `body` (which
/// returns the iterations it completed), writes the stats and the best architecture, and turns every failure into a
/// status and a message prefixed with `name`.
public func performSearch(
    name: String, evaluationLimit: Int, space: UnsafePointer<supernet_search_space>?,
    budgets: UnsafePointer<supernet_budget>?, budgetCount: Int, deadline: Double,
    callbacks: UnsafePointer<supernet_search_callbacks>?, best: UnsafeMutablePointer<supernet_arch>?,
    stats: UnsafeMutablePointer<supernet_search_stats>?, errorBuffer: UnsafeMutablePointer<CChar>?, errorSize: Int,
    body: (inout Scorer) throws(SearchFailure) -> UInt64
) -> Int32 {
    guard let space, let callbacks, let best, let stats, budgetCount == 0 || budgets != nil else {
        supernet_copy_message(errorBuffer, errorSize, "\(name): search needs a space, callbacks, best and stats")
        return SUPERNET_ERROR_INVALID_ARGUMENT.rawValue
    }

    stats.pointee = supernet_search_stats()
    let clock = callbacks.pointee.now_ms
    let context = callbacks.pointee.context
    let start = clock?(context) ?? 0
    let budgetList = budgets.map { Array(UnsafeBufferPointer(start: $0, count: budgetCount)) } ?? []
    var scorer: Scorer
    var iterations: UInt64 = 0
    do throws(SearchFailure) {
        scorer = try Scorer(
            space: try DecisionSpace(space.pointee), budgets: try BudgetSet(budgetList),
            evaluationLimit: evaluationLimit, deadline: deadline, callbacks: callbacks.pointee)
        iterations = try body(&scorer)
    } catch {
        supernet_copy_message(errorBuffer, errorSize, "\(name): \(error.message)")
        return error.status
    }

    stats.pointee = supernet_search_stats(
        evaluations: UInt64(scorer.evaluations), generations: iterations,
        wall_ms: (clock?(context) ?? start) - start)
    guard let found = scorer.best else {
        let why = scorer.stopped ? "before the search was stopped" : "in \(scorer.evaluations) evaluations"
        supernet_copy_message(errorBuffer, errorSize, "\(name): no architecture meeting every budget was found \(why)")
        return SUPERNET_ERROR_INFEASIBLE.rawValue
    }
    best.pointee = scorer.space.arch(of: found.genes)
    return SUPERNET_OK.rawValue
}
