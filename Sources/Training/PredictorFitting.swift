import Engine
import Supernet

/// Subnets with measured validation accuracies: the accuracy predictor's data set.
public struct MeasuredArchitectures: Sendable {
    /// The architectures.
    public var archs: [ArchConfig]
    /// Their validation accuracies in [0, 1], after BatchNorm recalibration.
    public var accuracies: [Double]

    /// Creates a data set.
    public init(archs: [ArchConfig], accuracies: [Double]) {
        self.archs = archs
        self.accuracies = accuracies
    }
}

/// Fits and scores the MLP accuracy predictor (`AccuracyPredictor`).
public enum PredictorFitting {
    /// Measures `count` uniformly sampled subnets: extract, recalibrate on `calibration`, evaluate on
    /// `validation`. `progress(i)` is called after each.
    public static func measure(
        _ network: ElasticSupernet, count: Int, calibration: [UInt8], validation: LabelledImages,
        normalization: Normalization, seed: UInt64, progress: (Int) -> Void = { _ in }
    ) throws -> MeasuredArchitectures {
        let space = network.space
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        var random = SeededRandom(seed: seed)
        var result = MeasuredArchitectures(archs: [], accuracies: [])
        for i in 0..<count {
            let arch = space.sample(&random).canonical(maxDepth: space.maxDepth)
            let subnet = try network.extract(arch).recalibrated(
                images: calibration, count: calibration.count / pixels,
                normalization: normalization)
            result.archs.append(arch)
            result.accuracies.append(try SubnetNetwork(subnet).accuracy(on: validation, normalization: normalization))
            progress(i + 1)
        }
        return result
    }

    /// Fits a features → 400 → 400 → 1 ReLU MLP (Adam, mean squared error in accuracy points) on the first
    /// 80% of `data` and reports RMSE and Kendall τ on the held-out 20%.
    public static func fit(
        _ data: MeasuredArchitectures, space: SearchSpace, seed: UInt64, epochs: Int = 300
    )
        -> (predictor: AccuracyPredictor, summary: PredictorSummary)
    {
        let split = data.archs.count * 4 / 5
        let train = MeasuredArchitectures(
            archs: Array(data.archs[..<split]),
            accuracies: Array(data.accuracies[..<split]))
        let base = Float(train.accuracies.reduce(0, +) / Double(max(train.count, 1)) * 100)
        var mlp = MLP(widths: [AccuracyPredictor.featureCount(space), 400, 400, 1], seed: seed)
        mlp.train(
            inputs: features(train.archs, space: space), targets: train.accuracies.map { Float($0 * 100) - base },
            epochs: epochs, seed: seed)
        let predictor = AccuracyPredictor(
            space: space, widths: mlp.widths, weights: mlp.weights.map { $0.array() },
            biases: mlp.biases.map { $0.array() }, baseAccuracyPoints: base)
        let heldOut = Array(data.archs[split...])
        let truth = Array(data.accuracies[split...])
        let predicted = predictor.predict(heldOut)
        let squared = zip(predicted, truth).map { ($0 - $1) * ($0 - $1) * 10_000 }
        let rmse = (squared.reduce(0, +) / Double(max(squared.count, 1))).squareRoot()
        return (
            predictor,
            PredictorSummary(
                rmsePoints: rmse, kendallTau: kendallTau(predicted, truth),
                samples: data.archs.count)
        )
    }

    /// One-hot features of every architecture, row-major [n × featureCount].
    static func features(_ archs: [ArchConfig], space: SearchSpace) -> FloatBuffer {
        let f = AccuracyPredictor.featureCount(space)
        let out = FloatBuffer(count: archs.count * f)
        for (i, arch) in archs.enumerated() {
            AccuracyPredictor.encode(arch, space: space, into: out.pointer + i * f)
        }
        return out
    }

    /// Kendall's τ-b between two equally long lists (ties counted in neither pair class).
    public static func kendallTau(_ a: [Double], _ b: [Double]) -> Double {
        var concordant = 0.0
        var discordant = 0.0
        var tiesA = 0.0
        var tiesB = 0.0
        for i in 0..<a.count {
            for j in (i + 1)..<max(a.count, i + 1) {
                let x = (a[i] - a[j]).sign
                let y = (b[i] - b[j]).sign
                let xTie = a[i] == a[j]
                let yTie = b[i] == b[j]
                if xTie && yTie { continue }
                if xTie { tiesA += 1; continue }
                if yTie { tiesB += 1; continue }
                if x == y { concordant += 1 } else { discordant += 1 }
            }
        }
        let denominator = ((concordant + discordant + tiesA) * (concordant + discordant + tiesB)).squareRoot()
        return denominator > 0 ? (concordant - discordant) / denominator : 0
    }
}

extension MeasuredArchitectures {
    var count: Int { archs.count }
}

/// A small fully connected ReLU network trained with Adam on mean squared error (the predictor's body).
struct MLP {
    let widths: [Int]
    var weights: [FloatBuffer]
    var biases: [FloatBuffer]

