/// The engine's two hottest inference kernels for processors with AVX-512: the pointwise register block and the
/// depthwise forward correlation, on 16-float vectors.
///
/// This module alone is compiled for AVX-512 (see Package.swift); `Engine` calls into it only after checking that
/// the processor has AVX-512 F, CD, BW, DQ and VL, and keeps its AVX2 kernels for the others. Each output is
/// computed with the same operations in the same order as the AVX2 kernels (one fused multiply-add chain, then
/// `shift + sum * scale`, then the activation), so results are bitwise equal on either path. Measured on an AVX-512
/// Xeon: one core runs 175 GFLOP/s of 512-bit fused multiply-adds against 94 with 256-bit ones (a 12-accumulator
/// loop).

public typealias Vec16 = SIMD16<Float>

/// Activation codes (`ActivationKind` in `Engine`, which cannot be imported here: this module sits below it).
public enum Activation16: Int, Sendable {
    case none = 0, relu, hswish, hsigmoid
}

@inline(__always)
func load16(_ pointer: UnsafePointer<Float>) -> Vec16 {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vec16.self)
}

@inline(__always)
func store16(_ value: Vec16, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vec16.self)
}

/// The first `lanes` (0...16) floats at `pointer`, the rest zero; reads nothing beyond them.
@inline(__always)
func loadPartial16(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> Vec16 {
    if lanes >= 16 {
        return load16(pointer)
    }
    if lanes >= 8 {
        var high = SIMD8<Float>()
        for lane in 8..<lanes {
            high[lane - 8] = pointer[lane]
        }
        return Vec16(lowHalf: UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self), highHalf: high)
    }
    var value = Vec16()
    for lane in 0..<lanes {
        value[lane] = pointer[lane]
    }
    return value
}

/// Stores the first `lanes` (0...16) lanes of `value`.
@inline(__always)
func storePartial16(_ value: Vec16, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes >= 16 {
        store16(value, pointer)
        return
    }
    if lanes == 8 {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value.lowHalf, as: SIMD8<Float>.self)
        return
    }
    for lane in 0..<lanes {
        pointer[lane] = value[lane]
    }
}

/// How output vectors leave a kernel: stored bare, then, when fused, turned in place into `f(shift + sum * scale)`
/// with f the activation (the same operations as `Engine`'s activations) by `finish`; `lanes` of each are stored.
struct Exit16 {
    let fused: Bool
    let activation: Activation16
    let scale: Vec16
    let shift: Vec16
    let lanes: Int

    @inline(__always)
    init(scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: Activation16, lanes: Int) {
        self.lanes = lanes
        self.activation = activation
        if let scale, let shift {
            fused = true
            self.scale = loadPartial16(scale, lanes)
            self.shift = loadPartial16(shift, lanes)
        } else {
            fused = false
            self.scale = Vec16()
            self.shift = Vec16()
        }
    }

    /// Stores a bare sum (the affine and activation follow in `finish`, once the block is written).
    @inline(__always)
    func store(_ sum: Vec16, _ target: UnsafeMutablePointer<Float>) {
        storePartial16(sum, target, lanes)
    }

    /// Applies the affine and activation in place to `count` vectors written by `store`, at `first` + i · stride.
    /// One call per register block, the activation chosen once per call: a per-vector call was left out of line
    /// by the compiler and cost a fifth of the run time.
    func finish(_ first: UnsafeMutablePointer<Float>, count: Int, stride: Int) {
        guard fused else {
            return
        }
        switch activation {
        case .none: finish(first, count: count, stride: stride, Identity16.self)
        case .relu: finish(first, count: count, stride: stride, ReLU16.self)
        case .hswish: finish(first, count: count, stride: stride, HSwish16.self)
        case .hsigmoid: finish(first, count: count, stride: stride, HSigmoid16.self)
        }
    }

    /// The loop for one activation. Generic so that each activation gets its own inlined copy. A panel's last
    /// partial vector (often 8 lanes: many widths are 16k + 8) goes through 8-lane halves instead of partial 16-lane
    /// loads: when both paths computed on 16 lanes, the compiler merged their arithmetic after the loads and
    /// lowered it through 256-bit halves and mask conversions, which was 17% of a batch-256 profile.
    @inline(__always)
    private func finish<F: VectorActivation>(
        _ first: UnsafeMutablePointer<Float>, count: Int, stride: Int, _: F.Type
    ) {
        if lanes == 16 {
            for i in 0..<count {
                let target = first + i * stride
                store16(F.apply(shift.addingProduct(load16(target), scale)), target)
            }
            return
        }
        let low = min(lanes, 8)
        let high = lanes - low
        for i in 0..<count {
            let target = first + i * stride
            let z = shift.lowHalf.addingProduct(loadPartial8(target, low), scale.lowHalf)
            storePartial8(F.apply(z), target, low)
            if high > 0 {
                let z = shift.highHalf.addingProduct(loadPartial8(target + 8, high), scale.highHalf)
                storePartial8(F.apply(z), target + 8, high)
            }
        }
    }
}

/// The first `lanes` (0...8) floats at `pointer`, the rest zero; reads nothing beyond them.
@inline(__always)
func loadPartial8(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 {
        return UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }
    var value = SIMD8<Float>()
    for lane in 0..<lanes {
        value[lane] = pointer[lane]
    }
    return value
}

/// Stores the first `lanes` (0...8) lanes of `value`.
@inline(__always)
func storePartial8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
        return
    }
    for lane in 0..<lanes {
        pointer[lane] = value[lane]
    }
}

/// An activation on 16 and on 8 lanes, with the same operations as `Engine`'s (results must stay bitwise equal).
/// Written once per width: a version generic over `SIMD` was not specialized into vector code and ran 5× slower.
protocol VectorActivation {
    static func apply(_ z: Vec16) -> Vec16
    static func apply(_ z: SIMD8<Float>) -> SIMD8<Float>
}

enum Identity16: VectorActivation {
    @inline(__always) static func apply(_ z: Vec16) -> Vec16 { z }
    @inline(__always) static func apply(_ z: SIMD8<Float>) -> SIMD8<Float> { z }
}

enum ReLU16: VectorActivation {
    @inline(__always) static func apply(_ z: Vec16) -> Vec16 { z.replacing(with: 0, where: z .< 0) }
    @inline(__always) static func apply(_ z: SIMD8<Float>) -> SIMD8<Float> { z.replacing(with: 0, where: z .< 0) }
}

enum HSwish16: VectorActivation {
    @inline(__always) static func apply(_ z: Vec16) -> Vec16 {
        let shifted = z + 3
        return z * shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6) * (1 / 6)
    }
    @inline(__always) static func apply(_ z: SIMD8<Float>) -> SIMD8<Float> {
        let shifted = z + 3
        return z * shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6) * (1 / 6)
    }
}

enum HSigmoid16: VectorActivation {
    @inline(__always) static func apply(_ z: Vec16) -> Vec16 {
        let shifted = z + 3
        return shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6) * (1 / 6)
    }
    @inline(__always) static func apply(_ z: SIMD8<Float>) -> SIMD8<Float> {
        let shifted = z + 3
        return shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6) * (1 / 6)
    }
}
