import Engine
import XCTest

/// Activations, pooling, channel scale, bias, dropout, resize and transpose.
final class ElementwiseTests: XCTestCase {
    /// Points at least 0.05 away from every kink (0, ±3), in [-5, 5]; count not a multiple of 8.
    func kinkFreeInput(_ count: Int) -> Buffer {
        let x = Buffer(random: count, seed: 5, low: -5, high: 5)
        for index in 0..<count {
            for kink: Float in [-3, 0, 3] where abs(x[index] - kink) < 0.05 {
                x[index] = kink + 0.1
            }
        }
        return x
    }

    func testActivationsMatchDefinitions() {
        let count = 1003
        let x = Buffer(random: count, seed: 1, low: -5, high: 5)
        x[0] = -3
        x[1] = 3
        x[2] = 0
        x[3] = 6
        for kind in [ActivationKind.none, .relu, .hswish, .hsigmoid] {
            let y = Buffer(count, value: .nan)
            Elementwise.activate(kind, input: x.constant, output: y.pointer, count: count)
            assertClose(y.array, x.array.map { referenceActivation(kind, $0) }, "activate \(kind)")
            let inPlace = x.copy()
            Elementwise.activate(kind, input: inPlace.constant, output: inPlace.pointer, count: count)
            XCTAssertEqual(inPlace.array, y.array, "activate in place \(kind)")
        }
    }

    func testActivationBackwardsMatchFiniteDifferences() {
        let count = 203
        let x = kinkFreeInput(count)
        let dy = Buffer(random: count, seed: 2)
        let y = Buffer(count)
        for kind in [ActivationKind.none, .relu, .hswish, .hsigmoid] {
            let dx = Buffer(count, value: .nan)
            Elementwise.activationBackward(
                kind, input: x.constant, outputGradient: dy.constant, inputGradient: dx.pointer, count: count
            )
            checkGradient(x, analytic: dx, samples: 100, epsilon: 1e-2, absolute: 1e-3, "activation \(kind)") {
                Elementwise.activate(kind, input: x.constant, output: y.pointer, count: count)
                return dot(y, dy)
            }
            let aliased = dy.copy()
            Elementwise.activationBackward(
                kind, input: x.constant, outputGradient: aliased.constant, inputGradient: aliased.pointer, count: count
            )
            XCTAssertEqual(aliased.array, dx.array, "activation backward in place \(kind)")
        }
    }

    /// PyTorch's derivative choices at the kinks.
    func testActivationDerivativesAtKinks() {
        let x = Buffer([-3, 0, 3])
        let dy = Buffer([1, 1, 1])
        let dx = Buffer(3)
        Elementwise.activationBackward(
            .relu, input: x.constant, outputGradient: dy.constant, inputGradient: dx.pointer,
            count: 3)
        XCTAssertEqual(dx.array, [0, 0, 1])
        Elementwise.activationBackward(
            .hswish, input: x.constant, outputGradient: dy.constant,
            inputGradient: dx.pointer, count: 3)
        XCTAssertEqual(dx.array, [-0.5, 0.5, 1.5])
        Elementwise.activationBackward(
            .hsigmoid, input: x.constant, outputGradient: dy.constant,
            inputGradient: dx.pointer, count: 3)
        XCTAssertEqual(dx.array, [0, 1 / Float(6), 0])
    }

    func testGlobalAveragePoolAndBackward() {
        for (batch, spatial, channels) in [(2, 49, 20), (3, 16, 12), (1, 1, 24), (2, 4, 144)] {
            let x = Buffer(random: batch * spatial * channels, seed: 3)
            let y = Buffer(batch * channels, value: .nan)
            Elementwise.globalAveragePool(
                input: x.constant, batch: batch, spatial: spatial, channels: channels, output: y.pointer
            )
            var expected = [Float]()
            for n in 0..<batch {
                for c in 0..<channels {
                    var sum = 0.0
                    for s in 0..<spatial {
                        sum += Double(x[(n * spatial + s) * channels + c])
                    }
                    expected.append(Float(sum / Double(spatial)))
                }
            }
            assertClose(y.array, expected, "pool \(batch) \(spatial) \(channels)")

            let dy = Buffer(random: batch * channels, seed: 4)
            let dx = Buffer(x.count, value: .nan)
            Elementwise.globalAveragePoolBackward(
                outputGradient: dy.constant, batch: batch, spatial: spatial, channels: channels,
                inputGradient: dx.pointer
            )
            checkGradient(x, analytic: dx, "pool backward \(spatial) \(channels)") {
                Elementwise.globalAveragePool(
                    input: x.constant, batch: batch, spatial: spatial, channels: channels, output: y.pointer
                )
                return dot(y, dy)
            }
        }
    }

