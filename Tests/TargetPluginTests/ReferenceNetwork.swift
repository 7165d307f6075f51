import Engine
import LatencyProfiling

/// The test's own end-to-end runner: a whole fmnist-mbv3 subnet run with the engine's kernels in sequence on
/// buffers allocated up front, written here independently of the profiler so it can catch the profiler's
/// mistakes. It follows the daemon's static inference network: bilinear resize of the 28 × 28 image to the
/// resolution, stem 3 × 3 (16, hswish), per block expand 1 × 1 + BN + activation, depthwise + BN + activation,
/// squeeze-excite (stages 2 and 3), project 1 × 1 + BN, residual addition when stride 1 and widths match, head
/// 1 × 1 to 320 + BN + hswish, global pool, classifier with bias.
final class ReferenceNetwork {
    /// A dense, pointwise or depthwise convolution followed by a folded batch norm and an activation.
    private struct Convolution {
        enum Kind { case dense, pointwise, depthwise }

        let kind: Kind
        let inputs: Int
        let outputs: Int
        let kernel: Int
        let stride: Int
        let activation: ActivationKind
        let weights: FloatBuffer
        let scale: FloatBuffer
        let shift: FloatBuffer
    }

    /// Squeeze-excite: pool, reduce + relu, expand + hsigmoid, scale.
    private struct Excite {
        let channels: Int
        let hidden: Int
        let reduce: FloatBuffer
        let reduceBias: FloatBuffer
        let expand: FloatBuffer
        let expandBias: FloatBuffer
    }

    private struct Block {
        let expand: Convolution
        let depthwise: Convolution
        let excite: Excite?
        let project: Convolution
        let residual: Bool
    }

    /// A linear congruential generator for weights (Knuth's MMIX constants).
    private struct Weights {
        var state: UInt64

        mutating func uniform(_ count: Int, bound: Float) -> FloatBuffer {
            let buffer = FloatBuffer(count: count)
            for index in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                buffer[index] = (Float(state >> 40) / Float(1 << 24) * 2 - 1) * bound
            }
            return buffer
        }

