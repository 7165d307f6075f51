import Engine
import XCTest
@testable import Supernet

final class CalibrationTests: XCTestCase {
    func testRecalibrationIsDeterministicAcrossThreadCounts() throws {
        let space = SearchSpace.fmnistMBV3
        let supernet = perturbedSupernet(space, seed: 31)
        let pixels = randomPixels(300, space: space, seed: 32)
        var random = SeededRandom(seed: 33)
        let arch = space.sample(&random)
        let original = Parallel.threadCount
        defer { Parallel.setThreadCount(original) }
        var results: [[NamedTensor]] = []
        for threads in [1, 2, 1] {
            Parallel.setThreadCount(threads)
            let subnet = try supernet.extract(arch).recalibrated(
                images: pixels, count: 300,
                normalization: .fashionMNIST, batchSize: 128)
            results.append(subnet.tensors)
        }
        for other in results.dropFirst() {
            XCTAssertEqual(other.map(\.name), results[0].map(\.name))
            for (a, b) in zip(results[0], other) {
                XCTAssertEqual(a.values, b.values, "\(a.name) differs between runs")
            }
        }
        let before = supernet.extract(arch)
        XCTAssertNotEqual(before.tensor("stem.bn.running_mean")?.values, results[0][3].values)
    }

    /// A recalibrated subnet and its logits are the same bits on the AVX2 and the AVX-512 kernels, so a daemon and
    /// `supernet extract` on different processors agree byte for byte.
    func testRecalibrationAndInferenceAreTheSameBitsOnBothInstructionSets() throws {
        try XCTSkipUnless(InstructionSet.avx512Available, "this processor has no AVX-512")
        let space = SearchSpace.fmnistMBV3
        let supernet = perturbedSupernet(space, seed: 51)
        let pixels = randomPixels(60, space: space, seed: 52)
        let images = gaussianBuffer(6 * space.imageSize * space.imageSize, seed: 53)
        var random = SeededRandom(seed: 54)
        let saved = InstructionSet.useAVX512
        defer { InstructionSet.useAVX512 = saved }
        for arch in [space.largest, space.smallest, space.sample(&random), space.sample(&random)] {
            var results: [(tensors: [[Float]], logits: [Float])] = []
            for avx512 in [false, true] {
                InstructionSet.useAVX512 = avx512
                let subnet = try supernet.extract(arch).recalibrated(
                    images: pixels, count: 60, normalization: .fashionMNIST, batchSize: 20)
                let network = try SubnetNetwork(subnet)
                let workspace = InferenceWorkspace()
                let logits = withExtendedLifetime(workspace) {
                    Array(
                        UnsafeBufferPointer(
                            start: network.forward(images.pointer, batch: 6, workspace: workspace),
                            count: 6 * space.classes))
                }
                results.append((subnet.tensors.map(\.values), logits))
            }
            XCTAssertEqual(results[0].tensors, results[1].tensors, "recalibrated tensors of \(arch)")
            XCTAssertEqual(
                results[0].logits.map(\.bitPattern), results[1].logits.map(\.bitPattern), "logits of \(arch)")
        }
    }

    func testRecalibratedStemStatisticsAreThoseOfTheCalibrationImages() throws {
        let space = tinySpace
        let supernet = perturbedSupernet(space, seed: 41)
        let count = 50
        let pixels = randomPixels(count, space: space, seed: 42)
        let norm = Normalization(mean: 0.3, std: 0.4)
        let subnet = try supernet.extract(space.largest).recalibrated(
            images: pixels, count: count,
            normalization: norm, batchSize: count)
        let weight = subnet.tensor("stem.conv.weight")!.values
        let side = space.imageSize
        let channels = space.stemChannels
        var sum = [Double](repeating: 0, count: channels)
        var squares = [Double](repeating: 0, count: channels)
        for n in 0..<count {
            for y in 0..<side {
                for x in 0..<side {
                    for o in 0..<channels {
                        var v: Double = 0
                        for i in 0..<3 {
                            for j in 0..<3 {
                                let yy = y + i - 1
                                let xx = x + j - 1
                                guard yy >= 0, yy < side, xx >= 0, xx < side else { continue }
                                let p = Double(pixels[(n * side + yy) * side + xx]) / 255
                                v += (p - 0.3) / 0.4 * Double(weight[o * 9 + i * 3 + j])
                            }
                        }
                        sum[o] += v
                        squares[o] += v * v
                    }
                }
            }
        }
        let rows = Double(count * side * side)
        let mean = subnet.tensor("stem.bn.running_mean")!.values
        let variance = subnet.tensor("stem.bn.running_var")!.values
        for o in 0..<channels {
            let m = sum[o] / rows
            XCTAssertEqual(Double(mean[o]), m, accuracy: 1e-4)
            XCTAssertEqual(Double(variance[o]), squares[o] / rows - m * m, accuracy: 1e-3 * max(1, squares[o] / rows))
        }
    }
}
