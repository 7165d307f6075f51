import Engine
import XCTest
@testable import Supernet

final class CostsTests: XCTestCase {
    /// MACs re-derived stage by stage, written independently of `SearchSpace.layers(for:)`.
    private func handMACs(_ arch: ArchConfig, _ space: SearchSpace) -> Int {
        var side = arch.resolution
        var macs = side * side * 9 * space.inputChannels * space.stemChannels
        var channels = space.stemChannels
        for (s, stage) in space.stages.enumerated() {
            for j in 0..<arch.depths[s] {
                let i = s * space.maxDepth + j
                let mid = makeDivisible(Double(channels * arch.expandRatios[i]), by: 8)
                let outSide = j == 0 ? (side + stage.firstStride - 1) / stage.firstStride : side
                macs += side * side * channels * mid
                macs += outSide * outSide * mid * arch.kernels[i] * arch.kernels[i]
                if stage.squeezeExcite {
                    macs += 2 * mid * makeDivisible(Double(mid / 4), by: 8)
                }
                macs += outSide * outSide * mid * stage.outputChannels
                side = outSide
                channels = stage.outputChannels
            }
        }
        return macs + side * side * channels * space.headChannels + space.headChannels * space.classes
    }

    func testMACsOfLargestSmallestAndRandomSubnets() {
        let space = SearchSpace.fmnistMBV3
        let largest = space.costs(for: space.largest).macs
        let smallest = space.costs(for: space.smallest).macs
        XCTAssertEqual(largest, handMACs(space.largest, space))
        XCTAssertEqual(smallest, handMACs(space.smallest, space))
        XCTAssert((20_000_000...26_000_000).contains(largest), "largest \(largest) MACs (design: about 23 M)")
        XCTAssert(smallest * 3 < largest, "smallest \(smallest) vs largest \(largest)")
        var random = SeededRandom(seed: 9)
        for _ in 0..<50 {
            let arch = space.sample(&random)
            XCTAssertEqual(space.costs(for: arch).macs, handMACs(arch, space))
        }
    }

    func testMidAndSqueezeExciteWidthsRoundToMultiplesOfEight() {
        let space = SearchSpace.fmnistMBV3
        XCTAssertEqual(space.midChannels(inputChannels: 16, ratio: 3), 48)
        XCTAssertEqual(space.midChannels(inputChannels: 40, ratio: 3), 120)
        XCTAssertEqual(space.seChannels(midChannels: 120), 32)
        XCTAssertEqual(space.seChannels(midChannels: 240), 64)
        XCTAssertEqual(space.seChannels(midChannels: 480), 120)
        XCTAssertEqual(makeDivisible(3, by: 8), 8)
    }

    func testPeakMemoryOfTheLargestSubnet() {
        // At r = 28 the peak is stage 1's first block: 28×28×16 input, 28×28×96 expanded, 14×14×96 filtered;
        // the expand layer holds input + expanded = 4 · 784 · (16 + 96) bytes, the depthwise layer
        // expanded + filtered = 4 · (784 + 196) · 96 bytes (no residual on a stride-2 block).
        let space = SearchSpace.fmnistMBV3
        let expected = max(4 * 784 * (16 + 96), 4 * (784 + 196) * 96)
        XCTAssertEqual(space.costs(for: space.largest).peakActivationBytes, expected)
        XCTAssertLessThan(space.costs(for: space.smallest).peakActivationBytes, expected)
    }
}