        mutating func convolution(
            _ kind: Convolution.Kind, _ inputs: Int, _ outputs: Int, kernel: Int = 1, stride: Int = 1,
            _ activation: ActivationKind
        ) -> Convolution {
            let fanIn = kind == .depthwise ? kernel * kernel : inputs * kernel * kernel
            let count = kind == .depthwise ? kernel * kernel * outputs : outputs * inputs * kernel * kernel
            return Convolution(
                kind: kind, inputs: inputs, outputs: outputs, kernel: kernel, stride: stride, activation: activation,
                weights: uniform(count, bound: (3 / Float(fanIn)).squareRoot()),
                scale: FloatBuffer([Float](repeating: 1, count: outputs)), shift: uniform(outputs, bound: 0.05))
        }
    }

    private static let widths = [24, 40, 80]
    private static let activations: [ActivationKind] = [.relu, .hswish, .hswish]
    private static let squeezes = [false, true, true]

    private let resolution: Int
    private let stem: Convolution
    private let blocks: [Block]
    private let head: Convolution
    private let classifier: FloatBuffer
    private let classifierBias: FloatBuffer
    private let image: FloatBuffer
    private let resized: FloatBuffer
    private let im2col: FloatBuffer
    private let ping: FloatBuffer
    private let pong: FloatBuffer
    private let expanded: FloatBuffer
    private let filtered: FloatBuffer
    private let pooled: FloatBuffer
    private let hidden: FloatBuffer
    private let logits: FloatBuffer

    /// Builds the subnet with pseudo-random weights from `seed`.
    init(_ arch: ProfiledArch, seed: UInt64) {
        var weights = Weights(state: seed)
        resolution = arch.resolution
        stem = weights.convolution(.dense, 1, 16, kernel: 3, .hswish)
        var side = arch.resolution
        var channels = 16
        var largest = side * side * 16
        var blocks: [Block] = []
        for stage in 0..<3 {
            let width = Self.widths[stage]
            let activation = Self.activations[stage]
            for (position, kernel) in arch.kernels[stage].enumerated() {
                let stride = position == 0 ? 2 : 1
                let mid = Self.multipleOfEight(channels * arch.expandRatios[stage][position])
                let outSide = (side - 1) / stride + 1
                largest = max(largest, side * side * mid)
                var excite: Excite?
                if Self.squeezes[stage] {
                    let hidden = Self.multipleOfEight(mid / 4)
                    excite = Excite(
                        channels: mid, hidden: hidden,
                        reduce: weights.uniform(hidden * mid, bound: (3 / Float(mid)).squareRoot()),
                        reduceBias: weights.uniform(hidden, bound: 0.05),
                        expand: weights.uniform(mid * hidden, bound: (3 / Float(hidden)).squareRoot()),
                        expandBias: weights.uniform(mid, bound: 0.05))
                }
                blocks.append(
                    Block(
                        expand: weights.convolution(.pointwise, channels, mid, activation),
                        depthwise: weights.convolution(
                            .depthwise, mid, mid, kernel: kernel, stride: stride, activation),
                        excite: excite, project: weights.convolution(.pointwise, mid, width, .none),
                        residual: stride == 1 && channels == width))
                side = outSide
                channels = width
            }
        }
        self.blocks = blocks
        head = weights.convolution(.pointwise, channels, 320, .hswish)
        largest = max(largest, side * side * 320)
        classifier = weights.uniform(10 * 320, bound: (3 / Float(320)).squareRoot())
        classifierBias = weights.uniform(10, bound: 0.05)
        image = weights.uniform(28 * 28, bound: 1)
        resized = FloatBuffer(count: resolution * resolution)
        im2col = FloatBuffer(count: resolution * resolution * 9)
        ping = FloatBuffer(count: largest)
        pong = FloatBuffer(count: largest)
        expanded = FloatBuffer(count: largest)
        filtered = FloatBuffer(count: largest)
        pooled = FloatBuffer(count: largest)
        hidden = FloatBuffer(count: 320)
        logits = FloatBuffer(count: 10)
    }

    /// Rounds to the nearest multiple of 8 (halves up), never below 8 nor below 90% of the value.
    static func multipleOfEight(_ value: Int) -> Int {
        var result = max(8, (value + 4) / 8 * 8)
        if 10 * result < 9 * value {
            result += 8
        }
        return result
    }

    /// One forward pass; returns the first logit.
    @discardableResult
    func run() -> Float {
        var source = image.pointer
        if resolution != 28 {
            Elementwise.resizeBilinear(
                input: image.pointer, batch: 1, height: 28, width: 28, channels: 1, outputHeight: resolution,
                outputWidth: resolution, output: resized.pointer)
            source = resized.pointer
        }
        var side = resolution
        var current = ping.pointer
        var next = pong.pointer
        convolve(stem, source, side: side, into: current)
        for block in blocks {
            let outSide = (side - 1) / block.depthwise.stride + 1
            convolve(block.expand, current, side: side, into: expanded.pointer)
            convolve(block.depthwise, expanded.pointer, side: side, into: filtered.pointer)
            if let excite = block.excite {
                squeeze(excite, filtered.pointer, spatial: outSide * outSide)
            }
            convolve(block.project, filtered.pointer, side: outSide, into: next)
            if block.residual {
                Elementwise.add(next, current, output: next, count: outSide * outSide * block.project.outputs)
            }
            swap(&current, &next)
            side = outSide
        }
        convolve(head, current, side: side, into: expanded.pointer)
        Elementwise.globalAveragePool(
            input: expanded.pointer, batch: 1, spatial: side * side, channels: 320, output: pooled.pointer)
        GEMM.multiply(
            transposeA: false, transposeB: true, m: 1, n: 10, k: 320, alpha: 1, a: pooled.pointer, lda: 320,
            b: classifier.pointer, ldb: 320, beta: 0, c: logits.pointer, ldc: 10)
        Elementwise.addBias(logits.pointer, rows: 1, channels: 10, bias: classifierBias.pointer)
        return logits[0]
    }

    private func convolve(
        _ layer: Convolution, _ input: UnsafeMutablePointer<Float>, side: Int, into output: UnsafeMutablePointer<Float>
    ) {
        let outSide = (side - 1) / layer.stride + 1
        switch layer.kind {
        case .dense:
            DenseConv.forward(
                input: input, batch: 1, height: side, width: side, inputChannels: layer.inputs,
                weights: layer.weights.pointer, bias: nil, outputChannels: layer.outputs, kernel: layer.kernel,
                stride: layer.stride, padding: layer.kernel / 2, output: output, scratch: im2col.pointer)
        case .pointwise:
            GEMM.multiply(
                transposeA: false, transposeB: true, m: side * side, n: layer.outputs, k: layer.inputs, alpha: 1,
                a: input, lda: layer.inputs, b: layer.weights.pointer, ldb: layer.inputs, beta: 0, c: output,
                ldc: layer.outputs)
        case .depthwise:
            Depthwise.forward(
                input: input, batch: 1, height: side, width: side, channels: layer.inputs,
                weights: layer.weights.pointer, kernel: layer.kernel, stride: layer.stride, output: output)
        }
        BatchNorm.apply(
            input: output, rows: outSide * outSide, channels: layer.outputs, scale: layer.scale.pointer,
            shift: layer.shift.pointer, activation: layer.activation, preActivation: nil, output: output)
    }

    private func squeeze(_ excite: Excite, _ map: UnsafeMutablePointer<Float>, spatial: Int) {
        let channels = excite.channels
        Elementwise.globalAveragePool(
            input: map, batch: 1, spatial: spatial, channels: channels, output: pooled.pointer)
        GEMM.multiply(
            transposeA: false, transposeB: true, m: 1, n: excite.hidden, k: channels, alpha: 1, a: pooled.pointer,
            lda: channels, b: excite.reduce.pointer, ldb: channels, beta: 0, c: hidden.pointer, ldc: excite.hidden)
        Elementwise.addBias(hidden.pointer, rows: 1, channels: excite.hidden, bias: excite.reduceBias.pointer)
        Elementwise.activate(.relu, input: hidden.pointer, output: hidden.pointer, count: excite.hidden)
        GEMM.multiply(
            transposeA: false, transposeB: true, m: 1, n: channels, k: excite.hidden, alpha: 1, a: hidden.pointer,
            lda: excite.hidden, b: excite.expand.pointer, ldb: excite.hidden, beta: 0, c: pooled.pointer,
            ldc: channels)
        Elementwise.addBias(pooled.pointer, rows: 1, channels: channels, bias: excite.expandBias.pointer)
        Elementwise.activate(.hsigmoid, input: pooled.pointer, output: pooled.pointer, count: channels)
        Elementwise.channelScale(
            input: map, batch: 1, spatial: spatial, channels: channels, scale: pooled.pointer, output: map)
    }

    /// The median time of one pass in milliseconds: 10 untimed passes, then `passes` timed one by one.
    func medianMilliseconds(passes: Int = 41) -> Double {
        for _ in 0..<10 {
            run()
        }
        var times: [Double] = []
        for _ in 0..<passes {
            let start = ContinuousClock.now
            run()
            let elapsed = ContinuousClock.now - start
            times.append(Double(elapsed.components.attoseconds) * 1e-15 + Double(elapsed.components.seconds) * 1e3)
        }
        times.sort()
        return times[times.count / 2]
    }
}
