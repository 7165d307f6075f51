import Engine

/// Predicts a subnet's accuracy from its architecture: a small MLP on a one-hot encoding of the kernel and
/// expand ratio of every active block slot, the depth of every stage and the resolution (Once-for-All's
/// predictor design). Trained by `Training.PredictorFitting`; stored in the `.supernet` file as
/// `predictor.*` tensors.
///
/// Immutable and thread-safe once built.
public final class AccuracyPredictor: @unchecked Sendable {
    /// The space whose architectures it encodes.
    public let space: SearchSpace
    /// Layer weights [out × in] and biases, input to output.
    let weights: [FloatBuffer]
    let biases: [FloatBuffer]
    /// Layer widths, input first (features, hidden…, 1).
    public let widths: [Int]
    /// Accuracy in points that the network's output is added to.
    public let baseAccuracyPoints: Float

    /// Length of the one-hot encoding.
    public static func featureCount(_ space: SearchSpace) -> Int {
        let slots = space.stages.count * space.maxDepth
        return slots * (space.kernels.count + space.expandRatios.count)
            + space.stages.count * space.depths.count + space.resolutions.count
    }

    /// Writes the one-hot encoding of `arch` into `out` (featureCount floats); inactive slots stay zero.
    public static func encode(_ arch: ArchConfig, space: SearchSpace, into out: UnsafeMutablePointer<Float>) {
        let count = featureCount(space)
        out.update(repeating: 0, count: count)
        var offset = 0
        let slots = space.stages.count * space.maxDepth
        for i in 0..<slots {
            if arch.isActive(slot: i, maxDepth: space.maxDepth) {
                out[offset + (space.kernels.firstIndex(of: arch.kernels[i]) ?? 0)] = 1
                out[offset + space.kernels.count + (space.expandRatios.firstIndex(of: arch.expandRatios[i]) ?? 0)] = 1
            }
            offset += space.kernels.count + space.expandRatios.count
        }
        for d in arch.depths {
            out[offset + (space.depths.firstIndex(of: d) ?? 0)] = 1
            offset += space.depths.count
        }
        out[offset + (space.resolutions.firstIndex(of: arch.resolution) ?? 0)] = 1
    }

    /// Builds a predictor from its layers' parameters.
    public init(space: SearchSpace, widths: [Int], weights: [[Float]], biases: [[Float]], baseAccuracyPoints: Float) {
        precondition(widths.first == Self.featureCount(space) && widths.last == 1, "predictor widths \(widths)")
        self.space = space
        self.widths = widths
        self.weights = weights.map { FloatBuffer($0) }
        self.biases = biases.map { FloatBuffer($0) }
        self.baseAccuracyPoints = baseAccuracyPoints
    }

    /// Predicted accuracy in [0, 1] of each architecture.
    public func predict(_ archs: [ArchConfig]) -> [Double] {
        guard !archs.isEmpty else {
            return []
        }
        let n = archs.count
        let widest = widths.max()!
        var current = FloatBuffer(count: n * widest)
        var next = FloatBuffer(count: n * widest)
        for (i, arch) in archs.enumerated() {
            Self.encode(arch, space: space, into: current.pointer + i * widths[0])
        }
        for layer in 0..<(widths.count - 1) {
            let (input, output) = (widths[layer], widths[layer + 1])
            GEMM.multiply(
                transposeA: false, transposeB: true, m: n, n: output, k: input, alpha: 1, a: current.pointer,
                lda: input, b: weights[layer].pointer, ldb: input, beta: 0, c: next.pointer, ldc: output)
            Elementwise.addBias(next.pointer, rows: n, channels: output, bias: biases[layer].pointer)
            if layer < widths.count - 2 {
                Elementwise.activate(.relu, input: next.pointer, output: next.pointer, count: n * output)
            }
            swap(&current, &next)
        }
        return (0..<n).map { Double(current[$0] + baseAccuracyPoints) / 100 }
    }

    /// Predicted accuracy in [0, 1] of one architecture.
    public func predict(_ arch: ArchConfig) -> Double {
        predict([arch])[0]
    }

    /// The tensors that store it (`predictor.fcN.weight/bias`, `predictor.base`).
    public var tensors: [NamedTensor] {
        var out: [NamedTensor] = []
        for layer in 0..<weights.count {
            out.append(
                NamedTensor(
                    name: "predictor.fc\(layer).weight", shape: [widths[layer + 1], widths[layer]],
                    values: weights[layer].array()))
            out.append(
                NamedTensor(
                    name: "predictor.fc\(layer).bias", shape: [widths[layer + 1]],
                    values: biases[layer].array()))
        }
        out.append(NamedTensor(name: "predictor.base", shape: [1], values: [baseAccuracyPoints]))
        return out
    }

    /// Rebuilds a predictor from `tensors` (as written by `tensors`); nil when there are none.
    /// - Throws: `SubnetError` when they are inconsistent.
    public convenience init?(space: SearchSpace, tensors: [NamedTensor]) throws {
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard let base = byName["predictor.base"]?.values.first else {
            return nil
        }
        var widths = [Self.featureCount(space)]
        var weights: [[Float]] = []
        var biases: [[Float]] = []
        while let w = byName["predictor.fc\(weights.count).weight"] {
            guard w.shape.count == 2, w.shape[1] == widths.last!,
                let b = byName["predictor.fc\(weights.count).bias"], b.shape == [w.shape[0]]
            else {
                throw SubnetError(message: "predictor layer \(weights.count) has inconsistent shapes")
            }
            widths.append(w.shape[0])
            weights.append(w.values)
            biases.append(b.values)
        }
        guard widths.count >= 2, widths.last == 1 else {
            throw SubnetError(message: "predictor tensors do not end in a single output")
        }
        self.init(space: space, widths: widths, weights: weights, biases: biases, baseAccuracyPoints: base)
    }
}
