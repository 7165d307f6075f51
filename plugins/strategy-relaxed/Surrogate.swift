// The surrogate models of the relaxed search: ridge regressions of the host's accuracy and of each budgeted figure
// on indicator features of a genome, and the expectation of a model (with its gradient) under a product of
// independent categorical distributions, one per decision.
import PluginSupport

/// One condition of a feature: decision `decision` takes one of `choices`.
struct Factor {
    /// The decision.
    let decision: Int
    /// The choice indices that satisfy the condition.
    let choices: [Int]
}

/// The indicator features a surrogate is linear in. A feature is 1 when all its factors hold and 0 otherwise.
///
/// With R resolutions, S stages of M slots, D depths, K kernels and E ratios, the full set is:
/// - main effects: resolution = r (R); depth of stage s = d (S·D); slot used and its kernel = k (S·M·K); slot used
///   and its ratio = e (S·M·E);
/// - resolution interactions: resolution = r and depth = d (R·S·D); resolution = r, slot used, kernel = k and
///   ratio = e (R·S·M·K·E).
/// "Slot (s, b) used" is the factor "depth of s is one of those > b", so every feature is a product of conditions
/// on distinct decisions. The joint kernel × ratio × resolution features let the model be exact for any figure that
/// is a sum over layers of terms fixed by the resolution and the block's own choices, as MACs, parameters and
/// additive latency are (a block's depthwise MACs grow with kernel² × expanded channels, and every layer's with the
/// square of the feature map side); accuracy gets the same freedom.
///
/// For fmnist-mbv3 (R = K = E = D = 3, S = 3, M = 4) that is 435 features. Spaces whose full set would pass
/// `FeatureSet.limit` drop the resolution from the joint slot features, and if still too many, keep main effects
/// only, so that fitting stays cheap.
struct FeatureSet {
    /// The features.
    let features: [Feature]

    /// One feature: its factors, on distinct decisions.
    struct Feature {
        /// The conditions that must all hold.
        let factors: [Factor]
    }

    /// Most features of the full or reduced sets; above it the next smaller set is used.
    static let limit = 1200

    /// The feature set for `space`.
    init(space: DecisionSpace) {
        let resolutions = space.choiceCounts[space.resolutionDecision]
        let depthChoices = space.depths.count
        let resolutionDecision = space.resolutionDecision
        var main: [Feature] = (0..<resolutions).map {
            Feature(factors: [Factor(decision: resolutionDecision, choices: [$0])])
        }
        var byResolution: [Feature] = []
        var joint: [Feature] = []

        for stage in 0..<space.stages {
            let depthDecision = space.depthDecision(stage)
            for depth in 0..<depthChoices {
                let condition = Factor(decision: depthDecision, choices: [depth])
                main.append(Feature(factors: [condition]))
                for resolution in 0..<resolutions {
                    let atResolution = Factor(decision: resolutionDecision, choices: [resolution])
                    byResolution.append(Feature(factors: [atResolution, condition]))
                }
            }
            for block in 0..<space.maxDepth {
                let used = (0..<depthChoices).filter { Int(space.depths[$0]) > block }
                guard !used.isEmpty else {
                    continue
                }
                let slot = stage * space.maxDepth + block
                let usedFactor = Factor(decision: depthDecision, choices: used)
                let kernelDecision = space.kernelDecision(slot)
                let expandDecision = space.expandDecision(slot)
                for kernel in 0..<space.kernels.count {
                    main.append(Feature(factors: [usedFactor, Factor(decision: kernelDecision, choices: [kernel])]))
                }
                for ratio in 0..<space.expandRatios.count {
                    main.append(Feature(factors: [usedFactor, Factor(decision: expandDecision, choices: [ratio])]))
                }
                for kernel in 0..<space.kernels.count {
                    for ratio in 0..<space.expandRatios.count {
                        joint.append(
                            Feature(factors: [
                                usedFactor, Factor(decision: kernelDecision, choices: [kernel]),
                                Factor(decision: expandDecision, choices: [ratio]),
                            ]))
                    }
                }
            }
        }

        let full = joint.count * resolutions
        if main.count + byResolution.count + full <= Self.limit {
            var resolved: [Feature] = []
            for resolution in 0..<resolutions {
                let condition = Factor(decision: resolutionDecision, choices: [resolution])
                resolved += joint.map { Feature(factors: [condition] + $0.factors) }
            }
            features = main + byResolution + resolved
        } else if main.count + byResolution.count + joint.count <= Self.limit {
            features = main + byResolution + joint
        } else {
            features = main
        }
    }

