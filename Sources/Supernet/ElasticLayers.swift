import Engine

/// Activations of one layer for the current batch, kept for the backward pass.
///
/// Buffers grow to the largest batch seen and are reused; nothing is allocated per step.
final class ActivationStore {
    let convOutput = GrowableBuffer()
    let output = GrowableBuffer()
    let gradient = GrowableBuffer()
}

/// A 1×1 convolution (no bias) + BatchNorm + activation with elastic input and output widths.
///
/// Weight `[outMax, inMax, 1, 1]`; an elastic use takes the top-left `[out × in]` block (row stride inMax),
/// which is where importance sorting puts the most important channels.
final class PointwiseUnit {
    let weight: Parameter
    let norm: ElasticBatchNorm
    let activation: ActivationKind
    let maxInput: Int
    let maxOutput: Int
    private let store = ActivationStore()
    private var input: UnsafePointer<Float>?
    private var rows = 0
    private var inChannels = 0
    private var outChannels = 0

    init(name: String, inputs: Int, outputs: Int, activation: ActivationKind) {
        maxInput = inputs
        maxOutput = outputs
        self.activation = activation
        weight = Parameter(name: "\(name).conv.weight", shape: [outputs, inputs, 1, 1], decays: true)
        norm = ElasticBatchNorm(name: "\(name).bn", channels: outputs)
    }

    var parameters: [Parameter] { [weight] + norm.parameters }

    /// Runs the unit on x[rows × inputs]; returns y[rows × outputs] (valid until the next forward).
    func forward(
        _ x: UnsafePointer<Float>, rows: Int, inputs: Int, outputs: Int, training: Bool
    ) -> UnsafeMutablePointer<Float> {
        input = x
        self.rows = rows
        inChannels = inputs
        outChannels = outputs
        let count = rows * outputs
        let conv = store.convOutput.reserve(count)
        Pointwise.product(
            input: x, rows: rows, inputs: inputs, weights: weight.value.pointer, weightRowStride: maxInput,
            outputs: outputs, output: conv)

        norm.prepare(input: conv, rows: rows, channels: outputs, training: training)
        let y = store.output.reserve(count)
        BatchNorm.apply(
            input: conv, rows: rows, channels: outputs, scale: norm.scale.pointer,
            shift: norm.shift.pointer, activation: activation, preActivation: nil, output: y)
        return y
    }

    /// Accumulates parameter gradients from dy[rows × outputs]; writes dx[rows × inputs] when given.
    func backward(_ dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?) {
        let count = rows * outChannels
        let conv = store.convOutput.reserve(count)
        let dz = store.gradient.reserve(count)
        BatchNorm.backward(
            outputGradient: dy, input: conv, rows: rows, channels: outChannels,
            mean: norm.mean.pointer, invStd: norm.invStd.pointer, gamma: norm.gamma.value.pointer,
            activation: activation, scale: norm.scale.pointer, shift: norm.shift.pointer,
            inputGradient: dz, gammaGradient: norm.gamma.gradient.pointer,
            betaGradient: norm.beta.gradient.pointer)

        GEMM.multiply(
            transposeA: true, transposeB: false, m: outChannels, n: inChannels, k: rows, alpha: 1,
            a: dz, lda: outChannels, b: input!, ldb: inChannels, beta: 1,
            c: weight.gradient.pointer, ldc: maxInput)
        if let dx {
            GEMM.multiply(
                transposeA: false, transposeB: false, m: rows, n: inChannels, k: outChannels, alpha: 1,
                a: dz, lda: outChannels, b: weight.value.pointer, ldb: maxInput, beta: 0,
                c: dx, ldc: inChannels)
        }
    }
}

/// Copies the centred k×k window of each channel's K×K kernel: src[C × K²] → dst[C × k²].
func cropKernels(
    _ src: UnsafePointer<Float>, from big: Int, to small: Int, channels: Int,
    into dst: UnsafeMutablePointer<Float>
) {
    let offset = (big - small) / 2
    for c in 0..<channels {
        for i in 0..<small {
            for j in 0..<small {
                dst[c * small * small + i * small + j] = src[c * big * big + (i + offset) * big + j + offset]
            }
        }
    }
}

/// Adds dst's centred k×k window of each channel's K×K kernel: dst[C × K²] += src[C × k²] placed centrally.
func addCroppedGradient(
    _ src: UnsafePointer<Float>, from small: Int, to big: Int, channels: Int,
    into dst: UnsafeMutablePointer<Float>
) {
    let offset = (big - small) / 2
    for c in 0..<channels {
        for i in 0..<small {
            for j in 0..<small {
                dst[c * big * big + (i + offset) * big + j + offset] += src[c * small * small + i * small + j]
            }
        }
    }
}

