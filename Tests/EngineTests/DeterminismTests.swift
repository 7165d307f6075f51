import Engine
import XCTest

/// Every kernel gives bitwise the same result with 1 and 2 threads, at shapes large enough to be split.
final class DeterminismTests: XCTestCase {
    /// Runs `body` (which fills and returns output buffers) at 1 and 2 threads and compares the bits.
    func assertThreadIndependent(
        _ name: String, _ body: () -> [Buffer], file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let single = withThreads(1) { body().map { $0.array } }
        let double = withThreads(2) { body().map { $0.array } }
        XCTAssertEqual(single.count, double.count)
        for (index, (a, b)) in zip(single, double).enumerated() {
            let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }
            let largest = differing.map { abs($0 - $1) }.max() ?? 0
            XCTAssert(
                a.count == b.count && differing.isEmpty,
                "\(name): output \(index) differs between 1 and 2 threads in \(differing.count) of \(a.count) "
                    + "elements, by up to \(largest)",
                file: file, line: line
            )
        }
    }

    func testDepthwise() {
        for (height, channels, kernel, stride) in [(14, 144, 7, 1), (28, 96, 7, 2), (7, 20, 5, 1), (9, 12, 3, 2)] {
            let batch = 4
            let out = (height - 1) / stride + 1
            let x = Buffer(random: batch * height * height * channels, seed: 1)
            let w = Buffer(random: kernel * kernel * channels, seed: 2)
            let dy = Buffer(random: batch * out * out * channels, seed: 3)
            assertThreadIndependent("depthwise \(height) \(channels) \(kernel) \(stride)") {
                let y = Buffer(dy.count)
                let dx = Buffer(x.count)
                let dw = Buffer(w.count, value: 0.25)
                Depthwise.forward(
                    input: x.constant, batch: batch, height: height, width: height, channels: channels,
                    weights: w.constant, kernel: kernel, stride: stride, output: y.pointer
                )
                Depthwise.backwardInput(
                    outputGradient: dy.constant, batch: batch, height: height, width: height, channels: channels,
                    weights: w.constant, kernel: kernel, stride: stride, inputGradient: dx.pointer
                )
                Depthwise.backwardWeights(
                    input: x.constant, outputGradient: dy.constant, batch: batch, height: height, width: height,
                    channels: channels, kernel: kernel, stride: stride, weightGradient: dw.pointer
                )
                return [y, dx, dw]
            }
        }
    }

    func testDenseConv() {
        let shapes = [
            (8, 14, 144, 40, 1, 1, 0), (8, 28, 1, 16, 3, 2, 1), (48, 14, 16, 24, 1, 1, 0), (16, 7, 3, 600, 1, 1, 0),
        ]
        for (batch, height, inputs, outputs, kernel, stride, padding) in shapes {
            let out = (height + 2 * padding - kernel) / stride + 1
            let x = Buffer(random: batch * height * height * inputs, seed: 4)
            let w = Buffer(random: outputs * inputs * kernel * kernel, seed: 5)
            let bias = Buffer(random: outputs, seed: 6)
            let dy = Buffer(random: batch * out * out * outputs, seed: 7)
            let scratch = Buffer(
                DenseConv.scratchCount(
                    batch: batch, height: height, width: height, inputChannels: inputs, kernel: kernel, stride: stride,
                    padding: padding
                ))
            assertThreadIndependent("conv \(height) \(inputs) \(outputs) \(kernel)") {
                let y = Buffer(dy.count)
                let dx = Buffer(x.count)
                let dw = Buffer(w.count)
                let db = Buffer(outputs)
                DenseConv.forward(
                    input: x.constant, batch: batch, height: height, width: height, inputChannels: inputs,
                    weights: w.constant, bias: bias.constant, outputChannels: outputs, kernel: kernel,
                    stride: stride, padding: padding, output: y.pointer, scratch: scratch.pointer
                )
                DenseConv.backward(
                    input: x.constant, outputGradient: dy.constant, batch: batch, height: height, width: height,
                    inputChannels: inputs, weights: w.constant, outputChannels: outputs, kernel: kernel,
                    stride: stride, padding: padding, weightGradient: dw.pointer, biasGradient: db.pointer,
                    inputGradient: dx.pointer, scratch: scratch.pointer
                )
                return [y, dx, dw, db]
            }
        }
    }

    /// A weight-gradient product (small C, a sum over 2,500 pixels that is cut into chunks) and an input-gradient
    /// product (cut into row blocks).
    func testGEMM() {
        let (outputs, inputs, pixels) = (80, 120, 2500)
        let dz = Buffer(random: pixels * outputs, seed: 13)
        let x = Buffer(random: pixels * inputs, seed: 14)
        let w = Buffer(random: outputs * inputs, seed: 15)
        assertThreadIndependent("gemm") {
            let dw = Buffer(outputs * inputs, value: 1)
            let dx = Buffer(pixels * inputs)
            GEMM.multiply(
                transposeA: true, transposeB: false, m: outputs, n: inputs, k: pixels, alpha: 1, a: dz.constant,
                lda: outputs, b: x.constant, ldb: inputs, beta: 1, c: dw.pointer, ldc: inputs)
            GEMM.multiply(
                transposeA: false, transposeB: false, m: pixels, n: inputs, k: outputs, alpha: 1, a: dz.constant,
                lda: outputs, b: w.constant, ldb: inputs, beta: 0, c: dx.pointer, ldc: inputs)
            return [dw, dx]
        }
    }

    func testBatchNormAndElementwise() {
        let (batch, spatial, channels) = (8, 196, 144)
        let rows = batch * spatial
        let count = rows * channels
        let x = Buffer(random: count, seed: 8, low: -4, high: 4)
        let dy = Buffer(random: count, seed: 9)
        let scale = Buffer(random: channels, seed: 10)
        let shift = Buffer(random: channels, seed: 11)
        let gate = Buffer(random: batch * channels, seed: 12)
        assertThreadIndependent("batch norm and element-wise") {
            let mean = Buffer(channels)
            let variance = Buffer(channels)
            let invStd = Buffer(channels, value: 1.5)
            let z = Buffer(count)
            let y = Buffer(count)
            let dx = Buffer(count)
            let dGamma = Buffer(channels)
            let dBeta = Buffer(channels)
            BatchNorm.statistics(
                input: x.constant, rows: rows, channels: channels, mean: mean.pointer,
                variance: variance.pointer)
            BatchNorm.apply(
                input: x.constant, rows: rows, channels: channels, scale: scale.constant,
                shift: shift.constant, activation: .hswish, preActivation: z.pointer, output: y.pointer)
            BatchNorm.backward(
                outputGradient: dy.constant, input: x.constant, rows: rows, channels: channels,
                mean: mean.constant, invStd: invStd.constant, gamma: scale.constant,
                inputGradient: dx.pointer, gammaGradient: dGamma.pointer, betaGradient: dBeta.pointer)

            let activated = Buffer(count)
            let activationGradient = Buffer(count)
            Elementwise.activate(.hswish, input: x.constant, output: activated.pointer, count: count)
            Elementwise.activationBackward(
                .hsigmoid, input: x.constant, outputGradient: dy.constant,
                inputGradient: activationGradient.pointer, count: count)

            let pooled = Buffer(batch * channels)
            let poolGradient = Buffer(count)
            Elementwise.globalAveragePool(
                input: x.constant, batch: batch, spatial: spatial, channels: channels,
                output: pooled.pointer)
            Elementwise.globalAveragePoolBackward(
                outputGradient: gate.constant, batch: batch, spatial: spatial,
                channels: channels, inputGradient: poolGradient.pointer)

            let scaled = Buffer(count)
            let scaledGradient = Buffer(count)
            let gateGradient = Buffer(batch * channels)
            Elementwise.channelScale(
                input: x.constant, batch: batch, spatial: spatial, channels: channels,
                scale: gate.constant, output: scaled.pointer)
            Elementwise.channelScaleBackward(
                input: x.constant, outputGradient: dy.constant, batch: batch,
                spatial: spatial, channels: channels, scale: gate.constant,
                inputGradient: scaledGradient.pointer,
                scaleGradient: gateGradient.pointer)

            let biasGradient = Buffer(channels)
            Elementwise.biasGradient(
                outputGradient: dy.constant, rows: rows, channels: channels,
                biasGradient: biasGradient.pointer)
            let transposed = Buffer(count)
            Elementwise.transpose(x.constant, rows: rows, columns: channels, destination: transposed.pointer)
            let resized = Buffer(batch * 20 * 20 * channels)
            Elementwise.resizeBilinear(
                input: x.constant, batch: batch, height: 14, width: 14, channels: channels,
                outputHeight: 20, outputWidth: 20, output: resized.pointer)
            let parameters = x.copy()
            let velocity = dy.copy()
            SGD.nesterovStep(
                parameters: parameters.pointer, gradients: dy.constant, velocity: velocity.pointer,
                count: count, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
            return [
                mean, variance, z, y, dx, dGamma, dBeta, activated, activationGradient, pooled, poolGradient, scaled,
                scaledGradient, gateGradient, biasGradient, transposed, resized, parameters, velocity,
            ]
        }
    }
}
