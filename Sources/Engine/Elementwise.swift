#if canImport(Glibc)
import Glibc
#endif

/// Element-wise and small reduction kernels.
///
/// Layout: flat float arrays, or NHWC tensors seen as [N, spatial, C] / [rows × C] as each function says.
/// Element-wise work is split into contiguous ranges; reductions run per image or per fixed row chunk, so all
/// results are bitwise independent of the thread count. Thread-safe for distinct outputs.
public enum Elementwise {
    /// Below this many floats per thread, element-wise work is not split.
    static let minimumParallelCount = 1 << 15

    /// y = activation(x), count floats; y may alias x.
    ///
    /// Exact for none and relu; hswish and hsigmoid multiply by 1/6 (within 1 ulp of dividing by 6).
    public static func activate(
        _ kind: ActivationKind, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
    ) {
        switch kind {
        case .none:
            if UnsafePointer(output) != input {
                output.update(from: input, count: count)
            }
        case .relu:
            activateKernel(ReLUActivation.self, input: input, output: output, count: count)
        case .hswish:
            activateKernel(HSwishActivation.self, input: input, output: output, count: count)
        case .hsigmoid:
            activateKernel(HSigmoidActivation.self, input: input, output: output, count: count)
        }
    }

    /// dx = dy * activation'(x) where x is the activation's input; dx may alias dy.
    ///
    /// Derivatives at the kinks follow PyTorch (see `ActivationFunction`).
    public static func activationBackward(
        _ kind: ActivationKind, input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>, count: Int
    ) {
        switch kind {
        case .none:
            if UnsafePointer(inputGradient) != outputGradient {
                inputGradient.update(from: outputGradient, count: count)
            }
        case .relu:
            gradientKernel(
                ReLUActivation.self, input: input, outputGradient: outputGradient,
                inputGradient: inputGradient, count: count)
        case .hswish:
            gradientKernel(
                HSwishActivation.self, input: input, outputGradient: outputGradient,
                inputGradient: inputGradient, count: count)
        case .hsigmoid:
            gradientKernel(
                HSigmoidActivation.self, input: input, outputGradient: outputGradient,
                inputGradient: inputGradient, count: count)
        }
    }

