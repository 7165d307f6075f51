/// The pointwise register block on AVX-512: 12 rows × one 16-channel weight panel (12 accumulators), the panels
/// packed as `Engine.PackedPointwiseWeights` packs them ([inputs × 16] each).
public enum Pointwise512 {
    /// Rows per register block.
    public static let blockRows = 12

    /// Panels per block for a product of `rows` rows: 1, or for 1–4 rows (squeeze-excite, the classifier, and
    /// every product at batch 1's last stage) enough panels that a block has 8–12 accumulators. With one panel, a
    /// 1-row block was a single multiply-add chain, waiting out each instruction's latency.
    static func panelsPerBlock(rows: Int) -> Int {
        switch rows {
        case 1: 8
        case 2: 6
        case 3: 4
        case 4: 3
        default: 1
        }
    }

    /// How many tasks `run` cuts a product into.
    public static func taskCount(rows: Int, outputs n: Int) -> Int {
        let wide = panelsPerBlock(rows: rows)
        let panelCount = (n + 15) / 16
        return (rows + blockRows - 1) / blockRows * ((panelCount + wide - 1) / wide)
    }

    /// Runs tasks `tasks` (of `taskCount`) of a product. The rows are cut into G = ⌈rows / 12⌉ groups as even as
    /// can be (sizes differ by one at most, so a 16-pixel layer runs as 8 + 8 rather than 12 + 4, whose 4-row
    /// block had too few accumulators to keep both FMA units busy); task t is group t / panels times panel
    /// t % panels. Products of 1–4 rows take several panels per task instead (see `panelsPerBlock`).
    /// y = f(x · Wᵀ * scale + shift), or the bare product when `scale` is nil.
    public static func run(
        input: UnsafePointer<Float>, rows: Int, inputs k: Int, outputs n: Int, panels: UnsafePointer<Float>,
        scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: Activation16,
        output: UnsafeMutablePointer<Float>, tasks: Range<Int>
    ) {
        let panelCount = (n + 15) / 16
        if panelsPerBlock(rows: rows) > 1 {
            switch rows {
            case 1: wideTasks(Rows1.self, Rows8.self, input, k, n, panels, scale, shift, activation, output, tasks)
            case 2: wideTasks(Rows2.self, Rows6.self, input, k, n, panels, scale, shift, activation, output, tasks)
            case 3: wideTasks(Rows3.self, Rows4.self, input, k, n, panels, scale, shift, activation, output, tasks)
            default: wideTasks(Rows4.self, Rows3.self, input, k, n, panels, scale, shift, activation, output, tasks)
            }
            return
        }
        let groups = (rows + blockRows - 1) / blockRows
        for task in tasks {
            let group = task / panelCount
            let row = group * rows / groups
            let count = (group + 1) * rows / groups - row
            let column = task % panelCount * 16
            let a = input + row * k
            let b = panels + column * k
            let c = output + row * n + column
            let exit = Exit16(
                scale: scale.map { $0 + column }, shift: shift.map { $0 + column }, activation: activation,
                lanes: min(16, n - column))
            // Each row count its own specialization, the count a constant in it.
            switch count {
            case 12: block(Rows12.self, a, k, b, c, n, exit)
            case 11: block(Rows11.self, a, k, b, c, n, exit)
            case 10: block(Rows10.self, a, k, b, c, n, exit)
            case 9: block(Rows9.self, a, k, b, c, n, exit)
            case 8: block(Rows8.self, a, k, b, c, n, exit)
            case 7: block(Rows7.self, a, k, b, c, n, exit)
            case 6: block(Rows6.self, a, k, b, c, n, exit)
            case 5: block(Rows5.self, a, k, b, c, n, exit)
            case 4: block(Rows4.self, a, k, b, c, n, exit)
            case 3: block(Rows3.self, a, k, b, c, n, exit)
            case 2: block(Rows2.self, a, k, b, c, n, exit)
            default: block(Rows1.self, a, k, b, c, n, exit)
            }
        }
    }

