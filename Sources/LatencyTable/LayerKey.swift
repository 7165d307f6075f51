// The shape of one layer, as latency tables key it.

/// What a layer computes; the raw values are the table's `op` strings, `code` is the ABI's `supernet_op`.
public enum LayerOp: String, CaseIterable, Sendable {
    /// Dense k × k convolution (the stem).
    case conv
    /// 1 × 1 convolution.
    case pointwise
    /// Depthwise k × k convolution.
    case depthwise
    /// Squeeze-and-excite: pool, fully connected to `hidden`, relu, fully connected back, hsigmoid, scale.
    case squeezeExcite = "squeeze_excite"
    /// Global average pooling.
    case pool
    /// Fully connected layer with bias.
    case linear

    /// The op with ABI number `code` (0 to 5), or nil.
    public init?(code: UInt32) {
        guard code < UInt32(Self.allCases.count) else {
            return nil
        }
        self = Self.allCases[Int(code)]
    }

    /// The ABI number (`enum supernet_op`).
    public var code: UInt32 {
        UInt32(Self.allCases.firstIndex(of: self)!)
    }
}

/// The activation after a layer; the raw values are the table's `act` strings, `code` is the ABI's.
public enum LayerActivation: String, CaseIterable, Sendable {
    /// Identity.
    case none
    /// max(x, 0).
    case relu
    /// x · relu6(x + 3) / 6.
    case hswish
    /// relu6(x + 3) / 6.
    case hsigmoid

    /// The activation with ABI number `code` (0 to 3), or nil.
    public init?(code: UInt32) {
        guard code < UInt32(Self.allCases.count) else {
            return nil
        }
        self = Self.allCases[Int(code)]
    }

    /// The ABI number (`enum supernet_activation`).
    public var code: UInt32 {
        UInt32(Self.allCases.firstIndex(of: self)!)
    }
}

/// A layer shape the key refuses, saying why.
public struct LayerShapeProblem: Error, CustomStringConvertible {
    /// What is wrong with the shape.
    public let message: String

    /// The message.
    public var description: String { message }
}

/// One layer shape at batch 1, square feature maps: what a latency table looks latencies up by.
///
/// Every field takes part in equality. A global pool is stored with kernel = size and stride 1 whatever stride
/// the caller gave (a window covering the whole map has one output for any stride); pointwise, squeeze-excite
/// and linear layers have kernel and stride 1; only squeeze-excite has a non-zero `hidden`.
public struct LayerKey: Hashable, Sendable, CustomStringConvertible {
    /// The op.
    public var op: LayerOp
    /// Channels read.
    public var inputChannels: Int
    /// Channels written.
    public var outputChannels: Int
    /// Window side.
    public var kernel: Int
    /// Step.
    public var stride: Int
    /// Input side in pixels (1 for linear).
    public var size: Int
    /// The activation after the layer.
    public var activation: LayerActivation
    /// Squeeze-excite hidden units, else 0.
    public var hidden: Int

    /// Creates a key without checks (see `validated()`).
    public init(
        op: LayerOp, inputChannels: Int, outputChannels: Int, kernel: Int = 1, stride: Int = 1, size: Int,
        activation: LayerActivation = .none, hidden: Int = 0
    ) {
        self.op = op
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.stride = stride
        self.size = size
        self.activation = activation
        self.hidden = hidden
    }

    /// Output side: (size − 1) / stride + 1 for "same"-padded windows, 1 for a global pool and for linear.
    public var outputSize: Int {
        switch op {
        case .pool, .linear: 1
        default: (size - 1) / stride + 1
        }
    }

    /// One line naming every field, as messages and logs show a shape.
    public var description: String {
        "\(op.rawValue) in=\(inputChannels) out=\(outputChannels) k=\(kernel) stride=\(stride) size=\(size) "
            + "act=\(activation.rawValue) se=\(hidden)"
    }

    /// The key in canonical form after checking that the shape is one the ops allow; throws naming the fault.
    ///
    /// `outputSize`, when given, must equal the derived output side.
    public func validated(outputSize given: Int? = nil) throws(LayerShapeProblem) -> LayerKey {
        func refuse(_ what: String) -> LayerShapeProblem {
            LayerShapeProblem(message: "\(description): \(what)")
        }

        guard inputChannels > 0, outputChannels > 0, kernel > 0, stride > 0, size > 0, hidden >= 0 else {
            throw refuse("channels, kernel, stride and size must be positive and hidden at least 0")
        }
        var key = self
        switch op {
        case .conv:
            guard kernel % 2 == 1 else {
                throw refuse("a convolution needs an odd kernel")
            }
        case .pointwise:
            guard kernel == 1, stride == 1 else {
                throw refuse("a pointwise layer has kernel 1 and stride 1")
            }
        case .depthwise:
            guard inputChannels == outputChannels, kernel % 2 == 1 else {
                throw refuse("a depthwise layer keeps its channels and needs an odd kernel")
            }
        case .squeezeExcite:
            guard inputChannels == outputChannels, hidden > 0, kernel == 1, stride == 1 else {
                throw refuse("a squeeze-excite layer keeps its channels, has kernel and stride 1 and hidden > 0")
            }
        case .pool:
            guard inputChannels == outputChannels, kernel == size else {
                throw refuse("only a global average pool (kernel = size, channels kept) is supported")
            }
            key.stride = 1
        case .linear:
            guard size == 1, kernel == 1, stride == 1 else {
                throw refuse("a linear layer has size, kernel and stride 1")
            }
        }
        guard op == .squeezeExcite || hidden == 0 else {
            throw refuse("only squeeze-excite layers have hidden units")
        }
        if let given, given != key.outputSize {
            throw refuse("output size \(given) should be \(key.outputSize)")
        }
        return key
    }

    /// Multiply-accumulates: convolutions and fully connected layers only (a squeeze-excite counts its two fully
    /// connected layers; pooling, activations and scaling count 0), as the analytic target counts them.
    public var macs: Double {
        let area = Double(outputSize) * Double(outputSize)
        let input = Double(inputChannels)
        let output = Double(outputChannels)
        let window = Double(kernel) * Double(kernel)
        switch op {
        case .conv, .pointwise: return area * output * input * window
        case .depthwise: return area * output * window
        case .squeezeExcite: return 2 * input * Double(hidden)
        case .pool: return 0
        case .linear: return input * output
        }
    }

    /// Weights plus one bias per output channel (batch norm folded), as the analytic target counts them.
    public var params: Double {
        let input = Double(inputChannels)
        let output = Double(outputChannels)
        let window = Double(kernel) * Double(kernel)
        switch op {
        case .conv, .pointwise: return output * input * window + output
        case .depthwise: return output * window + output
        case .squeezeExcite: return 2 * input * Double(hidden) + Double(hidden) + input
        case .pool: return 0
        case .linear: return input * output + output
        }
    }
}
