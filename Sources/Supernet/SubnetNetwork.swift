import Engine
import Synchronization

/// Pixel normalization: x = (u8 / 255 − mean) / std.
public struct Normalization: Codable, Hashable, Sendable {
    /// Mean of the pixel values scaled to [0, 1].
    public var mean: Float
    /// Standard deviation of the pixel values scaled to [0, 1].
    public var std: Float

    /// Fashion-MNIST's training-set statistics.
    public static let fashionMNIST = Normalization(mean: 0.286, std: 0.353)

    /// Creates a normalization.
    public init(mean: Float, std: Float) {
        self.mean = mean
        self.std = std
    }

    /// Writes `count` normalized floats from `pixels` into `output`.
    public func apply(_ pixels: UnsafePointer<UInt8>, count: Int, into output: UnsafeMutablePointer<Float>) {
        let a = 1 / (255 * std)
        let b = -mean / std
        for i in 0..<count {
            output[i] = Float(pixels[i]) * a + b
        }
    }
}

/// A tensor that a subnet needs is missing or has the wrong shape.
public struct SubnetError: Error, CustomStringConvertible {
    /// What is wrong, naming the tensor.
    public let message: String

    /// The message.
    public var description: String { message }
}

/// One convolution + BatchNorm (+ activation) of a static network, with BN folded for inference.
struct StaticConvolution {
    enum Kind { case stem, pointwise, depthwise }
    let kind: Kind
    let inputs: Int
    let outputs: Int
    let kernel: Int
    let stride: Int
    let activation: ActivationKind
    /// A depthwise layer's taps, taps-major [k² × C]; a stem's or pointwise layer's [outputs × inputs·k²] matrix
    /// packed for `Pointwise.forward`.
    enum Weights {
        case taps(FloatBuffer)
        case packed(PackedPointwiseWeights)
    }
    let weights: Weights
    let normName: String
    let gamma: [Float]
    let beta: [Float]
    let scale: FloatBuffer
    let shift: FloatBuffer

    init(
        kind: Kind, name: String, inputs: Int, outputs: Int, kernel: Int, stride: Int, activation: ActivationKind,
        tensors: TensorLookup
    ) throws {
        self.kind = kind
        self.inputs = inputs
        self.outputs = outputs
        self.kernel = kernel
        self.stride = stride
        self.activation = activation
        let weightShape = kind == .depthwise ? [outputs, 1, kernel, kernel] : [outputs, inputs, kernel, kernel]
        let raw = try tensors.values("\(name).conv.weight", shape: weightShape)
        if kind == .depthwise {
            let taps = FloatBuffer(count: raw.count)
            raw.withUnsafeBufferPointer {
                Elementwise.transpose(
                    $0.baseAddress!, rows: outputs, columns: kernel * kernel,
                    destination: taps.pointer)
            }
            weights = .taps(taps)
        } else {
            weights = .packed(PackedPointwiseWeights(raw, outputs: outputs, inputs: inputs * kernel * kernel))
        }
        normName = "\(name).bn"
        gamma = try tensors.values("\(name).bn.weight", shape: [outputs])
        beta = try tensors.values("\(name).bn.bias", shape: [outputs])
        let mean = try tensors.values("\(name).bn.running_mean", shape: [outputs])
        let variance = try tensors.values("\(name).bn.running_var", shape: [outputs])
        scale = FloatBuffer(count: outputs)
        shift = FloatBuffer(count: outputs)
        for c in 0..<outputs {
            (scale[c], shift[c]) = batchNormAffine(
                gamma: gamma[c], beta: beta[c], mean: mean[c],
                variance: variance[c])
        }
    }
}

/// Squeeze-excite weights of a static network, packed for `Pointwise.forward` (biases ride in its shift, with a
/// scale of ones: bias + sum · 1 is exactly sum + bias).
struct StaticSqueezeExcite {
    let channels: Int
    let hidden: Int
    let reduce: PackedPointwiseWeights
    let reduceBias: FloatBuffer
    let expand: PackedPointwiseWeights
    let expandBias: FloatBuffer
    let ones: FloatBuffer

