// Swift values for what crosses the plugin ABI, and their conversion to and from the C structs.
import SupernetPluginABI

/// What a plugin is for.
public enum PluginKind: String, Sendable {
    /// A hardware target: prices layer lists.
    case target
    /// A search strategy: searches a space under budgets.
    case strategy
}

/// A plugin's header, copied into Swift values when it was loaded.
public struct PluginInfo: Sendable, Equatable {
    /// Registry name ([a-z0-9_-], 1 to 64 bytes).
    public let name: String
    /// Target or strategy.
    public let kind: PluginKind
    /// The plugin's version string.
    public let version: String
    /// The plugin's one-sentence description.
    public let summary: String
    /// The ABI version the plugin was built against.
    public let abiVersion: UInt32
    /// The real path of the file it was loaded from.
    public let path: String
}

/// One layer of a subnet, in execution order, batch 1, square feature maps (see struct supernet_layer).
public struct NetworkLayer: Sendable, Equatable {
    /// What a layer computes.
    public enum Op: UInt32, Sendable {
        /// Dense convolution.
        case conv = 0
        /// 1 × 1 convolution.
        case pointwise = 1
        /// Depthwise convolution (channels kept).
        case depthwise = 2
        /// Squeeze-and-excite with `hidden` units (channels and size kept).
        case squeezeExcite = 3
        /// Average pooling; a global pool has kernel == inputSize and outputSize 1.
        case pool = 4
        /// Fully connected layer; sizes 1.
        case linear = 5
    }

    /// The activation after a layer.
    public enum Activation: UInt32, Sendable {
        /// Identity.
        case none = 0
        /// max(x, 0).
        case relu = 1
        /// x · relu6(x + 3) / 6.
        case hswish = 2
        /// relu6(x + 3) / 6.
        case hsigmoid = 3
    }

    /// What the layer computes.
    public var op: Op
    /// Channels read.
    public var inputChannels: Int
    /// Channels written.
    public var outputChannels: Int
    /// Window side in pixels.
    public var kernel: Int
    /// Step in pixels.
    public var stride: Int
    /// Input feature map side in pixels.
    public var inputSize: Int
    /// Output feature map side in pixels.
    public var outputSize: Int
    /// The activation after the layer.
    public var activation: Activation
    /// Squeeze-excite hidden units, 0 for other ops.
    public var hidden: Int

    /// Creates a layer.
    public init(
        op: Op, inputChannels: Int, outputChannels: Int, kernel: Int = 1, stride: Int = 1, inputSize: Int,
        outputSize: Int, activation: Activation = .none, hidden: Int = 0
    ) {
        self.op = op
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.stride = stride
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.activation = activation
        self.hidden = hidden
    }

    /// The C struct; fields that do not fit 32 bits are clamped to UInt32.max (the plugin then refuses them).
    var cValue: supernet_layer {
        supernet_layer(
            op: op.rawValue, activation: activation.rawValue, input_channels: clamp32(inputChannels),
            output_channels: clamp32(outputChannels), kernel: clamp32(kernel), stride: clamp32(stride),
            input_size: clamp32(inputSize), output_size: clamp32(outputSize), hidden: clamp32(hidden))
    }
}

/// What running a subnet costs on one hardware target (see struct supernet_cost).
public struct HardwareCost: Sendable, Equatable {
    /// Milliseconds per batch-1 forward pass.
    public var latencyMilliseconds: Double
    /// Millijoules per pass; NaN when unknown.
    public var energyMillijoules: Double
    /// Most activation bytes held at once; NaN when unknown.
    public var peakMemoryBytes: Double
    /// Multiply-accumulates per pass.
    public var macs: Double
    /// Weights and biases.
    public var params: Double

    /// Creates a cost.
    public init(
        latencyMilliseconds: Double, energyMillijoules: Double = .nan, peakMemoryBytes: Double = .nan, macs: Double,
        params: Double
    ) {
        self.latencyMilliseconds = latencyMilliseconds
        self.energyMillijoules = energyMillijoules
        self.peakMemoryBytes = peakMemoryBytes
        self.macs = macs
        self.params = params
    }

    init(_ cost: supernet_cost) {
        self.init(
            latencyMilliseconds: cost.latency_ms, energyMillijoules: cost.energy_mj,
            peakMemoryBytes: cost.peak_memory_bytes, macs: cost.macs, params: cost.params)
    }

    var cValue: supernet_cost {
        supernet_cost(
            latency_ms: latencyMilliseconds, energy_mj: energyMillijoules, peak_memory_bytes: peakMemoryBytes,
            macs: macs, params: params)
    }

