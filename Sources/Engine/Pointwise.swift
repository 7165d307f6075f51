import EngineAVX512

/// The weights of a 1×1 convolution (PyTorch's OI layout, [outputs × inputs]) packed for `Pointwise.forward`:
/// panels of 16 output channels, each [inputs × 16] with the last one zero-padded.
public final class PackedPointwiseWeights: @unchecked Sendable {
    /// Input channels (the sum's length).
    public let inputs: Int
    /// Output channels.
    public let outputs: Int
    /// Panel j holds w[j * 16 + l, p] at (j * inputs + p) * 16 + l.
    let panels: FloatBuffer

    /// Output channels per panel: two 8-float vectors.
    static let panelWidth = 16

    /// Packs `weights` [outputs × inputs], row-major.
    public init(_ weights: UnsafePointer<Float>, outputs: Int, inputs: Int) {
        precondition(outputs > 0 && inputs > 0, "a pointwise convolution needs channels")
        self.inputs = inputs
        self.outputs = outputs
        panels = FloatBuffer(count: Self.packedCount(outputs: outputs, inputs: inputs))
        Self.pack(weights, rowStride: inputs, outputs: outputs, inputs: inputs, into: panels.pointer)
    }

    /// Floats the packed form of an outputs × inputs matrix takes.
    static func packedCount(outputs: Int, inputs: Int) -> Int {
        (outputs + panelWidth - 1) / panelWidth * inputs * panelWidth
    }

    /// Writes the panels of w[o, p] = weights[o * rowStride + p] (o < outputs, p < inputs) to `destination`.
    static func pack(
        _ weights: UnsafePointer<Float>, rowStride: Int, outputs: Int, inputs: Int,
        into destination: UnsafeMutablePointer<Float>
    ) {
        let width = panelWidth
        destination.initialize(repeating: 0, count: packedCount(outputs: outputs, inputs: inputs))
        for o in 0..<outputs {
            let panel = destination + (o / width) * inputs * width + o % width
            let row = weights + o * rowStride
            for p in 0..<inputs {
                panel[p * width] = row[p]
            }
        }
    }

    /// Packs an OI (or OIHW with 1×1 kernels) array.
    public convenience init(_ weights: [Float], outputs: Int, inputs: Int) {
        precondition(weights.count == outputs * inputs, "pointwise weights must be outputs × inputs")
        self.init(weights.withUnsafeBufferPointer { $0.baseAddress! }, outputs: outputs, inputs: inputs)
    }
}

/// Inference 1×1 convolution on NHWC activations with the BatchNorm affine and the activation applied on the way
/// out: y[M × N] = f(x[M × K] · Wᵀ * scale + shift), or the bare product when `scale` is nil.
///
/// Method: the weights are packed once (`PackedPointwiseWeights`), the activations are read in place (no
/// packing per call, which took 14% of batch-1 inference through OpenBLAS): a register block of 6 rows × 16
/// output channels (12 AVX2 accumulators) runs the whole sum, broadcasting one activation per row and loading two
/// weight vectors per step. Every output is one fused multiply-add chain over p = 0..<K in order, then
/// `shift + sum * scale` as one more, then f — the same operations as `BatchNorm.apply` on the bare product, so
/// fused and unfused results are bitwise equal; none depends on the row blocking or the thread count.
public enum Pointwise {
    /// Rows per register block.
    static let blockRows = 6

    /// Below this many multiply-adds the product runs on the caller's thread (a few microseconds of work: the
    /// engine's idle threads spin, so a hand-off costs about one).
    static let minimumParallelCost = 1 << 16

    /// Products of at most this many rows (one image's pixels: 784 at 28 × 28) give each thread its own half of
    /// the rows (`Parallel.forRanges(affine:)`), matching `Depthwise`'s bands at batch 1; larger ones are
    /// handed out in smaller ranges, which evens out a thread slowed by another tenant.
    static let affineRows = 1024

    /// y = f(x · Wᵀ * scale + shift) (or x · Wᵀ when `scale` is nil); `rows` = N·H·W pixels. Overwrites `output`
    /// ([rows × outputs]); must not alias `input`.
    public static func forward(
        input: UnsafePointer<Float>, rows: Int, weights: PackedPointwiseWeights,
        scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: ActivationKind,
        output: UnsafeMutablePointer<Float>
    ) {
        precondition((scale == nil) == (shift == nil), "scale and shift come together")
        multiply(
            input, rows, UnsafePointer(weights.panels.pointer), weights.inputs, weights.outputs, scale, shift,
            activation, output)
    }

