import Engine
import XCTest
@testable import Supernet

final class ExtractionTests: XCTestCase {
    /// Max |a − b| over the logits of the supernet (arch active, inference mode) and the extracted subnet.
    private func maxDifference(
        _ supernet: ElasticSupernet, _ arch: ArchConfig, images: FloatBuffer, batch: Int
    )
        throws -> Float
    {
        var random = SeededRandom(seed: 0)
        let classes = supernet.space.classes
        let reference = supernet.forward(images.pointer, batch: batch, arch: arch, training: false, random: &random)
        let expected = Array(UnsafeBufferPointer(start: reference, count: batch * classes))
        let network = try SubnetNetwork(supernet.extract(arch))
        let workspace = InferenceWorkspace()
        return withExtendedLifetime(workspace) {
            let logits = network.forward(images.pointer, batch: batch, workspace: workspace)
            return zip(expected, UnsafeBufferPointer(start: logits, count: batch * classes)).map { abs($0 - $1) }.max()!
        }
    }

    func testExtractedSubnetsReproduceTheSupernetOnRandomArchitectures() throws {
        let space = SearchSpace.fmnistMBV3
        let supernet = perturbedSupernet(space, seed: 11)
        let batch = 3
        let images = gaussianBuffer(batch * space.imageSize * space.imageSize, seed: 12)
        var random = SeededRandom(seed: 13)
        var archs = [space.largest, space.smallest]
        for i in 0..<100 {
            var arch = space.sample(&random)
            arch.resolution = space.resolutions[i % space.resolutions.count]
            archs.append(arch)
        }
        XCTAssertEqual(Set(archs.map(\.resolution)), Set(space.resolutions))
        var worst: Float = 0
        for arch in archs {
            let difference = try maxDifference(supernet, arch, images: images, batch: batch)
            XCTAssertLessThanOrEqual(difference, 1e-5, "\(arch)")
            worst = max(worst, difference)
        }
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }

    func testExtractedShapesFollowTheArchitecture() throws {
        let space = SearchSpace.fmnistMBV3
        let supernet = ElasticSupernet(space: space, seed: 1)
        var arch = space.largest
        arch.depths = [2, 3, 4]
        arch.kernels[0] = 3
        arch.expandRatios[0] = 4
        arch.kernels[4] = 5
        let subnet = supernet.extract(arch)
        XCTAssertEqual(subnet.tensor("blocks.0.expand.conv.weight")?.shape, [64, 16, 1, 1])
        XCTAssertEqual(subnet.tensor("blocks.0.dw.conv.weight")?.shape, [64, 1, 3, 3])
        XCTAssertEqual(subnet.tensor("blocks.4.dw.conv.weight")?.shape, [144, 1, 5, 5])
        XCTAssertEqual(subnet.tensor("blocks.4.se.reduce.weight")?.shape, [40, 144, 1, 1])
        XCTAssertNil(subnet.tensor("blocks.2.expand.conv.weight"), "stage 0 runs 2 blocks")
        XCTAssertNil(subnet.tensor("blocks.7.expand.conv.weight"), "stage 1 runs 3 blocks")
        XCTAssertNotNil(subnet.tensor("blocks.11.expand.conv.weight"))
        let trainable = subnet.tensors.filter {
            !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var")
        }
        XCTAssertEqual(
            trainable.reduce(0) { $0 + $1.values.count }, space.costs(for: arch).parameters,
            "the cost model's parameter count matches the extracted tensors")
    }

    func testKernelTransformsChainFromTheStoredSevenBySeven() throws {
        let space = tinySpace
        let supernet = perturbedSupernet(space, seed: 3)
        let unit = supernet.blocks[0].depthwise
        let channels = 4
        let k5 = Array(
            UnsafeBufferPointer(start: unit.effectiveKernel(size: 5, channels: channels), count: channels * 25))
        let m5 = unit.transforms[5]!.value
        let w7 = unit.weight.value
        for c in 0..<channels {
            for a in 0..<25 {
                var sum: Float = 0
                for b in 0..<25 {
                    sum += w7[c * 49 + (b / 5 + 1) * 7 + b % 5 + 1] * m5[a * 25 + b]
                }
                XCTAssertEqual(k5[c * 25 + a], sum, accuracy: 1e-5)
            }
        }
    }

    func testSortingChannelsKeepsTheFullWidthFunction() throws {
        let space = SearchSpace.fmnistMBV3
        let supernet = perturbedSupernet(space, seed: 21)
        let images = gaussianBuffer(2 * 28 * 28, seed: 22)
        var random = SeededRandom(seed: 0)
        let before = Array(
            UnsafeBufferPointer(
                start: supernet.forward(
                    images.pointer, batch: 2, arch: space.largest, training: false, random: &random),
                count: 20))
        let projectBefore = supernet.blocks[5].project.weight.value.array()
        supernet.sortChannelsByImportance()
        let after = Array(
            UnsafeBufferPointer(
                start: supernet.forward(
                    images.pointer, batch: 2, arch: space.largest, training: false, random: &random),
                count: 20))
        // The same function up to float rounding: reordering the channels reorders every sum (up to 480 products,
        // one fused multiply-add chain each) through 15 layers of perturbed BatchNorm; seen up to 2.4e-4 relative.
        // A wrong permutation moves the logits by O(1).
        for (x, y) in zip(before, after) {
            XCTAssertEqual(x, y, accuracy: 5e-4 * max(1, abs(x)))
        }
        XCTAssertNotEqual(projectBefore, supernet.blocks[5].project.weight.value.array(), "channels were reordered")
        let project = supernet.blocks[5].project
        let importance = (0..<project.maxInput).map { c in
            (0..<project.maxOutput).reduce(Float(0)) { $0 + abs(project.weight.value[$1 * project.maxInput + c]) }
        }
        XCTAssertEqual(importance, importance.sorted(by: >), "importance decreases along the mid channels")
    }
}
