import Engine
import XCTest

/// The inference kernels with BatchNorm and activation on the way out: `Pointwise.forward` against a naive
/// product, and both fused kernels against their bare output followed by `BatchNorm.apply`, bit for bit.
final class PointwiseTests: XCTestCase {
    /// (rows, inputs, outputs): row counts around the 6-row block and the 48-row task, panel tails (outputs not a
    /// multiple of 16, fewer than 8), a product large enough to run on both threads, and 1–4 rows over many
    /// panels (AVX-512 runs those several panels per block, with a shorter last group).
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 80, 10), (5, 9, 16), (6, 24, 144), (7, 16, 24), (13, 40, 20), (49, 240, 40), (50, 3, 17),
        (97, 144, 24), (784, 16, 96), (196, 480, 80), (1, 120, 480), (2, 60, 200), (3, 33, 150), (4, 70, 56),
    ]

    static let activations: [ActivationKind] = [.none, .relu, .hswish, .hsigmoid]

    /// Activations, weights, BatchNorm scale and shift for pointwise case `index`.
    static func pointwiseInputs(_ index: Int, rows: Int, inputs: Int, outputs: Int) -> (Buffer, Buffer, Buffer, Buffer)
    {
        (
            Buffer(random: rows * inputs, seed: UInt64(index)),
            Buffer(random: outputs * inputs, seed: UInt64(50 + index)),
            Buffer(random: outputs, seed: UInt64(90 + index), low: 0.2, high: 3),
            Buffer(random: outputs, seed: UInt64(95 + index), low: -4, high: 4)
        )
    }

    /// Activations, taps, BatchNorm scale and shift for `DepthwiseTests.shapes[index]`.
    static func depthwiseInputs(
        _ index: Int, _ shape: (Int, Int, Int, Int, Int, Int)
    ) -> (Buffer, Buffer, Buffer, Buffer) {
        let (batch, height, width, channels, kernel, _) = shape
        return (
            Buffer(random: batch * height * width * channels, seed: UInt64(index)),
            Buffer(random: kernel * kernel * channels, seed: UInt64(100 + index)),
            Buffer(random: channels, seed: UInt64(300 + index), low: 0.2, high: 3),
            Buffer(random: channels, seed: UInt64(400 + index), low: -4, high: 4)
        )
    }

    func testBareProductMatchesNaiveSum() {
        for (index, (rows, inputs, outputs)) in Self.shapes.enumerated() {
            let x = Buffer(random: rows * inputs, seed: UInt64(index))
            let w = Buffer(random: outputs * inputs, seed: UInt64(50 + index))
            let y = Buffer(rows * outputs, value: .nan)
            let packed = PackedPointwiseWeights(w.constant, outputs: outputs, inputs: inputs)
            Pointwise.forward(
                input: x.constant, rows: rows, weights: packed, scale: nil, shift: nil, activation: .hswish,
                output: y.pointer)
            var expected = [Float](repeating: 0, count: rows * outputs)
            for r in 0..<rows {
                for o in 0..<outputs {
                    var sum = 0.0
                    for p in 0..<inputs {
                        sum += Double(x[r * inputs + p]) * Double(w[o * inputs + p])
                    }
                    expected[r * outputs + o] = Float(sum)
                }
            }
            assertClose(y.array, expected, "pointwise \(rows)×\(inputs)→\(outputs) (bare: no activation)")
        }
    }

    func testFusedPointwiseEqualsBareThenBatchNorm() {
        for (index, (rows, inputs, outputs)) in Self.shapes.enumerated() {
            let (x, w, scale, shift) = Self.pointwiseInputs(index, rows: rows, inputs: inputs, outputs: outputs)
            let packed = PackedPointwiseWeights(w.constant, outputs: outputs, inputs: inputs)
            for activation in Self.activations {
                let fused = Buffer(rows * outputs, value: .nan)
                Pointwise.forward(
                    input: x.constant, rows: rows, weights: packed, scale: scale.constant, shift: shift.constant,
                    activation: activation, output: fused.pointer)
                let separate = Buffer(rows * outputs, value: .nan)
                Pointwise.forward(
                    input: x.constant, rows: rows, weights: packed, scale: nil, shift: nil, activation: activation,
                    output: separate.pointer)
                BatchNorm.apply(
                    input: separate.constant, rows: rows, channels: outputs, scale: scale.constant,
                    shift: shift.constant, activation: activation, preActivation: nil, output: separate.pointer)
                XCTAssertEqual(
                    fused.array.map(\.bitPattern), separate.array.map(\.bitPattern),
                    "pointwise \(rows)×\(inputs)→\(outputs) \(activation)")
            }
        }
    }

    func testFusedDepthwiseEqualsBareThenBatchNorm() {
        for (index, shape) in DepthwiseTests.shapes.enumerated() {
            let (batch, height, width, channels, kernel, stride) = shape
            let outHeight = (height - 1) / stride + 1
            let outWidth = (width - 1) / stride + 1
            let rows = batch * outHeight * outWidth
            let (x, w, scale, shift) = Self.depthwiseInputs(index, shape)
            for activation in Self.activations {
                let fused = Buffer(rows * channels, value: .nan)
                Depthwise.forward(
                    input: x.constant, batch: batch, height: height, width: width, channels: channels,
                    weights: w.constant, kernel: kernel, stride: stride, scale: scale.constant, shift: shift.constant,
                    activation: activation, output: fused.pointer)
                let separate = Buffer(rows * channels, value: .nan)
                Depthwise.forward(
                    input: x.constant, batch: batch, height: height, width: width, channels: channels,
                    weights: w.constant, kernel: kernel, stride: stride, output: separate.pointer)
                BatchNorm.apply(
                    input: separate.constant, rows: rows, channels: channels, scale: scale.constant,
                    shift: shift.constant, activation: activation, preActivation: nil, output: separate.pointer)
                XCTAssertEqual(
                    fused.array.map(\.bitPattern), separate.array.map(\.bitPattern), "depthwise \(shape) \(activation)")
            }
        }
    }

    func testPointwiseDoesNotDependOnThreadCount() {
        let (rows, inputs, outputs) = (1000, 96, 40)
        let x = Buffer(random: rows * inputs, seed: 1)
        let w = Buffer(random: outputs * inputs, seed: 2)
        let packed = PackedPointwiseWeights(w.constant, outputs: outputs, inputs: inputs)
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        var results: [[UInt32]] = []
        for threads in [1, 2, 3] {
            Parallel.setThreadCount(threads)
            let y = Buffer(rows * outputs, value: .nan)
            Pointwise.forward(
                input: x.constant, rows: rows, weights: packed, scale: nil, shift: nil, activation: .none,
                output: y.pointer)
            results.append(y.array.map(\.bitPattern))
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    /// Runs `body` once per instruction set this processor has, and returns the results.
    private func onEachInstructionSet(_ body: () -> [UInt32]) -> [[UInt32]] {
        let saved = InstructionSet.useAVX512
        defer { InstructionSet.useAVX512 = saved }
        var results: [[UInt32]] = []
        for avx512 in InstructionSet.avx512Available ? [false, true] : [false] {
            InstructionSet.useAVX512 = avx512
            XCTAssertEqual(InstructionSet.useAVX512, avx512)
            results.append(body())
        }
        return results
    }

    func testAVX2AndAVX512KernelsGiveTheSameBits() throws {
        try XCTSkipUnless(InstructionSet.avx512Available, "this processor has no AVX-512")
        for (index, (rows, inputs, outputs)) in Self.shapes.enumerated() {
            let (x, w, scale, shift) = Self.pointwiseInputs(index, rows: rows, inputs: inputs, outputs: outputs)
            let packed = PackedPointwiseWeights(w.constant, outputs: outputs, inputs: inputs)
            for activation in Self.activations {
                let results = onEachInstructionSet {
                    let y = Buffer(rows * outputs, value: .nan)
                    Pointwise.forward(
                        input: x.constant, rows: rows, weights: packed, scale: scale.constant, shift: shift.constant,
                        activation: activation, output: y.pointer)
                    let bare = Buffer(rows * outputs, value: .nan)
                    Pointwise.product(
                        input: x.constant, rows: rows, inputs: inputs, weights: w.constant, weightRowStride: inputs,
                        outputs: outputs, output: bare.pointer)
                    return (y.array + bare.array).map(\.bitPattern)
                }
                XCTAssertEqual(results[0], results[1], "pointwise \(rows)×\(inputs)→\(outputs) \(activation)")
            }
        }
        for (index, shape) in DepthwiseTests.shapes.enumerated() {
            let (batch, height, width, channels, kernel, stride) = shape
            let rows = batch * ((height - 1) / stride + 1) * ((width - 1) / stride + 1)
            let (x, w, scale, shift) = Self.depthwiseInputs(index, shape)
            for activation in Self.activations {
                let results = onEachInstructionSet {
                    let y = Buffer(rows * channels, value: .nan)
                    Depthwise.forward(
                        input: x.constant, batch: batch, height: height, width: width, channels: channels,
                        weights: w.constant, kernel: kernel, stride: stride, scale: scale.constant,
                        shift: shift.constant, activation: activation, output: y.pointer)
                    return y.array.map(\.bitPattern)
                }
                XCTAssertEqual(results[0], results[1], "depthwise \(shape) \(activation)")
            }
        }
    }
}