    /// y = a + b; y may alias a or b.
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
    ) {
        forElementRanges(count) { start, end in
            forEachGroup(end - start) { offset, lanes in
                let index = start + offset
                storePartial(loadPartial(a + index, lanes) + loadPartial(b + index, lanes), output + index, lanes)
            }
        }
    }

    /// y[rows × C] += bias[C].
    public static func addBias(
        _ output: UnsafeMutablePointer<Float>, rows: Int, channels: Int, bias: UnsafePointer<Float>
    ) {
        Parallel.forRanges(rows, cost: rows * channels, minimumCost: minimumParallelCount) { range in
            for row in range {
                let target = output + row * channels
                forEachGroup(channels) { channel, lanes in
                    storePartial(
                        loadPartial(target + channel, lanes) + loadPartial(bias + channel, lanes), target + channel,
                        lanes
                    )
                }
            }
        }
    }

    /// dBias[C] += sum over rows of dy[rows × C].
    ///
    /// Fixed row chunks summed in float, combined in double (see `BatchNorm`).
    public static func biasGradient(
        outputGradient: UnsafePointer<Float>, rows: Int, channels: Int, biasGradient: UnsafeMutablePointer<Float>
    ) {
        let padded = RowReduction.paddedChannels(channels)
        RowReduction.run(
            rows: rows, channels: channels, width: padded,
            chunk: { range, partial in
                var channel = 0
                while channel < channels {
                    let lanes = min(8, channels - channel)
                    var sum = Vec8()
                    for row in range {
                        sum += loadPartial(outputGradient + row * channels + channel, lanes)
                    }
                    store8(sum, partial + channel)
                    channel += 8
                }
            },
            combine: { partials, chunks in
                for channel in 0..<channels {
                    var sum = 0.0
                    for chunk in 0..<chunks {
                        sum += Double(partials[chunk * padded + channel])
                    }
                    biasGradient[channel] += Float(sum)
                }
            }
        )
    }

    /// y[N, C] = mean over the `spatial` positions of x[N, spatial, C].
    ///
    /// Float sum over positions in order, then divided by `spatial`. Parallel over images.
    public static func globalAveragePool(
        input: UnsafePointer<Float>, batch: Int, spatial: Int, channels: Int, output: UnsafeMutablePointer<Float>
    ) {
        let divisor = Vec8(repeating: Float(spatial))
        Parallel.forRanges(batch, cost: batch * spatial * channels, minimumCost: minimumParallelCount) { range in
            for image in range {
                let source = input + image * spatial * channels
                forEachGroup(channels) { channel, lanes in
                    var sum = Vec8()
                    for position in 0..<spatial {
                        sum += loadPartial(source + position * channels + channel, lanes)
                    }
                    storePartial(sum / divisor, output + image * channels + channel, lanes)
                }
            }
        }
    }

    /// dx[N, spatial, C] (overwritten) = dy[N, C] / spatial.
    public static func globalAveragePoolBackward(
        outputGradient: UnsafePointer<Float>, batch: Int, spatial: Int, channels: Int,
        inputGradient: UnsafeMutablePointer<Float>
    ) {
        let divisor = Vec8(repeating: Float(spatial))
        Parallel.forRanges(batch, cost: batch * spatial * channels, minimumCost: minimumParallelCount) { range in
            for image in range {
                let target = inputGradient + image * spatial * channels
                forEachGroup(channels) { channel, lanes in
                    let value = loadPartial(outputGradient + image * channels + channel, lanes) / divisor
                    for position in 0..<spatial {
                        storePartial(value, target + position * channels + channel, lanes)
                    }
                }
            }
        }
    }

    /// y[n, s, c] = x[n, s, c] * scale[n, c] (squeeze-excite gating); y may alias x.
    public static func channelScale(
        input: UnsafePointer<Float>, batch: Int, spatial: Int, channels: Int,
        scale: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        Parallel.forRanges(batch, cost: batch * spatial * channels, minimumCost: minimumParallelCount) { range in
            for image in range {
                let base = image * spatial * channels
                for position in 0..<spatial {
                    let offset = base + position * channels
                    forEachGroup(channels) { channel, lanes in
                        let factor = loadPartial(scale + image * channels + channel, lanes)
                        storePartial(
                            loadPartial(input + offset + channel, lanes) * factor,
                            output + offset + channel, lanes)
                    }
                }
            }
        }
    }

    /// dx = dy * scale[n, c] (overwritten; may alias dy only if dScale is computed first internally),
    /// dScale[n, c] (overwritten) = sum over s of dy * x.
    ///
    /// dScale is computed first for each (image, 8-channel group), so dx may alias dy. Float fused multiply-add
    /// chain over positions in order. Parallel over images.
    public static func channelScaleBackward(
        input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>, batch: Int, spatial: Int, channels: Int,
        scale: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
        scaleGradient: UnsafeMutablePointer<Float>
    ) {
        Parallel.forRanges(batch, cost: 2 * batch * spatial * channels, minimumCost: minimumParallelCount) { range in
            for image in range {
                let base = image * spatial * channels
                forEachGroup(channels) { channel, lanes in
                    var sum = Vec8()
                    for position in 0..<spatial {
                        let index = base + position * channels + channel
                        let gradient = loadPartial(outputGradient + index, lanes)
                        sum = sum.addingProduct(gradient, loadPartial(input + index, lanes))
                    }
                    storePartial(sum, scaleGradient + image * channels + channel, lanes)
                    let factor = loadPartial(scale + image * channels + channel, lanes)
                    for position in 0..<spatial {
                        let index = base + position * channels + channel
                        storePartial(loadPartial(outputGradient + index, lanes) * factor, inputGradient + index, lanes)
                    }
                }
            }
        }
    }

    /// Inverted dropout: mask[i] = 0 with probability `rate`, else 1 / (1 - rate); y = x * mask.
    ///
    /// One `nextUnitFloat()` per element in index order (element i is dropped when its draw is < rate), on the
    /// caller's thread, so the mask depends only on the generator's state. rate ≤ 0 keeps everything (mask 1);
    /// rate ≥ 1 drops everything (mask 0). y may alias x.
    public static func dropout(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>,
        count: Int, rate: Float, random: inout SeededRandom
    ) {
        if rate <= 0 {
            mask.update(repeating: 1, count: count)
        } else if rate >= 1 {
            mask.update(repeating: 0, count: count)
        } else {
            let keep = 1 / (1 - rate)
            for index in 0..<count {
                mask[index] = random.nextUnitFloat() < rate ? 0 : keep
            }
        }
        multiply(input, UnsafePointer(mask), output: output, count: count)
    }

    /// y = x * mask (dropout's backward, and any element-wise product).
    ///
    /// y may alias either operand.
    public static func multiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
    ) {
        forElementRanges(count) { start, end in
            forEachGroup(end - start) { offset, lanes in
                let index = start + offset
                storePartial(loadPartial(a + index, lanes) * loadPartial(b + index, lanes), output + index, lanes)
            }
        }
    }

    /// Bilinear resize of x[N, H, W, C] to y[N, outH, outW, C], half-pixel centres, edge clamping
    /// (PyTorch's `interpolate(mode="bilinear", align_corners=False)`, no antialiasing).
    ///
    /// Source coordinate (d + 0.5) * in / out - 0.5, clamped below at 0; weights as PyTorch computes them, so
    /// results match it to about 1 ulp. y must not alias x. Parallel over output rows.
    public static func resizeBilinear(
        input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        outputHeight: Int, outputWidth: Int, output: UnsafeMutablePointer<Float>
    ) {
        let scaleY = Float(height) / Float(outputHeight)
        let scaleX = Float(width) / Float(outputWidth)
        let cost = 4 * batch * outputHeight * outputWidth * channels
        Parallel.forRanges(batch * outputHeight, cost: cost, minimumCost: minimumParallelCount) { range in
            for task in range {
                let image = task / outputHeight
                let oy = task % outputHeight
                let sourceY = max(0, scaleY * (Float(oy) + 0.5) - 0.5)
                let y0 = min(Int(sourceY), height - 1)
                let y1 = y0 < height - 1 ? y0 + 1 : y0
                let weightY1 = sourceY - Float(y0)
                let weightY0 = 1 - weightY1
                let row0 = input + (image * height + y0) * width * channels
                let row1 = input + (image * height + y1) * width * channels
                let target = output + (image * outputHeight + oy) * outputWidth * channels
                for ox in 0..<outputWidth {
                    let sourceX = max(0, scaleX * (Float(ox) + 0.5) - 0.5)
                    let x0 = min(Int(sourceX), width - 1)
                    let x1 = x0 < width - 1 ? x0 + 1 : x0
                    let weightX1 = Vec8(repeating: sourceX - Float(x0))
                    let weightX0 = Vec8(repeating: 1) - weightX1
                    let top = Vec8(repeating: weightY0)
                    let bottom = Vec8(repeating: weightY1)
                    forEachGroup(channels) { channel, lanes in
                        let upper =
                            weightX0 * loadPartial(row0 + x0 * channels + channel, lanes)
                            + weightX1 * loadPartial(row0 + x1 * channels + channel, lanes)
                        let lower =
                            weightX0 * loadPartial(row1 + x0 * channels + channel, lanes)
                            + weightX1 * loadPartial(row1 + x1 * channels + channel, lanes)
                        storePartial(top * upper + bottom * lower, target + ox * channels + channel, lanes)
                    }
                }
            }
        }
    }

    /// dst[cols × rows] = transpose(src[rows × cols]).
    ///
    /// 16 × 16 tiles; parallel over tile rows of the destination. dst must not alias src.
    public static func transpose(
        _ source: UnsafePointer<Float>, rows: Int, columns: Int, destination: UnsafeMutablePointer<Float>
    ) {
        let tile = 16
        let tileColumns = (columns + tile - 1) / tile
        Parallel.forRanges(tileColumns, cost: rows * columns, minimumCost: minimumParallelCount) { range in
            for tileColumn in range {
                let columnStart = tileColumn * tile
                let columnEnd = min(columns, columnStart + tile)
                var rowStart = 0
                while rowStart < rows {
                    let rowEnd = min(rows, rowStart + tile)
                    for column in columnStart..<columnEnd {
                        for row in rowStart..<rowEnd {
                            destination[column * rows + row] = source[row * columns + column]
                        }
                    }
                    rowStart = rowEnd
                }
            }
        }
    }

    /// Calls `body(start, end)` on contiguous ranges covering 0..<count (multiples of 8 floats apart from the
    /// end), in parallel when the count is large.
    @inline(__always)
    static func forElementRanges(_ count: Int, _ body: (Int, Int) -> Void) {
        let block = 4096
        let blocks = (count + block - 1) / block
        Parallel.forRanges(blocks, cost: count, minimumCost: minimumParallelCount) { range in
            body(range.lowerBound * block, min(count, range.upperBound * block))
        }
    }

    /// The body of `activate` for one activation.
    static func activateKernel<A: ActivationFunction>(
        _ activation: A.Type, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
    ) {
        forElementRanges(count) { start, end in
            forEachGroup(end - start) { offset, lanes in
                let index = start + offset
                storePartial(A.value(loadPartial(input + index, lanes)), output + index, lanes)
            }
        }
    }

    /// The body of `activationBackward` for one activation.
    static func gradientKernel<A: ActivationFunction>(
        _ activation: A.Type, input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>, count: Int
    ) {
        forElementRanges(count) { start, end in
            forEachGroup(end - start) { offset, lanes in
                let index = start + offset
                let gradient = A.gradient(loadPartial(input + index, lanes), loadPartial(outputGradient + index, lanes))
                storePartial(gradient, inputGradient + index, lanes)
            }
        }
    }
}