    /// y[rows × outputs] = x[rows × inputs] · Wᵀ with w[o, p] = weights[o * weightRowStride + p]: the bare product
    /// of `forward`, the weights packed on the way (into scratch) — for weights that change between calls, such as
    /// a training supernet's active slice. Bitwise equal to `forward` with the same weights packed once.
    public static func product(
        input: UnsafePointer<Float>, rows: Int, inputs: Int, weights: UnsafePointer<Float>, weightRowStride: Int,
        outputs: Int, output: UnsafeMutablePointer<Float>
    ) {
        guard rows > 0, outputs > 0 else {
            return
        }
        guard inputs > 0 else {
            output.update(repeating: 0, count: rows * outputs)
            return
        }
        ScratchPool.withFloats(PackedPointwiseWeights.packedCount(outputs: outputs, inputs: inputs)) { panels in
            PackedPointwiseWeights.pack(
                weights, rowStride: weightRowStride, outputs: outputs, inputs: inputs, into: panels)
            multiply(input, rows, UnsafePointer(panels), inputs, outputs, nil, nil, .none, output)
        }
    }

    /// Runs the product on the AVX-512 kernel where it is in use, else on the AVX2 one.
    private static func multiply(
        _ input: UnsafePointer<Float>, _ rows: Int, _ panels: UnsafePointer<Float>, _ k: Int, _ n: Int,
        _ scale: UnsafePointer<Float>?, _ shift: UnsafePointer<Float>?, _ activation: ActivationKind,
        _ output: UnsafeMutablePointer<Float>
    ) {
        if InstructionSet.useAVX512 {
            run512(input, rows, panels, k, n, scale, shift, activation, output)
        } else {
            run(input, rows, panels, k, n, scale, shift, activation, output)
        }
    }

    /// The AVX-512 path: register blocks of up to 12 rows × 16 channels, or few rows × several panels
    /// (`Pointwise512`).
    private static func run512(
        _ input: UnsafePointer<Float>, _ rows: Int, _ panels: UnsafePointer<Float>, _ k: Int, _ n: Int,
        _ scale: UnsafePointer<Float>?, _ shift: UnsafePointer<Float>?, _ activation: ActivationKind,
        _ output: UnsafeMutablePointer<Float>
    ) {
        let tasks = Pointwise512.taskCount(rows: rows, outputs: n)
        Parallel.forRanges(
            tasks, cost: rows * n * k, minimumCost: minimumParallelCost, affine: rows <= affineRows
        ) { range in
            Pointwise512.run(
                input: input, rows: rows, inputs: k, outputs: n, panels: panels, scale: scale, shift: shift,
                activation: Activation16(activation), output: output, tasks: range)
        }
    }

    private static func run(
        _ input: UnsafePointer<Float>, _ rows: Int, _ panels: UnsafePointer<Float>, _ k: Int, _ n: Int,
        _ scale: UnsafePointer<Float>?, _ shift: UnsafePointer<Float>?, _ activation: ActivationKind,
        _ output: UnsafeMutablePointer<Float>
    ) {
        let width = PackedPointwiseWeights.panelWidth
        let panelCount = (n + width - 1) / width
        let blocks = (rows + blockRows - 1) / blockRows
        // A task is one register block's rows times one panel, numbered block-major: contiguous ranges of them keep
        // a block's rows in cache while its panels go by, and even a batch-1 layer of 16 pixels splits evenly.
        Parallel.forRanges(blocks * panelCount, cost: rows * n * k, minimumCost: minimumParallelCost) { range in
            for task in range {
                let row = task / panelCount * blockRows
                let column = task % panelCount * width
                let count = min(blockRows, rows - row)
                let lanes = min(width, n - column)
                let a = input + row * k
                let b = panels + column * k
                let c = output + row * n + column
                let s = scale.map { $0 + column }
                let t = shift.map { $0 + column }
                // Whole blocks of 6, then of 2, then single rows (each its own specialization).
                var first = 0
                while first < count {
                    let left = count - first
                    let a = a + first * k
                    let c = c + first * n
                    if left >= 6 {
                        block(Rows6.self, a, k, b, c, n, lanes)
                        first += 6
                    } else if left >= 2 {
                        block(Rows2.self, a, k, b, c, n, lanes)
                        first += 2
                    } else {
                        block(Rows1.self, a, k, b, c, n, lanes)
                        first += 1
                    }
                }
                if let s, let t {
                    finish(c, rows: count, stride: n, lanes: lanes, scale: s, shift: t, activation: activation)
                }
            }
        }
    }

