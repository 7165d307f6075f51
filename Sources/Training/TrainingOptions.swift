import Engine
import Supernet

/// How the weights shared by all subnets are trained (design brief §4).
public enum TrainingMethod: String, CaseIterable, Sendable, Codable {
    /// Once-for-All: full net, then elastic kernel → depth → expand, distilled from the full net.
    case progressive
    /// BigNAS / US-Nets: largest + smallest + 2 random per step, in-place distillation.
    case sandwich
    /// AttentiveNAS: as sandwich, the 2 middle subnets chosen among k candidates by minibatch loss.
    case attentive
    /// Slimmable networks: every width per step, private BatchNorm per width.
    case slimmable
    /// ENAS / SPOS: one random subnet per step.
    case uniform
    /// One fixed architecture (`architecture`) trained as a plain network: the baseline that inherited weights
    /// are compared with.
    case standalone
}

/// Which candidate AttentiveNAS trains among the k it scores.
public enum AttentiveRule: String, Sendable, Codable {
    /// The candidate with the lowest loss (AttentiveNAS-BestUp).
    case best
    /// The candidate with the highest loss (AttentiveNAS-WorstUp).
    case worst
}

/// Everything that defines a training run; with the same data and thread count it reproduces the run.
public struct TrainingOptions: Codable, Sendable {
    /// The method.
    public var method: TrainingMethod = .sandwich
    /// Epochs over the training split.
    public var epochs = 15
    /// Images per step.
    public var batchSize = 128
    /// Peak learning rate (cosine decay to 0 after the warm-up).
    public var learningRate: Float = 0.1
    /// Epochs of linear learning-rate warm-up.
    public var warmupEpochs: Float = 1
    /// Nesterov momentum.
    public var momentum: Float = 0.9
    /// Weight decay (not on BatchNorm, biases or kernel transforms).
    public var weightDecay: Float = 4e-5
    /// Label smoothing of the supervised loss.
    public var labelSmoothing: Float = 0.1
    /// Seed of every random choice.
    public var seed: UInt64 = 0
    /// Images held out of the training set for validation and the predictor.
    public var validationCount = 6000
    /// Images stored for BatchNorm recalibration.
    public var calibrationCount = 2000
    /// AttentiveNAS: candidates scored per middle subnet.
    public var attentiveCandidates = 3
    /// AttentiveNAS: which candidate to train.
    public var attentiveRule: AttentiveRule = .best
    /// Stop each epoch after this many steps (tests and shortened schedules); nil = whole epochs.
    public var stepsPerEpoch: Int?
    /// Validation images used for the per-epoch accuracy (all when nil).
    public var epochValidationCount: Int?
    /// The architecture `standalone` trains (required for it, ignored by the other methods).
    public var architecture: ArchConfig?

    /// Default options (sandwich, 15 epochs, the design brief's recipe).
    public init() {}
}

/// Progressive shrinking's phases and their share of the epochs and learning rate.
enum ProgressivePhase: Int, CaseIterable {
    case full, kernel, depth, expand

    /// Fraction of the epochs each phase gets.
    static let shares: [Float] = [0.25, 0.2, 0.25, 0.3]
    /// Learning-rate factor of each phase (each restarts its own cosine schedule).
    static let rateFactors: [Float] = [1, 0.3, 0.25, 0.25]
    /// Subnets sampled per step in each phase.
    static let samplesPerStep = [1, 1, 2, 4]

    /// First epoch of each phase, for a run of `epochs`.
    static func boundaries(epochs: Int) -> [Int] {
        var starts: [Int] = []
        var acc: Float = 0
        for share in shares {
            starts.append(Int((acc * Float(epochs)).rounded()))
            acc += share
        }
        return starts
    }

    static func phase(epoch: Int, epochs: Int) -> ProgressivePhase {
        let starts = boundaries(epochs: epochs)
        let index = starts.lastIndex { $0 <= epoch } ?? 0
        return ProgressivePhase(rawValue: index)!
    }
}
