// The search space whose layer shapes the profiler measures, and the layer lists of its subnets.
import LatencyTable

/// One stage: blocks of one output width.
public struct ProfiledStage: Hashable, Sendable {
    /// Output channels of every block.
    public var outputChannels: Int
    /// Stride of the first block's depthwise convolution (the others use 1).
    public var firstStride: Int
    /// Activation after the expand and depthwise convolutions.
    public var activation: LayerActivation
    /// Whether the blocks have a squeeze-excite unit after the depthwise convolution.
    public var squeezeExcite: Bool

    /// Creates a stage.
    public init(outputChannels: Int, firstStride: Int, activation: LayerActivation, squeezeExcite: Bool) {
        self.outputChannels = outputChannels
        self.firstStride = firstStride
        self.activation = activation
        self.squeezeExcite = squeezeExcite
    }
}

/// One subnet: a resolution, and per stage the kernel and expand ratio of each block in use.
public struct ProfiledArch: Hashable, Sendable {
    /// Input side in pixels.
    public var resolution: Int
    /// Depthwise kernel of each block of each stage (the count per stage is its depth).
    public var kernels: [[Int]]
    /// Expand ratio of each block of each stage.
    public var expandRatios: [[Int]]

    /// Creates an architecture.
    public init(resolution: Int, kernels: [[Int]], expandRatios: [[Int]]) {
        self.resolution = resolution
        self.kernels = kernels
        self.expandRatios = expandRatios
    }
}

/// A MobileNetV3-like elastic space as the layer lists see it: a 3 × 3 stride-1 stem, stages of inverted residual
/// blocks (expand 1 × 1, depthwise k × k, optional squeeze-excite, project 1 × 1), a 1 × 1 head, a global pool
/// and a classifier.
///
/// The layer lists follow the main package's `SearchSpace.layers(for:)` field for field (checked by a test
/// against hand-written shapes); the rounding of expanded widths is MobileNet's (`roundedWidth`).
public struct ProfiledSpace: Hashable, Sendable {
    /// Channels of the input images.
    public var imageChannels: Int
    /// Side of the stored images; other resolutions are resized from it.
    public var imageSize: Int
    /// Classes of the classifier.
    public var classes: Int
    /// Output channels of the stem.
    public var stemChannels: Int
    /// The stages in order.
    public var stages: [ProfiledStage]
    /// Allowed depths of every stage.
    public var depths: [Int]
    /// Allowed depthwise kernels.
    public var kernels: [Int]
    /// Allowed expand ratios.
    public var expandRatios: [Int]
    /// Allowed input resolutions.
    public var resolutions: [Int]
    /// Output channels of the head.
    public var headChannels: Int
    /// Squeeze-excite reduction factor.
    public var seReduction: Int

    /// Creates a space.
    public init(
        imageChannels: Int, imageSize: Int, classes: Int, stemChannels: Int, stages: [ProfiledStage], depths: [Int],
        kernels: [Int], expandRatios: [Int], resolutions: [Int], headChannels: Int, seReduction: Int
    ) {
        self.imageChannels = imageChannels
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
    }

    /// The daemon's default space, `fmnist-mbv3`: 1 × 28 × 28 images, widths 16 → 24 → 40 → 80 → 320.
    public static let fmnistMBV3 = ProfiledSpace(
        imageChannels: 1, imageSize: 28, classes: 10, stemChannels: 16,
        stages: [
            ProfiledStage(outputChannels: 24, firstStride: 2, activation: .relu, squeezeExcite: false),
            ProfiledStage(outputChannels: 40, firstStride: 2, activation: .hswish, squeezeExcite: true),
            ProfiledStage(outputChannels: 80, firstStride: 2, activation: .hswish, squeezeExcite: true),
        ],
        depths: [2, 3, 4], kernels: [3, 5, 7], expandRatios: [3, 4, 6], resolutions: [20, 24, 28],
        headChannels: 320, seReduction: 4)

    /// `value` rounded to the nearest multiple of `divisor`, at least `divisor`, and raised by one more multiple
    /// when rounding lost more than a tenth of the value (MobileNet's channel rule).
    public static func roundedWidth(_ value: Double, divisor: Int) -> Int {
        let step = Double(divisor)
        var result = max(step, ((value + step / 2) / step).rounded(.down) * step)
        if result < 0.9 * value {
            result += step
        }
        return Int(result)
    }

    /// Expanded channels of a block reading `inputChannels` at `ratio`.
    public func midChannels(_ inputChannels: Int, ratio: Int) -> Int {
        Self.roundedWidth(Double(inputChannels * ratio), divisor: 8)
    }

    /// Squeeze-excite hidden units for `midChannels`.
    public func seHidden(_ midChannels: Int) -> Int {
        Self.roundedWidth(Double(midChannels / seReduction), divisor: 8)
    }

