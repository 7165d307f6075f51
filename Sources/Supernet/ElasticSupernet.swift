import Engine

/// The 3×3 stride-1 stem convolution (no bias) + BatchNorm + h-swish. Not elastic.
final class StemUnit {
    let weight: Parameter
    let norm: ElasticBatchNorm
    let inputs: Int
    let outputs: Int
    let kernel = 3
    private let store = ActivationStore()
    private let scratch = GrowableBuffer()
    private var input: UnsafePointer<Float>?
    private var shape = (batch: 0, height: 0, width: 0)

    init(name: String, inputs: Int, outputs: Int) {
        self.inputs = inputs
        self.outputs = outputs
        weight = Parameter(name: "\(name).conv.weight", shape: [outputs, inputs, 3, 3], decays: true)
        norm = ElasticBatchNorm(name: "\(name).bn", channels: outputs)
    }

    var parameters: [Parameter] { [weight] + norm.parameters }

    func forward(_ x: UnsafePointer<Float>, batch: Int, side: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        input = x
        shape = (batch, side, side)
        let rows = batch * side * side
        let conv = store.convOutput.reserve(rows * outputs)
        let work = scratch.reserve(
            DenseConv.scratchCount(
                batch: batch, height: side, width: side, inputChannels: inputs, kernel: kernel, stride: 1, padding: 1))
        DenseConv.forward(
            input: x, batch: batch, height: side, width: side, inputChannels: inputs,
            weights: weight.value.pointer, bias: nil, outputChannels: outputs, kernel: kernel,
            stride: 1, padding: 1, output: conv, scratch: work)

        norm.prepare(input: conv, rows: rows, channels: outputs, training: training)
        let y = store.output.reserve(rows * outputs)
        BatchNorm.apply(
            input: conv, rows: rows, channels: outputs, scale: norm.scale.pointer,
            shift: norm.shift.pointer, activation: .hswish, preActivation: nil, output: y)
        return y
    }

    func backward(_ dy: UnsafePointer<Float>) {
        let (batch, height, width) = shape
        let rows = batch * height * width
        let count = rows * outputs
        let dz = store.gradient.reserve(count)
        BatchNorm.backward(
            outputGradient: dy, input: store.convOutput.reserve(count), rows: rows, channels: outputs,
            mean: norm.mean.pointer, invStd: norm.invStd.pointer, gamma: norm.gamma.value.pointer,
            activation: .hswish, scale: norm.scale.pointer, shift: norm.shift.pointer, inputGradient: dz,
            gammaGradient: norm.gamma.gradient.pointer,
            betaGradient: norm.beta.gradient.pointer)
        let work = scratch.reserve(
            DenseConv.scratchCount(
                batch: batch, height: height, width: width, inputChannels: inputs, kernel: kernel, stride: 1, padding: 1
            ))
        DenseConv.backward(
            input: input!, outputGradient: dz, batch: batch, height: height, width: width,
            inputChannels: inputs, weights: weight.value.pointer, outputChannels: outputs,
            kernel: kernel, stride: 1, padding: 1, weightGradient: weight.gradient.pointer,
            biasGradient: nil, inputGradient: nil, scratch: work)
    }
}

/// One elastic inverted-residual block: 1×1 expand → k×k depthwise → (squeeze-excite) → 1×1 project (+ input).
final class ElasticBlock {
    let slot: BlockSlot
    let expand: PointwiseUnit
    let depthwise: ElasticDepthwiseUnit
    let squeezeExcite: ElasticSqueezeExcite?
    let project: PointwiseUnit
    let space: SearchSpace
    private let midGradient = GrowableBuffer()
    private let midGradient2 = GrowableBuffer()
    private var shape = (batch: 0, height: 0, width: 0, mid: 0)

