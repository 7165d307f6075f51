import Engine
import XCTest

/// Dense convolution (im2col + GEMM) and GEMM itself.
final class DenseConvTests: XCTestCase {
    /// (batch, height, width, inputChannels, outputChannels, kernel, stride, padding).
    static let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (2, 7, 7, 3, 12, 3, 1, 1), (2, 8, 8, 16, 24, 1, 1, 0), (1, 7, 7, 5, 20, 3, 2, 1), (2, 12, 12, 1, 16, 3, 2, 1),
        (1, 4, 4, 20, 8, 1, 2, 0), (1, 1, 1, 12, 20, 1, 1, 0), (1, 5, 6, 4, 6, 5, 1, 2), (1, 6, 6, 3, 5, 3, 1, 0),
    ]

    func testForwardMatchesNaiveLoop() {
        for (index, shape) in Self.shapes.enumerated() {
            let (batch, height, width, inputs, outputs, kernel, stride, padding) = shape
            let outHeight = (height + 2 * padding - kernel) / stride + 1
            let outWidth = (width + 2 * padding - kernel) / stride + 1
            let x = Buffer(random: batch * height * width * inputs, seed: UInt64(index))
            let w = Buffer(random: outputs * inputs * kernel * kernel, seed: UInt64(50 + index))
            let bias = Buffer(random: outputs, seed: UInt64(90 + index))
            let scratch = Buffer(
                DenseConv.scratchCount(
                    batch: batch, height: height, width: width, inputChannels: inputs, kernel: kernel, stride: stride,
                    padding: padding
                ))
            for withBias in [false, true] {
                let y = Buffer(batch * outHeight * outWidth * outputs, value: .nan)
                DenseConv.forward(
                    input: x.constant, batch: batch, height: height, width: width, inputChannels: inputs,
                    weights: w.constant, bias: withBias ? bias.constant : nil, outputChannels: outputs,
                    kernel: kernel, stride: stride, padding: padding, output: y.pointer, scratch: scratch.pointer
                )
                let expected = referenceConv(
                    x.array, batch: batch, height: height, width: width, inputChannels: inputs, w.array,
                    bias: withBias ? bias.array : nil, outputChannels: outputs, kernel: kernel, stride: stride,
                    padding: padding
                )
                assertClose(y.array, expected, "conv forward \(shape) bias \(withBias)")
            }
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        for (index, shape) in Self.shapes.enumerated() {
            let (batch, height, width, inputs, outputs, kernel, stride, padding) = shape
            let outHeight = (height + 2 * padding - kernel) / stride + 1
            let outWidth = (width + 2 * padding - kernel) / stride + 1
            let x = Buffer(random: batch * height * width * inputs, seed: UInt64(index))
            let w = Buffer(random: outputs * inputs * kernel * kernel, seed: UInt64(50 + index))
            let bias = Buffer(random: outputs, seed: UInt64(90 + index))
            let dy = Buffer(random: batch * outHeight * outWidth * outputs, seed: UInt64(70 + index))
            let scratch = Buffer(
                DenseConv.scratchCount(
                    batch: batch, height: height, width: width, inputChannels: inputs, kernel: kernel, stride: stride,
                    padding: padding
                ))
            let y = Buffer(dy.count)
            func loss() -> Double {
                DenseConv.forward(
                    input: x.constant, batch: batch, height: height, width: width, inputChannels: inputs,
                    weights: w.constant, bias: bias.constant, outputChannels: outputs, kernel: kernel,
                    stride: stride, padding: padding, output: y.pointer, scratch: scratch.pointer
                )
                return dot(y, dy)
            }

            let dw = Buffer(w.count, value: 0.5)
            let db = Buffer(outputs, value: -0.25)
            let dx = Buffer(x.count, value: .nan)
            DenseConv.backward(
                input: x.constant, outputGradient: dy.constant, batch: batch, height: height, width: width,
                inputChannels: inputs, weights: w.constant, outputChannels: outputs, kernel: kernel, stride: stride,
                padding: padding, weightGradient: dw.pointer, biasGradient: db.pointer, inputGradient: dx.pointer,
                scratch: scratch.pointer
            )
            for element in 0..<dw.count {
                dw[element] -= 0.5
            }
            for element in 0..<db.count {
                db[element] += 0.25
            }
            checkGradient(x, analytic: dx, "conv dx \(shape)", loss: loss)
            checkGradient(w, analytic: dw, "conv dW \(shape)", loss: loss)
            checkGradient(bias, analytic: db, "conv dBias \(shape)", loss: loss)
        }
    }

    /// Small shapes (one call) and shapes that take each blocking path: rows, inner chunks, columns.
    func testGEMMMatchesNaiveLoopWithTransposesAndStrides() {
        for (m, n, k) in [(5, 7, 9), (600, 4, 500), (16, 8, 9000), (16, 8, 2500), (3, 600, 700)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for beta: Float in [0, 2] {
                        checkGEMM(m, n, k, transposeA, transposeB, beta)
                    }
                }
            }
        }
    }

    func checkGEMM(_ m: Int, _ n: Int, _ k: Int, _ transposeA: Bool, _ transposeB: Bool, _ beta: Float) {
        let lda = (transposeA ? m : k) + 3
        let ldb = (transposeB ? k : n) + 2
        let ldc = n + 1
        let a = Buffer(random: (transposeA ? k : m) * lda, seed: 1)
        let b = Buffer(random: (transposeB ? n : k) * ldb, seed: 2)
        let c = Buffer(random: m * ldc, seed: 3)
        var expected = c.array
        for row in 0..<m {
            for column in 0..<n {
                var sum = 0.0
                for inner in 0..<k {
                    let left = transposeA ? a[inner * lda + row] : a[row * lda + inner]
                    let right = transposeB ? b[column * ldb + inner] : b[inner * ldb + column]
                    sum += Double(left) * Double(right)
                }
                expected[row * ldc + column] = Float(0.5 * sum + Double(beta) * Double(c[row * ldc + column]))
            }
        }
        if beta == 0 {
            for row in 0..<m {
                for column in 0..<n {
                    c[row * ldc + column] = .nan
                }
            }
        }
        GEMM.multiply(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a.constant,
            lda: lda, b: b.constant, ldb: ldb, beta: beta, c: c.pointer, ldc: ldc
        )
        assertClose(c.array, expected, absolute: 1e-4, "gemm \(m)×\(n)×\(k) \(transposeA) \(transposeB) \(beta)")
    }
}
