// One layer run as the engine's static inference network runs it, with its own random weights.
import Engine
import LatencyTable

/// A layer ready to run at batch 1: the engine calls of its op, its weights and its scratch.
///
/// What one run does, per op (the same calls, in the same order, as the daemon's inference network):
/// - conv: `DenseConv.forward` (im2col + GEMM, padding k / 2), then `BatchNorm.apply` with the activation;
/// - pointwise: `GEMM.multiply` over the pixels, then `BatchNorm.apply`;
/// - depthwise: `Depthwise.forward`, then `BatchNorm.apply`;
/// - squeeze_excite: `globalAveragePool`, GEMM + bias + relu to `hidden`, GEMM + bias + hsigmoid back, then
///   `channelScale` of the input in place (so `run` must get the same buffer as input and output);
/// - pool: `globalAveragePool`;
/// - linear: GEMM + bias.
///
/// Weights are uniform with variance 1 / fan-in and the folded batch norm is close to the identity, so values
/// keep their scale along a network and never become subnormal (which would slow the kernels down).
/// Not thread-safe: one run at a time.
final class LayerKernel {
    /// The shape.
    let key: LayerKey
    /// Floats read.
    let inputCount: Int
    /// Floats written.
    let outputCount: Int

    private let weights: FloatBuffer
    private let scale: FloatBuffer
    private let shift: FloatBuffer
    private let secondWeights: FloatBuffer
    private let hiddenBias: FloatBuffer
    private let scratch: FloatBuffer
    private let pooled: FloatBuffer
    private let hidden: FloatBuffer

    /// Allocates the layer's buffers and fills its weights from `generator`.
    init(_ key: LayerKey, generator: inout SeededGenerator) {
        self.key = key
        let outSide = key.outputSize
        inputCount = key.size * key.size * key.inputChannels
        outputCount = outSide * outSide * key.outputChannels
        let window = key.kernel * key.kernel
        var weightCount = 0
        var fanIn = 1
        var scratchCount = 0
        switch key.op {
        case .conv:
            weightCount = key.outputChannels * key.inputChannels * window
            fanIn = key.inputChannels * window
            scratchCount = DenseConv.scratchCount(
                batch: 1, height: key.size, width: key.size, inputChannels: key.inputChannels, kernel: key.kernel,
                stride: key.stride, padding: key.kernel / 2)
        case .pointwise, .linear:
            weightCount = key.outputChannels * key.inputChannels
            fanIn = key.inputChannels
        case .depthwise:
            weightCount = window * key.outputChannels
            fanIn = window
        case .squeezeExcite:
            weightCount = key.hidden * key.inputChannels
            fanIn = key.inputChannels
        case .pool:
            break
        }
        weights = Self.uniform(weightCount, fanIn: fanIn, &generator)
        scale = Self.near(key.outputChannels, 1, &generator)
        shift = Self.near(key.outputChannels, 0, &generator)
        let seHidden = key.op == .squeezeExcite ? key.hidden : 0
        secondWeights = Self.uniform(key.outputChannels * seHidden, fanIn: max(seHidden, 1), &generator)
        hiddenBias = Self.near(seHidden, 0, &generator)
        scratch = FloatBuffer(count: scratchCount)
        pooled = FloatBuffer(count: key.op == .squeezeExcite ? key.inputChannels : 0)
        hidden = FloatBuffer(count: seHidden)
    }

