import EngineAVX512

/// Depthwise convolution, NHWC, zero "same" padding k / 2, no bias; k odd (3, 5, 7), stride 1 or 2.
/// Output size: (H + 2 * (k / 2) - k) / stride + 1 per spatial dimension.
///
/// Layout: activations NHWC contiguous; weights taps-major [k * k × C], tap (i, j) of channel c at
/// (i * k + j) * C + c. Any odd k and any stride ≥ 1 work; k ≤ 7 and strides 1 and 2 have unrolled kernels.
///
/// Method: the work is cut into tasks of one image × one block of 8 channels (the last block may be partial),
/// image-major so an image stays in cache while its blocks are done.
/// A task copies its plane into a zero-bordered scratch plane of `SIMD8<Float>` (so the inner loops have no
/// bounds tests and no channel tail), then runs a register-blocked correlation: 4 adjacent outputs × 8 channels
/// in registers, taps unrolled. The input gradient is the same correlation over the output gradient with the
/// flipped kernel, split by output phase (y mod stride, x mod stride) so stride 2 does no work on zeros.
/// The weight gradient splits the batch into at most 16 fixed image groups (a function of N only) and the
/// channels into chunks of 8 blocks; each task sums one group's images in order into its own partial sums, and
/// the partials are added in group order at the end. So none of the three depends on the thread count.
/// Thread-safe for distinct outputs; scratch comes from the engine's pool.
public enum Depthwise {
    /// Below this many multiply-adds per thread the work is not split (thread hand-off would cost more).
    static let minimumParallelCost = 1 << 15

    /// The weight gradient sums the batch in this many fixed image groups (fewer for smaller batches).
    static let weightGroups = 16

    /// The weight gradient's tasks take this many 8-channel blocks of one image group.
    // TODO: at batch 1 on small planes (4 × 4 × 480) these tasks are too small: 2 threads take ~47 µs where one
    // takes ~20 µs (engine-bench); the split should also depend on the per-task cost, as forward's does.
    static let weightChunkBlocks = 8

    /// Output extent of one spatial dimension.
    @inline(__always)
    static func outputSize(_ size: Int, kernel: Int, stride: Int) -> Int {
        (size + 2 * (kernel / 2) - kernel) / stride + 1
    }

    /// y[N, Ho, Wo, C] = depthwise(x[N, H, W, C], weights[k * k × C]).
    ///
    /// Each output is a fused multiply-add chain over the taps in row-major tap order (i, then j); relative
    /// error is within k * k ulps of the exact sum. Overwrites `output`.
    ///
    /// With `scale` and `shift` (inference with BatchNorm folded), each output leaves as
    /// `activation(shift[c] + sum * scale[c])`: the same operations as `BatchNorm.apply` on the bare output, so
    /// fused and unfused results are bitwise equal.
    public static func forward(
        input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        weights: UnsafePointer<Float>, kernel: Int, stride: Int,
        scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, activation: ActivationKind = .none,
        output: UnsafeMutablePointer<Float>
    ) {
        precondition((scale == nil) == (shift == nil), "scale and shift come together")
        precondition(kernel % 2 == 1 && stride >= 1, "depthwise needs an odd kernel and a positive stride")
        if InstructionSet.useAVX512 {
            // Tasks of one image × 16 channels (`Depthwise512`); the same sums as the AVX2 kernel below.
            let outputHeight = outputSize(height, kernel: kernel, stride: stride)
            let outputWidth = outputSize(width, kernel: kernel, stride: stride)
            // With fewer images than threads, each image's rows are cut into one band per thread, each thread
            // taking its own band (as `Pointwise` takes rows), so layer after layer a thread reads what it wrote.
            let blocks = (channels + 15) / 16
            let bands = batch < Parallel.threadCount ? min(Parallel.threadCount, outputHeight) : 1
            let cost = batch * outputHeight * outputWidth * channels * kernel * kernel
            let bytes = Depthwise512.scratchBytes(height: height, width: width, kernel: kernel)
            Parallel.forRanges(
                batch * bands * blocks, cost: cost, minimumCost: minimumParallelCost, affine: bands > 1
            ) { range in
                ScratchPool.withVectors((bytes + 31) / 32) { scratch in
                    Depthwise512.forward(
                        input: input, height: height, width: width, channels: channels,
                        weights: weights, kernel: kernel, stride: stride, scale: scale, shift: shift,
                        activation: Activation16(activation), output: output, bands: bands, tasks: range,
                        scratch: UnsafeMutableRawPointer(scratch))
                }
            }
            return
        }
        switch (scale == nil, activation) {
        case (true, _), (false, .none):
            forward(
                IdentityActivation.self, input, batch, height, width, channels, weights, kernel, stride, scale, shift,
                output)
        case (false, .relu):
            forward(
                ReLUActivation.self, input, batch, height, width, channels, weights, kernel, stride, scale, shift,
                output)
        case (false, .hswish):
            forward(
                HSwishActivation.self, input, batch, height, width, channels, weights, kernel, stride, scale, shift,
                output)
        case (false, .hsigmoid):
            forward(
                HSigmoidActivation.self, input, batch, height, width, channels, weights, kernel, stride, scale, shift,
                output)
        }
    }

