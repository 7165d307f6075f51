import Engine
import Foundation

/// A trainable tensor: value, gradient and optimizer velocity, with its name and PyTorch-layout shape.
public final class Parameter {
    /// Name in files, e.g. `blocks.3.dw.conv.weight`.
    public let name: String
    /// Shape in PyTorch's layout (OIHW for convolutions, [out, in] for linear).
    public let shape: [Int]
    /// Current values.
    public let value: FloatBuffer
    /// Accumulated gradient (zeroed by the trainer before each step).
    public let gradient: FloatBuffer
    /// SGD momentum buffer.
    public let velocity: FloatBuffer
    /// Whether weight decay applies (false for BatchNorm, biases and kernel transforms).
    public let decays: Bool

    /// Creates a zero-valued parameter.
    public init(name: String, shape: [Int], decays: Bool) {
        self.name = name
        self.shape = shape
        self.decays = decays
        let count = shape.reduce(1, *)
        value = FloatBuffer(count: count)
        gradient = FloatBuffer(count: count)
        velocity = FloatBuffer(count: count)
    }

    /// Number of elements.
    public var count: Int { value.count }

    /// Fills with N(0, std²) samples.
    public func fillGaussian(std: Float, random: inout SeededRandom) {
        for i in 0..<count {
            value[i] = random.nextGaussian() * std
        }
    }

    /// Fills with a constant.
    public func fill(_ constant: Float) {
        value.pointer.update(repeating: constant, count: count)
    }
}

/// A named non-trainable tensor saved with the model (BatchNorm running statistics).
public struct StateTensor {
    /// Name in files.
    public let name: String
    /// Shape.
    public let shape: [Int]
    /// Storage.
    public let buffer: FloatBuffer
}

/// BatchNorm for up to `channels` channels; an elastic layer uses the first C of them.
///
/// Training normalizes with batch statistics and updates the running ones (PyTorch's momentum 0.1,
/// unbiased running variance); evaluation uses the running statistics. The per-channel affine form
/// `scale = γ / √(var + ε)`, `shift = β − mean · scale` is computed the same way everywhere so that an
/// extracted subnet reproduces the supernet's output bit for bit.
final class ElasticBatchNorm {
    static let epsilon: Float = 1e-5
    let gamma: Parameter
    let beta: Parameter
    let runningMean: FloatBuffer
    let runningVariance: FloatBuffer
    let mean: FloatBuffer
    let invStd: FloatBuffer
    let scale: FloatBuffer
    let shift: FloatBuffer
    let name: String
    var momentum: Float = 0.1

    init(name: String, channels: Int) {
        self.name = name
        gamma = Parameter(name: "\(name).weight", shape: [channels], decays: false)
        beta = Parameter(name: "\(name).bias", shape: [channels], decays: false)
        gamma.fill(1)
        runningMean = FloatBuffer(count: channels)
        runningVariance = FloatBuffer(count: channels)
        runningVariance.pointer.update(repeating: 1, count: channels)
        mean = FloatBuffer(count: channels)
        invStd = FloatBuffer(count: channels)
        scale = FloatBuffer(count: channels)
        shift = FloatBuffer(count: channels)
    }

    var parameters: [Parameter] { [gamma, beta] }

    var state: [StateTensor] {
        [
            StateTensor(name: "\(name).running_mean", shape: [runningMean.count], buffer: runningMean),
            StateTensor(name: "\(name).running_var", shape: [runningVariance.count], buffer: runningVariance),
        ]
    }

    /// Computes `scale` and `shift` for the first `channels` channels of `input` ([rows × channels]).
    func prepare(input: UnsafePointer<Float>, rows: Int, channels: Int, training: Bool) {
        if training {
            BatchNorm.statistics(
                input: input, rows: rows, channels: channels, mean: mean.pointer,
                variance: invStd.pointer)
            let unbias = rows > 1 ? Float(rows) / Float(rows - 1) : 1
            for c in 0..<channels {
                let variance = invStd[c]
                runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c]
                runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * variance * unbias
                invStd[c] = 1 / (variance + Self.epsilon).squareRoot()
            }
        } else {
            for c in 0..<channels {
                mean[c] = runningMean[c]
                invStd[c] = 1 / (runningVariance[c] + Self.epsilon).squareRoot()
            }
        }
        for c in 0..<channels {
            scale[c] = gamma.value[c] * invStd[c]
            shift[c] = beta.value[c] - mean[c] * scale[c]
        }
    }
}

/// Folds BatchNorm statistics into the affine form used at inference (shared with extracted subnets).
public func batchNormAffine(
    gamma: Float, beta: Float, mean: Float, variance: Float
) -> (scale: Float, shift: Float) {
    let invStd = 1 / (variance + ElasticBatchNorm.epsilon).squareRoot()
    let scale = gamma * invStd
    return (scale, beta - mean * scale)
}