    /// Number of features.
    var count: Int { features.count }

    /// The indices of the features that are 1 for `genes`, ascending.
    func active(_ genes: [Int]) -> [Int] {
        features.indices.filter { index in
            features[index].factors.allSatisfy { $0.choices.contains(genes[$0.decision]) }
        }
    }

    /// The probability of each factor under independent distributions: Σ_{c ∈ choices} p_decision(c).
    private func probability(_ factor: Factor, _ probabilities: [Double], _ offsets: [Int]) -> Double {
        factor.choices.reduce(0.0) { $0 + probabilities[offsets[factor.decision] + $1] }
    }

    /// E[x_f] for every feature when decision d takes choice c with probability `probabilities[offsets[d] + c]`,
    /// independently of the others. A feature is a product of conditions on distinct decisions, so its expectation
    /// is the product of the conditions' probabilities.
    func expectations(_ probabilities: [Double], _ offsets: [Int]) -> [Double] {
        features.map { feature in
            feature.factors.reduce(1.0) { $0 * probability($1, probabilities, offsets) }
        }
    }

    /// ∂G/∂p for G = Σ_f weights[f] · E[x_f]: by the product rule, a condition on decision d with choice set C
    /// contributes weights[f] · Π(probabilities of the feature's other conditions) to ∂G/∂p_d(c) for each c in C.
    func gradient(weights: [Double], _ probabilities: [Double], _ offsets: [Int]) -> [Double] {
        var result = [Double](repeating: 0, count: probabilities.count)
        var factorProbabilities: [Double] = []
        for (index, feature) in features.enumerated() where weights[index] != 0 {
            factorProbabilities.removeAll(keepingCapacity: true)
            for factor in feature.factors {
                factorProbabilities.append(probability(factor, probabilities, offsets))
            }
            for (position, factor) in feature.factors.enumerated() {
                var others = weights[index]
                for (other, value) in factorProbabilities.enumerated() where other != position {
                    others *= value
                }
                for choice in factor.choices {
                    result[offsets[factor.decision] + choice] += others
                }
            }
        }
        return result
    }
}

/// Ridge regressions of several targets on the same binary features, refitted from running sums.
///
/// With n rows x_i (binary, p features) and targets y_i, the fit centres both, x̃ = x − x̄ and ỹ = y − ȳ, so the
/// intercept is not shrunk, and solves (X̃ᵀX̃ + ρI) w = X̃ᵀỹ, with X̃ᵀX̃ = XᵀX − n·x̄x̄ᵀ and X̃ᵀỹ = Xᵀy − n·x̄ȳ
/// computed from sums kept as rows arrive. A prediction is ŷ(x) = ȳ + (x − x̄)·w = intercept + Σ_{f: x_f = 1} w_f.
/// All targets share X̃ᵀX̃ + ρI, so it is factored once (Cholesky) per refit.
struct RidgeModels {
    /// Features per row.
    let featureCount: Int
    /// Targets per row.
    let targetCount: Int
    /// The ridge penalty ρ.
    let penalty: Double
    /// Rows added.
    private(set) var rows = 0
    /// XᵀX, row-major featureCount × featureCount.
    private var gram: [Double]
    /// Σ x_i.
    private var featureSums: [Double]
    /// Σ y_i per target.
    private var targetSums: [Double]
    /// Xᵀy per target, target-major.
    private var crossSums: [Double]

    /// The fitted weights per target, target-major (featureCount each); 0 before the first fit.
    private(set) var weights: [Double]
    /// The fitted intercept ȳ − x̄·w per target.
    private(set) var intercepts: [Double]

    /// Empty sums for `featureCount` features and `targetCount` targets.
    init(featureCount: Int, targetCount: Int, penalty: Double) {
        self.featureCount = featureCount
        self.targetCount = targetCount
        self.penalty = penalty
        gram = Array(repeating: 0, count: featureCount * featureCount)
        featureSums = Array(repeating: 0, count: featureCount)
        targetSums = Array(repeating: 0, count: targetCount)
        crossSums = Array(repeating: 0, count: featureCount * targetCount)
        weights = Array(repeating: 0, count: featureCount * targetCount)
        intercepts = Array(repeating: 0, count: targetCount)
    }