    init(slot: BlockSlot, space: SearchSpace) {
        self.slot = slot
        self.space = space
        let name = "blocks.\(slot.index)"
        let mid = space.midChannels(inputChannels: slot.inputChannels, ratio: space.expandRatios.max()!)
        expand = PointwiseUnit(
            name: "\(name).expand", inputs: slot.inputChannels, outputs: mid,
            activation: slot.activation)
        depthwise = ElasticDepthwiseUnit(
            name: "\(name).dw", channels: mid, kernels: space.kernels,
            stride: slot.stride, activation: slot.activation)
        squeezeExcite =
            slot.squeezeExcite
            ? ElasticSqueezeExcite(name: "\(name).se", channels: mid, hidden: space.seChannels(midChannels: mid))
            : nil
        project = PointwiseUnit(name: "\(name).project", inputs: mid, outputs: slot.outputChannels, activation: .none)
    }

    var parameters: [Parameter] {
        expand.parameters + depthwise.parameters + (squeezeExcite?.parameters ?? []) + project.parameters
    }

    var norms: [ElasticBatchNorm] { [expand.norm, depthwise.norm, project.norm] }

    /// x[N, H, W, in] → y[N, Ho, Wo, out].
    func forward(
        _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int, kernel: Int, ratio: Int, training: Bool
    ) -> (output: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        let mid = space.midChannels(inputChannels: slot.inputChannels, ratio: ratio)
        shape = (batch, height, width, mid)
        let expanded = expand.forward(
            x, rows: batch * height * width, inputs: slot.inputChannels, outputs: mid,
            training: training)
        let (dw, outH, outW) = depthwise.forward(
            expanded, batch: batch, height: height, width: width, channels: mid,
            kernel: kernel, training: training)
        var projected = UnsafePointer(dw)
        if let squeezeExcite {
            projected = UnsafePointer(
                squeezeExcite.forward(
                    dw, batch: batch, spatial: outH * outW, channels: mid, hidden: space.seChannels(midChannels: mid)))
        }
        let rows = batch * outH * outW
        let y = project.forward(projected, rows: rows, inputs: mid, outputs: slot.outputChannels, training: training)
        if slot.residual {
            Elementwise.add(y, x, output: y, count: rows * slot.outputChannels)
        }
        return (y, outH, outW)
    }

    /// Accumulates parameter gradients from dy; writes dx[N, H, W, in].
    func backward(_ dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>) {
        let (batch, height, width, mid) = shape
        let outRows =
            batch * SearchSpace.outputSide(height, stride: slot.stride)
            * SearchSpace.outputSide(width, stride: slot.stride)
        let dMid = midGradient.reserve(outRows * mid)
        project.backward(dy, inputGradient: dMid)
        var dDepthwise = dMid
        if let squeezeExcite {
            dDepthwise = midGradient2.reserve(outRows * mid)
            squeezeExcite.backward(dMid, inputGradient: dDepthwise)
        }
        let dExpanded =
            dDepthwise == dMid
            ? midGradient2.reserve(batch * height * width * mid)
            : midGradient.reserve(batch * height * width * mid)
        depthwise.backward(dDepthwise, inputGradient: dExpanded)
        expand.backward(dExpanded, inputGradient: dx)
        if slot.residual {
            Elementwise.add(dx, dy, output: dx, count: batch * height * width * slot.inputChannels)
        }
    }
}

/// The weight-sharing supernet of a `SearchSpace`: stem, elastic blocks, head and classifier, with a
/// forward pass for any `ArchConfig` and the matching backward pass.
///
/// Inputs are normalized images in NHWC at the space's image size; a smaller arch resolution resizes
/// them bilinearly first. Not thread-safe: one forward/backward at a time (kernels use the threads).
public final class ElasticSupernet {
    /// The search space this supernet covers.
    public let space: SearchSpace
    let stem: StemUnit
    let blocks: [ElasticBlock]
    let head: PointwiseUnit
    /// Classifier weight [classes, head] and bias [classes].
    let classifierWeight: Parameter
    let classifierBias: Parameter
    private let resized = GrowableBuffer()
    private let pooled = GrowableBuffer()
    private let dropped = GrowableBuffer()
    private let dropMask = GrowableBuffer()
    private let logits = GrowableBuffer()
    private let pooledGradient = GrowableBuffer()
    private let headGradient = GrowableBuffer()
    private let pingGradient = GrowableBuffer()
    private let pongGradient = GrowableBuffer()
    private var pass = (
        batch: 0, arch: ArchConfig(resolution: 0, depths: [], kernels: [], expandRatios: []),
        headSide: 0, dropout: false
    )