    func testChannelScaleAndBackward() {
        for (batch, spatial, channels) in [(2, 49, 20), (3, 16, 12), (1, 1, 24), (2, 9, 144)] {
            let count = batch * spatial * channels
            let x = Buffer(random: count, seed: 6)
            let scale = Buffer(random: batch * channels, seed: 7)
            let y = Buffer(count, value: .nan)
            Elementwise.channelScale(
                input: x.constant, batch: batch, spatial: spatial, channels: channels, scale: scale.constant,
                output: y.pointer
            )
            var expected = [Float]()
            for n in 0..<batch {
                for s in 0..<spatial {
                    for c in 0..<channels {
                        expected.append(x[(n * spatial + s) * channels + c] * scale[n * channels + c])
                    }
                }
            }
            XCTAssertEqual(y.array, expected, "channel scale")

            let dy = Buffer(random: count, seed: 8)
            let dx = Buffer(count, value: .nan)
            let dScale = Buffer(batch * channels, value: .nan)
            Elementwise.channelScaleBackward(
                input: x.constant, outputGradient: dy.constant, batch: batch, spatial: spatial, channels: channels,
                scale: scale.constant, inputGradient: dx.pointer, scaleGradient: dScale.pointer
            )
            func loss() -> Double {
                Elementwise.channelScale(
                    input: x.constant, batch: batch, spatial: spatial, channels: channels, scale: scale.constant,
                    output: y.pointer
                )
                return dot(y, dy)
            }
            checkGradient(x, analytic: dx, "channel scale dx \(spatial) \(channels)", loss: loss)
            checkGradient(scale, analytic: dScale, "channel scale dScale \(spatial) \(channels)", loss: loss)

            let aliased = dy.copy()
            let aliasedScale = Buffer(batch * channels)
            Elementwise.channelScaleBackward(
                input: x.constant, outputGradient: aliased.constant, batch: batch, spatial: spatial,
                channels: channels, scale: scale.constant, inputGradient: aliased.pointer,
                scaleGradient: aliasedScale.pointer
            )
            XCTAssertEqual(aliased.array, dx.array, "channel scale backward in place")
            XCTAssertEqual(aliasedScale.array, dScale.array, "channel scale backward in place")
        }
    }

    func testBiasAndBiasGradient() {
        let (rows, channels) = (37, 20)
        let y = Buffer(random: rows * channels, seed: 9)
        let bias = Buffer(random: channels, seed: 10)
        var expected = y.array
        for r in 0..<rows {
            for c in 0..<channels {
                expected[r * channels + c] += bias[c]
            }
        }
        Elementwise.addBias(y.pointer, rows: rows, channels: channels, bias: bias.constant)
        XCTAssertEqual(y.array, expected)

        let x = Buffer(random: rows * channels, seed: 11)
        let dy = Buffer(random: rows * channels, seed: 12)
        let dBias = Buffer(channels, value: 3)
        Elementwise.biasGradient(
            outputGradient: dy.constant, rows: rows, channels: channels,
            biasGradient: dBias.pointer)
        for c in 0..<channels {
            dBias[c] -= 3
        }
        let out = Buffer(rows * channels)
        checkGradient(bias, analytic: dBias, "bias gradient") {
            out.pointer.update(from: x.constant, count: rows * channels)
            Elementwise.addBias(out.pointer, rows: rows, channels: channels, bias: bias.constant)
            return dot(out, dy)
        }
    }

    func testDropoutMaskAndBackward() {
        let count = 10_001
        let rate: Float = 0.3
        let x = Buffer(random: count, seed: 13)
        let y = Buffer(count, value: .nan)
        let mask = Buffer(count, value: .nan)
        var random = SeededRandom(seed: 42)
        Elementwise.dropout(
            input: x.constant, output: y.pointer, mask: mask.pointer, count: count, rate: rate,
            random: &random)
        let keep = 1 / (1 - rate)
        var dropped = 0
        for index in 0..<count {
            XCTAssert(mask[index] == 0 || mask[index] == keep, "mask value \(mask[index])")
            dropped += mask[index] == 0 ? 1 : 0
            XCTAssertEqual(y[index], x[index] * mask[index])
        }
        XCTAssertEqual(Double(dropped) / Double(count), Double(rate), accuracy: 0.02)

        var again = SeededRandom(seed: 42)
        let mask2 = Buffer(count)
        let y2 = Buffer(count)
        Elementwise.dropout(
            input: x.constant, output: y2.pointer, mask: mask2.pointer, count: count, rate: rate,
            random: &again)
        XCTAssertEqual(mask2.array, mask.array, "same seed, same mask")

        let dy = Buffer(random: count, seed: 14)
        let dx = Buffer(count)
        Elementwise.multiply(dy.constant, mask.constant, output: dx.pointer, count: count)
        checkGradient(x, analytic: dx, "dropout backward") {
            Elementwise.multiply(x.constant, mask.constant, output: y.pointer, count: count)
            return dot(y, dy)
        }

        var none = SeededRandom(seed: 1)
        Elementwise.dropout(
            input: x.constant, output: y.pointer, mask: mask.pointer, count: count, rate: 0,
            random: &none)
        XCTAssertEqual(y.array, x.array)
    }