    /// Adds a row given by the indices of its features that are 1, and its targets.
    mutating func add(active: [Int], targets: [Double]) {
        rows += 1
        for row in active {
            featureSums[row] += 1
            for column in active {
                gram[row * featureCount + column] += 1
            }
        }
        for (target, value) in targets.enumerated() {
            targetSums[target] += value
            for feature in active {
                crossSums[target * featureCount + feature] += value
            }
        }
    }

    /// Refits every target from the sums. Returns false (keeping the old fit) if there are no rows, if `abandon`
    /// returned true during the factorization (it is asked every 16 columns, so a deadline is kept even when the
    /// O(p³) factorization is slow), or if the system cannot be factored, which ρ > 0 rules out but rounding might
    /// not.
    @discardableResult
    mutating func fit(abandon: () -> Bool) -> Bool {
        guard rows > 0 else {
            return false
        }

        let n = Double(rows)
        let size = featureCount
        var system = gram
        for row in 0..<size {
            for column in 0..<size {
                system[row * size + column] -= featureSums[row] * featureSums[column] / n
            }
            system[row * size + row] += penalty
        }
        guard choleskyFactor(&system, size, abandon: abandon) else {
            return false
        }

        for target in 0..<targetCount {
            let mean = targetSums[target] / n
            var right = (0..<size).map { crossSums[target * size + $0] - featureSums[$0] * mean }
            choleskySolve(system, size, &right)
            var intercept = mean
            for feature in 0..<size {
                weights[target * size + feature] = right[feature]
                intercept -= featureSums[feature] / n * right[feature]
            }
            intercepts[target] = intercept
        }
        return true
    }

    /// The prediction of `target` for a row given by its active features.
    func predict(_ target: Int, active: [Int]) -> Double {
        active.reduce(intercepts[target]) { $0 + weights[target * featureCount + $1] }
    }

    /// The weights of `target`, one per feature.
    func weights(of target: Int) -> ArraySlice<Double> {
        weights[(target * featureCount)..<((target + 1) * featureCount)]
    }
}

/// Overwrites the lower triangle of the symmetric positive definite `matrix` (row-major size × size) with L, where
/// matrix = L·Lᵀ: L_jj = √(A_jj − Σ_{k<j} L_jk²) and L_ij = (A_ij − Σ_{k<j} L_ik·L_jk) / L_jj for i > j. False when
/// a pivot is not positive (the matrix is not positive definite) or when `abandon`, asked before every 16th column,
/// returns true.
func choleskyFactor(_ matrix: inout [Double], _ size: Int, abandon: () -> Bool) -> Bool {
    matrix.withUnsafeMutableBufferPointer { a in
        for j in 0..<size {
            if j % 16 == 0, abandon() {
                return false
            }
            var pivot = a[j * size + j]
            for k in 0..<j {
                pivot -= a[j * size + k] * a[j * size + k]
            }
            guard pivot > 0, pivot.isFinite else {
                return false
            }
            let diagonal = pivot.squareRoot()
            a[j * size + j] = diagonal
            for i in (j + 1)..<size {
                var value = a[i * size + j]
                for k in 0..<j {
                    value -= a[i * size + k] * a[j * size + k]
                }
                a[i * size + j] = value / diagonal
            }
        }
        return true
    }
}

/// Solves L·Lᵀ·x = b in place for the factor L that `choleskyFactor` left in `factor`: forward substitution for
/// L·z = b, then back substitution for Lᵀ·x = z.
func choleskySolve(_ factor: [Double], _ size: Int, _ vector: inout [Double]) {
    factor.withUnsafeBufferPointer { l in
        vector.withUnsafeMutableBufferPointer { x in
            for i in 0..<size {
                var value = x[i]
                for k in 0..<i {
                    value -= l[i * size + k] * x[k]
                }
                x[i] = value / l[i * size + i]
            }
            for i in stride(from: size - 1, through: 0, by: -1) {
                var value = x[i]
                for k in (i + 1)..<size {
                    value -= l[k * size + i] * x[k]
                }
                x[i] = value / l[i * size + i]
            }
        }
    }
}
