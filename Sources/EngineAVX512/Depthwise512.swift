/// The depthwise forward correlation on AVX-512: tasks of one image × one block of 16 channels, the plane copied
/// into zero-bordered scratch, register blocks of 2 output rows × 4 outputs (8 accumulators). Same layouts and
/// same sums as `Engine.Depthwise.forward`: NHWC activations, taps-major weights [k² × C], padding k / 2.
public enum Depthwise512 {
    /// Bytes of scratch one thread needs for `forward` on planes of this size.
    public static func scratchBytes(height: Int, width: Int, kernel: Int) -> Int {
        let pad = kernel / 2
        return ((height + 2 * pad) * (width + 2 * pad) + kernel * kernel) * MemoryLayout<Vec16>.stride
    }

    /// Runs tasks `tasks` of y = f(depthwise(x) * scale + shift), or the bare correlation when `scale` is nil.
    /// Each image's output rows are cut into `bands` bands; task t is image t / (bands · blocks), band
    /// t / blocks % bands, channels (t % blocks) · 16 ..< +16, so a contiguous run of tasks covers whole bands
    /// (at batch 1, one band per thread keeps each thread on the rows it wrote in the layer before). `scratch`
    /// holds `scratchBytes` bytes, 64-byte aligned.
    public static func forward(
        input: UnsafePointer<Float>, height: Int, width: Int, channels: Int, weights: UnsafePointer<Float>,
        kernel: Int, stride: Int, scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
        activation: Activation16, output: UnsafeMutablePointer<Float>, bands: Int = 1, tasks: Range<Int>,
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
            let image = task / (blocks * bands)
            let band = task / blocks % bands
            let channel = task % blocks * 16
            let lanes = min(16, channels - channel)
            let firstRow = band * outputHeight / bands
            let endRow = (band + 1) * outputHeight / bands
            guard firstRow < endRow else {
                continue
            }
            for tap in 0..<tapCount {
                taps[tap] = loadPartial16(weights + tap * channels + channel, lanes)
            }
            let source = input + image * height * width * channels + channel
            let interior = plane + pad * paddedWidth + pad
            // Only the input rows this band reads; the others keep what an earlier task left, unread.
            for y in max(0, firstRow * stride - pad)..<min(height, (endRow - 1) * stride - pad + kernel) {
                for x in 0..<width {
                    interior[y * paddedWidth + x] = loadPartial16(source + (y * width + x) * channels, lanes)
                }
            }
            let exit = Exit16(
                scale: scale.map { $0 + channel }, shift: shift.map { $0 + channel }, activation: activation,
                lanes: lanes)
            let destination = output + image * outputHeight * outputWidth * channels + channel
            // Common kernel sizes and strides as types, so that each is its own specialization with constant
            // loop bounds and strides: passed as plain arguments, they had left one copy with run-time loops (4%
            // slower over the largest subnet). Unrolling the tap loop by hand was 15% slower again.
            @inline(__always)
            func run<K: RowCount, S: RowCount>(_: K.Type, _: S.Type) {
                correlate(
                    K.self, S.self, plane, paddedWidth, stride, UnsafePointer(taps), kernel, firstRow..<endRow,
                    outputWidth, destination, outputWidth * channels, channels, exit)
            }
            switch (kernel, stride) {
            case (3, 1): run(Rows3.self, Rows1.self)
            case (5, 1): run(Rows5.self, Rows1.self)
            case (7, 1): run(Rows7.self, Rows1.self)
            case (3, 2): run(Rows3.self, Rows2.self)
            case (5, 2): run(Rows5.self, Rows2.self)
            case (7, 2): run(Rows7.self, Rows2.self)
            default: run(AnyCount.self, AnyCount.self)
            }
        }
    }

    /// Output rows `outputRows` of one 16-channel plane, in tiles of 2 rows × 4 columns; the plane's last row and last columns
    /// run as smaller tiles of their own (a 7-wide plane is 4 + 3 columns, not 4 + three single columns whose two
    /// accumulators left the multiply-add units idle).
    @inline(__always)
    private static func correlate<K: RowCount, S: RowCount>(
        _: K.Type, _: S.Type, _ source: UnsafePointer<Vec16>, _ sourceRow: Int, _ stride: Int,
        _ taps: UnsafePointer<Vec16>, _ kernel: Int, _ outputRows: Range<Int>, _ outputWidth: Int,
        _ destination: UnsafeMutablePointer<Float>, _ destinationRow: Int, _ destinationColumn: Int, _ exit: Exit16
    ) {
        let step = S.value > 0 ? S.value : stride
        @inline(__always)
        func tiles<R: RowCount>(_ rows: R.Type, _ y: Int) {
            let top = source + y * step * sourceRow
            let destinationY = destination + y * destinationRow
            @inline(__always)
            func tile<C: RowCount>(_ columns: C.Type, _ x: Int) {
                Self.tile(
                    R.self, C.self, K.self, S.self, top + x * step, sourceRow, stride, taps, kernel,
                    destinationY + x * destinationColumn, destinationRow, destinationColumn, exit)
            }
            var x = 0
            while x + 4 <= outputWidth {
                tile(Rows4.self, x)
                x += 4
            }
            switch outputWidth - x {
            case 3: tile(Rows3.self, x)
            case 2: tile(Rows2.self, x)
            case 1: tile(Rows1.self, x)
            default: break
            }
            for row in 0..<R.value {
                exit.finish(destinationY + row * destinationRow, count: outputWidth, stride: destinationColumn)
            }
        }
        var y = outputRows.lowerBound
        while y + 2 <= outputRows.upperBound {
            tiles(Rows2.self, y)
            y += 2
        }
        if y < outputRows.upperBound {
            tiles(Rows1.self, y)
        }
    }

    /// One tile of `R.value` output rows × `C.value` output columns of a `K.value`² kernel at stride `S.value`
    /// (constants after specialization), stored bare.
    /// Each output: one fused multiply-add chain over the taps in row-major order.
    @inline(__always)
    private static func tile<R: RowCount, C: RowCount, K: RowCount, S: RowCount>(
        _: R.Type, _: C.Type, _: K.Type, _: S.Type, _ top: UnsafePointer<Vec16>, _ sourceRow: Int, _ stride: Int,
        _ taps: UnsafePointer<Vec16>, _ kernel: Int, _ target: UnsafeMutablePointer<Float>,
        _ destinationRow: Int, _ destinationColumn: Int, _ exit: Exit16
    ) {
        // Constants after specialization; `AnyCount` (0) falls back to the run-time values.
        let tapRows = K.value > 0 ? K.value : kernel
        let tapColumns = tapRows
        let step = S.value > 0 ? S.value : stride
        let rows = R.value
        let columns = C.value
        var a0 = Vec16(), a1 = Vec16(), a2 = Vec16(), a3 = Vec16()
        var b0 = Vec16(), b1 = Vec16(), b2 = Vec16(), b3 = Vec16()
        for a in 0..<tapRows {
            let upper = top + a * sourceRow
            let lower = upper + step * sourceRow
            let tapRow = taps + a * tapColumns
            for b in 0..<tapColumns {
                let tap = tapRow[b]
                a0 = a0.addingProduct(upper[b], tap)
                if columns > 1 { a1 = a1.addingProduct(upper[b + step], tap) }
                if columns > 2 { a2 = a2.addingProduct(upper[b + 2 * step], tap) }
                if columns > 3 { a3 = a3.addingProduct(upper[b + 3 * step], tap) }
                if rows > 1 {
                    b0 = b0.addingProduct(lower[b], tap)
                    if columns > 1 { b1 = b1.addingProduct(lower[b + step], tap) }
                    if columns > 2 { b2 = b2.addingProduct(lower[b + 2 * step], tap) }
                    if columns > 3 { b3 = b3.addingProduct(lower[b + 3 * step], tap) }
                }
            }
        }
        exit.store(a0, target)
        if columns > 1 { exit.store(a1, target + destinationColumn) }
        if columns > 2 { exit.store(a2, target + 2 * destinationColumn) }
        if columns > 3 { exit.store(a3, target + 3 * destinationColumn) }
        if rows > 1 {
            let lowerTarget = target + destinationRow
            exit.store(b0, lowerTarget)
            if columns > 1 { exit.store(b1, lowerTarget + destinationColumn) }
            if columns > 2 { exit.store(b2, lowerTarget + 2 * destinationColumn) }
            if columns > 3 { exit.store(b3, lowerTarget + 3 * destinationColumn) }
        }
    }
}
