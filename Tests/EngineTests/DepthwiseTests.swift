import Engine
import XCTest

/// Depthwise convolution: forward against a naive loop, both backwards against finite differences.
final class DepthwiseTests: XCTestCase {
    /// (batch, height, width, channels, kernel, stride): odd and tiny sizes, channel tails, both strides.
    static let shapes: [(Int, Int, Int, Int, Int, Int)] = [
        (2, 7, 7, 12, 3, 1), (2, 7, 7, 20, 5, 2), (1, 4, 4, 16, 7, 1), (1, 1, 1, 24, 3, 1), (1, 1, 1, 12, 7, 2),
        (2, 8, 6, 144, 7, 2), (1, 5, 9, 20, 7, 2), (3, 14, 14, 24, 5, 1), (1, 4, 4, 480, 7, 1), (2, 7, 7, 3, 7, 1),
        (1, 6, 5, 9, 3, 2), (1, 2, 3, 8, 5, 2), (2, 9, 11, 16, 3, 3),
    ]

    func testForwardMatchesNaiveLoop() {
        for (index, shape) in Self.shapes.enumerated() {
            let (batch, height, width, channels, kernel, stride) = shape
            let outHeight = (height - 1) / stride + 1
            let outWidth = (width - 1) / stride + 1
            let x = Buffer(random: batch * height * width * channels, seed: UInt64(index))
            let w = Buffer(random: kernel * kernel * channels, seed: UInt64(100 + index))
            let y = Buffer(batch * outHeight * outWidth * channels, value: .nan)
            Depthwise.forward(
                input: x.constant, batch: batch, height: height, width: width, channels: channels,
                weights: w.constant, kernel: kernel, stride: stride, output: y.pointer
            )
            let expected = referenceDepthwise(
                x.array, batch: batch, height: height, width: width, channels: channels, w.array, kernel: kernel,
                stride: stride
            )
            assertClose(y.array, expected, "depthwise forward \(shape)")
        }
    }

    /// At batch 1 the rows are cut into one band per thread, at larger batches the images are shared out: the
    /// bits must not depend on either.
    func testForwardDoesNotDependOnThreadCount() {
        for (batch, side, channels, kernel, stride) in [(1, 14, 144, 7, 1), (1, 7, 40, 5, 2), (2, 9, 24, 3, 1)] {
            let outSide = (side - 1) / stride + 1
            let x = Buffer(random: batch * side * side * channels, seed: 5)
            let w = Buffer(random: kernel * kernel * channels, seed: 6)
            let results = [1, 2, 3].map { threads in
                withThreads(threads) {
                    let y = Buffer(batch * outSide * outSide * channels, value: .nan)
                    Depthwise.forward(
                        input: x.constant, batch: batch, height: side, width: side, channels: channels,
                        weights: w.constant, kernel: kernel, stride: stride, output: y.pointer)
                    return y.array.map(\.bitPattern)
                }
            }
            XCTAssertEqual(results[0], results[1], "batch \(batch) \(side)² k\(kernel) s\(stride), 2 threads")
            XCTAssertEqual(results[0], results[2], "batch \(batch) \(side)² k\(kernel) s\(stride), 3 threads")
        }
    }

    func testBackwardsMatchFiniteDifferences() {
        for (index, shape) in Self.shapes.enumerated() {
            let (batch, height, width, channels, kernel, stride) = shape
            let outHeight = (height - 1) / stride + 1
            let outWidth = (width - 1) / stride + 1
            let x = Buffer(random: batch * height * width * channels, seed: UInt64(index))
            let w = Buffer(random: kernel * kernel * channels, seed: UInt64(100 + index))
            let dy = Buffer(random: batch * outHeight * outWidth * channels, seed: UInt64(200 + index))
            let y = Buffer(dy.count)
            func loss() -> Double {
                Depthwise.forward(
                    input: x.constant, batch: batch, height: height, width: width, channels: channels,
                    weights: w.constant, kernel: kernel, stride: stride, output: y.pointer
                )
                return dot(y, dy)
            }

            let dx = Buffer(x.count, value: .nan)
            Depthwise.backwardInput(
                outputGradient: dy.constant, batch: batch, height: height, width: width, channels: channels,
                weights: w.constant, kernel: kernel, stride: stride, inputGradient: dx.pointer
            )
            let initial = Buffer(random: w.count, seed: 7)
            let dw = initial.copy()
            Depthwise.backwardWeights(
                input: x.constant, outputGradient: dy.constant, batch: batch, height: height, width: width,
                channels: channels, kernel: kernel, stride: stride, weightGradient: dw.pointer
            )
            for element in 0..<dw.count {
                dw[element] -= initial[element]
            }
            checkGradient(x, analytic: dx, "depthwise dx \(shape)", loss: loss)
            checkGradient(w, analytic: dw, "depthwise dW \(shape)", loss: loss)
        }
    }

    /// Every element of both backwards against the exact adjoint (a naive scatter loop in double).
    func testBackwardsMatchNaiveAdjoint() {
        for (index, shape) in Self.shapes.enumerated() {
            let (batch, height, width, channels, kernel, stride) = shape
            let pad = kernel / 2
            let outHeight = (height - 1) / stride + 1
            let outWidth = (width - 1) / stride + 1
            let x = Buffer(random: batch * height * width * channels, seed: UInt64(index))
            let w = Buffer(random: kernel * kernel * channels, seed: UInt64(100 + index))
            let dy = Buffer(random: batch * outHeight * outWidth * channels, seed: UInt64(200 + index))
            var expectedDx = [Double](repeating: 0, count: x.count)
            var expectedDw = [Double](repeating: 0, count: w.count)
            for n in 0..<batch {
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        for i in 0..<kernel {
                            for j in 0..<kernel {
                                let iy = oy * stride + i - pad
                                let ix = ox * stride + j - pad
                                if iy < 0 || iy >= height || ix < 0 || ix >= width {
                                    continue
                                }
                                for c in 0..<channels {
                                    let g = Double(dy[((n * outHeight + oy) * outWidth + ox) * channels + c])
                                    let xi = ((n * height + iy) * width + ix) * channels + c
                                    let wi = (i * kernel + j) * channels + c
                                    expectedDx[xi] += g * Double(w[wi])
                                    expectedDw[wi] += g * Double(x[xi])
                                }
                            }
                        }
                    }
                }
            }
            let dx = Buffer(x.count, value: .nan)
            Depthwise.backwardInput(
                outputGradient: dy.constant, batch: batch, height: height, width: width, channels: channels,
                weights: w.constant, kernel: kernel, stride: stride, inputGradient: dx.pointer
            )
            let dw = Buffer(w.count, value: 1)
            Depthwise.backwardWeights(
                input: x.constant, outputGradient: dy.constant, batch: batch, height: height, width: width,
                channels: channels, kernel: kernel, stride: stride, weightGradient: dw.pointer
            )
            assertClose(dx.array, expectedDx.map { Float($0) }, "depthwise dx adjoint \(shape)")
            assertClose(dw.array, expectedDw.map { Float($0 + 1) }, absolute: 1e-4, "depthwise dW adjoint \(shape)")
        }
    }
}