    /// Builds a supernet with He (fan-out) initialization drawn from `seed`.
    public init(space: SearchSpace, seed: UInt64 = 0) {
        self.space = space
        stem = StemUnit(name: "stem", inputs: space.inputChannels, outputs: space.stemChannels)
        blocks = space.blockSlots.map { ElasticBlock(slot: $0, space: space) }
        head = PointwiseUnit(
            name: "head", inputs: space.finalStageChannels, outputs: space.headChannels,
            activation: .hswish)
        classifierWeight = Parameter(
            name: "classifier.weight", shape: [space.classes, space.headChannels],
            decays: true)
        classifierBias = Parameter(name: "classifier.bias", shape: [space.classes], decays: false)
        var random = SeededRandom(seed: seed)
        initialize(&random)
    }

    /// Every trainable parameter, in a fixed order (the order used in files).
    public var parameters: [Parameter] {
        stem.parameters + blocks.flatMap(\.parameters) + head.parameters + [classifierWeight, classifierBias]
    }

    /// BatchNorm running statistics, in a fixed order.
    public var state: [StateTensor] {
        allNorms.flatMap(\.state)
    }

    var allNorms: [ElasticBatchNorm] {
        [stem.norm] + blocks.flatMap(\.norms) + [head.norm]
    }

    /// Sets every BatchNorm's running-statistics momentum.
    public func setBatchNormMomentum(_ momentum: Float) {
        for norm in allNorms {
            norm.momentum = momentum
        }
    }

    /// Zeroes γ of the last BatchNorm of every residual block (BigNAS: residual blocks start as identity).
    public func zeroResidualGammas() {
        for block in blocks where block.slot.residual {
            block.project.norm.gamma.fill(0)
        }
    }

    /// Sets every parameter's gradient to zero.
    public func zeroGradients() {
        for parameter in parameters {
            parameter.gradient.zero()
        }
    }

    private func initialize(_ random: inout SeededRandom) {
        for parameter in parameters where parameter.decays {
            let shape = parameter.shape
            if shape.count == 4 {
                let fanOut = shape[0] * shape[2] * shape[3]
                parameter.fillGaussian(std: (2 / Float(fanOut)).squareRoot(), random: &random)
            } else {
                let bound = 1 / Float(shape[1]).squareRoot()
                for i in 0..<parameter.count {
                    parameter.value[i] = (random.nextUnitFloat() * 2 - 1) * bound
                }
            }
        }
    }

    /// Runs subnet `arch` on `batch` images x[N, S, S, C] (S = space.imageSize); returns logits[N × classes],
    /// valid until the next forward. `training` uses batch statistics (updating running ones) and, unless
    /// `dropout` is false, dropout before the classifier.
    public func forward(
        _ images: UnsafePointer<Float>, batch: Int, arch: ArchConfig, training: Bool, dropout: Bool = true,
        random: inout SeededRandom
    ) -> UnsafeMutablePointer<Float> {
        var x = images
        var side = space.imageSize
        if arch.resolution != side {
            let r = arch.resolution
            let out = resized.reserve(batch * r * r * space.inputChannels)
            Elementwise.resizeBilinear(
                input: images, batch: batch, height: side, width: side,
                channels: space.inputChannels, outputHeight: r, outputWidth: r, output: out)
            x = UnsafePointer(out)
            side = r
        }

        var features = UnsafePointer(stem.forward(x, batch: batch, side: side, training: training))
        var (height, width) = (side, side)
        for block in blocks where arch.isActive(slot: block.slot.index, maxDepth: space.maxDepth) {
            let i = block.slot.index
            let step = block.forward(
                features, batch: batch, height: height, width: width, kernel: arch.kernels[i],
                ratio: arch.expandRatios[i], training: training)
            features = UnsafePointer(step.output)
            (height, width) = (step.height, step.width)
        }
        let drop = training && dropout && space.dropout > 0
        pass = (batch, arch, height, drop)
        return classify(
            features, batch: batch, spatial: height * width, training: training, dropout: drop,
            random: &random)
    }

