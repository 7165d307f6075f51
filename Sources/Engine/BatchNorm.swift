/// Batch normalization over [rows × C] (NHWC flattened), per channel.
///
/// Layout: row r, channel c at r * C + c. Reductions over rows use fixed chunks of rows (a function of C only):
/// each chunk sums in float registers, chunks are combined in order in double precision, so results are bitwise
/// independent of the thread count and accurate to a few float ulps. Thread-safe for distinct outputs.
public enum BatchNorm {
    /// Per-channel mean and biased variance (divide by rows) of x; both outputs have C floats.
    ///
    /// Single pass over shifted data (each channel's first value is subtracted before summing), so large means
    /// do not cancel the variance; the variance is clamped at 0. `rows` must be positive.
    public static func statistics(
        input: UnsafePointer<Float>, rows: Int, channels: Int,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        precondition(rows > 0, "batch norm statistics need at least one row")
        let padded = RowReduction.paddedChannels(channels)
        RowReduction.run(
            rows: rows, channels: channels, width: 2 * padded,
            chunk: { range, partial in
                var channel = 0
                while channel < channels {
                    let lanes = min(8, channels - channel)
                    let shift = loadPartial(input + channel, lanes)
                    var sum = Vec8()
                    var squares = Vec8()
                    for row in range {
                        let deviation = loadPartial(input + row * channels + channel, lanes) - shift
                        sum += deviation
                        squares = squares.addingProduct(deviation, deviation)
                    }
                    store8(sum, partial + channel)
                    store8(squares, partial + padded + channel)
                    channel += 8
                }
            },
            combine: { partials, chunks in
                let count = Double(rows)
                for channel in 0..<channels {
                    var sum = 0.0
                    var squares = 0.0
                    for chunk in 0..<chunks {
                        sum += Double(partials[chunk * 2 * padded + channel])
                        squares += Double(partials[chunk * 2 * padded + padded + channel])
                    }
                    let shiftedMean = sum / count
                    mean[channel] = Float(Double(input[channel]) + shiftedMean)
                    variance[channel] = Float(max(0, squares / count - shiftedMean * shiftedMean))
                }
            }
        )
    }

    /// z = x * scale[c] + shift[c]; y = activation(z). `preActivation` receives z when given
    /// (training keeps it for the backward pass); y may alias x.
    ///
    /// z is one fused multiply-add. Parallel over rows.
    public static func apply(
        input: UnsafePointer<Float>, rows: Int, channels: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, activation: ActivationKind,
        preActivation: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        switch activation {
        case .none:
            applyKernel(
                IdentityActivation.self, input: input, rows: rows, channels: channels, scale: scale, shift: shift,
                preActivation: preActivation, output: output
            )
        case .relu:
            applyKernel(
                ReLUActivation.self, input: input, rows: rows, channels: channels, scale: scale, shift: shift,
                preActivation: preActivation, output: output
            )
        case .hswish:
            applyKernel(
                HSwishActivation.self, input: input, rows: rows, channels: channels, scale: scale, shift: shift,
                preActivation: preActivation, output: output
            )
        case .hsigmoid:
            applyKernel(
                HSigmoidActivation.self, input: input, rows: rows, channels: channels, scale: scale, shift: shift,
                preActivation: preActivation, output: output
            )
        }
    }