    init(name: String, channels: Int, hidden: Int, tensors: TensorLookup) throws {
        self.channels = channels
        self.hidden = hidden
        reduce = PackedPointwiseWeights(
            try tensors.values("\(name).reduce.weight", shape: [hidden, channels, 1, 1]),
            outputs: hidden, inputs: channels)
        reduceBias = FloatBuffer(try tensors.values("\(name).reduce.bias", shape: [hidden]))
        expand = PackedPointwiseWeights(
            try tensors.values("\(name).expand.weight", shape: [channels, hidden, 1, 1]),
            outputs: channels, inputs: hidden)
        expandBias = FloatBuffer(try tensors.values("\(name).expand.bias", shape: [channels]))
        ones = FloatBuffer([Float](repeating: 1, count: max(channels, hidden)))
    }
}

struct StaticBlock {
    let expand: StaticConvolution
    let depthwise: StaticConvolution
    let squeezeExcite: StaticSqueezeExcite?
    let project: StaticConvolution
    let residual: Bool
}

/// Finds tensors by name and checks their shapes.
struct TensorLookup {
    let byName: [String: NamedTensor]

    init(_ tensors: [NamedTensor]) {
        byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func values(_ name: String, shape: [Int]) throws -> [Float] {
        guard let tensor = byName[name] else {
            throw SubnetError(message: "subnet tensor \(name) is missing")
        }
        guard tensor.shape == shape else {
            throw SubnetError(message: "subnet tensor \(name) has shape \(tensor.shape); the arch needs \(shape)")
        }
        return tensor.values
    }
}

/// Per-thread buffers for running a `SubnetNetwork`; reuse one per thread to avoid allocation.
///
/// `@unchecked Sendable`: a workspace may move between threads (the recalibration pool hands them out) but is used
/// by one at a time.
public final class InferenceWorkspace: @unchecked Sendable {
    let input = GrowableBuffer()
    let resized = GrowableBuffer()
    let ping = GrowableBuffer()
    let pong = GrowableBuffer()
    let mid1 = GrowableBuffer()
    let mid2 = GrowableBuffer()
    let scratch = GrowableBuffer()
    let pooled = GrowableBuffer()
    let hidden = GrowableBuffer()
    let gate = GrowableBuffer()
    let logits = GrowableBuffer()
    /// One workspace per part of a batch that runs tile by tile (see `SubnetNetwork.forward`).
    var parts: [InferenceWorkspace] = []

    /// Creates empty buffers (they grow on first use).
    public init() {}

    func part(_ index: Int) -> InferenceWorkspace {
        parts[index]
    }

    func ensureParts(_ count: Int) {
        while parts.count < count {
            parts.append(InferenceWorkspace())
        }
    }
}

/// Running sums of per-batch BatchNorm statistics during recalibration, one entry per norm in execution order.
final class CalibrationSums {
    var names: [String] = []
    var means: [[Double]] = []
    var variances: [[Double]] = []
    var weights: [Double] = []
    var index = 0
    let mean = FloatBuffer(count: 4096)
    let variance = FloatBuffer(count: 4096)
}

/// A static, inference-only network for one `Subnet`: no supernet needed, BatchNorm folded.
///
/// Immutable after creation and safe to share between threads, each using its own `InferenceWorkspace`.
public final class SubnetNetwork: @unchecked Sendable {
    /// The architecture.
    public let arch: ArchConfig
    /// The space that defines the topology.
    public let space: SearchSpace
    let stem: StaticConvolution
    let blocks: [StaticBlock]
    let head: StaticConvolution
    let classifier: PackedPointwiseWeights
    let classifierBias: FloatBuffer
    /// The classifier's scale in `Pointwise.forward` (its bias is the shift).
    let classifierOnes: FloatBuffer
    /// How small batches use the threads (see `runSmall`).
    private let threadChoice = Mutex(ThreadChoice())