    /// One register block: `R.value` (1...6, a constant after specialization) rows of x from `a` (row stride k)
    /// times one weight panel `b`, written bare to `c` (row stride n), `lanes` (1...16) columns.
    @inline(__always)
    private static func block<R: RowCount>(
        _: R.Type, _ a: UnsafePointer<Float>, _ k: Int, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        _ n: Int, _ lanes: Int
    ) {
        let r = R.value
        var s00 = Vec8(), s01 = Vec8(), s10 = Vec8(), s11 = Vec8(), s20 = Vec8(), s21 = Vec8()
        var s30 = Vec8(), s31 = Vec8(), s40 = Vec8(), s41 = Vec8(), s50 = Vec8(), s51 = Vec8()
        for p in 0..<k {
            let w0 = load8(b + p * 16)
            let w1 = load8(b + p * 16 + 8)
            let x0 = Vec8(repeating: a[p])
            s00 = s00.addingProduct(x0, w0)
            s01 = s01.addingProduct(x0, w1)
            if r > 1 {
                let x1 = Vec8(repeating: a[k + p])
                s10 = s10.addingProduct(x1, w0)
                s11 = s11.addingProduct(x1, w1)
            }
            if r > 2 {
                let x2 = Vec8(repeating: a[2 * k + p])
                s20 = s20.addingProduct(x2, w0)
                s21 = s21.addingProduct(x2, w1)
            }
            if r > 3 {
                let x3 = Vec8(repeating: a[3 * k + p])
                s30 = s30.addingProduct(x3, w0)
                s31 = s31.addingProduct(x3, w1)
            }
            if r > 4 {
                let x4 = Vec8(repeating: a[4 * k + p])
                s40 = s40.addingProduct(x4, w0)
                s41 = s41.addingProduct(x4, w1)
            }
            if r > 5 {
                let x5 = Vec8(repeating: a[5 * k + p])
                s50 = s50.addingProduct(x5, w0)
                s51 = s51.addingProduct(x5, w1)
            }
        }
        let low = min(8, lanes)
        let high = lanes - low
        @inline(__always)
        func store(_ sum0: Vec8, _ sum1: Vec8, _ target: UnsafeMutablePointer<Float>) {
            storePartial(sum0, target, low)
            if high > 0 { storePartial(sum1, target + 8, high) }
        }
        store(s00, s01, c)
        if r > 1 { store(s10, s11, c + n) }
        if r > 2 { store(s20, s21, c + 2 * n) }
        if r > 3 { store(s30, s31, c + 3 * n) }
        if r > 4 { store(s40, s41, c + 4 * n) }
        if r > 5 { store(s50, s51, c + 5 * n) }
    }

    /// The way out of a written block of `rows` rows × `lanes` channels: z = shift + sum * scale, then the
    /// activation, in place (the same operations as `BatchNorm.apply`). Once per block, not per vector inside the
    /// register block: the compiler left such per-vector epilogues as calls.
    private static func finish(
        _ c: UnsafeMutablePointer<Float>, rows: Int, stride: Int, lanes: Int, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, activation: ActivationKind
    ) {
        switch activation {
        case .none: finish(IdentityActivation.self, c, rows, stride, lanes, scale, shift)
        case .relu: finish(ReLUActivation.self, c, rows, stride, lanes, scale, shift)
        case .hswish: finish(HSwishActivation.self, c, rows, stride, lanes, scale, shift)
        case .hsigmoid: finish(HSigmoidActivation.self, c, rows, stride, lanes, scale, shift)
        }
    }

    private static func finish<A: ActivationFunction>(
        _: A.Type, _ c: UnsafeMutablePointer<Float>, _ rows: Int, _ stride: Int, _ lanes: Int,
        _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>
    ) {
        for row in 0..<rows {
            let target = c + row * stride
            forEachGroup(lanes) { channel, count in
                let z = loadPartial(shift + channel, count)
                    .addingProduct(loadPartial(target + channel, count), loadPartial(scale + channel, count))
                storePartial(A.value(z), target + channel, count)
            }
        }
    }
}

extension Activation16 {
    /// The same function under the AVX-512 module's name.
    init(_ kind: ActivationKind) {
        switch kind {
        case .none: self = .none
        case .relu: self = .relu
        case .hswish: self = .hswish
        case .hsigmoid: self = .hsigmoid
        }
    }
}