    /// Backward of z = gamma * (x - mean) * invStd + beta with batch statistics:
    /// dx (overwritten) = gamma * invStd / rows * (rows * dz - sum(dz) - xhat * sum(dz * xhat)),
    /// dGamma += sum(dz * xhat), dBeta += sum(dz). dx may alias dz.
    ///
    /// With an `activation` other than `.none`, `outputGradient` is the gradient of y = activation(z) instead, and
    /// dz = dy * activation'(z) is formed on the fly with z = x * scale + shift, the forward's `apply` arithmetic
    /// (so z is bitwise the value `apply` produced and the result equals `Elementwise.activationBackward`
    /// followed by this function): the training step then neither stores z nor makes a pass of its own for dz.
    ///
    /// Computed as dx = gamma * invStd * (dz - sum(dz) / rows - xhat * sum(dz * xhat) / rows) with
    /// xhat = (x - mean) * invStd. Two passes: a fixed-chunk reduction over dy and x (which stores dz when there is
    /// an activation), then a parallel element-wise pass over dz and x.
    public static func backward(
        outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int, channels: Int,
        mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        activation: ActivationKind = .none, scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil,
        inputGradient: UnsafeMutablePointer<Float>,
        gammaGradient: UnsafeMutablePointer<Float>, betaGradient: UnsafeMutablePointer<Float>
    ) {
        guard rows > 0 else {
            return
        }
        precondition(
            activation == .none || (scale != nil && shift != nil),
            "batch norm backward through an activation needs the forward's scale and shift")
        let statistics = Statistics(
            mean: mean, invStd: invStd, gamma: gamma, scale: scale ?? mean, shift: shift ?? mean)
        switch activation {
        case .none:
            backwardKernel(
                IdentityActivation.self, outputGradient: outputGradient, input: input, rows: rows, channels: channels,
                statistics: statistics, inputGradient: inputGradient, gammaGradient: gammaGradient,
                betaGradient: betaGradient)
        case .relu:
            backwardKernel(
                ReLUActivation.self, outputGradient: outputGradient, input: input, rows: rows, channels: channels,
                statistics: statistics, inputGradient: inputGradient, gammaGradient: gammaGradient,
                betaGradient: betaGradient)
        case .hswish:
            backwardKernel(
                HSwishActivation.self, outputGradient: outputGradient, input: input, rows: rows, channels: channels,
                statistics: statistics, inputGradient: inputGradient, gammaGradient: gammaGradient,
                betaGradient: betaGradient)
        case .hsigmoid:
            backwardKernel(
                HSigmoidActivation.self, outputGradient: outputGradient, input: input, rows: rows, channels: channels,
                statistics: statistics, inputGradient: inputGradient, gammaGradient: gammaGradient,
                betaGradient: betaGradient)
        }
    }

    /// The per-channel arrays `backward` reads.
    struct Statistics {
        let mean: UnsafePointer<Float>
        let invStd: UnsafePointer<Float>
        let gamma: UnsafePointer<Float>
        /// The forward's z = x * scale + shift (read only when there is an activation).
        let scale: UnsafePointer<Float>
        let shift: UnsafePointer<Float>
    }

