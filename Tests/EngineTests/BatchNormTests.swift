import Engine
import XCTest

/// Batch normalization: statistics and apply against naive loops, backward against finite differences.
final class BatchNormTests: XCTestCase {
    static let shapes: [(rows: Int, channels: Int)] = [(49, 12), (98, 20), (16, 16), (1, 24), (300, 144), (5, 3)]

    func testStatisticsMatchNaiveLoop() {
        for (index, shape) in Self.shapes.enumerated() {
            let x = Buffer(random: shape.rows * shape.channels, seed: UInt64(index), low: 50, high: 52)
            let mean = Buffer(shape.channels)
            let variance = Buffer(shape.channels)
            BatchNorm.statistics(
                input: x.constant, rows: shape.rows, channels: shape.channels, mean: mean.pointer,
                variance: variance.pointer
            )
            var expectedMean = [Float]()
            var expectedVariance = [Float]()
            for c in 0..<shape.channels {
                var sum = 0.0
                for r in 0..<shape.rows {
                    sum += Double(x[r * shape.channels + c])
                }
                let average = sum / Double(shape.rows)
                var squares = 0.0
                for r in 0..<shape.rows {
                    let deviation = Double(x[r * shape.channels + c]) - average
                    squares += deviation * deviation
                }
                expectedMean.append(Float(average))
                expectedVariance.append(Float(squares / Double(shape.rows)))
            }
            assertClose(mean.array, expectedMean, absolute: 1e-5, relative: 1e-6, "mean \(shape)")
            assertClose(variance.array, expectedVariance, absolute: 1e-6, relative: 1e-3, "variance \(shape)")
        }
    }

    func testApplyMatchesNaiveLoopForEveryActivation() {
        for kind in [ActivationKind.none, .relu, .hswish, .hsigmoid] {
            for (index, shape) in Self.shapes.enumerated() {
                let count = shape.rows * shape.channels
                let x = Buffer(random: count, seed: UInt64(index), low: -3, high: 3)
                let scale = Buffer(random: shape.channels, seed: 11, low: 0.5, high: 2)
                let shift = Buffer(random: shape.channels, seed: 12)
                var expectedZ = [Float]()
                for r in 0..<shape.rows {
                    for c in 0..<shape.channels {
                        expectedZ.append(x[r * shape.channels + c] * scale[c] + shift[c])
                    }
                }
                let expectedY = expectedZ.map { referenceActivation(kind, $0) }
                let z = Buffer(count, value: .nan)
                let y = Buffer(count, value: .nan)
                BatchNorm.apply(
                    input: x.constant, rows: shape.rows, channels: shape.channels, scale: scale.constant,
                    shift: shift.constant, activation: kind, preActivation: z.pointer, output: y.pointer
                )
                assertClose(z.array, expectedZ, "bn pre-activation \(kind) \(shape)")
                assertClose(y.array, expectedY, "bn apply \(kind) \(shape)")

                BatchNorm.apply(
                    input: x.constant, rows: shape.rows, channels: shape.channels, scale: scale.constant,
                    shift: shift.constant, activation: kind, preActivation: nil, output: x.pointer
                )
                assertClose(x.array, expectedY, "bn apply in place \(kind) \(shape)")
            }
        }
    }

