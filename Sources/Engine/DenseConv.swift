/// Dense (groups = 1) k × k convolution, NHWC activations, OIHW weights, zero padding `padding`.
/// Implemented as im2col + GEMM; `scratch` must hold `scratchCount(...)` floats.
///
/// Layout: the im2col matrix is [N * Ho * Wo × Ci * k * k] with columns in OIHW order (ci, i, j), so the weights
/// are used in place as a [Co × Ci * k * k] matrix. A 1 × 1, stride 1, unpadded convolution (pointwise) skips
/// im2col and multiplies the input directly. The forward product is `Pointwise.product` (the same sums, in the same
/// order, as every other forward product of the engine, so a supernet and a network extracted from it agree); the
/// backward products are OpenBLAS's, which splits output blocks, not the inner dimension, across threads, so no
/// result changes with the thread count (checked by the tests).
/// Thread-safe for distinct outputs and scratch.
public enum DenseConv {
    /// Output extent of one spatial dimension.
    @inline(__always)
    static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    /// Whether the convolution is a plain matrix product over pixels.
    @inline(__always)
    static func isPointwise(kernel: Int, stride: Int, padding: Int) -> Bool {
        kernel == 1 && stride == 1 && padding == 0
    }

    /// Floats of scratch the forward/backward need for this shape.
    ///
    /// N * Ho * Wo * Ci * k * k (the im2col matrix, reused for its gradient), or 0 for a pointwise convolution.
    public static func scratchCount(
        batch: Int, height: Int, width: Int, inputChannels: Int, kernel: Int, stride: Int, padding: Int
    ) -> Int {
        if isPointwise(kernel: kernel, stride: stride, padding: padding) {
            return 0
        }

        let outputHeight = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        return batch * outputHeight * outputWidth * inputChannels * kernel * kernel
    }

    /// y[N, Ho, Wo, Co] = conv(x[N, H, W, Ci], weights[Co, Ci, k, k]) (+ bias[Co] when given).
    ///
    /// Overwrites `output`; `scratch` receives the im2col matrix.
    public static func forward(
        input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, inputChannels: Int,
        weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outputChannels: Int,
        kernel: Int, stride: Int, padding: Int,
        output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let outputHeight = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let rows = batch * outputHeight * outputWidth
        let depth = inputChannels * kernel * kernel
        var columns = input
        if !isPointwise(kernel: kernel, stride: stride, padding: padding) {
            imageToColumns(
                input, batch: batch, height: height, width: width, channels: inputChannels, kernel: kernel,
                stride: stride, padding: padding, columns: scratch
            )
            columns = UnsafePointer(scratch)
        }

        Pointwise.product(
            input: columns, rows: rows, inputs: depth, weights: weights, weightRowStride: depth,
            outputs: outputChannels, output: output)

        if let bias {
            Elementwise.addBias(output, rows: rows, channels: outputChannels, bias: bias)
        }
    }

    /// Accumulates dW[Co, Ci, k, k] (and dBias[Co] when given); writes dx when `inputGradient` is given.
    ///
    /// dx is overwritten. `scratch` first holds the im2col matrix, then the gradient of it.
    public static func backward(
        input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, height: Int, width: Int, inputChannels: Int,
        weights: UnsafePointer<Float>, outputChannels: Int, kernel: Int, stride: Int, padding: Int,
        weightGradient: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>?,
        inputGradient: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>
    ) {
        let outputHeight = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let rows = batch * outputHeight * outputWidth
        let depth = inputChannels * kernel * kernel
        let pointwise = isPointwise(kernel: kernel, stride: stride, padding: padding)
        var columns = input
        if !pointwise {
            imageToColumns(
                input, batch: batch, height: height, width: width, channels: inputChannels, kernel: kernel,
                stride: stride, padding: padding, columns: scratch
            )
            columns = UnsafePointer(scratch)
        }

        GEMM.multiply(
            transposeA: true, transposeB: false, m: outputChannels, n: depth, k: rows,
            alpha: 1, a: outputGradient, lda: outputChannels, b: columns, ldb: depth,
            beta: 1, c: weightGradient, ldc: depth
        )

        if let biasGradient {
            Elementwise.biasGradient(
                outputGradient: outputGradient, rows: rows, channels: outputChannels, biasGradient: biasGradient
            )
        }

        guard let inputGradient else {
            return
        }

        let target = pointwise ? inputGradient : scratch
        GEMM.multiply(
            transposeA: false, transposeB: false, m: rows, n: depth, k: outputChannels,
            alpha: 1, a: outputGradient, lda: outputChannels, b: weights, ldb: depth, beta: 0, c: target, ldc: depth
        )
        if !pointwise {
            columnsToImage(
                scratch, batch: batch, height: height, width: width, channels: inputChannels, kernel: kernel,
                stride: stride, padding: padding, image: inputGradient
            )
        }
    }

