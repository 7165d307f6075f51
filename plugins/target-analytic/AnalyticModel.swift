// The analytic hardware model: MACs, parameters, peak activation memory and a throughput-based latency.
import PluginSupport
import SupernetPluginABI

/// A call the model refuses, with the ABI status to return and a message for the host.
struct ModelFailure: Error {
    /// A negative supernet_status value.
    let status: Int32
    /// What is wrong, naming the layer.
    let message: String
}

/// The tunable numbers of the model.
struct AnalyticSettings: FlatConfigurable {
    /// Sustained GFLOP/s per op, indexed by supernet_op (conv, pointwise, depthwise, squeeze-excite, pool, linear).
    var gflops: [Double] = [10, 60, 20, 10, 10, 10]
    /// Fixed cost of launching one layer, microseconds.
    var layerOverheadMicroseconds = 2.0

    /// The configure keys, in supernet_op order, for the GFLOP/s entries.
    static let gflopsKeys = [
        "conv_gflops", "pointwise_gflops", "depthwise_gflops", "squeeze_excite_gflops", "pool_gflops",
        "linear_gflops",
    ]

    /// The key of the per-layer overhead.
    static let overheadKey = "layer_overhead_us"

    /// Returns these settings with the pairs of a configure call applied; all or nothing.
    func applying(_ pairs: [(key: String, value: Double)]) throws(ConfigProblem) -> AnalyticSettings {
        var result = self
        for (key, value) in pairs {
            if let op = Self.gflopsKeys.firstIndex(of: key) {
                guard value > 0 else {
                    throw ConfigProblem(message: "\"\(key)\" must be positive GFLOP/s, got \(value)")
                }
                result.gflops[op] = value
            } else if key == Self.overheadKey {
                guard value >= 0 else {
                    throw ConfigProblem(message: "\"\(key)\" must be at least 0 microseconds, got \(value)")
                }
                result.layerOverheadMicroseconds = value
            } else {
                let known = (Self.gflopsKeys + [Self.overheadKey]).joined(separator: ", ")
                throw ConfigProblem(message: "unknown key \"\(key)\"; known keys: \(known)")
            }
        }
        return result
    }
}

/// Work and storage of one layer.
struct LayerFigures {
    /// Multiply-accumulates.
    var macs: Double
    /// Weights and biases.
    var params: Double
    /// Bytes of the input activation at batch 1, float32.
    var inputBytes: Double
    /// Bytes of the output activation at batch 1, float32.
    var outputBytes: Double
}

/// Computes the cost of layer lists under fixed settings.
///
/// Conventions: MACs count only the multiply-accumulates of convolutions and fully connected layers (a squeeze-
/// excite counts its two fully connected layers; pooling, activations and the excite scaling count 0). Params
/// count weights plus one bias per output channel of every conv-like layer (batch norm folded into it), and
/// weights plus biases of fully connected layers. Latency is 2 × MACs / (op GFLOP/s) plus a fixed overhead per
/// layer. Energy is unknown (NaN).
/// TODO: pooling, activations and the excite scaling are memory-bound work the latency leaves out (MACs 0, so
/// only the per-layer overhead); a bytes-moved term per layer would price them.
struct AnalyticModel {
    /// The settings in force.
    let settings: AnalyticSettings

    /// The full cost of the list.
    func cost(of layers: UnsafeBufferPointer<supernet_layer>) throws(ModelFailure) -> supernet_cost {
        var macs = 0.0
        var params = 0.0
        var latency = 0.0
        var figures: [LayerFigures] = []
        figures.reserveCapacity(layers.count)
        for (index, layer) in layers.enumerated() {
            let layerFigures = try Self.figures(of: layer, at: index)
            macs += layerFigures.macs
            params += layerFigures.params
            latency += latencyMilliseconds(of: layer, macs: layerFigures.macs)
            figures.append(layerFigures)
        }
        let peak = Self.peakMemoryBytes(layers: layers, figures: figures)
        return supernet_cost(latency_ms: latency, energy_mj: .nan, peak_memory_bytes: peak, macs: macs, params: params)
    }

    /// The latency of each layer, in milliseconds; they add up to the latency of `cost(of:)`.
    func layerLatencies(of layers: UnsafeBufferPointer<supernet_layer>) throws(ModelFailure) -> [Double] {
        var result: [Double] = []
        result.reserveCapacity(layers.count)
        for (index, layer) in layers.enumerated() {
            result.append(latencyMilliseconds(of: layer, macs: try Self.figures(of: layer, at: index).macs))
        }
        return result
    }

    private func latencyMilliseconds(of layer: supernet_layer, macs: Double) -> Double {
        2 * macs / (settings.gflops[Int(layer.op)] * 1e9) * 1e3 + settings.layerOverheadMicroseconds * 1e-3
    }

