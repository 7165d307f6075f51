import Engine

/// One layer of a subnet as a hardware cost model sees it (the plugin ABI carries the same fields).
public struct LayerShape: Codable, Hashable, Sendable {
    /// What the layer computes.
    public enum Operation: String, Codable, Sendable {
        /// Dense k×k convolution (the stem).
        case convolution
        /// 1×1 convolution.
        case pointwise
        /// Depthwise k×k convolution.
        case depthwise
        /// Squeeze-excite: pool, two small fully connected layers, gate.
        case squeezeExcite
        /// Global average pooling.
        case pool
        /// Fully connected classifier.
        case linear
    }

    /// The operation.
    public var operation: Operation
    /// Input channels.
    public var inputChannels: Int
    /// Output channels.
    public var outputChannels: Int
    /// Kernel side (1 for pointwise, pool and linear).
    public var kernel: Int
    /// Stride.
    public var stride: Int
    /// Input spatial side (square).
    public var inputSize: Int
    /// Output spatial side.
    public var outputSize: Int
    /// Activation after the layer.
    public var activation: ActivationKind
    /// Hidden units (squeeze-excite only, else 0).
    public var hidden: Int

    /// Multiply-accumulates at batch 1.
    public var macs: Int {
        switch operation {
        case .convolution, .pointwise:
            return outputSize * outputSize * outputChannels * inputChannels * kernel * kernel
        case .depthwise:
            return outputSize * outputSize * outputChannels * kernel * kernel
        case .squeezeExcite:
            return 2 * inputChannels * hidden
        case .pool:
            return 0
        case .linear:
            return inputChannels * outputChannels
        }
    }

    /// Trainable parameters (BatchNorm γ and β counted; running statistics are not parameters).
    public var parameters: Int {
        switch operation {
        case .convolution, .pointwise:
            return outputChannels * inputChannels * kernel * kernel + 2 * outputChannels
        case .depthwise:
            return outputChannels * kernel * kernel + 2 * outputChannels
        case .squeezeExcite:
            return 2 * inputChannels * hidden + hidden + inputChannels
        case .pool:
            return 0
        case .linear:
            return inputChannels * outputChannels + outputChannels
        }
    }

    /// Bytes of the input and output activations at batch 1, float32.
    var activationBytes: (input: Int, output: Int) {
        (4 * inputSize * inputSize * inputChannels, 4 * outputSize * outputSize * outputChannels)
    }
}

/// Exact costs of a subnet at batch 1.
public struct SubnetCosts: Codable, Hashable, Sendable {
    /// Multiply-accumulates (convolutions, squeeze-excite and classifier).
    public var macs: Int
    /// Trainable parameters.
    public var parameters: Int
    /// Peak bytes of live float32 activations when layers run one after another (a block's input stays
    /// live until its residual addition).
    public var peakActivationBytes: Int
}

extension SearchSpace {
    /// The layers of subnet `arch` in execution order.
    public func layers(for arch: ArchConfig) -> [LayerShape] {
        var layers: [LayerShape] = []
        var side = arch.resolution
        layers.append(
            LayerShape(
                operation: .convolution, inputChannels: inputChannels, outputChannels: stemChannels,
                kernel: 3, stride: 1, inputSize: side, outputSize: side, activation: .hswish,
                hidden: 0))
        for slot in blockSlots where arch.isActive(slot: slot.index, maxDepth: maxDepth) {
            let mid = midChannels(inputChannels: slot.inputChannels, ratio: arch.expandRatios[slot.index])
            let out = SearchSpace.outputSide(side, stride: slot.stride)
            layers.append(
                LayerShape(
                    operation: .pointwise, inputChannels: slot.inputChannels, outputChannels: mid,
                    kernel: 1, stride: 1, inputSize: side, outputSize: side,
                    activation: slot.activation, hidden: 0))
            layers.append(
                LayerShape(
                    operation: .depthwise, inputChannels: mid, outputChannels: mid,
                    kernel: arch.kernels[slot.index], stride: slot.stride, inputSize: side,
                    outputSize: out, activation: slot.activation, hidden: 0))
            if slot.squeezeExcite {
                layers.append(
                    LayerShape(
                        operation: .squeezeExcite, inputChannels: mid, outputChannels: mid,
                        kernel: 1, stride: 1, inputSize: out, outputSize: out,
                        activation: .hsigmoid, hidden: seChannels(midChannels: mid)))
            }
            layers.append(
                LayerShape(
                    operation: .pointwise, inputChannels: mid, outputChannels: slot.outputChannels,
                    kernel: 1, stride: 1, inputSize: out, outputSize: out, activation: .none,
                    hidden: 0))
            side = out
        }
        layers.append(
            LayerShape(
                operation: .pointwise, inputChannels: finalStageChannels,
                outputChannels: headChannels, kernel: 1, stride: 1, inputSize: side,
                outputSize: side, activation: .hswish, hidden: 0))
        layers.append(
            LayerShape(
                operation: .pool, inputChannels: headChannels, outputChannels: headChannels,
                kernel: side, stride: 1, inputSize: side, outputSize: 1, activation: .none,
                hidden: 0))
        layers.append(
            LayerShape(
                operation: .linear, inputChannels: headChannels, outputChannels: classes, kernel: 1,
                stride: 1, inputSize: 1, outputSize: 1, activation: .none, hidden: 0))
        return layers
    }

    /// MACs, parameters and peak activation memory of subnet `arch` at batch 1.
    public func costs(for arch: ArchConfig) -> SubnetCosts {
        let layers = layers(for: arch)
        let macs = layers.reduce(0) { $0 + $1.macs }
        let parameters = layers.reduce(0) { $0 + $1.parameters }
        return SubnetCosts(macs: macs, parameters: parameters, peakActivationBytes: peakBytes(arch))
    }

    /// Walks the inference schedule at batch 1: each layer holds its input and output, and a residual
    /// block also holds its input until the final addition.
    private func peakBytes(_ arch: ArchConfig) -> Int {
        let f = 4
        var side = arch.resolution
        var peak = f * side * side * (inputChannels + stemChannels)
        if arch.resolution != imageSize {
            peak = max(peak, f * (imageSize * imageSize + side * side) * inputChannels)
        }
        var channels = stemChannels
        for slot in blockSlots where arch.isActive(slot: slot.index, maxDepth: maxDepth) {
            let mid = midChannels(inputChannels: slot.inputChannels, ratio: arch.expandRatios[slot.index])
            let out = SearchSpace.outputSide(side, stride: slot.stride)
            let input = f * side * side * channels
            let hold = slot.residual ? input : 0
            let expanded = f * side * side * mid
            let filtered = f * out * out * mid
            peak = max(peak, input + expanded, hold + expanded + filtered)
            if slot.squeezeExcite {
                peak = max(peak, hold + filtered + f * (2 * mid + seChannels(midChannels: mid)))
            }
            peak = max(peak, hold + filtered + f * out * out * slot.outputChannels)
            side = out
            channels = slot.outputChannels
        }
        let headOut = f * side * side * headChannels
        return max(
            peak, f * side * side * channels + headOut, headOut + f * headChannels,
            f * (headChannels + classes))
    }
}