    /// The body of `backward` for one activation.
    static func backwardKernel<A: ActivationFunction>(
        _ activation: A.Type, outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int,
        channels: Int, statistics: Statistics, inputGradient: UnsafeMutablePointer<Float>,
        gammaGradient: UnsafeMutablePointer<Float>, betaGradient: UnsafeMutablePointer<Float>
    ) {
        let (mean, invStd, gamma, scale, shift) =
            (statistics.mean, statistics.invStd, statistics.gamma, statistics.scale, statistics.shift)
        // With an activation the reduction pass forms dz, stores it in `inputGradient` and the element-wise pass
        // reads it back from there (cheaper here than forming it twice); without one dz is dy.
        let identity = A.self == IdentityActivation.self
        let dz = identity ? outputGradient : UnsafePointer(inputGradient)

        let padded = RowReduction.paddedChannels(channels)
        ScratchPool.withFloats(3 * padded) { coefficients in
            let factor = coefficients
            let offset = coefficients + padded
            let slope = coefficients + 2 * padded
            RowReduction.run(
                rows: rows, channels: channels, width: 2 * padded,
                chunk: { range, partial in
                    var channel = 0
                    while channel < channels {
                        let lanes = min(8, channels - channel)
                        let center = loadPartial(mean + channel, lanes)
                        let inverse = loadPartial(invStd + channel, lanes)
                        var sum = Vec8()
                        var product = Vec8()
                        for row in range {
                            let index = row * channels + channel
                            let x = loadPartial(input + index, lanes)
                            var gradient = loadPartial(outputGradient + index, lanes)
                            if !identity {
                                let z = loadPartial(shift + channel, lanes)
                                    .addingProduct(x, loadPartial(scale + channel, lanes))
                                gradient = A.gradient(z, gradient)
                                storePartial(gradient, inputGradient + index, lanes)
                            }
                            let normalized = (x - center) * inverse
                            sum += gradient
                            product = product.addingProduct(gradient, normalized)
                        }
                        store8(sum, partial + channel)
                        store8(product, partial + padded + channel)
                        channel += 8
                    }
                },
                combine: { partials, chunks in
                    for channel in 0..<channels {
                        var sum = 0.0
                        var product = 0.0
                        for chunk in 0..<chunks {
                            sum += Double(partials[chunk * 2 * padded + channel])
                            product += Double(partials[chunk * 2 * padded + padded + channel])
                        }
                        gammaGradient[channel] += Float(product)
                        betaGradient[channel] += Float(sum)
                        factor[channel] = gamma[channel] * invStd[channel]
                        offset[channel] = Float(sum / Double(rows))
                        slope[channel] = Float(product / Double(rows))
                    }
                }
            )

            Parallel.forRanges(rows, cost: rows * channels, minimumCost: Elementwise.minimumParallelCount) { range in
                for row in range {
                    let base = row * channels
                    forEachGroup(channels) { channel, lanes in
                        let index = base + channel
                        let x = loadPartial(input + index, lanes)
                        let normalized = (x - loadPartial(mean + channel, lanes)) * loadPartial(invStd + channel, lanes)
                        let centered = loadPartial(dz + index, lanes) - load8(offset + channel)
                        let gradient =
                            load8(factor + channel)
                            * centered.addingProduct(-normalized, load8(slope + channel))
                        storePartial(gradient, inputGradient + index, lanes)
                    }
                }
            }
        }
    }

    /// The body of `apply` for one activation.
    static func applyKernel<A: ActivationFunction>(
        _ activation: A.Type, input: UnsafePointer<Float>, rows: Int, channels: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
        preActivation: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        Parallel.forRanges(rows, cost: rows * channels, minimumCost: Elementwise.minimumParallelCount) { range in
            for row in range {
                let base = row * channels
                forEachGroup(channels) { channel, lanes in
                    let index = base + channel
                    let z = loadPartial(shift + channel, lanes)
                        .addingProduct(loadPartial(input + index, lanes), loadPartial(scale + channel, lanes))
                    if let preActivation {
                        storePartial(z, preActivation + index, lanes)
                    }
                    storePartial(A.value(z), output + index, lanes)
                }
            }
        }
    }
}

/// Per-channel sums over the rows of [rows × C] in fixed chunks of rows, bitwise independent of the thread count.
enum RowReduction {
    /// C rounded up to a multiple of 8 (partial sums are stored as whole vectors).
    @inline(__always)
    static func paddedChannels(_ channels: Int) -> Int {
        (channels + 7) / 8 * 8
    }

    /// Rows per chunk: about 32 Ki floats, between 16 and 1024 rows; depends on C only.
    @inline(__always)
    static func chunkRows(channels: Int) -> Int {
        max(16, min(1024, 32_768 / max(1, channels)))
    }

    /// Calls `chunk(rows, partial)` for every fixed chunk of rows (in parallel), `partial` being that chunk's
    /// `width` floats of scratch; then `combine(partials, chunkCount)` on the caller's thread with chunk c's
    /// floats at c * width.
    static func run(
        rows: Int, channels: Int, width: Int,
        chunk: (Range<Int>, UnsafeMutablePointer<Float>) -> Void,
        combine: (UnsafePointer<Float>, Int) -> Void
    ) {
        let chunkRows = chunkRows(channels: channels)
        let chunks = (rows + chunkRows - 1) / chunkRows
        ScratchPool.withFloats(chunks * width) { partials in
            Parallel.forRanges(chunks, cost: rows * channels, minimumCost: Elementwise.minimumParallelCount) { range in
                for index in range {
                    chunk(index * chunkRows..<min(rows, (index + 1) * chunkRows), partials + index * width)
                }
            }
            combine(partials, chunks)
        }
    }
}