    func testAddAndMultiply() {
        let count = 77
        let a = Buffer(random: count, seed: 15)
        let b = Buffer(random: count, seed: 16)
        let y = Buffer(count)
        let sums = zip(a.array, b.array).map { $0 + $1 }
        Elementwise.add(a.constant, b.constant, output: y.pointer, count: count)
        XCTAssertEqual(y.array, sums)
        Elementwise.multiply(a.constant, b.constant, output: y.pointer, count: count)
        XCTAssertEqual(y.array, zip(a.array, b.array).map { $0 * $1 })
        Elementwise.add(a.constant, b.constant, output: a.pointer, count: count)
        XCTAssertEqual(a.array, sums, "add in place")
    }

    /// PyTorch: interpolate([[1, 2], [3, 4]], size=(4, 4), mode="bilinear", align_corners=False).
    func testResizeBilinearMatchesPyTorch() {
        let x = Buffer([1, 2, 3, 4])
        let y = Buffer(16, value: .nan)
        Elementwise.resizeBilinear(
            input: x.constant, batch: 1, height: 2, width: 2, channels: 1, outputHeight: 4, outputWidth: 4,
            output: y.pointer
        )
        let expected: [Float] = [
            1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0,
        ]
        assertClose(y.array, expected, "resize up")

        // Downscale 4 → 2 with 9 channels: samples at source 0.5 and 2.5, i.e. means of neighbours.
        let big = Buffer(random: 4 * 4 * 9, seed: 17)
        let small = Buffer(2 * 2 * 9, value: .nan)
        Elementwise.resizeBilinear(
            input: big.constant, batch: 1, height: 4, width: 4, channels: 9, outputHeight: 2, outputWidth: 2,
            output: small.pointer
        )
        var expectedSmall = [Float]()
        for oy in 0..<2 {
            for ox in 0..<2 {
                for c in 0..<9 {
                    var sum: Float = 0
                    for dy in 0..<2 {
                        for dx in 0..<2 {
                            sum += big[((oy * 2 + dy) * 4 + ox * 2 + dx) * 9 + c]
                        }
                    }
                    expectedSmall.append(sum / 4)
                }
            }
        }
        assertClose(small.array, expectedSmall, "resize down")
    }

    func testTranspose() {
        for (rows, columns) in [(1, 1), (3, 5), (17, 33), (40, 16)] {
            let source = Buffer(random: rows * columns, seed: 18)
            let destination = Buffer(rows * columns, value: .nan)
            Elementwise.transpose(source.constant, rows: rows, columns: columns, destination: destination.pointer)
            for r in 0..<rows {
                for c in 0..<columns {
                    XCTAssertEqual(destination[c * rows + r], source[r * columns + c])
                }
            }
        }
    }

    /// Back-to-back, nested and concurrent parallel loops (the pool runs one job at a time; others run inline).
    func testParallelLoopsUnderStress() {
        for backend in [Parallel.Backend.pool, .dispatch] {
            Parallel.backend = backend
            let counts = Buffer(64)
            for _ in 0..<2000 {
                Parallel.forEach(64) { index in
                    counts[index] += 1
                }
            }
            XCTAssertEqual(counts.array, [Float](repeating: 2000, count: 64), "\(backend) back to back")

            let nested = Buffer(8 * 8)
            Parallel.forEach(8) { outer in
                Parallel.forEach(8) { inner in
                    nested[outer * 8 + inner] += 1
                }
            }
            XCTAssertEqual(nested.array, [Float](repeating: 1, count: 64), "\(backend) nested")

            let results = [Buffer(256), Buffer(256)]
            DispatchQueue.concurrentPerform(iterations: 2) { caller in
                for _ in 0..<200 {
                    Parallel.forEach(256) { index in
                        results[caller][index] += 1
                    }
                }
            }
            XCTAssertEqual(results[0].array, [Float](repeating: 200, count: 256), "\(backend) concurrent callers")
            XCTAssertEqual(results[1].array, [Float](repeating: 200, count: 256), "\(backend) concurrent callers")
        }
        Parallel.backend = .pool
    }

    func testForEachVisitsEveryIndexOnce() {
        for threads in [1, 2] {
            withThreads(threads) {
                let counts = Buffer(1000)
                Parallel.forEach(1000) { index in
                    counts[index] += 1
                }
                XCTAssertEqual(counts.array, [Float](repeating: 1, count: 1000))
            }
        }
    }
}
