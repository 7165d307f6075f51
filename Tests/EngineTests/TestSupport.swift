import Engine
import XCTest

/// A heap array of floats with stable pointers for calling the engine (tests share one across threads only
/// for disjoint elements).
final class Buffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int, value: Float = 0) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: value, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(values.count)
        for (index, value) in values.enumerated() {
            pointer[index] = value
        }
    }

    /// Uniform values in [low, high) from a fixed seed.
    convenience init(random count: Int, seed: UInt64, low: Float = -1, high: Float = 1) {
        self.init(count)
        var random = SeededRandom(seed: seed)
        for index in 0..<count {
            pointer[index] = low + (high - low) * random.nextUnitFloat()
        }
    }

    deinit {
        pointer.deallocate()
    }

    var constant: UnsafePointer<Float> {
        UnsafePointer(pointer)
    }

    var array: [Float] {
        Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    func copy() -> Buffer {
        Buffer(array)
    }
}

/// Sum of a * b in double: the scalar loss "output × fixed random weights".
func dot(_ a: Buffer, _ b: Buffer) -> Double {
    precondition(a.count == b.count)
    var sum = 0.0
    for index in 0..<a.count {
        sum += Double(a[index]) * Double(b[index])
    }
    return sum
}

/// Asserts |actual - expected| ≤ absolute + relative * |expected| element-wise.
func assertClose(
    _ actual: [Float], _ expected: [Float], absolute: Float = 1e-5, relative: Float = 1e-4, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
    var failures = 0
    for index in 0..<min(actual.count, expected.count) {
        let error = abs(actual[index] - expected[index])
        if !(error <= absolute + relative * abs(expected[index])) {
            failures += 1
            if failures <= 3 {
                XCTFail("\(message): [\(index)] \(actual[index]) vs \(expected[index])", file: file, line: line)
            }
        }
    }
}

/// Checks `analytic` against central finite differences of `loss` with respect to `parameter`, at up to
/// `samples` indices spread over the buffer (always including the first and last).
func checkGradient(
    _ parameter: Buffer, analytic: Buffer, samples: Int = 24, epsilon: Float = 1e-2,
    absolute: Double = 2e-3, relative: Double = 1e-2, _ message: String, loss: () -> Double,
    file: StaticString = #filePath, line: UInt = #line
) {
    var random = SeededRandom(seed: 99)
    var indices = [0, parameter.count - 1]
    for _ in 0..<samples {
        indices.append(random.nextInt(below: parameter.count))
    }
    for index in indices {
        let saved = parameter[index]
        parameter[index] = saved + epsilon
        let plus = loss()
        parameter[index] = saved - epsilon
        let minus = loss()
        parameter[index] = saved
        let numeric = (plus - minus) / (2 * Double(epsilon))
        let error = abs(numeric - Double(analytic[index]))
        XCTAssert(
            error <= absolute + relative * abs(numeric),
            "\(message): d[\(index)] analytic \(analytic[index]) vs numeric \(numeric)", file: file, line: line
        )
    }
}

/// Runs `body` with the engine at `threads` threads, restoring the previous count.
func withThreads<R>(_ threads: Int, _ body: () -> R) -> R {
    let previous = Parallel.threadCount
    Parallel.setThreadCount(threads)
    defer {
        Parallel.setThreadCount(previous)
    }
    return body()
}

/// Naive depthwise convolution in double: x NHWC, w [k * k × C], zero padding k / 2.
func referenceDepthwise(
    _ x: [Float], batch: Int, height: Int, width: Int, channels: Int, _ w: [Float], kernel: Int, stride: Int
) -> [Float] {
    let pad = kernel / 2
    let outHeight = (height + 2 * pad - kernel) / stride + 1
    let outWidth = (width + 2 * pad - kernel) / stride + 1
    var y = [Float](repeating: 0, count: batch * outHeight * outWidth * channels)
    for n in 0..<batch {
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                for c in 0..<channels {
                    var sum = 0.0
                    for i in 0..<kernel {
                        for j in 0..<kernel {
                            let iy = oy * stride + i - pad
                            let ix = ox * stride + j - pad
                            if iy < 0 || iy >= height || ix < 0 || ix >= width {
                                continue
                            }
                            sum +=
                                Double(x[((n * height + iy) * width + ix) * channels + c])
                                * Double(w[(i * kernel + j) * channels + c])
                        }
                    }
                    y[((n * outHeight + oy) * outWidth + ox) * channels + c] = Float(sum)
                }
            }
        }
    }
    return y
}

/// Naive dense convolution in double: x NHWC, w OIHW, optional bias.
func referenceConv(
    _ x: [Float], batch: Int, height: Int, width: Int, inputChannels: Int, _ w: [Float], bias: [Float]?,
    outputChannels: Int, kernel: Int, stride: Int, padding: Int
) -> [Float] {
    let outHeight = (height + 2 * padding - kernel) / stride + 1
    let outWidth = (width + 2 * padding - kernel) / stride + 1
    var y = [Float](repeating: 0, count: batch * outHeight * outWidth * outputChannels)
    for n in 0..<batch {
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                for o in 0..<outputChannels {
                    var sum = Double(bias?[o] ?? 0)
                    for ci in 0..<inputChannels {
                        for i in 0..<kernel {
                            for j in 0..<kernel {
                                let iy = oy * stride + i - padding
                                let ix = ox * stride + j - padding
                                if iy < 0 || iy >= height || ix < 0 || ix >= width {
                                    continue
                                }
                                sum +=
                                    Double(x[((n * height + iy) * width + ix) * inputChannels + ci])
                                    * Double(w[((o * inputChannels + ci) * kernel + i) * kernel + j])
                            }
                        }
                    }
                    y[((n * outHeight + oy) * outWidth + ox) * outputChannels + o] = Float(sum)
                }
            }
        }
    }
    return y
}

/// The activations' textbook definitions, in double.
func referenceActivation(_ kind: ActivationKind, _ x: Float) -> Float {
    let value = Double(x)
    let relu6 = min(max(value + 3, 0), 6)
    switch kind {
    case .none: return x
    case .relu: return Float(max(value, 0))
    case .hswish: return Float(value * relu6 / 6)
    case .hsigmoid: return Float(relu6 / 6)
    }
}