    /// Side after a "same"-padded window with `stride`.
    public static func outputSide(_ side: Int, stride: Int) -> Int {
        (side - 1) / stride + 1
    }

    /// The layers of `arch` in execution order.
    public func layers(for arch: ProfiledArch) -> [LayerKey] {
        var layers = [
            LayerKey(
                op: .conv, inputChannels: imageChannels, outputChannels: stemChannels, kernel: 3, stride: 1,
                size: arch.resolution, activation: .hswish)
        ]
        var side = arch.resolution
        var channels = stemChannels
        for (index, stage) in stages.enumerated() {
            for (position, kernel) in arch.kernels[index].enumerated() {
                let stride = position == 0 ? stage.firstStride : 1
                let ratio = arch.expandRatios[index][position]
                layers += blockLayers(
                    stage, inputChannels: channels, ratio: ratio, kernel: kernel, stride: stride, side: side)
                side = Self.outputSide(side, stride: stride)
                channels = stage.outputChannels
            }
        }
        layers.append(
            LayerKey(
                op: .pointwise, inputChannels: channels, outputChannels: headChannels, size: side,
                activation: .hswish))
        layers.append(
            LayerKey(op: .pool, inputChannels: headChannels, outputChannels: headChannels, kernel: side, size: side))
        layers.append(LayerKey(op: .linear, inputChannels: headChannels, outputChannels: classes, size: 1))
        return layers
    }

    /// The layers of one block: expand, depthwise, squeeze-excite (when the stage has it), project.
    func blockLayers(
        _ stage: ProfiledStage, inputChannels: Int, ratio: Int, kernel: Int, stride: Int, side: Int
    ) -> [LayerKey] {
        let mid = midChannels(inputChannels, ratio: ratio)
        let out = Self.outputSide(side, stride: stride)
        var layers = [
            LayerKey(
                op: .pointwise, inputChannels: inputChannels, outputChannels: mid, size: side,
                activation: stage.activation),
            LayerKey(
                op: .depthwise, inputChannels: mid, outputChannels: mid, kernel: kernel, stride: stride, size: side,
                activation: stage.activation),
        ]
        if stage.squeezeExcite {
            layers.append(
                LayerKey(
                    op: .squeezeExcite, inputChannels: mid, outputChannels: mid, size: out, activation: .hsigmoid,
                    hidden: seHidden(mid)))
        }
        layers.append(LayerKey(op: .pointwise, inputChannels: mid, outputChannels: stage.outputChannels, size: out))
        return layers
    }

    /// Every layer shape any subnet can have, each once, in a fixed order (by resolution, then network order).
    ///
    /// A stage's first block and its later blocks differ in input width, stride and input side; all later
    /// blocks share one shape set, so two block positions per stage cover every depth.
    public func allLayerShapes() -> [LayerKey] {
        var shapes: [LayerKey] = []
        var seen = Set<LayerKey>()
        func add(_ keys: [LayerKey]) {
            for key in keys where seen.insert(key).inserted {
                shapes.append(key)
            }
        }

        let deepest = depths.max() ?? 1
        for resolution in resolutions {
            let smallest = ProfiledArch(
                resolution: resolution, kernels: stages.map { _ in [kernels[0]] },
                expandRatios: stages.map { _ in [expandRatios[0]] })
            var side = resolution
            var channels = stemChannels
            for stage in stages {
                for position in 0..<min(deepest, 2) {
                    let stride = position == 0 ? stage.firstStride : 1
                    for ratio in expandRatios {
                        for kernel in kernels {
                            add(
                                blockLayers(
                                    stage, inputChannels: channels, ratio: ratio, kernel: kernel, stride: stride,
                                    side: side))
                        }
                    }
                    side = Self.outputSide(side, stride: stride)
                    channels = stage.outputChannels
                }
            }
            // The stem, head, pool and classifier depend on the resolution only.
            let fixed = layers(for: smallest)
            add([fixed[0]])
            add(Array(fixed.suffix(3)))
        }
        return shapes
    }

    /// A uniformly random architecture.
    public func randomArch(using generator: inout some RandomNumberGenerator) -> ProfiledArch {
        let chosenDepths = stages.map { _ in depths.randomElement(using: &generator)! }
        return ProfiledArch(
            resolution: resolutions.randomElement(using: &generator)!,
            kernels: chosenDepths.map { depth in (0..<depth).map { _ in kernels.randomElement(using: &generator)! } },
            expandRatios: chosenDepths.map { depth in
                (0..<depth).map { _ in expandRatios.randomElement(using: &generator)! }
            })
    }
}

/// A small seeded generator (SplitMix64) for weights and architecture sampling.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Starts the sequence at `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