    /// Builds the network from a subnet's tensors.
    /// - Throws: `SubnetError` naming a missing or mis-shaped tensor.
    public init(_ subnet: Subnet) throws {
        let space = subnet.space
        let arch = subnet.arch
        try arch.validate(in: space)
        self.space = space
        self.arch = arch
        let tensors = TensorLookup(subnet.tensors)
        stem = try StaticConvolution(
            kind: .stem, name: "stem", inputs: space.inputChannels,
            outputs: space.stemChannels, kernel: 3, stride: 1, activation: .hswish,
            tensors: tensors)
        var blocks: [StaticBlock] = []
        for slot in space.blockSlots where arch.isActive(slot: slot.index, maxDepth: space.maxDepth) {
            blocks.append(try Self.makeBlock(slot, arch: arch, space: space, tensors: tensors))
        }
        self.blocks = blocks
        head = try StaticConvolution(
            kind: .pointwise, name: "head", inputs: space.finalStageChannels,
            outputs: space.headChannels, kernel: 1, stride: 1, activation: .hswish,
            tensors: tensors)
        classifier = PackedPointwiseWeights(
            try tensors.values("classifier.weight", shape: [space.classes, space.headChannels]),
            outputs: space.classes, inputs: space.headChannels)
        classifierBias = FloatBuffer(try tensors.values("classifier.bias", shape: [space.classes]))
        classifierOnes = FloatBuffer([Float](repeating: 1, count: space.classes))
    }

    private static func makeBlock(
        _ slot: BlockSlot, arch: ArchConfig, space: SearchSpace, tensors: TensorLookup
    )
        throws -> StaticBlock
    {
        let name = "blocks.\(slot.index)"
        let mid = space.midChannels(inputChannels: slot.inputChannels, ratio: arch.expandRatios[slot.index])
        let k = arch.kernels[slot.index]
        let se =
            slot.squeezeExcite
            ? try StaticSqueezeExcite(
                name: "\(name).se", channels: mid, hidden: space.seChannels(midChannels: mid),
                tensors: tensors)
            : nil
        return StaticBlock(
            expand: try StaticConvolution(
                kind: .pointwise, name: "\(name).expand", inputs: slot.inputChannels,
                outputs: mid, kernel: 1, stride: 1, activation: slot.activation,
                tensors: tensors),
            depthwise: try StaticConvolution(
                kind: .depthwise, name: "\(name).dw", inputs: mid, outputs: mid,
                kernel: k, stride: slot.stride, activation: slot.activation,
                tensors: tensors),
            squeezeExcite: se,
            project: try StaticConvolution(
                kind: .pointwise, name: "\(name).project", inputs: mid,
                outputs: slot.outputChannels, kernel: 1, stride: 1, activation: .none,
                tensors: tensors),
            residual: slot.residual)
    }

    /// Logits[N × classes] for `batch` normalized images x[N, S, S, C] at the space's image size.
    /// - Warning: the logits live in `workspace`: valid until its next use, and only while it is alive
    ///   (wrap the use in `withExtendedLifetime(workspace)`).
    ///
    /// A batch larger than `tileImages` runs tile by tile: each thread claims `tileImages` images at a time and
    /// pushes them through the whole network, so a tile's activations stay in that core's cache instead of
    /// streaming the whole batch's through memory at every layer (measured with `supernet bench engine`: see the
    /// README). Each image's logits depend only on that image and the tile size, never on the thread count or on
    /// which thread ran the tile.
    public func forward(
        _ images: UnsafePointer<Float>, batch: Int, workspace: InferenceWorkspace
    )
        -> UnsafeMutablePointer<Float>
    {
        let tile = Self.tileImages
        guard batch > tile else {
            return runSmall(images, batch: batch, workspace: workspace)
        }
        let classes = space.classes
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let logits = workspace.logits.reserve(batch * classes)
        let tiles = (batch + tile - 1) / tile
        let parts = min(Parallel.threadCount, tiles)
        workspace.ensureParts(parts)
        // Tiles are claimed one at a time, so a thread slowed by another tenant of the machine takes fewer.
        let nextTile = Atomic<Int>(0)
        Parallel.forEach(parts) { part in
            let w = workspace.part(part)
            while true {
                let t = nextTile.add(1, ordering: .relaxed).oldValue
                guard t < tiles else {
                    break
                }
                let start = t * tile
                let n = min(tile, batch - start)
                let out = run(images + start * pixels, batch: n, workspace: w, calibration: nil)
                (logits + start * classes).update(from: out, count: n * classes)
            }
        }
        return logits
    }

