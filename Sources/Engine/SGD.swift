#if canImport(Glibc)
import Glibc
#endif

/// Stochastic gradient descent, PyTorch's semantics.
///
/// Thread-safe for distinct parameter arrays; results are independent of the thread count (element-wise).
public enum SGD {
    /// g = grad + weightDecay * p; v = momentum * v + g; p -= lr * (g + momentum * v) (Nesterov).
    ///
    /// Layout: three arrays of `count` floats. Each line is rounded as written (products, then sums), matching
    /// PyTorch's `SGD(nesterov=True)` with dampening 0 and zero-initialized velocity to within 1 ulp per step.
    public static func nesterovStep(
        parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
        velocity: UnsafeMutablePointer<Float>, count: Int,
        learningRate: Float, momentum: Float, weightDecay: Float
    ) {
        let decay = Vec8(repeating: weightDecay)
        let rate = Vec8(repeating: learningRate)
        let beta = Vec8(repeating: momentum)
        Elementwise.forElementRanges(count) { start, end in
            forEachGroup(end - start) { offset, lanes in
                let index = start + offset
                let parameter = loadPartial(parameters + index, lanes)
                let gradient = loadPartial(gradients + index, lanes) + decay * parameter
                let newVelocity = beta * loadPartial(velocity + index, lanes) + gradient
                storePartial(newVelocity, velocity + index, lanes)
                storePartial(parameter - rate * (gradient + beta * newVelocity), parameters + index, lanes)
            }
        }
    }

    /// Cosine decay from `base` to 0 over `totalSteps` after `warmupSteps` of linear warm-up.
    ///
    /// Steps count from 0. Warm-up: step < warmupSteps gives base * (step + 1) / warmupSteps (so step 0 is not
    /// wasted and the last warm-up step reaches base). Then base * (1 + cos(π * t / T)) / 2 with
    /// t = step - warmupSteps and T = totalSteps - warmupSteps (totalSteps includes the warm-up); steps at or
    /// beyond totalSteps give 0. Computed in double.
    public static func cosineLearningRate(base: Float, step: Int, totalSteps: Int, warmupSteps: Int) -> Float {
        if step < warmupSteps {
            return Float(Double(base) * Double(step + 1) / Double(warmupSteps))
        }

        let decaySteps = totalSteps - warmupSteps
        let progress = step - warmupSteps
        guard decaySteps > 0, progress < decaySteps else {
            return 0
        }

        return Float(Double(base) * 0.5 * (1 + cos(Double.pi * Double(progress) / Double(decaySteps))))
    }
}