    private static func forward<A: ActivationFunction>(
        _ activation: A.Type, _ input: UnsafePointer<Float>, _ batch: Int, _ height: Int, _ width: Int,
        _ channels: Int, _ weights: UnsafePointer<Float>, _ kernel: Int, _ stride: Int,
        _ scale: UnsafePointer<Float>?, _ shift: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>
    ) {
        let pad = kernel / 2
        let outputHeight = outputSize(height, kernel: kernel, stride: stride)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride)
        let blocks = (channels + 7) / 8
        let paddedWidth = width + 2 * pad
        let planeCount = (height + 2 * pad) * paddedWidth
        let tapCount = kernel * kernel
        let cost = batch * outputHeight * outputWidth * channels * tapCount

        Parallel.forRanges(batch * blocks, cost: cost, minimumCost: minimumParallelCost) { range in
            ScratchPool.withVectors(planeCount + blocks * tapCount) { scratch in
                let taps = scratch
                let plane = scratch + blocks * tapCount
                plane.initialize(repeating: .zero, count: planeCount)
                for block in 0..<blocks {
                    let lanes = min(8, channels - block * 8)
                    for tap in 0..<tapCount {
                        taps[block * tapCount + tap] = loadPartial(weights + tap * channels + block * 8, lanes)
                    }
                }
                for task in range {
                    let image = task / blocks
                    let block = task % blocks
                    let channel = block * 8
                    let lanes = min(8, channels - channel)
                    packPlane(
                        input + image * height * width * channels + channel, height: height, width: width,
                        channels: channels, lanes: lanes, into: plane + pad * paddedWidth + pad,
                        rowStride: paddedWidth
                    )
                    let epilogue = DepthwiseEpilogue(
                        fused: scale != nil, scale: scale.map { loadPartial($0 + channel, lanes) } ?? Vec8(),
                        shift: shift.map { loadPartial($0 + channel, lanes) } ?? Vec8(), lanes: lanes)
                    let destination = output + image * outputHeight * outputWidth * channels + channel
                    let blockTaps = UnsafePointer(taps + block * tapCount)
                    @inline(__always)
                    func run(_ columns: Int, _ step: Int) {
                        forwardKernel(
                            A.self, source: plane, sourceRow: paddedWidth, step: step, taps: blockTaps,
                            tapRows: kernel, tapColumns: columns, outputHeight: outputHeight,
                            outputWidth: outputWidth, destination: destination, destinationRow: outputWidth * channels,
                            destinationColumn: channels, epilogue: epilogue)
                    }
                    switch (kernel, stride) {
                    case (3, 1): run(3, 1)
                    case (5, 1): run(5, 1)
                    case (7, 1): run(7, 1)
                    case (3, 2): run(3, 2)
                    case (5, 2): run(5, 2)
                    case (7, 2): run(7, 2)
                    default: run(kernel, stride)
                    }
                }
            }
        }
    }

    /// dx[N, H, W, C] (overwritten) from dy[N, Ho, Wo, C].
    ///
    /// dx[y, x] = sum over taps (i, j) with y = oy * stride + i - k / 2, x = ox * stride + j - k / 2 of
    /// dy[oy, ox] * w[i, j]; computed as a fused multiply-add chain per element (no atomics, no scatter).
    public static func backwardInput(
        outputGradient: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        weights: UnsafePointer<Float>, kernel: Int, stride: Int,
        inputGradient: UnsafeMutablePointer<Float>
    ) {
        precondition(kernel % 2 == 1 && stride >= 1, "depthwise needs an odd kernel and a positive stride")
        let tapCount = kernel * kernel
        if stride == 1 {
            // With stride 1, dx is the forward correlation of dy with the kernel turned by half a turn (tap (i, j)
            // as (k - 1 - i, k - 1 - j)), same padding, so the forward kernels (AVX-512 where there is AVX-512) do
            // the work (measured: the phase loop below, on 8 lanes, took 11% of a one-thread training step).
            ScratchPool.withFloats(tapCount * channels) { turned in
                for tap in 0..<tapCount {
                    (turned + (tapCount - 1 - tap) * channels).update(from: weights + tap * channels, count: channels)
                }
                forward(
                    input: outputGradient, batch: batch, height: height, width: width, channels: channels,
                    weights: turned, kernel: kernel, stride: 1, output: inputGradient)
            }
            return
        }
        let pad = kernel / 2
        let outputHeight = outputSize(height, kernel: kernel, stride: stride)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride)
        let blocks = (channels + 7) / 8
        let paddedWidth = outputWidth + 2 * pad
        let planeCount = (outputHeight + 2 * pad) * paddedWidth
        let cost = batch * outputHeight * outputWidth * channels * tapCount

        Parallel.forRanges(batch * blocks, cost: cost, minimumCost: minimumParallelCost) { range in
            ScratchPool.withVectors(planeCount + blocks * tapCount) { scratch in
                let allTaps = scratch
                let plane = scratch + blocks * tapCount
                plane.initialize(repeating: .zero, count: planeCount)
                for block in 0..<blocks {
                    packPhaseTaps(
                        weights + block * 8, channels: channels, lanes: min(8, channels - block * 8), kernel: kernel,
                        stride: stride, into: allTaps + block * tapCount
                    )
                }
                for task in range {
                    let image = task / blocks
                    let block = task % blocks
                    let channel = block * 8
                    let lanes = min(8, channels - channel)
                    let taps = allTaps + block * tapCount
                    packPlane(
                        outputGradient + image * outputHeight * outputWidth * channels + channel,
                        height: outputHeight, width: outputWidth, channels: channels, lanes: lanes,
                        into: plane + pad * paddedWidth + pad, rowStride: paddedWidth
                    )
                    let destination = inputGradient + image * height * width * channels + channel
                    var phaseTaps = taps
                    for phaseY in 0..<stride {
                        let firstI = (phaseY + pad) % stride
                        let tapRows = (kernel - firstI + stride - 1) / stride
                        let rowOffset = (phaseY + pad - firstI) / stride - tapRows + 1 + pad
                        let rows = (height - phaseY + stride - 1) / stride
                        for phaseX in 0..<stride {
                            let firstJ = (phaseX + pad) % stride
                            let tapColumns = (kernel - firstJ + stride - 1) / stride
                            let columnOffset = (phaseX + pad - firstJ) / stride - tapColumns + 1 + pad
                            let columns = (width - phaseX + stride - 1) / stride
                            let phaseDestination = destination + (phaseY * width + phaseX) * channels
                            if tapRows == 0 || tapColumns == 0 {
                                fillZero(
                                    phaseDestination, rows: rows, columns: columns,
                                    destinationRow: stride * width * channels, destinationColumn: stride * channels,
                                    lanes: lanes
                                )
                                continue
                            }

                            if rows > 0 && columns > 0 {
                                correlate(
                                    source: plane + rowOffset * paddedWidth + columnOffset, sourceRow: paddedWidth,
                                    step: 1, taps: phaseTaps, tapRows: tapRows, tapColumns: tapColumns,
                                    outputHeight: rows, outputWidth: columns, destination: phaseDestination,
                                    destinationRow: stride * width * channels, destinationColumn: stride * channels,
                                    lanes: lanes
                                )
                            }
                            phaseTaps += tapRows * tapColumns
                        }
                    }
                }
            }
        }
    }

    /// dW[k * k × C] (accumulated) from x and dy.
    ///
    /// dW[i, j, c] += sum over n, oy, ox of x[n, oy * stride + i - k / 2, ox * stride + j - k / 2, c] *
    /// dy[n, oy, ox, c]. Per image and tap row the sum runs in float registers over (oy, ox) in order, and images
    /// are added in order: relative error grows like N * Ho * Wo ulps in the worst case, typically far less.
    public static func backwardWeights(
        input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int,
        weightGradient: UnsafeMutablePointer<Float>
    ) {
        precondition(kernel % 2 == 1 && stride >= 1, "depthwise needs an odd kernel and a positive stride")
        let pad = kernel / 2
        let outputHeight = outputSize(height, kernel: kernel, stride: stride)
        let outputWidth = outputSize(width, kernel: kernel, stride: stride)
        let blocks = (channels + 7) / 8
        let paddedWidth = width + 2 * pad
        let planeCount = (height + 2 * pad) * paddedWidth
        let gradientCount = outputHeight * outputWidth
        let tapCount = kernel * kernel
        let cost = batch * outputHeight * outputWidth * channels * tapCount

        let groups = min(weightGroups, batch)
        let chunks = (blocks + weightChunkBlocks - 1) / weightChunkBlocks
        ScratchPool.withVectors(groups * blocks * tapCount) { partials in
            Parallel.forRanges(groups * chunks, cost: cost, minimumCost: minimumParallelCost) { range in
                ScratchPool.withVectors(planeCount + gradientCount) { scratch in
                    let gradientPlane = scratch
                    let plane = scratch + gradientCount
                    plane.initialize(repeating: .zero, count: planeCount)
                    for task in range {
                        let group = task / chunks
                        let firstBlock = task % chunks * weightChunkBlocks
                        let endBlock = min(blocks, firstBlock + weightChunkBlocks)
                        let groupSums = partials + group * blocks * tapCount
                        (groupSums + firstBlock * tapCount).initialize(
                            repeating: .zero, count: (endBlock - firstBlock) * tapCount
                        )
                        for image in group * batch / groups..<(group + 1) * batch / groups {
                            for block in firstBlock..<endBlock {
                                let channel = block * 8
                                let lanes = min(8, channels - channel)
                                packPlane(
                                    input + image * height * width * channels + channel, height: height,
                                    width: width, channels: channels, lanes: lanes,
                                    into: plane + pad * paddedWidth + pad, rowStride: paddedWidth
                                )
                                packPlane(
                                    outputGradient + image * gradientCount * channels + channel,
                                    height: outputHeight, width: outputWidth, channels: channels, lanes: lanes,
                                    into: gradientPlane, rowStride: outputWidth
                                )
                                accumulateTaps(
                                    source: plane, sourceRow: paddedWidth, step: stride, gradient: gradientPlane,
                                    outputHeight: outputHeight, outputWidth: outputWidth, kernel: kernel,
                                    sums: groupSums + block * tapCount
                                )
                            }
                        }
                    }
                }
            }

            for block in 0..<blocks {
                let channel = block * 8
                let lanes = min(8, channels - channel)
                for tap in 0..<tapCount {
                    var sum = Vec8()
                    for group in 0..<groups {
                        sum += partials[(group * blocks + block) * tapCount + tap]
                    }
                    let target = weightGradient + tap * channels + channel
                    storePartial(loadPartial(target, lanes) + sum, target, lanes)
                }
            }
        }
    }

    // TODO: for k = 3 and 5 the plane copy costs about as much as the arithmetic (k3 runs at ~27 GFLOP/s
    // against ~45-80 for k7); a k3/k5 path reading NHWC directly with explicit borders would avoid it.
    /// Copies channels [c, c + lanes) of an NHWC plane (`source` points at channel c of pixel (0, 0)) into
    /// `destination[y * rowStride + x]`, zero-filling lanes ≥ `lanes`.
    @inline(__always)
    static func packPlane(
        _ source: UnsafePointer<Float>, height: Int, width: Int, channels: Int, lanes: Int,
        into destination: UnsafeMutablePointer<Vec8>, rowStride: Int
    ) {
        if lanes == 8 {
            for y in 0..<height {
                let sourceRow = source + y * width * channels
                let destinationRow = destination + y * rowStride
                for x in 0..<width {
                    destinationRow[x] = load8(sourceRow + x * channels)
                }
            }
        } else {
            for y in 0..<height {
                let sourceRow = source + y * width * channels
                let destinationRow = destination + y * rowStride
                for x in 0..<width {
                    destinationRow[x] = loadPartial(sourceRow + x * channels, lanes)
                }
            }
        }
    }

    /// Packs the flipped kernel of every output phase (py, px) of the input gradient, phases in row-major order,
    /// each [tapRows × tapColumns]: phase tap (a, b) = w[i0 + s * (tapRows - 1 - a), j0 + s * (tapColumns - 1 - b)]
    /// with i0 = (py + k / 2) mod s, j0 = (px + k / 2) mod s. The phases together hold all k * k taps.
    static func packPhaseTaps(
        _ weights: UnsafePointer<Float>, channels: Int, lanes: Int, kernel: Int, stride: Int,
        into taps: UnsafeMutablePointer<Vec8>
    ) {
        let pad = kernel / 2
        var next = taps
        for phaseY in 0..<stride {
            let firstI = (phaseY + pad) % stride
            let tapRows = (kernel - firstI + stride - 1) / stride
            for phaseX in 0..<stride {
                let firstJ = (phaseX + pad) % stride
                let tapColumns = (kernel - firstJ + stride - 1) / stride
                for a in 0..<tapRows {
                    for b in 0..<tapColumns {
                        let i = firstI + stride * (tapRows - 1 - a)
                        let j = firstJ + stride * (tapColumns - 1 - b)
                        next[a * tapColumns + b] = loadPartial(weights + (i * kernel + j) * channels, lanes)
                    }
                }
                next += tapRows * tapColumns
            }
        }
    }

    /// Writes zeros to `lanes` channels of a rows × columns grid of NHWC pixels.
    static func fillZero(
        _ destination: UnsafeMutablePointer<Float>, rows: Int, columns: Int, destinationRow: Int,
        destinationColumn: Int, lanes: Int
    ) {
        for y in 0..<rows {
            for x in 0..<columns {
                storePartial(.zero, destination + y * destinationRow + x * destinationColumn, lanes)
            }
        }
    }

    /// out[y, x] = sum over a < tapRows, b < tapColumns of source[(y * step + a) * sourceRow + x * step + b] *
    /// taps[a * tapColumns + b], written to destination[y * destinationRow + x * destinationColumn] (`lanes` lanes).
    /// Dispatches to a version unrolled for the tap width and step.
    static func correlate(
        source: UnsafePointer<Vec8>, sourceRow: Int, step: Int, taps: UnsafePointer<Vec8>, tapRows: Int,
        tapColumns: Int, outputHeight: Int, outputWidth: Int, destination: UnsafeMutablePointer<Float>,
        destinationRow: Int, destinationColumn: Int, lanes: Int
    ) {
        @inline(__always)
        func run(_ columns: Int, _ step: Int) {
            correlateKernel(
                source: source, sourceRow: sourceRow, step: step, taps: taps, tapRows: tapRows, tapColumns: columns,
                outputHeight: outputHeight, outputWidth: outputWidth, destination: destination,
                destinationRow: destinationRow, destinationColumn: destinationColumn, lanes: lanes
            )
        }

        switch (tapColumns, step) {
        case (1, 1): run(1, 1)
        case (2, 1): run(2, 1)
        case (3, 1): run(3, 1)
        case (4, 1): run(4, 1)
        case (5, 1): run(5, 1)
        case (6, 1): run(6, 1)
        case (7, 1): run(7, 1)
        case (3, 2): run(3, 2)
        case (5, 2): run(5, 2)
        case (7, 2): run(7, 2)
        default: run(tapColumns, step)
        }
    }

    /// The body of `correlate`; inlined with constant `tapColumns` and `step` so the tap loop unrolls and
    /// overlapping source loads of the 4 outputs are shared.
    @inline(__always)
    static func correlateKernel(
        source: UnsafePointer<Vec8>, sourceRow: Int, step: Int, taps: UnsafePointer<Vec8>, tapRows: Int,
        tapColumns: Int, outputHeight: Int, outputWidth: Int, destination: UnsafeMutablePointer<Float>,
        destinationRow: Int, destinationColumn: Int, lanes: Int
    ) {
        for y in 0..<outputHeight {
            let sourceY = source + y * step * sourceRow
            let destinationY = destination + y * destinationRow
            var x = 0
            while x + 4 <= outputWidth {
                var sum0 = Vec8()
                var sum1 = Vec8()
                var sum2 = Vec8()
                var sum3 = Vec8()
                for a in 0..<tapRows {
                    let row = sourceY + a * sourceRow + x * step
                    let tapRow = taps + a * tapColumns
                    for b in 0..<tapColumns {
                        let tap = tapRow[b]
                        sum0 = sum0.addingProduct(row[b], tap)
                        sum1 = sum1.addingProduct(row[b + step], tap)
                        sum2 = sum2.addingProduct(row[b + 2 * step], tap)
                        sum3 = sum3.addingProduct(row[b + 3 * step], tap)
                    }
                }
                let target = destinationY + x * destinationColumn
                storePartial(sum0, target, lanes)
                storePartial(sum1, target + destinationColumn, lanes)
                storePartial(sum2, target + 2 * destinationColumn, lanes)
                storePartial(sum3, target + 3 * destinationColumn, lanes)
                x += 4
            }
            while x < outputWidth {
                var sum = Vec8()
                for a in 0..<tapRows {
                    let row = sourceY + a * sourceRow + x * step
                    let tapRow = taps + a * tapColumns
                    for b in 0..<tapColumns {
                        sum = sum.addingProduct(row[b], tapRow[b])
                    }
                }
                storePartial(sum, destinationY + x * destinationColumn, lanes)
                x += 1
            }
        }
    }

    /// The forward correlation (`correlate` with step = stride) in register blocks of 2 output rows × 4 outputs
    /// (8 independent accumulators: enough to cover the fused multiply-add latency on two FMA units, where 4 left
    /// half of them idle), each output leaving through `epilogue`. Every output is the same fused multiply-add
    /// chain over the taps in row-major order as in `correlate`, whatever block it falls in.
    @inline(__always)
    static func forwardKernel<A: ActivationFunction>(
        _ activation: A.Type, source: UnsafePointer<Vec8>, sourceRow: Int, step: Int, taps: UnsafePointer<Vec8>,
        tapRows: Int, tapColumns: Int, outputHeight: Int, outputWidth: Int, destination: UnsafeMutablePointer<Float>,
        destinationRow: Int, destinationColumn: Int, epilogue: DepthwiseEpilogue
    ) {
        var y = 0
        while y < outputHeight {
            // Rows in pairs; a last odd row runs as a pair with itself, its copy not stored.
            let pair = y + 2 <= outputHeight
            let top = source + y * step * sourceRow
            let bottom = pair ? top + step * sourceRow : top
            let destinationY = destination + y * destinationRow
            var x = 0
            while x + 4 <= outputWidth {
                var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8()
                var b0 = Vec8(), b1 = Vec8(), b2 = Vec8(), b3 = Vec8()
                for a in 0..<tapRows {
                    let upper = top + a * sourceRow + x * step
                    let lower = bottom + a * sourceRow + x * step
                    let tapRow = taps + a * tapColumns
                    for b in 0..<tapColumns {
                        let tap = tapRow[b]
                        a0 = a0.addingProduct(upper[b], tap)
                        a1 = a1.addingProduct(upper[b + step], tap)
                        a2 = a2.addingProduct(upper[b + 2 * step], tap)
                        a3 = a3.addingProduct(upper[b + 3 * step], tap)
                        b0 = b0.addingProduct(lower[b], tap)
                        b1 = b1.addingProduct(lower[b + step], tap)
                        b2 = b2.addingProduct(lower[b + 2 * step], tap)
                        b3 = b3.addingProduct(lower[b + 3 * step], tap)
                    }
                }
                let target = destinationY + x * destinationColumn
                epilogue.store(a0, target)
                epilogue.store(a1, target + destinationColumn)
                epilogue.store(a2, target + 2 * destinationColumn)
                epilogue.store(a3, target + 3 * destinationColumn)
                if pair {
                    let lowerTarget = target + destinationRow
                    epilogue.store(b0, lowerTarget)
                    epilogue.store(b1, lowerTarget + destinationColumn)
                    epilogue.store(b2, lowerTarget + 2 * destinationColumn)
                    epilogue.store(b3, lowerTarget + 3 * destinationColumn)
                }
                x += 4
            }
            while x < outputWidth {
                var upperSum = Vec8()
                var lowerSum = Vec8()
                for a in 0..<tapRows {
                    let upper = top + a * sourceRow + x * step
                    let lower = bottom + a * sourceRow + x * step
                    let tapRow = taps + a * tapColumns
                    for b in 0..<tapColumns {
                        upperSum = upperSum.addingProduct(upper[b], tapRow[b])
                        lowerSum = lowerSum.addingProduct(lower[b], tapRow[b])
                    }
                }
                epilogue.store(upperSum, destinationY + x * destinationColumn)
                if pair {
                    epilogue.store(lowerSum, destinationY + destinationRow + x * destinationColumn)
                }
                x += 1
            }
            epilogue.finish(A.self, destinationY, count: outputWidth, stride: destinationColumn)
            if pair {
                epilogue.finish(A.self, destinationY + destinationRow, count: outputWidth, stride: destinationColumn)
            }
            y += pair ? 2 : 1
        }
    }

    /// sums[a * k + b] += sum over y, x of source[(y * step + a) * sourceRow + x * step + b] *
    /// gradient[y * outputWidth + x]. Dispatches to a version unrolled for k and step.
    static func accumulateTaps(
        source: UnsafePointer<Vec8>, sourceRow: Int, step: Int, gradient: UnsafePointer<Vec8>,
        outputHeight: Int, outputWidth: Int, kernel: Int, sums: UnsafeMutablePointer<Vec8>
    ) {
        @inline(__always)
        func run(_ kernel: Int, _ step: Int) {
            accumulateTapsKernel(
                source: source, sourceRow: sourceRow, step: step, gradient: gradient, outputHeight: outputHeight,
                outputWidth: outputWidth, kernel: kernel, sums: sums
            )
        }

        switch (kernel, step) {
        case (1, 1): run(1, 1)
        case (3, 1): run(3, 1)
        case (5, 1): run(5, 1)
        case (7, 1): run(7, 1)
        case (1, 2): run(1, 2)
        case (3, 2): run(3, 2)
        case (5, 2): run(5, 2)
        case (7, 2): run(7, 2)
        default:
            for a in 0..<kernel {
                for b in 0..<kernel {
                    var sum = Vec8()
                    for y in 0..<outputHeight {
                        let row = source + (y * step + a) * sourceRow + b
                        for x in 0..<outputWidth {
                            sum = sum.addingProduct(row[x * step], gradient[y * outputWidth + x])
                        }
                    }
                    sums[a * kernel + b] += sum
                }
            }
        }
    }

    /// The body of `accumulateTaps` for k ≤ 7: one tap row at a time, its k sums in registers. For k ≤ 5 two
    /// adjacent outputs go to separate sums (added at the end), so enough multiply-add chains run at once.
    @inline(__always)
    static func accumulateTapsKernel(
        source: UnsafePointer<Vec8>, sourceRow: Int, step: Int, gradient: UnsafePointer<Vec8>,
        outputHeight: Int, outputWidth: Int, kernel: Int, sums: UnsafeMutablePointer<Vec8>
    ) {
        for a in 0..<kernel {
            var sum0 = Vec8()
            var sum1 = Vec8()
            var sum2 = Vec8()
            var sum3 = Vec8()
            var sum4 = Vec8()
            var sum5 = Vec8()
            var sum6 = Vec8()
            for y in 0..<outputHeight {
                let sourceY = source + (y * step + a) * sourceRow
                let gradientY = gradient + y * outputWidth
                var x = 0
                if kernel <= 5 {
                    var odd0 = Vec8()
                    var odd1 = Vec8()
                    var odd2 = Vec8()
                    var odd3 = Vec8()
                    var odd4 = Vec8()
                    while x + 2 <= outputWidth {
                        let g = gradientY[x]
                        let h = gradientY[x + 1]
                        let row = sourceY + x * step
                        let next = row + step
                        sum0 = sum0.addingProduct(row[0], g)
                        odd0 = odd0.addingProduct(next[0], h)
                        if kernel > 1 {
                            sum1 = sum1.addingProduct(row[1], g)
                            odd1 = odd1.addingProduct(next[1], h)
                            sum2 = sum2.addingProduct(row[2], g)
                            odd2 = odd2.addingProduct(next[2], h)
                        }
                        if kernel > 3 {
                            sum3 = sum3.addingProduct(row[3], g)
                            odd3 = odd3.addingProduct(next[3], h)
                            sum4 = sum4.addingProduct(row[4], g)
                            odd4 = odd4.addingProduct(next[4], h)
                        }
                        x += 2
                    }
                    sum0 += odd0
                    sum1 += odd1
                    sum2 += odd2
                    sum3 += odd3
                    sum4 += odd4
                }
                while x < outputWidth {
                    let g = gradientY[x]
                    let row = sourceY + x * step
                    sum0 = sum0.addingProduct(row[0], g)
                    if kernel > 1 {
                        sum1 = sum1.addingProduct(row[1], g)
                        sum2 = sum2.addingProduct(row[2], g)
                    }
                    if kernel > 3 {
                        sum3 = sum3.addingProduct(row[3], g)
                        sum4 = sum4.addingProduct(row[4], g)
                    }
                    if kernel > 5 {
                        sum5 = sum5.addingProduct(row[5], g)
                        sum6 = sum6.addingProduct(row[6], g)
                    }
                    x += 1
                }
            }
            let target = sums + a * kernel
            target[0] += sum0
            if kernel > 1 {
                target[1] += sum1
                target[2] += sum2
            }
            if kernel > 3 {
                target[3] += sum3
                target[4] += sum4
            }
            if kernel > 5 {
                target[5] += sum5
                target[6] += sum6
            }
        }
    }
}

/// How forward outputs leave the depthwise kernel: stored bare, then (when fused) turned in place into
/// `activation(shift + sum * scale)` one output row at a time — a per-vector epilogue inside the register block was
/// left as a call by the compiler. `lanes` channels of each vector are stored.
struct DepthwiseEpilogue {
    let fused: Bool
    let scale: Vec8
    let shift: Vec8
    let lanes: Int

    @inline(__always)
    func store(_ sum: Vec8, _ target: UnsafeMutablePointer<Float>) {
        storePartial(sum, target, lanes)
    }

    /// Applies the affine and activation to `count` stored vectors at `first` + i · stride.
    func finish<A: ActivationFunction>(_: A.Type, _ first: UnsafeMutablePointer<Float>, count: Int, stride: Int) {
        guard fused else {
            return
        }
        for i in 0..<count {
            let target = first + i * stride
            storePartial(A.value(shift.addingProduct(loadPartial(target, lanes), scale)), target, lanes)
        }
    }
}
