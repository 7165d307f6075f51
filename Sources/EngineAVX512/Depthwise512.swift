/// The depthwise forward correlation on AVX-512: tasks of one image × one block of 16 channels, the plane copied
/// into zero-bordered scratch, register blocks of 2 output rows × 4 outputs (8 accumulators). Same layouts and
/// same sums as `Engine.Depthwise.forward`: NHWC activations, taps-major weights [k² × C], padding k / 2.
public enum Depthwise512 {
    /// Bytes of scratch one thread needs for `forward` on planes of this size.
    public static func scratchBytes(height: Int, width: Int, kernel: Int) -> Int {
        let pad = kernel / 2
        return ((height + 2 * pad) * (width + 2 * pad) + kernel * kernel) * MemoryLayout<Vec16>.stride
    }

    /// Runs tasks `tasks` (image-major: task t is image t / blocks, channels (t % blocks) · 16 ..< +16) of
    /// y = f(depthwise(x) * scale + shift), or the bare correlation when `scale` is nil. `scratch` holds
    /// `scratchBytes` bytes, 64-byte aligned.
    public static func forward(
        input: UnsafePointer<Float>, height: Int, width: Int, channels: Int, weights: UnsafePointer<Float>,
        kernel: Int, stride: Int, scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
        activation: Activation16, output: UnsafeMutablePointer<Float>, tasks: Range<Int>,
        scratch: UnsafeMutableRawPointer
    ) {
        let pad = kernel / 2
        let outputHeight = (height + 2 * pad - kernel) / stride + 1
        let outputWidth = (width + 2 * pad - kernel) / stride + 1
        let blocks = (channels + 15) / 16
        let paddedWidth = width + 2 * pad
        let planeCount = (height + 2 * pad) * paddedWidth
        let tapCount = kernel * kernel
        let plane = scratch.bindMemory(to: Vec16.self, capacity: planeCount + tapCount)
        let taps = plane + planeCount
        plane.initialize(repeating: .zero, count: planeCount)
        for task in tasks {
            let image = task / blocks
            let channel = task % blocks * 16
            let lanes = min(16, channels - channel)
            for tap in 0..<tapCount {
                taps[tap] = loadPartial16(weights + tap * channels + channel, lanes)
            }
            let source = input + image * height * width * channels + channel
            let interior = plane + pad * paddedWidth + pad
            for y in 0..<height {
                for x in 0..<width {
                    interior[y * paddedWidth + x] = loadPartial16(source + (y * width + x) * channels, lanes)
                }
            }
            let exit = Exit16(
                scale: scale.map { $0 + channel }, shift: shift.map { $0 + channel }, activation: activation,
                lanes: lanes)
            let destination = output + image * outputHeight * outputWidth * channels + channel
            @inline(__always)
            func run(_ columns: Int, _ step: Int) {
                correlate(
                    plane, paddedWidth, step, UnsafePointer(taps), kernel, columns, outputHeight, outputWidth,
                    destination, outputWidth * channels, channels, exit)
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

    @inline(__always)
    private static func correlate(
        _ source: UnsafePointer<Vec16>, _ sourceRow: Int, _ step: Int, _ taps: UnsafePointer<Vec16>,
        _ tapRows: Int, _ tapColumns: Int, _ outputHeight: Int, _ outputWidth: Int,
        _ destination: UnsafeMutablePointer<Float>, _ destinationRow: Int, _ destinationColumn: Int, _ exit: Exit16
    ) {
        var y = 0
        while y < outputHeight {
            let pair = y + 2 <= outputHeight
            let top = source + y * step * sourceRow
            let bottom = pair ? top + step * sourceRow : top
            let destinationY = destination + y * destinationRow
            var x = 0
            while x + 4 <= outputWidth {
                var a0 = Vec16(), a1 = Vec16(), a2 = Vec16(), a3 = Vec16()
                var b0 = Vec16(), b1 = Vec16(), b2 = Vec16(), b3 = Vec16()
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
                exit.store(a0, target)
                exit.store(a1, target + destinationColumn)
                exit.store(a2, target + 2 * destinationColumn)
                exit.store(a3, target + 3 * destinationColumn)
                if pair {
                    let lowerTarget = target + destinationRow
                    exit.store(b0, lowerTarget)
                    exit.store(b1, lowerTarget + destinationColumn)
                    exit.store(b2, lowerTarget + 2 * destinationColumn)
                    exit.store(b3, lowerTarget + 3 * destinationColumn)
                }
                x += 4
            }
            while x < outputWidth {
                var upperSum = Vec16()
                var lowerSum = Vec16()
                for a in 0..<tapRows {
                    let upper = top + a * sourceRow + x * step
                    let lower = bottom + a * sourceRow + x * step
                    let tapRow = taps + a * tapColumns
                    for b in 0..<tapColumns {
                        upperSum = upperSum.addingProduct(upper[b], tapRow[b])
                        lowerSum = lowerSum.addingProduct(lower[b], tapRow[b])
                    }
                }
                exit.store(upperSum, destinationY + x * destinationColumn)
                if pair {
                    exit.store(lowerSum, destinationY + destinationRow + x * destinationColumn)
                }
                x += 1
            }
            exit.finish(destinationY, count: outputWidth, stride: destinationColumn)
            if pair {
                exit.finish(destinationY + destinationRow, count: outputWidth, stride: destinationColumn)
            }
            y += pair ? 2 : 1
        }
    }
}
