/// The engine's SIMD vector: 8 floats, one AVX2 register.
typealias Vec8 = SIMD8<Float>

/// Loads 8 floats from `pointer` (no alignment needed).
@inline(__always)
func load8(_ pointer: UnsafePointer<Float>) -> Vec8 {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vec8.self)
}

/// Stores 8 floats at `pointer` (no alignment needed).
@inline(__always)
func store8(_ value: Vec8, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vec8.self)
}

/// Loads the first `lanes` (0...8) floats at `pointer`; the other lanes are zero.
@inline(__always)
func loadPartial(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> Vec8 {
    if lanes >= 8 {
        return load8(pointer)
    }

    var value = Vec8()
    for lane in 0..<lanes {
        value[lane] = pointer[lane]
    }
    return value
}

/// Stores the first `lanes` (0...8) lanes of `value` at `pointer`.
@inline(__always)
func storePartial(_ value: Vec8, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes >= 8 {
        store8(value, pointer)
        return
    }

    for lane in 0..<lanes {
        pointer[lane] = value[lane]
    }
}

/// Applies `body` to every 8-float group of `count` floats, the last one partial (zero-filled loads, partial
/// stores): `body(offset, lanes)`.
@inline(__always)
func forEachGroup(_ count: Int, _ body: (Int, Int) -> Void) {
    var offset = 0
    while offset + 8 <= count {
        body(offset, 8)
        offset += 8
    }
    if offset < count {
        body(offset, count - offset)
    }
}
