// Once-for-All's evolutionary search over a weight-sharing space, scored through the host's callbacks.
import PluginSupport
import SupernetPluginABI

/// The tunable numbers of the search.
struct EvolutionSettings: FlatConfigurable {
    /// Architectures kept per generation.
    var population = 100
    /// Share of the population kept as parents.
    var parentRatio = 0.25
    /// Chance that a mutation resamples each decision.
    var mutationProbability = 0.1
    /// Share of each generation's children made by mutation; crossover makes the rest.
    var mutationRatio = 0.5
    /// Generations after the initial population.
    var generations = 500
    /// Random architectures tried at most while filling the initial population.
    var maxSampleAttempts = 5000
    /// Batches at most per generation spent replacing children that missed a budget.
    var maxResampleRounds = 20

    /// Returns these settings with the pairs of a configure call applied; all or nothing.
    func applying(_ pairs: [(key: String, value: Double)]) throws(ConfigProblem) -> EvolutionSettings {
        var result = self
        for (key, value) in pairs {
            switch key {
            case "population":
                result.population = try configInteger(key, value, atLeast: 2)
            case "generations":
                result.generations = try configInteger(key, value, atLeast: 0)
            case "max_sample_attempts":
                result.maxSampleAttempts = try configInteger(key, value, atLeast: 1)
            case "max_resample_rounds":
                result.maxResampleRounds = try configInteger(key, value, atLeast: 1)
            case "parent_ratio":
                guard value > 0, value <= 1 else {
                    throw ConfigProblem(message: "\"parent_ratio\" must lie in (0, 1], got \(value)")
                }
                result.parentRatio = value
            case "mutation_probability", "mutation_ratio":
                guard value >= 0, value <= 1 else {
                    throw ConfigProblem(message: "\"\(key)\" must lie in [0, 1], got \(value)")
                }
                if key == "mutation_ratio" {
                    result.mutationRatio = value
                } else {
                    result.mutationProbability = value
                }
            default:
                throw ConfigProblem(
                    message: "unknown key \"\(key)\"; known keys: population, parent_ratio, mutation_probability, "
                        + "mutation_ratio, generations, max_sample_attempts, max_resample_rounds")
            }
        }
        return result
    }
}

/// One feasible, scored architecture.
struct Scored {
    let genes: [Int]
    let accuracy: Double
}

/// One run of the evolutionary search.
struct EvolutionSearch {
    private let settings: EvolutionSettings
    private let space: DecisionSpace
    private let budgets: BudgetSet
    private let deadline: Double
    private let callbacks: supernet_search_callbacks
    private let evaluate: supernet_evaluate_fn
    private let now: supernet_now_ms_fn
    private var random: SeededGenerator

    /// Architectures sent to evaluate.
    private(set) var evaluations: UInt64 = 0
    /// Generations completed.
    private(set) var generations: UInt64 = 0
    /// The most accurate feasible architecture seen.
    private(set) var best: Scored?
    /// Set once the host asked to stop or the deadline passed.
    private(set) var stopped = false

    /// Checks the request and prepares a run.
    init(
        settings: EvolutionSettings, space: DecisionSpace, budgets: [supernet_budget], deadline: Double,
        callbacks: supernet_search_callbacks, seed: UInt64
    ) throws(SearchFailure) {
        guard let evaluate = callbacks.evaluate, let now = callbacks.now_ms else {
            throw SearchFailure(
                status: SUPERNET_ERROR_INVALID_ARGUMENT.rawValue, message: "callbacks evaluate and now_ms are required")
        }
        self.budgets = try BudgetSet(budgets)
        self.settings = settings
        self.space = space
        self.deadline = deadline
        self.callbacks = callbacks
        self.evaluate = evaluate
        self.now = now
        random = SeededGenerator(seed: seed)
    }

