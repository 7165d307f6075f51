// A DARTS-style continuous relaxation of the architecture choice, over the host's black-box predictor.
//
// Relaxation. Every decision d (the resolution, each stage's depth, each block slot's kernel and expansion ratio)
// gets architecture weights α_d and a distribution p_d = softmax(α_d) over its choices; the architecture becomes
// the product distribution P_α = Π_d p_d, and the objective a smooth function of α.
//
// Surrogates. DARTS differentiates the validation loss through the supernet's weights; here the only access to
// accuracy and cost is the host's evaluate callback, so the search fits its own differentiable models to the
// answers: ridge regressions Â (accuracy) and Ĉ_b (each budgeted figure divided by its limit, so 1 is the limit)
// that are linear in indicator features of the genome, products of conditions on distinct decisions (see
// FeatureSet: main effects, plus the resolution × slot kernel × slot ratio interactions that make a MACs model
// exact). Linearity in such features gives closed-form expectations: E_α[x_f] = Π over the feature's conditions of
// Σ_{c allowed} p_d(c), so E_α[Â] and E_α[Ĉ_b] are polynomials in the probabilities with exact gradients.
//
// Objective, maximized over α by Adam for `inner_steps` steps per round:
//     F(α) = E_α[Â] − λ · Σ_b max(0, E_α[Ĉ_b] − 1).
// ∂F/∂E[x_f] = w_f(Â) − λ · Σ_{b: E[Ĉ_b] > 1} w_f(Ĉ_b); the product rule gives ∂F/∂p (FeatureSet.gradient), and the
// softmax Jacobian gives ∂F/∂α_d(c) = p_d(c) · (∂F/∂p_d(c) − Σ_c' p_d(c') · ∂F/∂p_d(c')).
//
// A round: refit the surrogates on every answer so far (once at least 5 % more answers arrived since the last
// fit); take the Adam steps on α; discretize, a = argmax_c α_d(c) per decision; score a together with up to
// `batch_size` − 1 samples of P_α not scored before (each decision redrawn uniformly with probability
// `exploration`), which give the surrogates data where the search is heading; if a misses a budget,
// λ ← λ · `lambda_growth` (at most 10⁶·λ₀) and a is repaired, else λ ← max(λ₀, λ · `lambda_decay`). The search
// starts with `warmup` uniform samples and α = 0 and ends when the evaluation budget is spent, the host stops it,
// the deadline passes or `max_idle_rounds` rounds in a row bring no new genome. The answer is the most accurate
// feasible genome scored.
//
// Repair. While a misses a budget: every single-decision change of a is ranked by its predicted fall in the missed
// budgets' Ĉ per unit of predicted accuracy lost (Δcost / (Δacc + κ), κ = 0.001); the best `repair_batch` are
// scored in one call, and the one with the best measured fall in relative excess per unit of measured accuracy lost
// replaces a; it stops after `repair_steps` steps or when no change lowers the measured excess.
//
// TODO: the accuracy surrogate is linear in its features, so it cannot represent accuracy that saturates with the
// whole network's capacity; on the loose budget of the tests the search settles 0.003 below the best architecture
// a 40 000-evaluation evolution finds, while it matches it on the tight and medium budgets.
// TODO: a genome with an unknown (NaN) budgeted figure is left out of the accuracy model too, not only of that
// figure's model (they share one Gram matrix).
//
// Where this departs from DARTS: no supernet weights are trained and nothing is differentiated through a network;
// the relaxation is over a black-box predictor, through surrogate models fitted to its answers, so the quality of
// the search is bounded by how well a feature-linear model fits the predictor near the optimum. There is no
// bilevel problem (the weights are the host's, fixed). The cost enters as a penalty on the expected cost, as in
// FBNet or ProxylessNAS rather than DARTS itself, and the discretized architecture is repaired with real
// evaluations instead of being trusted.
import PluginSupport

