import Engine
import XCTest
@testable import Supernet

/// Checks the supernet's backward pass against finite differences of the training loss, for every
/// parameter tensor, along a random direction. The space is the tiny one with h-swish in place of ReLU:
/// finite differences across ReLU's kink are noise (the engine checks ReLU's backward on its own).
final class GradientTests: XCTestCase {
    private var smoothSpace: SearchSpace {
        var space = tinySpace
        space.stages[0].activation = .hswish
        return space
    }

    private func loss(
        _ supernet: ElasticSupernet, arch: ArchConfig, images: FloatBuffer, labels: [Int32],
        gradient: UnsafeMutablePointer<Float>?
    ) -> Double {
        var random = SeededRandom(seed: 0)
        let batch = labels.count
        let logits = supernet.forward(images.pointer, batch: batch, arch: arch, training: true, random: &random)
        return Double(
            labels.withUnsafeBufferPointer {
                Loss.softmaxCrossEntropy(
                    logits: logits, labels: $0.baseAddress!, batch: batch,
                    classes: supernet.space.classes, smoothing: 0.1, logitsGradient: gradient)
            })
    }

    private func check(arch: ArchConfig, seed: UInt64) {
        let space = smoothSpace
        let supernet = perturbedSupernet(space, seed: seed)
        supernet.setBatchNormMomentum(0)
        let batch = 16
        let images = gaussianBuffer(batch * space.imageSize * space.imageSize, seed: seed + 1)
        let labels: [Int32] = (0..<batch).map { Int32($0 % 3) }
        let dLogits = FloatBuffer(count: batch * space.classes)
        supernet.zeroGradients()
        _ = loss(supernet, arch: arch, images: images, labels: labels, gradient: dLogits.pointer)
        supernet.backward(dLogits.pointer)

        var random = SeededRandom(seed: seed + 2)
        var errors: [Double] = []
        for parameter in supernet.parameters {
            let direction = (0..<parameter.count).map { _ in random.nextGaussian() }
            let analytic = (0..<parameter.count).reduce(0.0) { $0 + Double(parameter.gradient[$1] * direction[$1]) }
            let original = parameter.value.array()
            let rms = (original.reduce(0) { $0 + $1 * $1 } / Float(parameter.count)).squareRoot()
            let h: Float = 3e-3 * max(rms, 0.01)
            for i in 0..<parameter.count { parameter.value[i] = original[i] + h * direction[i] }
            let plus = loss(supernet, arch: arch, images: images, labels: labels, gradient: nil)
            for i in 0..<parameter.count { parameter.value[i] = original[i] - h * direction[i] }
            let minus = loss(supernet, arch: arch, images: images, labels: labels, gradient: nil)
            for i in 0..<parameter.count { parameter.value[i] = original[i] }
            let numeric = (plus - minus) / Double(2 * h)
            let scale = max(abs(analytic), abs(numeric), 1e-2)
            errors.append(abs(analytic - numeric) / scale)
            XCTAssertLessThan(
                abs(analytic - numeric) / scale, 0.35,
                "\(parameter.name): analytic \(analytic), numeric \(numeric) for \(arch)")
        }
        // Float32 finite differences through batch-statistics BatchNorm are noisy for single tensors (errors
        // up to ~25% were seen on correct code), but a wiring mistake corrupts every tensor upstream of it.
        let median = errors.sorted()[errors.count / 2]
        XCTAssertLessThan(median, 0.05, "median relative error \(median) over \(errors.count) tensors for \(arch)")
    }

    func testLargestSubnetGradients() {
        check(arch: tinySpace.largest, seed: 50)
    }

    func testSmallKernelsNarrowWidthsAndLowResolution() {
        var arch = tinySpace.smallest
        arch.depths = [1, 2]
        arch.kernels = [5, 7, 3, 5]
        check(arch: arch, seed: 60)
    }

    func testMixedSubnetGradients() {
        let arch = ArchConfig(resolution: 8, depths: [2, 2], kernels: [3, 5, 5, 3], expandRatios: [3, 2, 2, 3])
        check(arch: arch, seed: 70)
    }
}