    /// Runs the search; afterwards `best` holds the result (nil when nothing feasible was found).
    mutating func run() throws(SearchFailure) {
        let size = settings.population
        var population: [Scored] = []
        var attempts = 0
        while population.count < size, attempts < settings.maxSampleAttempts, !stopped {
            let batch = (0..<min(size - population.count, settings.maxSampleAttempts - attempts)).map { _ in
                randomGenes()
            }
            attempts += batch.count
            for (genes, accuracy) in zip(batch, try score(batch)) {
                if let accuracy {
                    population.append(Scored(genes: genes, accuracy: accuracy))
                }
            }
        }
        guard !population.isEmpty else {
            return
        }

        let parentCount = max(1, Int((Double(size) * settings.parentRatio).rounded()))
        let mutationCount = Int((Double(size) * settings.mutationRatio).rounded())
        let crossoverCount = size - mutationCount
        for _ in 0..<settings.generations {
            guard !stopped, now(callbacks.context) < deadline else {
                stopped = true
                break
            }

            let parents = Array(Self.ranked(population).prefix(parentCount))
            var mutants: [Scored] = []
            var crosses: [Scored] = []
            var rounds = 0
            while mutants.count < mutationCount || crosses.count < crossoverCount,
                rounds < settings.maxResampleRounds, !stopped
            {
                let wantedMutants = mutationCount - mutants.count
                var batch = (0..<wantedMutants).map { _ in
                    mutate(parents[random.below(parents.count)].genes)
                }
                for _ in 0..<(crossoverCount - crosses.count) {
                    let first = parents[random.below(parents.count)].genes
                    let second = parents[random.below(parents.count)].genes
                    batch.append(crossover(first, second))
                }
                for (index, accuracy) in try score(batch).enumerated() {
                    guard let accuracy else {
                        continue
                    }
                    let child = Scored(genes: batch[index], accuracy: accuracy)
                    if index < wantedMutants {
                        mutants.append(child)
                    } else {
                        crosses.append(child)
                    }
                }
                rounds += 1
            }
            population = parents + mutants + crosses
            if !stopped {
                generations += 1
            }
        }
    }

    /// Most accurate first; ties keep their order, so a run depends only on its seed and the callback answers.
    private static func ranked(_ population: [Scored]) -> [Scored] {
        population.enumerated()
            .sorted {
                $0.element.accuracy > $1.element.accuracy
                    || ($0.element.accuracy == $1.element.accuracy && $0.offset < $1.offset)
            }
            .map(\.element)
    }

    private mutating func randomGenes() -> [Int] {
        space.choiceCounts.map { random.below($0) }
    }

    private mutating func mutate(_ parent: [Int]) -> [Int] {
        var child = parent
        for index in child.indices where random.unit() < settings.mutationProbability {
            child[index] = random.below(space.choiceCounts[index])
        }
        return child
    }

    private mutating func crossover(_ first: [Int], _ second: [Int]) -> [Int] {
        var child = first
        for index in child.indices where random.next() & 1 == 1 {
            child[index] = second[index]
        }
        return child
    }

    /// Scores a batch through the host: the accuracy of each feasible candidate, nil for one that misses a
    /// budget or that the host did not score. Sets `stopped` when the host asks or the deadline has passed.
    private mutating func score(_ batch: [[Int]]) throws(SearchFailure) -> [Double?] {
        guard !batch.isEmpty, !stopped, now(callbacks.context) < deadline else {
            stopped = true
            return Array(repeating: nil, count: batch.count)
        }

        let archs = batch.map { space.arch(of: $0) }
        var accuracy = [Double](repeating: .nan, count: batch.count)
        var costs = [supernet_cost](repeating: supernet_cost(), count: batch.count)
        let status = archs.withUnsafeBufferPointer { archs in
            accuracy.withUnsafeMutableBufferPointer { accuracy in
                costs.withUnsafeMutableBufferPointer { costs in
                    evaluate(callbacks.context, archs.baseAddress, archs.count, accuracy.baseAddress, costs.baseAddress)
                }
            }
        }
        evaluations += UInt64(batch.count)
        if status < 0 {
            throw SearchFailure(
                status: SUPERNET_ERROR_CALLBACK.rawValue, message: "the host's evaluate callback failed with \(status)")
        }
        if status == SUPERNET_EVALUATE_STOP.rawValue {
            stopped = true
        }

        var result: [Double?] = []
        result.reserveCapacity(batch.count)
        for index in batch.indices {
            guard accuracy[index].isFinite, budgets.isMet(budgets.figures(of: costs[index])) else {
                result.append(nil)
                continue
            }
            result.append(accuracy[index])
            if best.map({ accuracy[index] > $0.accuracy }) ?? true {
                best = Scored(genes: batch[index], accuracy: accuracy[index])
            }
        }
        return result
    }

    /// The architecture of `best`, if any.
    func bestArch() -> supernet_arch? {
        best.map { space.arch(of: $0.genes) }
    }
}