/// The tunable numbers of the search.
struct RelaxedSettings: FlatConfigurable {
    /// Most architectures sent to the host per search.
    var evaluations = 10_000
    /// Uniform samples scored before the first fit.
    var warmup = 200
    /// Genomes scored per round: the discretized one and samples of the relaxation.
    var batchSize = 40
    /// Adam steps on α per round.
    var innerSteps = 100
    /// Adam step size on α.
    var learningRate = 0.05
    /// Starting (and smallest) budget penalty λ₀, in accuracy per unit of relative excess.
    var lambda = 1.0
    /// Factor on λ when the discretized architecture misses a budget.
    var lambdaGrowth = 2.0
    /// Factor on λ when it meets every budget (λ never drops below λ₀).
    var lambdaDecay = 0.9
    /// Chance that a sample of the relaxation redraws a decision uniformly.
    var exploration = 0.1
    /// Ridge penalty ρ of the surrogates.
    var ridge = 1.0
    /// Changes scored per repair step.
    var repairBatch = 8
    /// Most repair steps per round.
    var repairSteps = 20
    /// Rounds in a row without a new genome before the search gives up.
    var maxIdleRounds = 20

    /// Returns these settings with the pairs of a configure call applied; all or nothing.
    func applying(_ pairs: [(key: String, value: Double)]) throws(ConfigProblem) -> RelaxedSettings {
        var result = self
        for (key, value) in pairs {
            switch key {
            case "evaluations": result.evaluations = try configInteger(key, value, atLeast: 1)
            case "warmup": result.warmup = try configInteger(key, value, atLeast: 1)
            case "batch_size": result.batchSize = try configInteger(key, value, atLeast: 1)
            case "inner_steps": result.innerSteps = try configInteger(key, value, atLeast: 0)
            case "learning_rate": result.learningRate = try configNumber(key, value, in: 0...10, openBelow: true)
            case "lambda": result.lambda = try configNumber(key, value, in: 0...1e6, openBelow: true)
            case "lambda_growth": result.lambdaGrowth = try configNumber(key, value, in: 1...1e3)
            case "lambda_decay": result.lambdaDecay = try configNumber(key, value, in: 0...1, openBelow: true)
            case "exploration": result.exploration = try configNumber(key, value, in: 0...1)
            case "ridge": result.ridge = try configNumber(key, value, in: 0...1e6, openBelow: true)
            case "repair_batch": result.repairBatch = try configInteger(key, value, atLeast: 1)
            case "repair_steps": result.repairSteps = try configInteger(key, value, atLeast: 0)
            case "max_idle_rounds": result.maxIdleRounds = try configInteger(key, value, atLeast: 1)
            default:
                throw ConfigProblem(
                    message: "unknown key \"\(key)\"; known keys: evaluations, warmup, batch_size, inner_steps, "
                        + "learning_rate, lambda, lambda_growth, lambda_decay, exploration, ridge, repair_batch, "
                        + "repair_steps, max_idle_rounds")
            }
        }
        return result
    }
}

/// One run of the relaxed search.
struct RelaxedSearch {
    private let settings: RelaxedSettings
    private let space: DecisionSpace
    private let features: FeatureSet
    /// Where the weights of each decision start in `alpha`.
    private let offsets: [Int]
    /// The architecture weights α, decision after decision.
    private var alpha: [Double]
    private var optimizer: AdamAscent
    /// Target 0 is accuracy, target 1 + b the figure of budget b over its limit.
    private var models: RidgeModels
    /// Genomes already added to the models.
    private var recorded: Set<[Int]> = []
    /// Rows added since the last fit.
    private var unfitted = 0
    /// The budget penalty λ.
    private var lambda: Double
    private var random: SeededGenerator

    /// Guard κ in the repair's cost-per-accuracy ratios, in accuracy units.
    private static let accuracyFloor = 0.001

    /// Most λ / λ₀: a long search that keeps missing would otherwise double λ past the largest double.
    private static let lambdaCeiling = 1e6

    /// Uniform weights (α = 0) over `space` with `budgetCount` budgets.
    init(settings: RelaxedSettings, space: DecisionSpace, budgetCount: Int, seed: UInt64) {
        self.settings = settings
        self.space = space
        features = FeatureSet(space: space)
        var offsets: [Int] = []
        var total = 0
        for count in space.choiceCounts {
            offsets.append(total)
            total += count
        }
        self.offsets = offsets
        alpha = Array(repeating: 0, count: total)
        optimizer = AdamAscent(count: total, rate: settings.learningRate)
        models = RidgeModels(featureCount: features.count, targetCount: 1 + budgetCount, penalty: settings.ridge)
        lambda = settings.lambda
        random = SeededGenerator(seed: seed)
    }

