// Adam, the optimizer of the relaxed search's architecture weights.

/// Adam's state for a flat vector of parameters, ascending.
struct AdamAscent {
    /// Step size.
    let rate: Double
    private var first: [Double]
    private var second: [Double]
    private var steps = 0

    /// First-moment decay, second-moment decay and the guard against division by zero.
    private static let (beta1, beta2, epsilon) = (0.9, 0.999, 1e-8)

    /// State for `count` parameters.
    init(count: Int, rate: Double) {
        self.rate = rate
        first = Array(repeating: 0, count: count)
        second = Array(repeating: 0, count: count)
    }

    /// Moves `parameters` up `gradient`: m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², and then
    /// θ ← θ + rate · m̂ / (√v̂ + ε) with the bias-corrected m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
    mutating func step(_ parameters: inout [Double], _ gradient: [Double]) {
        steps += 1
        let firstCorrection = 1 - pow(Self.beta1, steps)
        let secondCorrection = 1 - pow(Self.beta2, steps)
        for index in parameters.indices {
            first[index] = Self.beta1 * first[index] + (1 - Self.beta1) * gradient[index]
            second[index] = Self.beta2 * second[index] + (1 - Self.beta2) * gradient[index] * gradient[index]
            let corrected = first[index] / firstCorrection
            parameters[index] += rate * corrected / ((second[index] / secondCorrection).squareRoot() + Self.epsilon)
        }
    }

    /// x^n for a whole n ≥ 0 (the Swift standard library has no pow for Double without Foundation).
    private func pow(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<exponent {
            result *= base
        }
        return result
    }
}
