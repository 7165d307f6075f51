import Engine

/// A named float32 tensor in PyTorch's layout.
public struct NamedTensor: Sendable {
    /// Name, e.g. `blocks.4.dw.conv.weight`.
    public var name: String
    /// Shape, e.g. [96, 1, 5, 5].
    public var shape: [Int]
    /// Values, row-major.
    public var values: [Float]

    /// Creates a tensor; `values.count` must equal the product of `shape`.
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) vs \(values.count) values")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// A subnet cut out of a supernet: its architecture and the static weights that run it without the supernet.
///
/// Tensors keep the supernet's names for the parts that are active (only `depths` blocks per stage), with
/// sliced widths and already-transformed depthwise kernels, in execution order.
public struct Subnet: Sendable {
    /// The search space the subnet came from (defines the topology).
    public var space: SearchSpace
    /// The architecture.
    public var arch: ArchConfig
    /// Weights and BatchNorm statistics in execution order.
    public var tensors: [NamedTensor]

    /// Creates a subnet from its parts (see `SubnetNetwork` for the checks made when it is run).
    public init(space: SearchSpace, arch: ArchConfig, tensors: [NamedTensor]) {
        self.space = space
        self.arch = arch
        self.tensors = tensors
    }

    /// The tensor called `name`, if present.
    public func tensor(_ name: String) -> NamedTensor? {
        tensors.first { $0.name == name }
    }
}

extension ElasticSupernet {
    /// Cuts subnet `arch` out as static weights whose output equals this supernet's with `arch` active
    /// (inference mode, running statistics sliced; recalibrate the result for the subnet's own statistics).
    public func extract(_ arch: ArchConfig) -> Subnet {
        var tensors: [NamedTensor] = []
        tensors += stem.norm.export(
            weight: stem.weight, weightCount: stem.weight.count, shape: stem.weight.shape,
            channels: space.stemChannels)
        for block in blocks where arch.isActive(slot: block.slot.index, maxDepth: space.maxDepth) {
            tensors += block.export(kernel: arch.kernels[block.slot.index], ratio: arch.expandRatios[block.slot.index])
        }
        tensors += head.norm.export(
            weight: head.weight, weightCount: head.weight.count, shape: head.weight.shape,
            channels: space.headChannels)
        tensors.append(
            NamedTensor(
                name: classifierWeight.name, shape: classifierWeight.shape,
                values: classifierWeight.value.array()))
        tensors.append(
            NamedTensor(
                name: classifierBias.name, shape: classifierBias.shape,
                values: classifierBias.value.array()))
        return Subnet(space: space, arch: arch.canonical(maxDepth: space.maxDepth), tensors: tensors)
    }
}

extension ElasticBatchNorm {
    /// The conv weight (first `weightCount` values, given shape) followed by this norm's first `channels`
    /// γ, β, running mean and running variance.
    func export(weight: Parameter, weightCount: Int, shape: [Int], channels: Int) -> [NamedTensor] {
        [NamedTensor(name: weight.name, shape: shape, values: weight.value.array(weightCount))] + exportNorm(channels)
    }

    func exportNorm(_ channels: Int) -> [NamedTensor] {
        [
            NamedTensor(name: gamma.name, shape: [channels], values: gamma.value.array(channels)),
            NamedTensor(name: beta.name, shape: [channels], values: beta.value.array(channels)),
            NamedTensor(name: "\(name).running_mean", shape: [channels], values: runningMean.array(channels)),
            NamedTensor(name: "\(name).running_var", shape: [channels], values: runningVariance.array(channels)),
        ]
    }
}

/// Rows [0, rows) and columns [0, columns) of a row-major matrix with row stride `stride`.
func sliceMatrix(_ source: FloatBuffer, stride: Int, rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * columns)
    for r in 0..<rows {
        for c in 0..<columns {
            out[r * columns + c] = source[r * stride + c]
        }
    }
    return out
}

extension ElasticBlock {
    func export(kernel: Int, ratio: Int) -> [NamedTensor] {
        let mid = space.midChannels(inputChannels: slot.inputChannels, ratio: ratio)
        let cin = slot.inputChannels
        let cout = slot.outputChannels
        var tensors = expand.norm.export(
            weight: expand.weight, weightCount: mid * cin, shape: [mid, cin, 1, 1],
            channels: mid)

        let kernelValues = Array(
            UnsafeBufferPointer(
                start: depthwise.effectiveKernel(size: kernel, channels: mid), count: mid * kernel * kernel))
        tensors.append(NamedTensor(name: depthwise.weight.name, shape: [mid, 1, kernel, kernel], values: kernelValues))
        tensors += depthwise.norm.exportNorm(mid)

        if let se = squeezeExcite {
            let hidden = space.seChannels(midChannels: mid)
            tensors.append(
                NamedTensor(
                    name: se.reduceWeight.name, shape: [hidden, mid, 1, 1],
                    values: sliceMatrix(
                        se.reduceWeight.value, stride: se.maxChannels,
                        rows: hidden, columns: mid)))
            tensors.append(
                NamedTensor(
                    name: se.reduceBias.name, shape: [hidden],
                    values: se.reduceBias.value.array(hidden)))
            tensors.append(
                NamedTensor(
                    name: se.expandWeight.name, shape: [mid, hidden, 1, 1],
                    values: sliceMatrix(
                        se.expandWeight.value, stride: se.maxHidden,
                        rows: mid, columns: hidden)))
            tensors.append(NamedTensor(name: se.expandBias.name, shape: [mid], values: se.expandBias.value.array(mid)))
        }

        tensors.append(
            NamedTensor(
                name: project.weight.name, shape: [cout, mid, 1, 1],
                values: sliceMatrix(
                    project.weight.value, stride: project.maxInput, rows: cout,
                    columns: mid)))
        tensors += project.norm.exportNorm(cout)
        return tensors
    }
}