    // TODO: columns in (ci, i, j) order make the writes stride k * k apart; fine for the 1-channel stem, slow
    // for a k × k convolution with many input channels ((i, j, ci) order with repacked weights would copy rows).
    /// Fills the im2col matrix: columns[((n * Ho + oy) * Wo + ox) * Ci * k * k + (ci * k + i) * k + j] =
    /// x[n, oy * stride + i - padding, ox * stride + j - padding, ci], zero outside the image.
    public static func imageToColumns(
        _ image: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int, kernel: Int,
        stride: Int, padding: Int, columns: UnsafeMutablePointer<Float>
    ) {
        let outputHeight = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let depth = channels * kernel * kernel
        let total = batch * outputHeight * outputWidth * depth
        Parallel.forRanges(batch * outputHeight, cost: total, minimumCost: 1 << 16) { range in
            for task in range {
                let n = task / outputHeight
                let oy = task % outputHeight
                let source = image + n * height * width * channels
                if channels == 1 {
                    // The stem's case (grey images): one value per tap, rows of the image copied as they are.
                    let rows = columns + (n * outputHeight + oy) * outputWidth * depth
                    for i in 0..<kernel {
                        let y = oy * stride + i - padding
                        let line = source + y * width
                        let inside = y >= 0 && y < height
                        for ox in 0..<outputWidth {
                            let column = rows + ox * depth + i * kernel
                            for j in 0..<kernel {
                                let x = ox * stride + j - padding
                                column[j] = inside && x >= 0 && x < width ? line[x] : 0
                            }
                        }
                    }
                    continue
                }
                for ox in 0..<outputWidth {
                    let row = columns + ((n * outputHeight + oy) * outputWidth + ox) * depth
                    for i in 0..<kernel {
                        let y = oy * stride + i - padding
                        for j in 0..<kernel {
                            let x = ox * stride + j - padding
                            let column = row + i * kernel + j
                            if y >= 0 && y < height && x >= 0 && x < width {
                                let pixel = source + (y * width + x) * channels
                                for c in 0..<channels {
                                    column[c * kernel * kernel] = pixel[c]
                                }
                            } else {
                                for c in 0..<channels {
                                    column[c * kernel * kernel] = 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the im2col-shaped gradient back into the image gradient (overwritten): the adjoint of
    /// `imageToColumns`. Each image is summed by one thread in a fixed order.
    static func columnsToImage(
        _ columns: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int, kernel: Int,
        stride: Int, padding: Int, image: UnsafeMutablePointer<Float>
    ) {
        let outputHeight = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let depth = channels * kernel * kernel
        let total = batch * outputHeight * outputWidth * depth
        Parallel.forRanges(batch, cost: total, minimumCost: 1 << 16) { range in
            for n in range {
                let target = image + n * height * width * channels
                target.initialize(repeating: 0, count: height * width * channels)
                for oy in 0..<outputHeight {
                    for ox in 0..<outputWidth {
                        let row = columns + ((n * outputHeight + oy) * outputWidth + ox) * depth
                        for i in 0..<kernel {
                            let y = oy * stride + i - padding
                            guard y >= 0 && y < height else {
                                continue
                            }

                            for j in 0..<kernel {
                                let x = ox * stride + j - padding
                                guard x >= 0 && x < width else {
                                    continue
                                }

                                let pixel = target + (y * width + x) * channels
                                for c in 0..<channels {
                                    pixel[c] += row[(c * kernel + i) * kernel + j]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