    /// Checks one layer and returns its work and storage.
    static func figures(of layer: supernet_layer, at index: Int) throws(ModelFailure) -> LayerFigures {
        func refuse(_ what: String) -> ModelFailure {
            ModelFailure(status: SUPERNET_ERROR_INVALID_ARGUMENT.rawValue, message: "layer \(index): \(what)")
        }

        guard layer.op <= SUPERNET_OP_LINEAR.rawValue else {
            throw ModelFailure(
                status: SUPERNET_ERROR_UNSUPPORTED.rawValue,
                message: "layer \(index): unknown op \(layer.op) (the analytic target knows ops 0 to 5)")
        }
        guard layer.activation <= SUPERNET_ACTIVATION_HSIGMOID.rawValue else {
            throw ModelFailure(
                status: SUPERNET_ERROR_UNSUPPORTED.rawValue,
                message: "layer \(index): unknown activation \(layer.activation)")
        }
        guard layer.input_channels > 0, layer.output_channels > 0, layer.kernel > 0, layer.stride > 0,
            layer.input_size > 0, layer.output_size > 0
        else {
            throw refuse("channels, kernel, stride and sizes must all be positive")
        }
        guard layer.output_size <= layer.input_size else {
            throw refuse("output_size \(layer.output_size) is larger than input_size \(layer.input_size)")
        }

        let inputChannels = Double(layer.input_channels)
        let outputChannels = Double(layer.output_channels)
        let kernelArea = Double(layer.kernel) * Double(layer.kernel)
        let outputArea = Double(layer.output_size) * Double(layer.output_size)
        let inputBytes = inputChannels * Double(layer.input_size) * Double(layer.input_size) * 4
        let outputBytes = outputChannels * outputArea * 4
        var figures = LayerFigures(macs: 0, params: 0, inputBytes: inputBytes, outputBytes: outputBytes)

        switch layer.op {
        case SUPERNET_OP_CONV.rawValue:
            figures.macs = outputArea * outputChannels * inputChannels * kernelArea
            figures.params = outputChannels * inputChannels * kernelArea + outputChannels
        case SUPERNET_OP_POINTWISE.rawValue:
            guard layer.kernel == 1 else {
                throw refuse("a pointwise layer has kernel 1, got \(layer.kernel)")
            }
            figures.macs = outputArea * outputChannels * inputChannels
            figures.params = outputChannels * inputChannels + outputChannels
        case SUPERNET_OP_DEPTHWISE.rawValue:
            guard layer.input_channels == layer.output_channels else {
                throw refuse(
                    "a depthwise layer keeps its channels, got \(layer.input_channels) in and "
                        + "\(layer.output_channels) out")
            }
            figures.macs = outputArea * outputChannels * kernelArea
            figures.params = outputChannels * kernelArea + outputChannels
        case SUPERNET_OP_SQUEEZE_EXCITE.rawValue:
            guard layer.input_channels == layer.output_channels, layer.input_size == layer.output_size,
                layer.hidden > 0
            else {
                throw refuse("a squeeze-excite layer keeps channels and size and needs hidden > 0")
            }
            let hidden = Double(layer.hidden)
            figures.macs = 2 * inputChannels * hidden
            figures.params = 2 * inputChannels * hidden + hidden + inputChannels
        case SUPERNET_OP_POOL.rawValue:
            guard layer.input_channels == layer.output_channels else {
                throw refuse("a pool keeps its channels, got \(layer.input_channels) and \(layer.output_channels)")
            }
        default:
            guard layer.input_size == 1, layer.output_size == 1 else {
                throw refuse("a linear layer has input_size and output_size 1")
            }
            figures.macs = inputChannels * outputChannels
            figures.params = inputChannels * outputChannels + outputChannels
        }
        return figures
    }

    /// The most activation bytes held at once.
    ///
    /// Each layer holds its input and output. The layer list does not say which blocks are residual, so this
    /// approximates: a block starts at a pointwise layer that widens channels (the expansion) and ends at the
    /// next pointwise layer that narrows them (the projection); it is residual when the projection's output has
    /// the expansion input's channels and size. The block input is then also held by every layer after the
    /// expansion up to and including the projection (the addition follows the projection).
    /// TODO: blocks without an expansion layer (expand ratio 1) are never found residual, so their peak misses
    /// one held input tensor; a layer flag for residual blocks in the ABI would make this exact.
    static func peakMemoryBytes(layers: UnsafeBufferPointer<supernet_layer>, figures: [LayerFigures]) -> Double {
        var held = [Double](repeating: 0, count: layers.count)
        var index = 0
        while index < layers.count {
            let expansion = layers[index]
            let widens =
                expansion.op == SUPERNET_OP_POINTWISE.rawValue
                && expansion.output_channels > expansion.input_channels
            guard widens else {
                index += 1
                continue
            }
            var end = index + 1
            while end < layers.count
                && !(layers[end].op == SUPERNET_OP_POINTWISE.rawValue
                    && layers[end].output_channels < layers[end].input_channels)
            {
                end += 1
            }
            if end < layers.count, layers[end].output_channels == expansion.input_channels,
                layers[end].output_size == expansion.input_size
            {
                for inside in (index + 1)...end {
                    held[inside] += figures[index].inputBytes
                }
            }
            index = end
        }

        var peak = 0.0
        for (index, layer) in figures.enumerated() {
            peak = max(peak, layer.inputBytes + layer.outputBytes + held[index])
        }
        return peak
    }
}