    init(widths: [Int], seed: UInt64) {
        self.widths = widths
        var random = SeededRandom(seed: seed)
        weights = []
        biases = []
        for l in 0..<(widths.count - 1) {
            let w = FloatBuffer(count: widths[l + 1] * widths[l])
            let bound = (6 / Float(widths[l])).squareRoot()
            for i in 0..<w.count {
                w[i] = (random.nextUnitFloat() * 2 - 1) * bound * (l == widths.count - 2 ? 0.1 : 1)
            }
            weights.append(w)
            biases.append(FloatBuffer(count: widths[l + 1]))
        }
    }

    /// Minibatch Adam (lr 1e-3, batch 64, L2 1e-5) on (inputs [n × widths[0]], targets [n]).
    mutating func train(inputs: FloatBuffer, targets: [Float], epochs: Int, seed: UInt64) {
        let n = targets.count
        guard n > 0 else { return }
        let batch = min(64, n)
        let layers = widths.count - 1
        let parameters = weights + biases
        let moments = parameters.map { (FloatBuffer(count: $0.count), FloatBuffer(count: $0.count)) }
        let gradients = parameters.map { FloatBuffer(count: $0.count) }
        let activations = widths.map { FloatBuffer(count: batch * $0) }
        let deltas = widths.map { FloatBuffer(count: batch * $0) }
        var random = SeededRandom(seed: seed &+ 17)
        var order = Array(0..<n)
        var t: Float = 0
        for _ in 0..<epochs {
            order.shuffle(using: &random)
            var start = 0
            while start + batch <= n {
                for (row, index) in order[start..<(start + batch)].enumerated() {
                    (activations[0].pointer + row * widths[0]).update(
                        from: inputs.pointer + index * widths[0],
                        count: widths[0])
                }
                forward(activations, batch: batch)
                let out = activations[layers]
                for (row, index) in order[start..<(start + batch)].enumerated() {
                    deltas[layers][row] = 2 * (out[row] - targets[index]) / Float(batch)
                }
                backward(activations, deltas, gradients: gradients, batch: batch)
                t += 1
                adam(parameters, gradients, moments, step: t)
                start += batch
            }
        }
    }

    func forward(_ a: [FloatBuffer], batch: Int) {
        for l in 0..<(widths.count - 1) {
            GEMM.multiply(
                transposeA: false, transposeB: true, m: batch, n: widths[l + 1], k: widths[l], alpha: 1,
                a: a[l].pointer, lda: widths[l], b: weights[l].pointer, ldb: widths[l], beta: 0,
                c: a[l + 1].pointer, ldc: widths[l + 1])
            Elementwise.addBias(a[l + 1].pointer, rows: batch, channels: widths[l + 1], bias: biases[l].pointer)
            if l < widths.count - 2 {
                Elementwise.activate(
                    .relu, input: a[l + 1].pointer, output: a[l + 1].pointer,
                    count: batch * widths[l + 1])
            }
        }
    }

    /// Gradients of the loss whose output gradient is in `d.last`; `gradients` = weights then biases.
    func backward(_ a: [FloatBuffer], _ d: [FloatBuffer], gradients: [FloatBuffer], batch: Int) {
        let layers = widths.count - 1
        for l in stride(from: layers - 1, through: 0, by: -1) {
            let (input, output) = (widths[l], widths[l + 1])
            if l < layers - 1 {
                // ReLU'(z) = [a > 0] since a = relu(z).
                for i in 0..<(batch * output) where a[l + 1][i] <= 0 {
                    d[l + 1][i] = 0
                }
            }
            GEMM.multiply(
                transposeA: true, transposeB: false, m: output, n: input, k: batch, alpha: 1,
                a: d[l + 1].pointer, lda: output, b: a[l].pointer, ldb: input, beta: 0,
                c: gradients[l].pointer, ldc: input)
            gradients[layers + l].zero()
            Elementwise.biasGradient(
                outputGradient: d[l + 1].pointer, rows: batch, channels: output,
                biasGradient: gradients[layers + l].pointer)
            if l > 0 {
                GEMM.multiply(
                    transposeA: false, transposeB: false, m: batch, n: input, k: output, alpha: 1,
                    a: d[l + 1].pointer, lda: output, b: weights[l].pointer, ldb: input, beta: 0,
                    c: d[l].pointer, ldc: input)
            }
        }
    }

    func adam(
        _ parameters: [FloatBuffer], _ gradients: [FloatBuffer],
        _ moments: [(FloatBuffer, FloatBuffer)], step t: Float
    ) {
        let (lr, beta1, beta2, eps, decay): (Float, Float, Float, Float, Float) = (1e-3, 0.9, 0.999, 1e-8, 1e-5)
        let c1 = 1 - powf(beta1, t)
        let c2 = 1 - powf(beta2, t)
        for (k, p) in parameters.enumerated() {
            let g = gradients[k]
            let (m, v) = moments[k]
            for i in 0..<p.count {
                let gi = g[i] + decay * p[i]
                m[i] = beta1 * m[i] + (1 - beta1) * gi
                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