    /// Runs the search; returns the rounds completed. The best feasible architecture is the scorer's.
    mutating func run(scorer: inout Scorer) throws(SearchFailure) -> UInt64 {
        var warm = 0
        while warm < settings.warmup, !scorer.isDone {
            let count = min(settings.batchSize, settings.warmup - warm)
            let batch = (0..<count).map { _ in space.uniformGenes(using: &random) }
            record(batch, try scorer.score(batch), scorer.budgets)
            warm += count
        }

        var rounds: UInt64 = 0
        var idle = 0
        while !scorer.isDone, idle < settings.maxIdleRounds {
            let before = scorer.evaluations
            if unfitted > 0, unfitted * 20 >= models.rows {
                if models.fit(abandon: { scorer.checkDeadline() }) {
                    unfitted = 0
                }
            }
            optimize(&scorer)
            guard !scorer.checkDeadline() else {
                break
            }

            let probabilities = relaxation()
            let discrete = discretized()
            let batch = [discrete] + fresh(settings.batchSize - 1, from: probabilities, scorer)
            let outcomes = try scorer.score(batch)
            record(batch, outcomes, scorer.budgets)

            if let outcome = outcomes[0] {
                if outcome.feasible {
                    lambda = max(settings.lambda, lambda * settings.lambdaDecay)
                } else {
                    lambda = min(settings.lambda * Self.lambdaCeiling, lambda * settings.lambdaGrowth)
                    try repair(discrete, outcome, &scorer)
                }
            }
            idle = scorer.evaluations == before ? idle + 1 : 0
            if !scorer.stopped {
                rounds += 1
            }
        }
        return rounds
    }

    /// softmax(α_d) for every decision, decision after decision.
    private func relaxation() -> [Double] {
        var probabilities = alpha
        for (decision, start) in offsets.enumerated() {
            softmax(alpha, start..<(start + space.choiceCounts[decision]), into: &probabilities)
        }
        return probabilities
    }

    /// The canonical genome taking the choice of largest weight α_d(c) in every decision (the first of equals).
    private func discretized() -> [Int] {
        space.canonical(
            offsets.indices.map { decision in
                let start = offsets[decision]
                var choice = 0
                for index in 1..<space.choiceCounts[decision] where alpha[start + index] > alpha[start + choice] {
                    choice = index
                }
                return choice
            })
    }

    /// A canonical genome drawn from the relaxation, each decision redrawn uniformly with chance `exploration`.
    private mutating func sample(_ probabilities: [Double]) -> [Int] {
        var genes: [Int] = []
        genes.reserveCapacity(offsets.count)
        for (decision, start) in offsets.enumerated() {
            let count = space.choiceCounts[decision]
            if random.unit() < settings.exploration {
                genes.append(random.below(count))
                continue
            }
            var left = random.unit()
            var choice = count - 1
            for index in 0..<count {
                left -= probabilities[start + index]
                if left < 0 {
                    choice = index
                    break
                }
            }
            genes.append(choice)
        }
        return space.canonical(genes)
    }

    /// Up to `count` distinct genomes drawn from the relaxation that were not scored before, in at most 20·`count`
    /// draws: once the relaxation has nearly collapsed most draws are repeats, and the round should still bring new
    /// answers for the surrogates.
    private mutating func fresh(_ count: Int, from probabilities: [Double], _ scorer: Scorer) -> [[Int]] {
        var result: [[Int]] = []
        var seen: Set<[Int]> = []
        var draws = 0
        while result.count < count, draws < 20 * count {
            draws += 1
            let genes = sample(probabilities)
            if scorer.cached(genes) == nil, seen.insert(genes).inserted {
                result.append(genes)
            }
        }
        return result
    }

    /// Adds every scored genome not yet in the models. A genome with an unknown (NaN) budgeted figure is left out
    /// of every model.
    private mutating func record(_ batch: [[Int]], _ outcomes: [Outcome?], _ budgets: BudgetSet) {
        for (genes, outcome) in zip(batch, outcomes) {
            guard let outcome, !recorded.contains(genes) else {
                continue
            }
            let costs = outcome.figures.indices.map { budgets.relative(outcome.figures[$0], $0) }
            guard costs.allSatisfy({ $0.isFinite }) else {
                continue
            }
            recorded.insert(genes)
            models.add(active: features.active(genes), targets: [outcome.accuracy] + costs)
            unfitted += 1
        }
    }

