import Engine
import XCTest

@testable import Supernet

/// A large batch runs tile by tile on every thread (`SubnetNetwork.forward`): each image's logits must be what
/// it gets alone, and the same bits for any thread count.
final class TiledInferenceTests: XCTestCase {
    func testTiledBatchMatchesImagesRunAloneAndIgnoresTheThreadCount() throws {
        let space = SearchSpace.fmnistMBV3
        let supernet = perturbedSupernet(space, seed: 51)
        var random = SeededRandom(seed: 52)
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let batch = 3 * SubnetNetwork.tileImages + 2
        let images = FloatBuffer(count: batch * pixels)
        for i in 0..<images.count {
            images[i] = random.nextGaussian()
        }
        let original = Parallel.threadCount
        defer { Parallel.setThreadCount(original) }
        for arch in [space.largest, space.smallest, space.sample(&random)] {
            let network = try SubnetNetwork(supernet.extract(arch))
            let classes = space.classes
            var alone: [Float] = []
            let single = InferenceWorkspace()
            for image in 0..<batch {
                withExtendedLifetime(single) {
                    let logits = network.forward(images.pointer + image * pixels, batch: 1, workspace: single)
                    alone += Array(UnsafeBufferPointer(start: logits, count: classes))
                }
            }
            var tiled: [[Float]] = []
            for threads in [1, 2] {
                Parallel.setThreadCount(threads)
                let workspace = InferenceWorkspace()
                withExtendedLifetime(workspace) {
                    let logits = network.forward(images.pointer, batch: batch, workspace: workspace)
                    tiled.append(Array(UnsafeBufferPointer(start: logits, count: batch * classes)))
                }
            }
            XCTAssertEqual(tiled[0], tiled[1], "tiled logits depend on the thread count")
            // OpenBLAS takes other kernel paths for other row counts (and other CPU types): equal up to float
            // rounding, relative to the logits' scale. A wrong tile offset would differ at the scale itself.
            let scale = max(1, alone.map(abs).max() ?? 1)
            let worst = zip(alone, tiled[0]).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(arch.json): scale \(scale)")
        }
    }
}