    /// Why the cost breaks the ABI (negative or non-finite required figures), or nil when it is valid.
    var problem: String? {
        let required = [("latency_ms", latencyMilliseconds), ("macs", macs), ("params", params)]
        if let bad = required.first(where: { !$0.1.isFinite || $0.1 < 0 }) {
            return "\(bad.0) is \(bad.1); it must be finite and at least 0"
        }
        let optional = [("energy_mj", energyMillijoules), ("peak_memory_bytes", peakMemoryBytes)]
        if let bad = optional.first(where: { !$0.1.isNaN && (!$0.1.isFinite || $0.1 < 0) }) {
            return "\(bad.0) is \(bad.1); it must be NaN (unknown) or finite and at least 0"
        }
        return nil
    }
}

/// One limit a searched architecture must meet (see struct supernet_budget).
public struct Budget: Sendable, Equatable {
    /// What is limited.
    public enum Kind: UInt32, Sendable {
        /// Latency in milliseconds.
        case latencyMilliseconds = 1
        /// Multiply-accumulates.
        case macs = 2
        /// Parameters.
        case params = 3
        /// Peak memory in KiB.
        case memoryKilobytes = 4
    }

    /// What is limited.
    public var kind: Kind
    /// The limit, met when the cost is at most this.
    public var value: Double

    /// Creates a budget.
    public init(_ kind: Kind, _ value: Double) {
        self.kind = kind
        self.value = value
    }

    /// Whether `cost` meets this budget; an unknown (NaN) figure never does.
    public func isMet(by cost: HardwareCost) -> Bool {
        switch kind {
        case .latencyMilliseconds: cost.latencyMilliseconds <= value
        case .macs: cost.macs <= value
        case .params: cost.params <= value
        case .memoryKilobytes: cost.peakMemoryBytes / 1024 <= value
        }
    }

    var cValue: supernet_budget {
        supernet_budget(kind: kind.rawValue, reserved: 0, value: value)
    }
}

/// The choices of a weight-sharing space (see struct supernet_search_space).
public struct SearchSpace: Sendable, Equatable {
    /// Most stages the ABI carries.
    public static let maxStages = Int(SUPERNET_MAX_STAGES)
    /// Most blocks per stage the ABI carries.
    public static let maxDepth = Int(SUPERNET_MAX_DEPTH)

    /// Number of stages, 1...8.
    public var stages: Int
    /// Most blocks per stage, 1...8.
    public var maxDepth: Int
    /// Allowed blocks per stage.
    public var depths: [Int]
    /// Allowed depthwise kernel sides.
    public var kernels: [Int]
    /// Allowed expansion ratios.
    public var expandRatios: [Int]
    /// Allowed input resolutions.
    public var resolutions: [Int]

    /// Creates a space.
    public init(stages: Int, maxDepth: Int, depths: [Int], kernels: [Int], expandRatios: [Int], resolutions: [Int]) {
        self.stages = stages
        self.maxDepth = maxDepth
        self.depths = depths
        self.kernels = kernels
        self.expandRatios = expandRatios
        self.resolutions = resolutions
    }

    /// Why the space cannot be passed to a plugin, or nil.
    var problem: String? {
        guard (1...Self.maxStages).contains(stages), (1...Self.maxDepth).contains(maxDepth) else {
            return "stages \(stages) and max depth \(maxDepth) must lie in 1...\(Self.maxStages) and "
                + "1...\(Self.maxDepth)"
        }
        for (name, values) in [
            ("depths", depths), ("kernels", kernels), ("expand ratios", expandRatios), ("resolutions", resolutions),
        ] {
            guard !values.isEmpty, values.allSatisfy({ $0 > 0 && $0 <= Int(UInt32.max) }) else {
                return "\(name) must be a non-empty list of positive 32-bit numbers"
            }
        }
        guard depths.allSatisfy({ $0 <= maxDepth }) else {
            return "every depth must be at most max depth \(maxDepth)"
        }
        return nil
    }

    /// Whether `arch` uses only this space's choices.
    public func contains(_ arch: SubnetArch) -> Bool {
        guard resolutions.contains(arch.resolution), arch.depths.count == stages,
            arch.kernels.count == stages, arch.expandRatios.count == stages
        else {
            return false
        }
        for stage in 0..<stages {
            let depth = arch.depths[stage]
            guard depths.contains(depth), arch.kernels[stage].count == depth,
                arch.expandRatios[stage].count == depth,
                arch.kernels[stage].allSatisfy(kernels.contains),
                arch.expandRatios[stage].allSatisfy(expandRatios.contains)
            else {
                return false
            }
        }
        return true
    }
}