    /// `inner_steps` Adam ascent steps on F(α) (see the file header); checks the deadline every 16 steps.
    private mutating func optimize(_ scorer: inout Scorer) {
        let budgetCount = models.targetCount - 1
        let accuracyWeights = Array(models.weights(of: 0))
        let costWeights = (0..<budgetCount).map { Array(models.weights(of: 1 + $0)) }

        for step in 0..<settings.innerSteps {
            if step % 16 == 0, scorer.checkDeadline() {
                return
            }
            let probabilities = relaxation()
            let expectations = features.expectations(probabilities, offsets)

            // ∂F/∂E[x_f]: the accuracy weights, less λ times the weights of every budget the expectation misses.
            var coefficients = accuracyWeights
            for budget in 0..<budgetCount {
                let expected = zip(costWeights[budget], expectations).reduce(models.intercepts[1 + budget]) {
                    $0 + $1.0 * $1.1
                }
                guard expected > 1 else {
                    continue
                }
                for feature in coefficients.indices {
                    coefficients[feature] -= lambda * costWeights[budget][feature]
                }
            }

            let byProbability = features.gradient(weights: coefficients, probabilities, offsets)
            var gradient = [Double](repeating: 0, count: alpha.count)
            for (decision, start) in offsets.enumerated() {
                let range = start..<(start + space.choiceCounts[decision])
                let mean = range.reduce(0.0) { $0 + probabilities[$1] * byProbability[$1] }
                for index in range {
                    gradient[index] = probabilities[index] * (byProbability[index] - mean)
                }
            }
            optimizer.step(&alpha, gradient)
        }
    }

    /// The surrogates' accuracy and relative budget figures for a genome.
    private func predict(_ genes: [Int]) -> (accuracy: Double, costs: [Double]) {
        let active = features.active(genes)
        return (models.predict(0, active: active), (1..<models.targetCount).map { models.predict($0, active: active) })
    }

    /// Lowers `genes`, which misses a budget, one decision at a time until it meets every budget (see the file
    /// header). Every architecture it tries is scored through the scorer, which keeps the best feasible one.
    private mutating func repair(_ genes: [Int], _ outcome: Outcome, _ scorer: inout Scorer) throws(SearchFailure) {
        var current = genes
        var currentOutcome = outcome

        for _ in 0..<settings.repairSteps {
            guard !currentOutcome.feasible, !scorer.isDone else {
                return
            }
            let missed = scorer.budgets.budgets.indices.filter {
                !(currentOutcome.figures[$0] <= scorer.budgets.budgets[$0].value)
            }
            let here = predict(current)
            var moves: [(genes: [Int], ratio: Double)] = []
            for decision in 0..<space.decisionCount where space.matters(decision, in: current) {
                for choice in 0..<space.choiceCounts[decision] where choice != current[decision] {
                    var changed = current
                    changed[decision] = choice
                    changed = space.canonical(changed)
                    let there = predict(changed)
                    let fall = missed.reduce(0.0) { $0 + here.costs[$1] - there.costs[$1] }
                    guard fall > 0 else {
                        continue
                    }
                    let loss = max(0, here.accuracy - there.accuracy)
                    moves.append((changed, fall / (loss + Self.accuracyFloor)))
                }
            }
            // Stable: equal ratios keep the order above, so the run depends only on the seed and the answers.
            let ranked = moves.enumerated().sorted {
                $0.element.ratio > $1.element.ratio || ($0.element.ratio == $1.element.ratio && $0.offset < $1.offset)
            }
            let candidates = ranked.prefix(settings.repairBatch).map(\.element.genes)
            guard !candidates.isEmpty else {
                return
            }

            let outcomes = try scorer.score(candidates)
            record(candidates, outcomes, scorer.budgets)
            let excess = scorer.budgets.excess(currentOutcome.figures)
            var chosen: (index: Int, ratio: Double)?
            for (index, candidate) in outcomes.enumerated() {
                guard let candidate else {
                    continue
                }
                let fall = excess - scorer.budgets.excess(candidate.figures)
                guard fall > 0 else {
                    continue
                }
                let ratio = fall / (max(0, currentOutcome.accuracy - candidate.accuracy) + Self.accuracyFloor)
                if chosen.map({ ratio > $0.ratio }) ?? true {
                    chosen = (index, ratio)
                }
            }
            guard let chosen, let next = outcomes[chosen.index] else {
                return
            }
            current = candidates[chosen.index]
            currentOutcome = next
        }
    }
}