    /// Training-mode batch norm (statistics of x itself) and its backward.
    func testBackwardMatchesFiniteDifferences() {
        let epsilon: Float = 1e-5
        for (index, shape) in Self.shapes.enumerated() where shape.rows > 1 {
            let (rows, channels) = shape
            let x = Buffer(random: rows * channels, seed: UInt64(index), low: -2, high: 2)
            let gamma = Buffer(random: channels, seed: 21, low: 0.5, high: 1.5)
            let beta = Buffer(random: channels, seed: 22)
            let dz = Buffer(random: rows * channels, seed: 23)
            let mean = Buffer(channels)
            let variance = Buffer(channels)
            let invStd = Buffer(channels)
            let scale = Buffer(channels)
            let shift = Buffer(channels)
            let z = Buffer(rows * channels)
            func forward() {
                BatchNorm.statistics(
                    input: x.constant, rows: rows, channels: channels, mean: mean.pointer, variance: variance.pointer
                )
                for c in 0..<channels {
                    invStd[c] = 1 / (variance[c] + epsilon).squareRoot()
                    scale[c] = gamma[c] * invStd[c]
                    shift[c] = beta[c] - mean[c] * scale[c]
                }
                BatchNorm.apply(
                    input: x.constant, rows: rows, channels: channels, scale: scale.constant, shift: shift.constant,
                    activation: .none, preActivation: nil, output: z.pointer
                )
            }
            func loss() -> Double {
                forward()
                return dot(z, dz)
            }

            forward()
            let dx = Buffer(rows * channels, value: .nan)
            let dGamma = Buffer(channels, value: 1)
            let dBeta = Buffer(channels, value: 2)
            BatchNorm.backward(
                outputGradient: dz.constant, input: x.constant, rows: rows, channels: channels,
                mean: mean.constant, invStd: invStd.constant, gamma: gamma.constant, inputGradient: dx.pointer,
                gammaGradient: dGamma.pointer, betaGradient: dBeta.pointer
            )
            for c in 0..<channels {
                dGamma[c] -= 1
                dBeta[c] -= 2
            }
            checkGradient(x, analytic: dx, epsilon: 2e-3, absolute: 2e-2, relative: 3e-2, "bn dx \(shape)", loss: loss)
            checkGradient(gamma, analytic: dGamma, epsilon: 2e-3, "bn dGamma \(shape)", loss: loss)
            checkGradient(beta, analytic: dBeta, epsilon: 2e-3, "bn dBeta \(shape)", loss: loss)

            let aliased = dz.copy()
            BatchNorm.backward(
                outputGradient: aliased.constant, input: x.constant, rows: rows, channels: channels,
                mean: mean.constant, invStd: invStd.constant, gamma: gamma.constant, inputGradient: aliased.pointer,
                gammaGradient: dGamma.pointer, betaGradient: dBeta.pointer
            )
            XCTAssertEqual(aliased.array, dx.array, "bn backward in place \(shape)")
        }
    }

    /// Backward through an activation: the same bits as the activation's own backward (on the stored z = x *
    /// scale + shift) followed by the plain backward, whatever the thread count, in place or not.
    func testBackwardThroughAnActivationEqualsTheTwoStepsBitwise() {
        for kind in [ActivationKind.relu, .hswish, .hsigmoid] {
            for (index, shape) in Self.shapes.enumerated() {
                let (rows, channels) = shape
                let count = rows * channels
                let x = Buffer(random: count, seed: UInt64(index), low: -3, high: 3)
                let mean = Buffer(random: channels, seed: 31, low: -0.5, high: 0.5)
                let invStd = Buffer(random: channels, seed: 32, low: 0.5, high: 2)
                let gamma = Buffer(random: channels, seed: 33, low: 0.5, high: 1.5)
                let beta = Buffer(random: channels, seed: 34)
                let scale = Buffer(channels)
                let shift = Buffer(channels)
                for c in 0..<channels {
                    scale[c] = gamma[c] * invStd[c]
                    shift[c] = beta[c] - mean[c] * scale[c]
                }
                let dy = Buffer(random: count, seed: 35)
                let z = Buffer(count)
                let y = Buffer(count)
                BatchNorm.apply(
                    input: x.constant, rows: rows, channels: channels, scale: scale.constant, shift: shift.constant,
                    activation: kind, preActivation: z.pointer, output: y.pointer)

                let expected = Buffer(count)
                let expectedGamma = Buffer(channels, value: 1)
                let expectedBeta = Buffer(channels, value: 2)
                Elementwise.activationBackward(
                    kind, input: z.constant, outputGradient: dy.constant, inputGradient: expected.pointer, count: count)
                BatchNorm.backward(
                    outputGradient: expected.constant, input: x.constant, rows: rows, channels: channels,
                    mean: mean.constant, invStd: invStd.constant, gamma: gamma.constant,
                    inputGradient: expected.pointer, gammaGradient: expectedGamma.pointer,
                    betaGradient: expectedBeta.pointer)

                for threads in [1, 2] {
                    for inPlace in [false, true] {
                        let gradient = inPlace ? dy.copy() : Buffer(count, value: .nan)
                        let dGamma = Buffer(channels, value: 1)
                        let dBeta = Buffer(channels, value: 2)
                        withThreads(threads) {
                            BatchNorm.backward(
                                outputGradient: inPlace ? gradient.constant : dy.constant, input: x.constant,
                                rows: rows, channels: channels, mean: mean.constant, invStd: invStd.constant,
                                gamma: gamma.constant, activation: kind, scale: scale.constant, shift: shift.constant,
                                inputGradient: gradient.pointer, gammaGradient: dGamma.pointer,
                                betaGradient: dBeta.pointer)
                        }
                        let label = "\(kind) \(shape) threads \(threads) in place \(inPlace)"
                        XCTAssertEqual(gradient.array, expected.array, "dx " + label)
                        XCTAssertEqual(dGamma.array, expectedGamma.array, "dGamma " + label)
                        XCTAssertEqual(dBeta.array, expectedBeta.array, "dBeta " + label)
                    }
                }
            }
        }
    }
}
