import Engine

/// One stage of a MobileNetV3-like search space: a run of inverted-residual blocks with one output width.
public struct StageSpec: Codable, Hashable, Sendable {
    /// Output channels of every block in the stage.
    public var outputChannels: Int
    /// Stride of the stage's first block (the others use 1).
    public var firstStride: Int
    /// Activation after the expand and depthwise convolutions.
    public var activation: ActivationKind
    /// Whether the blocks have a squeeze-excite unit after the depthwise convolution.
    public var squeezeExcite: Bool

    /// Creates a stage description.
    public init(outputChannels: Int, firstStride: Int, activation: ActivationKind, squeezeExcite: Bool) {
        self.outputChannels = outputChannels
        self.firstStride = firstStride
        self.activation = activation
        self.squeezeExcite = squeezeExcite
    }
}

/// The static shape of one block slot in the supernet (its largest form).
public struct BlockSlot: Hashable, Sendable {
    /// Stage index.
    public let stage: Int
    /// Position of the block in its stage (0 = first).
    public let position: Int
    /// Index among all block slots (stage * maxDepth + position).
    public let index: Int
    /// Input channels.
    public let inputChannels: Int
    /// Output channels.
    public let outputChannels: Int
    /// Depthwise stride.
    public let stride: Int
    /// Activation of the expand and depthwise layers.
    public let activation: ActivationKind
    /// Whether the block has squeeze-excite.
    public let squeezeExcite: Bool
    /// Whether the block adds its input to its output (stride 1 and equal widths).
    public var residual: Bool { stride == 1 && inputChannels == outputChannels }
}

/// An elastic MobileNetV3-like search space: depth per stage, kernel and expand ratio per block,
/// input resolution. `fmnist-mbv3` is the default (design brief §3).
public struct SearchSpace: Codable, Hashable, Sendable {
    /// Name recorded in files and shown to users.
    public var name: String
    /// Channels of the input images (1 for Fashion-MNIST).
    public var inputChannels: Int
    /// Side of the images as stored (the data set's resolution).
    public var imageSize: Int
    /// Number of classes.
    public var classes: Int
    /// Output channels of the 3×3 stride-1 stem convolution.
    public var stemChannels: Int
    /// The stages in order.
    public var stages: [StageSpec]
    /// Allowed depths of every stage, ascending.
    public var depths: [Int]
    /// Allowed depthwise kernel sizes, ascending (odd; the largest is stored, smaller ones transformed).
    public var kernels: [Int]
    /// Allowed expand ratios, ascending.
    public var expandRatios: [Int]
    /// Allowed input resolutions, ascending.
    public var resolutions: [Int]
    /// Output channels of the 1×1 head convolution.
    public var headChannels: Int
    /// Squeeze-excite reduction factor.
    public var seReduction: Int
    /// Dropout rate before the classifier during training.
    public var dropout: Float

    /// Creates a space: lists ascending and non-empty, kernels odd, the largest kernel stored.
    public init(
        name: String, inputChannels: Int, imageSize: Int, classes: Int, stemChannels: Int, stages: [StageSpec],
        depths: [Int], kernels: [Int], expandRatios: [Int], resolutions: [Int], headChannels: Int, seReduction: Int,
        dropout: Float
    ) {
        self.name = name
        self.inputChannels = inputChannels
        self.imageSize = imageSize
        self.classes = classes
        self.stemChannels = stemChannels
        self.stages = stages
        self.depths = depths
        self.kernels = kernels
        self.expandRatios = expandRatios
        self.resolutions = resolutions
        self.headChannels = headChannels
        self.seReduction = seReduction
        self.dropout = dropout
    }

    /// The default space for 1×28×28 Fashion-MNIST images.
    public static let fmnistMBV3 = SearchSpace(
        name: "fmnist-mbv3", inputChannels: 1, imageSize: 28, classes: 10, stemChannels: 16,
        stages: [
            StageSpec(outputChannels: 24, firstStride: 2, activation: .relu, squeezeExcite: false),
            StageSpec(outputChannels: 40, firstStride: 2, activation: .hswish, squeezeExcite: true),
            StageSpec(outputChannels: 80, firstStride: 2, activation: .hswish, squeezeExcite: true),
        ],
        depths: [2, 3, 4], kernels: [3, 5, 7], expandRatios: [3, 4, 6], resolutions: [20, 24, 28],
        headChannels: 320, seReduction: 4, dropout: 0.1)

    /// Spaces known by name (`supernet init --space NAME`).
    public static let builtIn: [String: SearchSpace] = [fmnistMBV3.name: fmnistMBV3]

    /// The largest depth of any stage: the number of block slots per stage.
    public var maxDepth: Int { depths.max() ?? 0 }

    /// The largest kernel size (the one whose weights are stored).
    public var maxKernel: Int { kernels.max() ?? 0 }

    /// Every block slot of the supernet in execution order.
    public var blockSlots: [BlockSlot] {
        var slots: [BlockSlot] = []
        var channels = stemChannels
        for (s, stage) in stages.enumerated() {
            for position in 0..<maxDepth {
                slots.append(
                    BlockSlot(
                        stage: s, position: position, index: s * maxDepth + position, inputChannels: channels,
                        outputChannels: stage.outputChannels, stride: position == 0 ? stage.firstStride : 1,
                        activation: stage.activation, squeezeExcite: stage.squeezeExcite))
                channels = stage.outputChannels
            }
        }
        return slots
    }

    /// Channels of the last stage (input of the head).
    public var finalStageChannels: Int { stages.last?.outputChannels ?? stemChannels }

    /// Mid (expanded) channels of a block with `inputChannels` at `ratio`, rounded to a multiple of 8.
    public func midChannels(inputChannels: Int, ratio: Int) -> Int {
        makeDivisible(Double(inputChannels * ratio), by: 8)
    }

    /// Hidden units of the squeeze-excite unit for `midChannels` mid channels.
    public func seChannels(midChannels: Int) -> Int {
        makeDivisible(Double(midChannels / seReduction), by: 8)
    }

    /// Spatial side after a k-odd convolution with "same" padding and `stride`.
    public static func outputSide(_ side: Int, stride: Int) -> Int {
        (side - 1) / stride + 1
    }
}

/// Rounds `value` to the nearest multiple of `divisor`, never going below 90% of it (MobileNet's rule).
public func makeDivisible(_ value: Double, by divisor: Int) -> Int {
    let d = Double(divisor)
    var rounded = max(d, (value + d / 2).rounded(.down) - (value + d / 2).truncatingRemainder(dividingBy: d))
    if rounded < 0.9 * value {
        rounded += d
    }
    return Int(rounded)
}