    /// Runs the layer once: reads `inputCount` floats, writes `outputCount` floats (in place for squeeze-excite).
    func run(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        let outSide = key.outputSize
        let rows = outSide * outSide
        switch key.op {
        case .conv:
            DenseConv.forward(
                input: input, batch: 1, height: key.size, width: key.size, inputChannels: key.inputChannels,
                weights: weights.pointer, bias: nil, outputChannels: key.outputChannels, kernel: key.kernel,
                stride: key.stride, padding: key.kernel / 2, output: output, scratch: scratch.pointer)
            normalize(output, rows: rows)
        case .pointwise:
            GEMM.multiply(
                transposeA: false, transposeB: true, m: rows, n: key.outputChannels, k: key.inputChannels, alpha: 1,
                a: input, lda: key.inputChannels, b: weights.pointer, ldb: key.inputChannels, beta: 0, c: output,
                ldc: key.outputChannels)
            normalize(output, rows: rows)
        case .depthwise:
            Depthwise.forward(
                input: input, batch: 1, height: key.size, width: key.size, channels: key.inputChannels,
                weights: weights.pointer, kernel: key.kernel, stride: key.stride, output: output)
            normalize(output, rows: rows)
        case .squeezeExcite:
            excite(input, output)
        case .pool:
            Elementwise.globalAveragePool(
                input: input, batch: 1, spatial: key.size * key.size, channels: key.inputChannels, output: output)
        case .linear:
            GEMM.multiply(
                transposeA: false, transposeB: true, m: 1, n: key.outputChannels, k: key.inputChannels, alpha: 1,
                a: input, lda: key.inputChannels, b: weights.pointer, ldb: key.inputChannels, beta: 0, c: output,
                ldc: key.outputChannels)
            Elementwise.addBias(output, rows: 1, channels: key.outputChannels, bias: shift.pointer)
        }
    }

    private func normalize(_ output: UnsafeMutablePointer<Float>, rows: Int) {
        BatchNorm.apply(
            input: output, rows: rows, channels: key.outputChannels, scale: scale.pointer, shift: shift.pointer,
            activation: Self.engineActivation(key.activation), preActivation: nil, output: output)
    }

    private func excite(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        let channels = key.inputChannels
        let spatial = key.size * key.size
        Elementwise.globalAveragePool(
            input: input, batch: 1, spatial: spatial, channels: channels, output: pooled.pointer)
        GEMM.multiply(
            transposeA: false, transposeB: true, m: 1, n: key.hidden, k: channels, alpha: 1, a: pooled.pointer,
            lda: channels, b: weights.pointer, ldb: channels, beta: 0, c: hidden.pointer, ldc: key.hidden)
        Elementwise.addBias(hidden.pointer, rows: 1, channels: key.hidden, bias: hiddenBias.pointer)
        Elementwise.activate(.relu, input: hidden.pointer, output: hidden.pointer, count: key.hidden)
        GEMM.multiply(
            transposeA: false, transposeB: true, m: 1, n: channels, k: key.hidden, alpha: 1, a: hidden.pointer,
            lda: key.hidden, b: secondWeights.pointer, ldb: key.hidden, beta: 0, c: pooled.pointer, ldc: channels)
        Elementwise.addBias(pooled.pointer, rows: 1, channels: channels, bias: shift.pointer)
        Elementwise.activate(
            Self.engineActivation(key.activation), input: pooled.pointer, output: pooled.pointer, count: channels)
        Elementwise.channelScale(
            input: input, batch: 1, spatial: spatial, channels: channels, scale: pooled.pointer, output: output)
    }

    /// The engine's activation for a table activation.
    static func engineActivation(_ activation: LayerActivation) -> ActivationKind {
        switch activation {
        case .none: .none
        case .relu: .relu
        case .hswish: .hswish
        case .hsigmoid: .hsigmoid
        }
    }

    /// `count` floats uniform in ±√(3 / fanIn): variance 1 / fanIn.
    static func uniform(_ count: Int, fanIn: Int, _ generator: inout SeededGenerator) -> FloatBuffer {
        let buffer = FloatBuffer(count: count)
        let bound = (3 / Float(max(fanIn, 1))).squareRoot()
        for index in 0..<count {
            buffer[index] = Float.random(in: -bound...bound, using: &generator)
        }
        return buffer
    }

    /// `count` floats within 0.05 of `center`.
    static func near(_ count: Int, _ center: Float, _ generator: inout SeededGenerator) -> FloatBuffer {
        let buffer = FloatBuffer(count: count)
        for index in 0..<count {
            buffer[index] = center + Float.random(in: -0.05...0.05, using: &generator)
        }
        return buffer
    }
}