/// Depthwise convolution with an elastic kernel size and width, + BatchNorm + activation.
///
/// Only the largest kernel `[Cmax, 1, K, K]` is stored. A smaller kernel k is the centre of the next
/// larger one times a learned k²×k² matrix shared by all channels of the layer (Once-for-All's kernel
/// transformation): `W_k = crop_k(W_next) · M_kᵀ`, with M_k initialized to the identity.
final class ElasticDepthwiseUnit {
    let weight: Parameter
    /// Transformation matrices by kernel size, for every size but the largest.
    let transforms: [Int: Parameter]
    let norm: ElasticBatchNorm
    let kernels: [Int]
    let activation: ActivationKind
    let stride: Int
    let maxChannels: Int
    private let store = ActivationStore()
    /// Per-kernel-size channel-major kernels W_k [C × k²] of the current forward.
    private var levels: [Int: FloatBuffer] = [:]
    private var crops: [Int: FloatBuffer] = [:]
    private var levelGradients: [Int: FloatBuffer] = [:]
    private let taps: FloatBuffer
    private let tapGradient: FloatBuffer
    private var input: UnsafePointer<Float>?
    private var shape = (batch: 0, height: 0, width: 0, channels: 0, kernel: 0)

    var largest: Int { kernels.last! }

    init(name: String, channels: Int, kernels: [Int], stride: Int, activation: ActivationKind) {
        self.kernels = kernels.sorted()
        self.activation = activation
        self.stride = stride
        maxChannels = channels
        let big = kernels.max()!
        weight = Parameter(name: "\(name).conv.weight", shape: [channels, 1, big, big], decays: true)
        var transforms: [Int: Parameter] = [:]
        for k in kernels where k != big {
            let matrix = Parameter(name: "\(name).transform_\(k)x\(k)", shape: [k * k, k * k], decays: false)
            for i in 0..<(k * k) {
                matrix.value[i * k * k + i] = 1
            }
            transforms[k] = matrix
            levels[k] = FloatBuffer(count: channels * k * k)
            crops[k] = FloatBuffer(count: channels * k * k)
            levelGradients[k] = FloatBuffer(count: channels * k * k)
        }
        self.transforms = transforms
        levelGradients[big] = FloatBuffer(count: channels * big * big)
        taps = FloatBuffer(count: channels * big * big)
        tapGradient = FloatBuffer(count: channels * big * big)
        norm = ElasticBatchNorm(name: "\(name).bn", channels: channels)
    }

    var parameters: [Parameter] { [weight] + transforms.keys.sorted().map { transforms[$0]! } + norm.parameters }

    /// The channel-major kernel W_k[C × k²] for the first `channels` channels (valid until the next call).
    func effectiveKernel(size k: Int, channels: Int) -> UnsafePointer<Float> {
        var current = UnsafePointer(weight.value.pointer)
        var currentSize = largest
        for size in kernels.reversed() where size < currentSize && size >= k {
            let crop = crops[size]!.pointer
            let level = levels[size]!.pointer
            cropKernels(current, from: currentSize, to: size, channels: channels, into: crop)
            GEMM.multiply(
                transposeA: false, transposeB: true, m: channels, n: size * size, k: size * size,
                alpha: 1, a: crop, lda: size * size, b: transforms[size]!.value.pointer, ldb: size * size,
                beta: 0, c: level, ldc: size * size)
            current = UnsafePointer(level)
            currentSize = size
        }
        return current
    }

    /// x[N, H, W, C] → y[N, Ho, Wo, C]; returns y and its spatial size.
    func forward(
        _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int, kernel: Int, training: Bool
    ) -> (output: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        input = x
        shape = (batch, height, width, channels, kernel)
        let kernelCM = effectiveKernel(size: kernel, channels: channels)
        Elementwise.transpose(kernelCM, rows: channels, columns: kernel * kernel, destination: taps.pointer)

        let outH = SearchSpace.outputSide(height, stride: stride)
        let outW = SearchSpace.outputSide(width, stride: stride)
        let rows = batch * outH * outW
        let conv = store.convOutput.reserve(rows * channels)
        Depthwise.forward(
            input: x, batch: batch, height: height, width: width, channels: channels,
            weights: taps.pointer, kernel: kernel, stride: stride, output: conv)

        norm.prepare(input: conv, rows: rows, channels: channels, training: training)
        let y = store.output.reserve(rows * channels)
        BatchNorm.apply(
            input: conv, rows: rows, channels: channels, scale: norm.scale.pointer,
            shift: norm.shift.pointer, activation: activation, preActivation: nil, output: y)
        return (y, outH, outW)
    }