    private func classify(
        _ features: UnsafePointer<Float>, batch: Int, spatial: Int, training: Bool, dropout: Bool,
        random: inout SeededRandom
    ) -> UnsafeMutablePointer<Float> {
        let headOut = head.forward(
            features, rows: batch * spatial, inputs: space.finalStageChannels,
            outputs: space.headChannels, training: training)
        let h = space.headChannels
        let p = pooled.reserve(batch * h)
        Elementwise.globalAveragePool(input: headOut, batch: batch, spatial: spatial, channels: h, output: p)
        var classifierInput = UnsafePointer(p)
        if dropout {
            let d = dropped.reserve(batch * h)
            Elementwise.dropout(
                input: p, output: d, mask: dropMask.reserve(batch * h), count: batch * h,
                rate: space.dropout, random: &random)
            classifierInput = UnsafePointer(d)
        }

        let out = logits.reserve(batch * space.classes)
        Pointwise.product(
            input: classifierInput, rows: batch, inputs: h, weights: classifierWeight.value.pointer,
            weightRowStride: h, outputs: space.classes, output: out)
        Elementwise.addBias(out, rows: batch, channels: space.classes, bias: classifierBias.value.pointer)
        return out
    }

    /// Back-propagates dLogits[N × classes] of the last training forward, accumulating parameter gradients.
    public func backward(_ logitsGradient: UnsafePointer<Float>) {
        let (batch, arch, headSide, dropout) = pass
        let h = space.headChannels
        let classes = space.classes
        let classifierInput = dropout ? dropped.reserve(batch * h) : pooled.reserve(batch * h)
        GEMM.multiply(
            transposeA: true, transposeB: false, m: classes, n: h, k: batch, alpha: 1, a: logitsGradient,
            lda: classes, b: classifierInput, ldb: h, beta: 1, c: classifierWeight.gradient.pointer, ldc: h)
        Elementwise.biasGradient(
            outputGradient: logitsGradient, rows: batch, channels: classes,
            biasGradient: classifierBias.gradient.pointer)
        let dPooled = pooledGradient.reserve(batch * h)
        GEMM.multiply(
            transposeA: false, transposeB: false, m: batch, n: h, k: classes, alpha: 1, a: logitsGradient,
            lda: classes, b: classifierWeight.value.pointer, ldb: h, beta: 0, c: dPooled, ldc: h)
        if dropout {
            Elementwise.multiply(dPooled, dropMask.reserve(batch * h), output: dPooled, count: batch * h)
        }

        let spatial = headSide * headSide
        let dHead = headGradient.reserve(batch * spatial * h)
        Elementwise.globalAveragePoolBackward(
            outputGradient: dPooled, batch: batch, spatial: spatial, channels: h,
            inputGradient: dHead)
        let largest = batch * space.imageSize * space.imageSize * maxBlockWidth
        var dy = pingGradient.reserve(largest)
        var dx = pongGradient.reserve(largest)
        head.backward(dHead, inputGradient: dy)
        for block in blocks.reversed() where arch.isActive(slot: block.slot.index, maxDepth: space.maxDepth) {
            block.backward(dy, inputGradient: dx)
            swap(&dy, &dx)
        }
        stem.backward(dy)
    }

    private var maxBlockWidth: Int {
        max(space.stemChannels, space.stages.map(\.outputChannels).max() ?? 0)
    }
}

extension ElasticSupernet {
    /// Copies every parameter value and running statistic from `other` (same space).
    public func copyWeights(from other: ElasticSupernet) {
        precondition(other.space == space, "copyWeights needs supernets of the same space")
        for (mine, theirs) in zip(parameters, other.parameters) {
            mine.value.pointer.update(from: theirs.value.pointer, count: mine.count)
        }
        for (mine, theirs) in zip(state, other.state) {
            mine.buffer.pointer.update(from: theirs.buffer.pointer, count: mine.buffer.count)
        }
    }

    /// Every BatchNorm's parameters (γ, β) and running statistics, by norm name, in execution order.
    public var batchNormTensors: [(name: String, parameters: [Parameter], statistics: [FloatBuffer])] {
        allNorms.map { ($0.name, $0.parameters, [$0.runningMean, $0.runningVariance]) }
    }
}