    /// A small batch, whose layers are cut between the threads: on all threads or on the caller's alone, as
    /// `ThreadChoice` finds faster on this machine at the moment (the logits are the same either way). Concurrent
    /// calls share the choice and hold its lock only to ask and to report; one that finds it held runs on all
    /// threads, untimed. (A concurrent call that finds the worker pool busy runs alone yet reports as all threads,
    /// which blurs the averages but not the results.)
    private func runSmall(
        _ images: UnsafePointer<Float>, batch: Int, workspace: InferenceWorkspace
    ) -> UnsafeMutablePointer<Float> {
        guard Parallel.threadCount > 1, let all = threadChoice.withLockIfAvailable({ $0.next() }) else {
            return run(images, batch: batch, workspace: workspace, calibration: nil)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let logits =
            all
            ? run(images, batch: batch, workspace: workspace, calibration: nil)
            : Parallel.onCallerOnly { run(images, batch: batch, workspace: workspace, calibration: nil) }
        let elapsed = (clock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        threadChoice.withLock { $0.record(allThreads: all, seconds: seconds) }
        return logits
    }

    /// Images per tile of a large batch (see `forward`). Measured with `supernet bench engine` while another job
    /// shared the machine: 4 and 8 both beat whole-batch layers by 10–25% at batch 256, 16 and 32 by less.
    static let tileImages = 4

    func run(
        _ images: UnsafePointer<Float>, batch: Int, workspace w: InferenceWorkspace, calibration: CalibrationSums?
    )
        -> UnsafeMutablePointer<Float>
    {
        var x = images
        var side = space.imageSize
        let c0 = space.inputChannels
        if arch.resolution != side {
            let r = arch.resolution
            let out = w.resized.reserve(batch * r * r * c0)
            Elementwise.resizeBilinear(
                input: images, batch: batch, height: side, width: side, channels: c0,
                outputHeight: r, outputWidth: r, output: out)
            x = UnsafePointer(out)
            side = r
        }
        let largest = batch * side * side * maxWidth
        var current = w.ping.reserve(largest)
        var next = w.pong.reserve(largest)
        let stemScratch = w.scratch.reserve(
            DenseConv.scratchCount(
                batch: batch, height: side, width: side, inputChannels: c0, kernel: 3, stride: 1, padding: 1))
        apply(
            stem, x, batch: batch, height: side, width: side, output: current, scratch: stemScratch,
            calibration: calibration)

        var height = side
        for block in blocks {
            let outSide = SearchSpace.outputSide(height, stride: block.depthwise.stride)
            let mid = block.expand.outputs
            let e = w.mid1.reserve(batch * height * height * mid)
            apply(
                block.expand, current, batch: batch, height: height, width: height, output: e, scratch: nil,
                calibration: calibration)
            let d = w.mid2.reserve(batch * outSide * outSide * mid)
            apply(
                block.depthwise, e, batch: batch, height: height, width: height, output: d, scratch: nil,
                calibration: calibration)
            if let se = block.squeezeExcite {
                gate(se, d, batch: batch, spatial: outSide * outSide, workspace: w)
            }
            apply(
                block.project, d, batch: batch, height: outSide, width: outSide, output: next, scratch: nil,
                calibration: calibration)
            if block.residual {
                Elementwise.add(next, current, output: next, count: batch * outSide * outSide * block.project.outputs)
            }
            swap(&current, &next)
            height = outSide
        }
        return classify(current, batch: batch, spatial: height * height, workspace: w, calibration: calibration)
    }

    private var maxWidth: Int {
        max(space.stemChannels, space.stages.map(\.outputChannels).max() ?? 0)
    }

    private func classify(
        _ features: UnsafePointer<Float>, batch: Int, spatial: Int, workspace w: InferenceWorkspace,
        calibration: CalibrationSums?
    ) -> UnsafeMutablePointer<Float> {
        let h = head.outputs
        let headOut = w.mid1.reserve(batch * spatial * h)
        apply(
            head, features, batch: batch, height: spatial, width: 1, output: headOut, scratch: nil,
            calibration: calibration)
        let pooled = w.pooled.reserve(batch * h)
        Elementwise.globalAveragePool(input: headOut, batch: batch, spatial: spatial, channels: h, output: pooled)
        let classes = space.classes
        let logits = w.logits.reserve(batch * classes)
        Pointwise.forward(
            input: pooled, rows: batch, weights: classifier, scale: classifierOnes.pointer,
            shift: classifierBias.pointer, activation: .none, output: logits)
        return logits
    }

    /// Convolution + BatchNorm (+ activation): folded statistics, or batch statistics when calibrating.
    private func apply(
        _ layer: StaticConvolution, _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int,
        output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?,
        calibration: CalibrationSums?
    ) {
        let outH = SearchSpace.outputSide(height, stride: layer.stride)
        let outW = SearchSpace.outputSide(width, stride: layer.stride)
        let rows = batch * outH * outW
        // BatchNorm and activation ride along unless calibrating (which needs the bare output's statistics); both
        // ways give the same bits (see `Pointwise` and `Depthwise.forward`).
        let fused = calibration == nil
        let scale = fused ? layer.scale.pointer : nil
        let shift = fused ? layer.shift.pointer : nil
        switch layer.weights {
        case .packed(let weights):
            var columns = x
            if layer.kind == .stem {
                DenseConv.imageToColumns(
                    x, batch: batch, height: height, width: width, channels: layer.inputs, kernel: layer.kernel,
                    stride: layer.stride, padding: layer.kernel / 2, columns: scratch!)
                columns = UnsafePointer(scratch!)
            }
            Pointwise.forward(
                input: columns, rows: rows, weights: weights, scale: scale, shift: shift,
                activation: layer.activation, output: output)
        case .taps(let taps):
            Depthwise.forward(
                input: x, batch: batch, height: height, width: width, channels: layer.inputs,
                weights: taps.pointer, kernel: layer.kernel, stride: layer.stride, scale: scale, shift: shift,
                activation: layer.activation, output: output)
        }
        guard let calibration else {
            return
        }

        calibration.record(layer, output: output, rows: rows)
        BatchNorm.apply(
            input: output, rows: rows, channels: layer.outputs, scale: calibration.mean.pointer,
            shift: calibration.variance.pointer, activation: layer.activation, preActivation: nil, output: output)
    }

    private func gate(
        _ se: StaticSqueezeExcite, _ x: UnsafeMutablePointer<Float>, batch: Int, spatial: Int,
        workspace w: InferenceWorkspace
    ) {
        let c = se.channels
        let s = se.hidden
        let pooled = w.pooled.reserve(batch * c)
        Elementwise.globalAveragePool(input: x, batch: batch, spatial: spatial, channels: c, output: pooled)
        let hidden = w.hidden.reserve(batch * s)
        Pointwise.forward(
            input: pooled, rows: batch, weights: se.reduce, scale: se.ones.pointer, shift: se.reduceBias.pointer,
            activation: .relu, output: hidden)
        let gate = w.gate.reserve(batch * c)
        Pointwise.forward(
            input: hidden, rows: batch, weights: se.expand, scale: se.ones.pointer, shift: se.expandBias.pointer,
            activation: .hsigmoid, output: gate)
        Elementwise.channelScale(input: x, batch: batch, spatial: spatial, channels: c, scale: gate, output: x)
    }
}

extension CalibrationSums {
    /// Records the batch statistics of a layer's pre-norm output and leaves the affine form that normalizes
    /// with them in `mean` (scale) and `variance` (shift).
    func record(_ layer: StaticConvolution, output: UnsafePointer<Float>, rows: Int) {
        let c = layer.outputs
        BatchNorm.statistics(input: output, rows: rows, channels: c, mean: mean.pointer, variance: variance.pointer)
        if index == means.count {
            names.append(layer.normName)
            means.append([Double](repeating: 0, count: c))
            variances.append([Double](repeating: 0, count: c))
            weights.append(0)
        }
        weights[index] += Double(rows)
        for i in 0..<c {
            means[index][i] += Double(mean[i]) * Double(rows)
            variances[index][i] += Double(variance[i]) * Double(rows)
            (mean[i], variance[i]) = batchNormAffine(
                gamma: layer.gamma[i], beta: layer.beta[i], mean: mean[i],
                variance: variance[i])
        }
        index += 1
    }
}

extension Subnet {
    /// Default number of calibration images (Once-for-All's choice).
    public static let defaultCalibrationCount = 2000

    /// The same subnet with BatchNorm running statistics re-estimated on `images` (u8, N × S × S × C at the
    /// space's image size): batches of `batchSize` are normalized with their own statistics, as in training,
    /// and each norm's running mean and variance become the averages of its batch means and (biased)
    /// variances. Deterministic: fixed batches, double-precision sums in batch order.
    public func recalibrated(
        images: [UInt8], count: Int, normalization: Normalization, batchSize: Int = 200
    )
        throws -> Subnet
    {
        let network = try SubnetNetwork(self)
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        precondition(images.count >= count * pixels, "recalibration needs \(count) images of \(pixels) pixels")
        let sums = CalibrationSums()
        let workspace = InferenceWorkspace.borrowForCalibration()
        defer { InferenceWorkspace.returnAfterCalibration(workspace) }
        let input = FloatBuffer(count: batchSize * pixels)
        images.withUnsafeBufferPointer { all in
            var start = 0
            while start < count {
                let n = min(batchSize, count - start)
                normalization.apply(all.baseAddress! + start * pixels, count: n * pixels, into: input.pointer)
                sums.index = 0
                withExtendedLifetime(workspace) {
                    _ = network.run(input.pointer, batch: n, workspace: workspace, calibration: sums)
                }
                start += n
            }
        }
        return updatingStatistics(sums)
    }

    private func updatingStatistics(_ sums: CalibrationSums) -> Subnet {
        var copy = self
        var positions: [String: Int] = [:]
        for (i, tensor) in tensors.enumerated() {
            positions[tensor.name] = i
        }
        for (k, name) in sums.names.enumerated() {
            let w = sums.weights[k]
            copy.tensors[positions["\(name).running_mean"]!].values = sums.means[k].map { Float($0 / w) }
            copy.tensors[positions["\(name).running_var"]!].values = sums.variances[k].map { Float($0 / w) }
        }
        return copy
    }
}

extension InferenceWorkspace {
    /// Idle workspaces of finished recalibrations, at most `keptForCalibration`: a daemon recalibrates subnet after
    /// subnet, and a fresh workspace's first touch of its ~100 MB (batch 200) cost 7% of a recalibration in the
    /// kernel's page clearing.
    private static let idle = Mutex<[InferenceWorkspace]>([])

    /// Workspaces kept between recalibrations (one per concurrent recalibration on a 2-core machine).
    static let keptForCalibration = 2

    static func borrowForCalibration() -> InferenceWorkspace {
        idle.withLock { $0.popLast() } ?? InferenceWorkspace()
    }

    static func returnAfterCalibration(_ workspace: InferenceWorkspace) {
        idle.withLock { list in
            if list.count < keptForCalibration {
                list.append(workspace)
            }
        }
    }
}