    /// Accumulates parameter gradients from dy; writes dx[N, H, W, C].
    func backward(_ dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>) {
        let (batch, height, width, channels, kernel) = shape
        let rows =
            batch * SearchSpace.outputSide(height, stride: stride) * SearchSpace.outputSide(width, stride: stride)
        let count = rows * channels
        let dz = store.gradient.reserve(count)
        BatchNorm.backward(
            outputGradient: dy, input: store.convOutput.reserve(count), rows: rows,
            channels: channels, mean: norm.mean.pointer, invStd: norm.invStd.pointer,
            gamma: norm.gamma.value.pointer, activation: activation, scale: norm.scale.pointer,
            shift: norm.shift.pointer, inputGradient: dz,
            gammaGradient: norm.gamma.gradient.pointer, betaGradient: norm.beta.gradient.pointer)

        Depthwise.backwardInput(
            outputGradient: dz, batch: batch, height: height, width: width, channels: channels,
            weights: taps.pointer, kernel: kernel, stride: stride, inputGradient: dx)
        tapGradient.zero(kernel * kernel * channels)
        Depthwise.backwardWeights(
            input: input!, outputGradient: dz, batch: batch, height: height, width: width,
            channels: channels, kernel: kernel, stride: stride,
            weightGradient: tapGradient.pointer)
        let dKernel = levelGradients[kernel]!.pointer
        Elementwise.transpose(tapGradient.pointer, rows: kernel * kernel, columns: channels, destination: dKernel)
        propagateKernelGradient(from: kernel, channels: channels)
    }

    /// Pushes dW_k back through the chain of transformations into the stored kernel and the matrices.
    private func propagateKernelGradient(from kernel: Int, channels: Int) {
        var size = kernel
        while size != largest {
            let parent = kernels.first { $0 > size }!
            let grad = levelGradients[size]!.pointer
            let matrix = transforms[size]!
            let kk = size * size
            GEMM.multiply(
                transposeA: true, transposeB: false, m: kk, n: kk, k: channels, alpha: 1,
                a: grad, lda: kk, b: crops[size]!.pointer, ldb: kk, beta: 1,
                c: matrix.gradient.pointer, ldc: kk)
            // The tap gradient is consumed already: reuse it for d crop = dW_k · M.
            let scratch = tapGradient.pointer
            GEMM.multiply(
                transposeA: false, transposeB: false, m: channels, n: kk, k: kk, alpha: 1,
                a: grad, lda: kk, b: matrix.value.pointer, ldb: kk, beta: 0, c: scratch, ldc: kk)
            let parentGradient = levelGradients[parent]!.pointer
            parentGradient.update(repeating: 0, count: channels * parent * parent)
            addCroppedGradient(scratch, from: size, to: parent, channels: channels, into: parentGradient)
            size = parent
        }
        let dW = levelGradients[largest]!.pointer
        Elementwise.add(
            weight.gradient.pointer, dW, output: weight.gradient.pointer,
            count: channels * largest * largest)
    }
}

/// Squeeze-excite with elastic width: pooled → 1×1 reduce (+bias) → ReLU → 1×1 expand (+bias) → hard sigmoid
/// → channel gate. Reduce weight `[Smax, Cmax]`, expand weight `[Cmax, Smax]`; a width C uses S(C) hidden units.
final class ElasticSqueezeExcite {
    let reduceWeight: Parameter
    let reduceBias: Parameter
    let expandWeight: Parameter
    let expandBias: Parameter
    let maxChannels: Int
    let maxHidden: Int
    private let pooled = GrowableBuffer()
    private let hidden = GrowableBuffer()
    private let hiddenActive = GrowableBuffer()
    private let gatePre = GrowableBuffer()
    private let gate = GrowableBuffer()
    private let output = GrowableBuffer()
    private let gateGradient = GrowableBuffer()
    private let hiddenGradient = GrowableBuffer()
    private let pooledGradient = GrowableBuffer()
    private let spreadGradient = GrowableBuffer()
    private var input: UnsafePointer<Float>?
    private var shape = (batch: 0, spatial: 0, channels: 0, hidden: 0)

    init(name: String, channels: Int, hidden: Int) {
        maxChannels = channels
        maxHidden = hidden
        reduceWeight = Parameter(name: "\(name).reduce.weight", shape: [hidden, channels, 1, 1], decays: true)
        reduceBias = Parameter(name: "\(name).reduce.bias", shape: [hidden], decays: false)
        expandWeight = Parameter(name: "\(name).expand.weight", shape: [channels, hidden, 1, 1], decays: true)
        expandBias = Parameter(name: "\(name).expand.bias", shape: [channels], decays: false)
    }