    /// `R.value` rows (a constant after specialization) of x from `a` (row stride k) times the panel `b`, out to `c`
    /// (row stride n). Each output: one fused multiply-add chain over p in order.
    @inline(__always)
    private static func block<R: RowCount>(
        _: R.Type, _ a: UnsafePointer<Float>, _ k: Int, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ n: Int, _ exit: Exit16
    ) {
        let r = R.value
        var s0 = Vec16(), s1 = Vec16(), s2 = Vec16(), s3 = Vec16(), s4 = Vec16(), s5 = Vec16()
        var s6 = Vec16(), s7 = Vec16(), s8 = Vec16(), s9 = Vec16(), s10 = Vec16(), s11 = Vec16()
        for p in 0..<k {
            let w = load16(b + p * 16)
            s0 = s0.addingProduct(Vec16(repeating: a[p]), w)
            if r > 1 { s1 = s1.addingProduct(Vec16(repeating: a[k + p]), w) }
            if r > 2 { s2 = s2.addingProduct(Vec16(repeating: a[2 * k + p]), w) }
            if r > 3 { s3 = s3.addingProduct(Vec16(repeating: a[3 * k + p]), w) }
            if r > 4 { s4 = s4.addingProduct(Vec16(repeating: a[4 * k + p]), w) }
            if r > 5 { s5 = s5.addingProduct(Vec16(repeating: a[5 * k + p]), w) }
            if r > 6 { s6 = s6.addingProduct(Vec16(repeating: a[6 * k + p]), w) }
            if r > 7 { s7 = s7.addingProduct(Vec16(repeating: a[7 * k + p]), w) }
            if r > 8 { s8 = s8.addingProduct(Vec16(repeating: a[8 * k + p]), w) }
            if r > 9 { s9 = s9.addingProduct(Vec16(repeating: a[9 * k + p]), w) }
            if r > 10 { s10 = s10.addingProduct(Vec16(repeating: a[10 * k + p]), w) }
            if r > 11 { s11 = s11.addingProduct(Vec16(repeating: a[11 * k + p]), w) }
        }
        exit.store(s0, c)
        if r > 1 { exit.store(s1, c + n) }
        if r > 2 { exit.store(s2, c + 2 * n) }
        if r > 3 { exit.store(s3, c + 3 * n) }
        if r > 4 { exit.store(s4, c + 4 * n) }
        if r > 5 { exit.store(s5, c + 5 * n) }
        if r > 6 { exit.store(s6, c + 6 * n) }
        if r > 7 { exit.store(s7, c + 7 * n) }
        if r > 8 { exit.store(s8, c + 8 * n) }
        if r > 9 { exit.store(s9, c + 9 * n) }
        if r > 10 { exit.store(s10, c + 10 * n) }
        if r > 11 { exit.store(s11, c + 11 * n) }
        exit.finish(c, count: r, stride: n)
    }
}

extension Pointwise512 {
    /// Tasks of `R.value` rows × up to `W.value` panels each; a last group of fewer panels gets its own width.
    @inline(__always)
    fileprivate static func wideTasks<R: RowCount, W: RowCount>(
        _: R.Type, _: W.Type, _ a: UnsafePointer<Float>, _ k: Int, _ n: Int, _ panels: UnsafePointer<Float>,
        _ scale: UnsafePointer<Float>?, _ shift: UnsafePointer<Float>?, _ activation: Activation16,
        _ output: UnsafeMutablePointer<Float>, _ tasks: Range<Int>
    ) {
        let panelCount = (n + 15) / 16
        for task in tasks {
            let first = task * W.value
            let column = first * 16
            @inline(__always)
            func block<P: RowCount>(_: P.Type) {
                wideBlock(
                    R.self, P.self, a, k, panels + column * k, output + column, n, column, scale, shift, activation)
            }
            switch min(W.value, panelCount - first) {
            case W.value: block(W.self)
            case 7: block(Rows7.self)
            case 6: block(Rows6.self)
            case 5: block(Rows5.self)
            case 4: block(Rows4.self)
            case 3: block(Rows3.self)
            case 2: block(Rows2.self)
            default: block(Rows1.self)
            }
        }
    }

    /// `R.value` rows × `P.value` consecutive panels starting at output channel `column`: R · P ≤ 12 accumulators,
    /// which the compiler keeps in registers once both counts are constants. Each output: one fused multiply-add
    /// chain over p in order, as in `block`.
    @inline(__always)
    private static func wideBlock<R: RowCount, P: RowCount>(
        _: R.Type, _: P.Type, _ a: UnsafePointer<Float>, _ k: Int, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ n: Int, _ column: Int, _ scale: UnsafePointer<Float>?,
        _ shift: UnsafePointer<Float>?, _ activation: Activation16
    ) {
        let rows = R.value
        let width = P.value
        withUnsafeTemporaryAllocation(of: Vec16.self, capacity: 12) { sums in
            for i in 0..<rows * width {
                sums[i] = Vec16()
            }
            for p in 0..<k {
                for q in 0..<width {
                    let w = load16(b + q * 16 * k + p * 16)
                    for r in 0..<rows {
                        sums[r * width + q] = sums[r * width + q].addingProduct(Vec16(repeating: a[r * k + p]), w)
                    }
                }
            }
            for q in 0..<width {
                let channel = column + q * 16
                let exit = Exit16(
                    scale: scale.map { $0 + channel }, shift: shift.map { $0 + channel }, activation: activation,
                    lanes: min(16, n - channel))
                for r in 0..<rows {
                    exit.store(sums[r * width + q], c + r * n + q * 16)
                }
                exit.finish(c + q * 16, count: rows, stride: n)
            }
        }
    }
}

/// A register block's row count as a type, so that each block size is its own specialization with the count
/// constant (a plain argument was left a run-time test inside the inner loop).
public protocol RowCount {
    static var value: Int { get }
}

public enum Rows12: RowCount { public static var value: Int { 12 } }
public enum Rows11: RowCount { public static var value: Int { 11 } }
public enum Rows10: RowCount { public static var value: Int { 10 } }
public enum Rows9: RowCount { public static var value: Int { 9 } }
public enum Rows8: RowCount { public static var value: Int { 8 } }
public enum Rows7: RowCount { public static var value: Int { 7 } }
public enum Rows6: RowCount { public static var value: Int { 6 } }
public enum Rows5: RowCount { public static var value: Int { 5 } }
public enum Rows4: RowCount { public static var value: Int { 4 } }
public enum Rows3: RowCount { public static var value: Int { 3 } }
public enum Rows2: RowCount { public static var value: Int { 2 } }
public enum Rows1: RowCount { public static var value: Int { 1 } }
/// No constant: the callee uses its run-time value instead.
public enum AnyCount: RowCount { public static var value: Int { 0 } }
