/// Element-wise activation functions used by the MobileNetV3 blocks.
public enum ActivationKind: String, Sendable, Codable {
    /// Identity.
    case none
    /// max(x, 0).
    case relu
    /// x * relu6(x + 3) / 6.
    case hswish
    /// relu6(x + 3) / 6.
    case hsigmoid
}

/// A statically dispatched activation on 8-float vectors: its value and its backward.
///
/// Kernels are generic over this protocol so the activation is chosen once per call, not per element.
/// Derivatives follow PyTorch at the kinks: relu'(0) = 0, hswish'(3) = 1.5, hswish'(-3) = 0 (x < -3 → 0,
/// x ≤ 3 → x / 3 + 0.5), hsigmoid' = 1/6 on the open interval (-3, 3) only.
protocol ActivationFunction {
    /// f(x).
    static func value(_ x: Vec8) -> Vec8

    /// dy * f'(x).
    static func gradient(_ x: Vec8, _ dy: Vec8) -> Vec8
}

/// f(x) = x.
struct IdentityActivation: ActivationFunction {
    @inline(__always)
    static func value(_ x: Vec8) -> Vec8 {
        x
    }

    @inline(__always)
    static func gradient(_ x: Vec8, _ dy: Vec8) -> Vec8 {
        dy
    }
}

/// f(x) = max(x, 0).
struct ReLUActivation: ActivationFunction {
    @inline(__always)
    static func value(_ x: Vec8) -> Vec8 {
        x.replacing(with: 0, where: x .< 0)
    }

    @inline(__always)
    static func gradient(_ x: Vec8, _ dy: Vec8) -> Vec8 {
        dy.replacing(with: 0, where: x .<= 0)
    }
}

/// f(x) = x * relu6(x + 3) / 6 (the division is a multiplication by 1/6: within 1 ulp of dividing).
struct HSwishActivation: ActivationFunction {
    @inline(__always)
    static func value(_ x: Vec8) -> Vec8 {
        let shifted = x + 3
        let clamped = shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6)
        return x * clamped * (1 / 6)
    }

    @inline(__always)
    static func gradient(_ x: Vec8, _ dy: Vec8) -> Vec8 {
        let slope = (x * (1 / 3) + 0.5).replacing(with: 0, where: x .< -3).replacing(with: 1, where: x .> 3)
        return dy * slope
    }
}

/// f(x) = relu6(x + 3) / 6 (multiplication by 1/6: within 1 ulp of dividing).
struct HSigmoidActivation: ActivationFunction {
    @inline(__always)
    static func value(_ x: Vec8) -> Vec8 {
        let shifted = x + 3
        let clamped = shifted.replacing(with: 0, where: shifted .< 0).replacing(with: 6, where: shifted .> 6)
        return clamped * (1 / 6)
    }

    @inline(__always)
    static func gradient(_ x: Vec8, _ dy: Vec8) -> Vec8 {
        (dy * (1 / 6)).replacing(with: 0, where: (x .<= -3) .| (x .>= 3))
    }
}