    var parameters: [Parameter] { [reduceWeight, reduceBias, expandWeight, expandBias] }

    /// y[N, S, C] = x · hsigmoid(expand(relu(reduce(mean_S x)))).
    func forward(
        _ x: UnsafePointer<Float>, batch: Int, spatial: Int, channels: Int, hidden s: Int
    )
        -> UnsafeMutablePointer<Float>
    {
        input = x
        shape = (batch, spatial, channels, s)
        let p = pooled.reserve(batch * channels)
        Elementwise.globalAveragePool(input: x, batch: batch, spatial: spatial, channels: channels, output: p)

        let h = hidden.reserve(batch * s)
        Pointwise.product(
            input: p, rows: batch, inputs: channels, weights: reduceWeight.value.pointer, weightRowStride: maxChannels,
            outputs: s, output: h)
        Elementwise.addBias(h, rows: batch, channels: s, bias: reduceBias.value.pointer)
        let r = hiddenActive.reserve(batch * s)
        Elementwise.activate(.relu, input: h, output: r, count: batch * s)

        let g = gatePre.reserve(batch * channels)
        Pointwise.product(
            input: r, rows: batch, inputs: s, weights: expandWeight.value.pointer, weightRowStride: maxHidden,
            outputs: channels, output: g)
        Elementwise.addBias(g, rows: batch, channels: channels, bias: expandBias.value.pointer)
        let gateValues = gate.reserve(batch * channels)
        Elementwise.activate(.hsigmoid, input: g, output: gateValues, count: batch * channels)

        let y = output.reserve(batch * spatial * channels)
        Elementwise.channelScale(
            input: x, batch: batch, spatial: spatial, channels: channels, scale: gateValues,
            output: y)
        return y
    }

    /// Accumulates parameter gradients; writes dx[N, S, C] (must not alias dy).
    func backward(_ dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>) {
        let (batch, spatial, channels, s) = shape
        let dGate = gateGradient.reserve(batch * channels)
        Elementwise.channelScaleBackward(
            input: input!, outputGradient: dy, batch: batch, spatial: spatial,
            channels: channels, scale: gate.reserve(batch * channels),
            inputGradient: dx, scaleGradient: dGate)
        Elementwise.activationBackward(
            .hsigmoid, input: gatePre.reserve(batch * channels), outputGradient: dGate,
            inputGradient: dGate, count: batch * channels)

        let r = hiddenActive.reserve(batch * s)
        GEMM.multiply(
            transposeA: true, transposeB: false, m: channels, n: s, k: batch, alpha: 1, a: dGate,
            lda: channels, b: r, ldb: s, beta: 1, c: expandWeight.gradient.pointer, ldc: maxHidden)
        Elementwise.biasGradient(
            outputGradient: dGate, rows: batch, channels: channels,
            biasGradient: expandBias.gradient.pointer)
        let dh = hiddenGradient.reserve(batch * s)
        GEMM.multiply(
            transposeA: false, transposeB: false, m: batch, n: s, k: channels, alpha: 1, a: dGate,
            lda: channels, b: expandWeight.value.pointer, ldb: maxHidden, beta: 0, c: dh, ldc: s)
        Elementwise.activationBackward(
            .relu, input: hidden.reserve(batch * s), outputGradient: dh,
            inputGradient: dh, count: batch * s)

        let p = pooled.reserve(batch * channels)
        GEMM.multiply(
            transposeA: true, transposeB: false, m: s, n: channels, k: batch, alpha: 1, a: dh, lda: s,
            b: p, ldb: channels, beta: 1, c: reduceWeight.gradient.pointer, ldc: maxChannels)
        Elementwise.biasGradient(
            outputGradient: dh, rows: batch, channels: s, biasGradient: reduceBias.gradient.pointer)
        let dp = pooledGradient.reserve(batch * channels)
        GEMM.multiply(
            transposeA: false, transposeB: false, m: batch, n: channels, k: s, alpha: 1, a: dh, lda: s,
            b: reduceWeight.value.pointer, ldb: maxChannels, beta: 0, c: dp, ldc: channels)

        let spread = spreadGradient.reserve(batch * spatial * channels)
        Elementwise.globalAveragePoolBackward(
            outputGradient: dp, batch: batch, spatial: spatial, channels: channels,
            inputGradient: spread)
        Elementwise.add(dx, spread, output: dx, count: batch * spatial * channels)
    }
}
