// Numerics for the strategies that learn: exp and log (the plugins import only the ABI module and this one, so the C
// library's are out of reach) and a stable softmax.

/// e^x. Writes x = k·ln 2 + r with k whole and |r| ≤ ln 2 / 2, sums the Taylor series of e^r (its 14th term is
/// below 2^-53 there) and scales by 2^k. 0 below −745 (underflow), +∞ above 709.8 (overflow), NaN for NaN. The
/// rounding of k·ln 2 limits the relative error to about 1e-13 at the ends of the range, 1e-16 near 0.
public func exp(_ x: Double) -> Double {
    guard !x.isNaN else {
        return x
    }
    if x > 709.78 {
        return .infinity
    }
    if x < -745.2 {
        return 0
    }

    let ln2 = 0.693_147_180_559_945_309_417
    let k = (x / ln2).rounded()
    let r = x - k * ln2
    var term = 1.0
    var sum = 1.0
    for n in 1...14 {
        term *= r / Double(n)
        sum += term
    }
    // Two steps of 2^(k/2), so that 2^k for k near the ends of the range does not overflow or flush to zero early.
    let half = Int(k) / 2
    return sum * Double(sign: .plus, exponent: half, significand: 1)
        * Double(sign: .plus, exponent: Int(k) - half, significand: 1)
}

/// The natural logarithm of x. Writes x = m·2^e with m in [√½, √2), so that s = (m − 1) / (m + 1) lies in
/// |s| < 0.172, and sums log m = 2·(s + s³/3 + s⁵/5 + …) to the s²⁹ term (below 2^-53 there); log x = log m + e·ln 2.
/// −∞ for 0, NaN below 0 and for NaN, +∞ for +∞.
public func log(_ x: Double) -> Double {
    guard x > 0, x.isFinite else {
        return x == 0 ? -.infinity : (x == .infinity ? x : .nan)
    }

    var exponent = Int(x.exponent)
    var mantissa = x.significand
    if mantissa > 1.414_213_562_373_095 {
        mantissa /= 2
        exponent += 1
    }
    let s = (mantissa - 1) / (mantissa + 1)
    let square = s * s
    var power = s
    var sum = 0.0
    for n in stride(from: 1, through: 29, by: 2) {
        sum += power / Double(n)
        power *= square
    }
    return 2 * sum + Double(exponent) * 0.693_147_180_559_945_309_417
}

/// Softmax of `logits[range]` written into `output[range]`: p(c) = e^(θ_c − max θ) / Σ_c' e^(θ_c' − max θ). The
/// largest logit is subtracted first so no exponential overflows; the result is the same.
public func softmax(_ logits: [Double], _ range: Range<Int>, into output: inout [Double]) {
    let largest = logits[range].max() ?? 0
    var sum = 0.0
    for index in range {
        output[index] = exp(logits[index] - largest)
        sum += output[index]
    }
    for index in range {
        output[index] /= sum
    }
}
