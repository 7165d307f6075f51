import Engine
import XCTest

/// Losses, accuracy, SGD and the learning-rate schedule, against hand computations.
final class LossTests: XCTestCase {
    /// logits (1, 2, 3), label 2, ε = 0.1, K = 3: targets (1/30, 1/30, 28/30);
    /// loss = log(e + e² + e³) - (1/30 + 2/30 + 84/30) = 3.4076059644 - 2.9 = 0.5076059644.
    func testSmoothedCrossEntropyValueByHand() {
        let logits = Buffer([1, 2, 3])
        var label: [Int32] = [2]
        let loss = Loss.softmaxCrossEntropy(
            logits: logits.constant, labels: &label, batch: 1, classes: 3, smoothing: 0.1, logitsGradient: nil
        )
        XCTAssertEqual(loss, 0.5076059644, accuracy: 1e-6)

        // Without smoothing, two rows: row 2 is (0, 0, 0) with label 0 → log 3; row 1 gives 0.4076059644.
        let two = Buffer([1, 2, 3, 0, 0, 0])
        var labels: [Int32] = [2, 0]
        let plain = Loss.softmaxCrossEntropy(
            logits: two.constant, labels: &labels, batch: 2, classes: 3, smoothing: 0, logitsGradient: nil
        )
        XCTAssertEqual(plain, (0.4076059644 + 1.0986122887) / 2, accuracy: 1e-6)
    }

    func testCrossEntropyGradientMatchesFiniteDifferences() {
        let (batch, classes) = (5, 10)
        let logits = Buffer(random: batch * classes, seed: 1, low: -3, high: 3)
        var labels: [Int32] = [0, 9, 3, 3, 7]
        let gradient = Buffer(batch * classes, value: .nan)
        _ = Loss.softmaxCrossEntropy(
            logits: logits.constant, labels: &labels, batch: batch, classes: classes, smoothing: 0.1,
            logitsGradient: gradient.pointer
        )
        checkGradient(logits, analytic: gradient, samples: 50, epsilon: 1e-2, absolute: 2e-4, "cross-entropy") {
            Double(
                Loss.softmaxCrossEntropy(
                    logits: logits.constant, labels: &labels, batch: batch, classes: classes, smoothing: 0.1,
                    logitsGradient: nil
                ))
        }
    }

    func testDistillationValueAndGradient() {
        // Teacher (0, 0) → p = (½, ½); student (log 3, 0) → q = (¾, ¼):
        // KL = ½ log(2/3) + ½ log 2 = 0.1438410362.
        let student = Buffer([logf(3), 0])
        let teacher = Buffer([0, 0])
        let value = Loss.distillationKL(
            studentLogits: student.constant, teacherLogits: teacher.constant, batch: 1, classes: 2,
            studentGradient: nil
        )
        XCTAssertEqual(value, 0.1438410362, accuracy: 1e-6)

        let (batch, classes) = (4, 10)
        let studentLogits = Buffer(random: batch * classes, seed: 2, low: -3, high: 3)
        let teacherLogits = Buffer(random: batch * classes, seed: 3, low: -3, high: 3)
        let gradient = Buffer(batch * classes, value: .nan)
        let same = Loss.distillationKL(
            studentLogits: teacherLogits.constant, teacherLogits: teacherLogits.constant, batch: batch,
            classes: classes, studentGradient: gradient.pointer
        )
        XCTAssertEqual(same, 0, accuracy: 1e-6)
        _ = Loss.distillationKL(
            studentLogits: studentLogits.constant, teacherLogits: teacherLogits.constant, batch: batch,
            classes: classes, studentGradient: gradient.pointer
        )
        checkGradient(studentLogits, analytic: gradient, samples: 40, epsilon: 1e-2, absolute: 2e-4, "distillation") {
            Double(
                Loss.distillationKL(
                    studentLogits: studentLogits.constant, teacherLogits: teacherLogits.constant, batch: batch,
                    classes: classes, studentGradient: nil
                ))
        }
    }

    func testCorrectCount() {
        let logits = Buffer([0, 5, 1, 2, 2, 0, 9, 1, 1])
        var labels: [Int32] = [1, 1, 0]
        // Row 2 ties (2, 2): the first index wins, so label 1 is wrong; row 3's arg-max is 0.
        XCTAssertEqual(Loss.correctCount(logits: logits.constant, labels: &labels, batch: 3, classes: 3), 2)
    }

    /// p = 1, grad = 0.5, v = 0, lr 0.1, momentum 0.9, weight decay 0.01:
    /// step 1: g = 0.51, v = 0.51, p = 1 - 0.1 * (0.51 + 0.459) = 0.9031;
    /// step 2 (same grad): g = 0.5 + 0.009031 = 0.509031, v = 0.459 + 0.509031 = 0.968031,
    /// p = 0.9031 - 0.1 * (0.509031 + 0.8712279) = 0.76507411.
    func testNesterovStepByHand() {
        let count = 11
        let parameters = Buffer(count, value: 1)
        let gradients = Buffer(count, value: 0.5)
        let velocity = Buffer(count, value: 0)
        SGD.nesterovStep(
            parameters: parameters.pointer, gradients: gradients.constant, velocity: velocity.pointer,
            count: count, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        for index in 0..<count {
            XCTAssertEqual(parameters[index], 0.9031, accuracy: 1e-6)
            XCTAssertEqual(velocity[index], 0.51, accuracy: 1e-6)
        }
        SGD.nesterovStep(
            parameters: parameters.pointer, gradients: gradients.constant, velocity: velocity.pointer,
            count: count, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        for index in 0..<count {
            XCTAssertEqual(velocity[index], 0.968031, accuracy: 1e-6)
            XCTAssertEqual(parameters[index], 0.76507411, accuracy: 1e-6)
        }
    }

    /// base 0.4, 10 steps, 2 of warm-up: 0.2, 0.4, then 0.4 * (1 + cos(π t / 8)) / 2 for t = 0...7, then 0.
    func testCosineScheduleByHand() {
        let expected: [Float] = [
            0.2, 0.4, 0.4, 0.3847759065, 0.3414213562, 0.2765366865, 0.2, 0.1234633135, 0.0585786438, 0.0152240935,
            0, 0,
        ]
        for (step, value) in expected.enumerated() {
            XCTAssertEqual(
                SGD.cosineLearningRate(base: 0.4, step: step, totalSteps: 10, warmupSteps: 2), value,
                accuracy: 1e-7, "step \(step)")
        }
        XCTAssertEqual(SGD.cosineLearningRate(base: 1, step: 0, totalSteps: 4, warmupSteps: 0), 1)
        XCTAssertEqual(SGD.cosineLearningRate(base: 1, step: 2, totalSteps: 4, warmupSteps: 0), 0.5, accuracy: 1e-7)
    }
}