/// One subnet (see struct supernet_arch), with only the blocks in use.
public struct SubnetArch: Sendable, Hashable {
    /// Input resolution in pixels.
    public var resolution: Int
    /// Blocks of each stage.
    public var depths: [Int]
    /// Depthwise kernel side of each block: kernels[stage][block], block < depths[stage].
    public var kernels: [[Int]]
    /// Expansion ratio of each block: expandRatios[stage][block].
    public var expandRatios: [[Int]]

    /// Creates an architecture.
    public init(resolution: Int, depths: [Int], kernels: [[Int]], expandRatios: [[Int]]) {
        self.resolution = resolution
        self.depths = depths
        self.kernels = kernels
        self.expandRatios = expandRatios
    }

    /// Reads a C architecture; nil when its counts exceed the ABI's fixed arrays.
    init?(_ arch: supernet_arch) {
        var copy = arch
        let stages = Int(arch.stages)
        guard stages <= SearchSpace.maxStages else {
            return nil
        }
        let depths = withUnsafeBytes(of: &copy.depths) { raw in
            (0..<stages).map { Int(raw.load(fromByteOffset: $0 * 4, as: UInt32.self)) }
        }
        guard depths.allSatisfy({ $0 <= SearchSpace.maxDepth }) else {
            return nil
        }
        func perBlock(_ raw: UnsafeRawBufferPointer) -> [[Int]] {
            (0..<stages).map { stage in
                (0..<depths[stage]).map { block in
                    Int(raw.load(fromByteOffset: (stage * SearchSpace.maxDepth + block) * 4, as: UInt32.self))
                }
            }
        }
        self.init(
            resolution: Int(arch.resolution), depths: depths,
            kernels: withUnsafeBytes(of: &copy.kernels, perBlock),
            expandRatios: withUnsafeBytes(of: &copy.expand_ratios, perBlock))
    }

    /// The C struct, unused entries 0; the caller has checked the counts against the ABI limits.
    var cValue: supernet_arch {
        var arch = supernet_arch()
        arch.resolution = clamp32(resolution)
        arch.stages = UInt32(depths.count)
        withUnsafeMutableBytes(of: &arch.depths) { raw in
            for (stage, depth) in depths.enumerated() {
                raw.storeBytes(of: clamp32(depth), toByteOffset: stage * 4, as: UInt32.self)
            }
        }
        func fill(_ raw: UnsafeMutableRawBufferPointer, _ values: [[Int]]) {
            for (stage, blocks) in values.enumerated() {
                for (block, value) in blocks.enumerated() {
                    let offset = (stage * SearchSpace.maxDepth + block) * 4
                    raw.storeBytes(of: clamp32(value), toByteOffset: offset, as: UInt32.self)
                }
            }
        }
        withUnsafeMutableBytes(of: &arch.kernels) { fill($0, kernels) }
        withUnsafeMutableBytes(of: &arch.expand_ratios) { fill($0, expandRatios) }
        return arch
    }
}

/// The host's answer for one architecture during a search.
public struct Evaluation: Sendable, Equatable {
    /// Predicted top-1 accuracy in [0, 1].
    public var accuracy: Double
    /// Cost on the request's hardware target.
    public var cost: HardwareCost

    /// Creates an answer.
    public init(accuracy: Double, cost: HardwareCost) {
        self.accuracy = accuracy
        self.cost = cost
    }
}

/// What a search did (see struct supernet_search_stats).
public struct SearchStats: Sendable, Equatable {
    /// Architectures the strategy sent to be evaluated.
    public var evaluations: Int
    /// Generations or iterations completed.
    public var generations: Int
    /// Milliseconds the strategy spent, on the host's clock.
    public var wallMilliseconds: Double
}

/// The outcome of a search.
public struct SearchResult: Sendable {
    /// The best architecture meeting every budget, or nil when the strategy found none.
    public var best: SubnetArch?
    /// What the search did.
    public var stats: SearchStats
    /// Whether the host asked the strategy to stop (deadline passed or cancelled).
    public var stoppedByHost: Bool
}

/// `value` as UInt32, clamped to 0...UInt32.max.
func clamp32(_ value: Int) -> UInt32 {
    UInt32(clamping: value)
}

/// A duration in milliseconds.
func milliseconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) * 1e3 + Double(parts.attoseconds) * 1e-15
}
