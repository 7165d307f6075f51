#if canImport(Glibc)
import Glibc
#endif

/// Classification losses over logits [N × K]. Gradients are of the batch-mean loss.
///
/// Layout: logits row-major [N × K], labels N Int32 in 0..<K. Per row the work is done in float with the row
/// maximum subtracted (no overflow); row losses are summed in double. Runs on the caller's thread (N × K is
/// small); thread-safe for distinct outputs.
public enum Loss {
    /// Cross-entropy with label smoothing ε (target = (1 - ε) one-hot + ε / K). Writes dLogits
    /// (overwritten, already divided by N) when given; returns the mean loss.
    ///
    /// Row loss = logsumexp(z) - sum_k target_k * z_k; dLogits = (softmax(z) - target) / N.
    public static func softmaxCrossEntropy(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
        smoothing: Float, logitsGradient: UnsafeMutablePointer<Float>?
    ) -> Float {
        guard batch > 0, classes > 0 else {
            return 0
        }

        let uniform = smoothing / Float(classes)
        let inverseBatch = 1 / Float(batch)
        var total = 0.0
        for row in 0..<batch {
            let z = logits + row * classes
            let label = Int(labels[row])
            precondition(label >= 0 && label < classes, "label \(label) outside 0..<\(classes)")
            let logPartition = logSumExp(z, classes)
            var targetDot = 0.0
            for k in 0..<classes {
                targetDot += Double(uniform) * Double(z[k])
            }
            targetDot += Double(1 - smoothing) * Double(z[label])
            total += Double(logPartition) - targetDot
            if let logitsGradient {
                let gradient = logitsGradient + row * classes
                for k in 0..<classes {
                    let target = uniform + (k == label ? 1 - smoothing : 0)
                    gradient[k] = (expf(z[k] - logPartition) - target) * inverseBatch
                }
            }
        }
        return Float(total / Double(batch))
    }

    /// Distillation: mean over the batch of KL(softmax(teacher) ‖ softmax(student)).
    /// dStudent (overwritten) = (softmax(student) - softmax(teacher)) / N when given.
    ///
    /// Row KL = sum_k p_k * (log p_k - log q_k) from log-softmaxes (teacher p, student q), so p_k = 0 adds 0.
    public static func distillationKL(
        studentLogits: UnsafePointer<Float>, teacherLogits: UnsafePointer<Float>, batch: Int, classes: Int,
        studentGradient: UnsafeMutablePointer<Float>?
    ) -> Float {
        guard batch > 0, classes > 0 else {
            return 0
        }

        let inverseBatch = 1 / Float(batch)
        var total = 0.0
        for row in 0..<batch {
            let student = studentLogits + row * classes
            let teacher = teacherLogits + row * classes
            let studentPartition = logSumExp(student, classes)
            let teacherPartition = logSumExp(teacher, classes)
            var divergence = 0.0
            for k in 0..<classes {
                let logP = teacher[k] - teacherPartition
                let logQ = student[k] - studentPartition
                divergence += Double(expf(logP)) * Double(logP - logQ)
            }
            total += divergence
            if let studentGradient {
                let gradient = studentGradient + row * classes
                for k in 0..<classes {
                    gradient[k] =
                        (expf(student[k] - studentPartition) - expf(teacher[k] - teacherPartition))
                        * inverseBatch
                }
            }
        }
        return Float(total / Double(batch))
    }

    /// Number of rows whose arg-max equals the label.
    ///
    /// The arg-max is the first index holding the row maximum (ties go to the lowest index).
    public static func correctCount(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int
    ) -> Int {
        guard classes > 0 else {
            return 0
        }

        var correct = 0
        for row in 0..<batch {
            let z = logits + row * classes
            var best = 0
            for k in 1..<max(1, classes) where z[k] > z[best] {
                best = k
            }
            if best == Int(labels[row]) {
                correct += 1
            }
        }
        return correct
    }

    /// log(sum_k exp(z_k)) of one row, with the maximum subtracted before exponentiating.
    static func logSumExp(_ z: UnsafePointer<Float>, _ count: Int) -> Float {
        var maximum = z[0]
        for k in 1..<max(1, count) {
            maximum = max(maximum, z[k])
        }
        var sum: Float = 0
        for k in 0..<count {
            sum += expf(z[k] - maximum)
        }
        return maximum + logf(sum)
    }
}
