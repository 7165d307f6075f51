import Engine
import Foundation
import SafeTensors
import Supernet
import XCTest

@testable import Training

/// Trains a small supernet on a Fashion-MNIST subset with every method: the loss must fall and the largest and
/// smallest subnets must beat chance clearly.
final class TrainerTests: XCTestCase {
    /// A small space on 28×28 images with every kind of elasticity (kernel, depth, width, resolution).
    static let smallSpace = SearchSpace(
        name: "small", inputChannels: 1, imageSize: 28, classes: 10, stemChannels: 8,
        stages: [
            StageSpec(outputChannels: 16, firstStride: 2, activation: .relu, squeezeExcite: false),
            StageSpec(outputChannels: 24, firstStride: 2, activation: .hswish, squeezeExcite: true),
        ],
        depths: [1, 2], kernels: [3, 5], expandRatios: [2, 3], resolutions: [20, 28],
        headChannels: 64, seReduction: 4, dropout: 0.1)

    private static let data: (train: ImageDataset, validation: ImageDataset)? = {
        guard let all = try? FashionMNIST.load(split: .train) else { return nil }
        let subset = all.subset(Array(0..<6000))
        return try? subset.holdOut(validationCount: 1000, seed: 1)
    }()

    /// Trains `method`; returns the mean training loss of two epochs that share a loss definition, and the
    /// final validation accuracies of the largest and smallest subnets.
    private func train(
        _ method: TrainingMethod, architecture: ArchConfig? = nil
    ) throws -> (
        first: Double, last: Double, largest: Double,
        smallest: Double
    ) {
        guard let (train, validation) = Self.data else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        // Progressive shrinking changes its loss between phases (distillation joins after the first): with five
        // epochs, epochs 2 and 3 are both in the depth phase, and those two are compared.
        let progressive = method == .progressive
        var options = TrainingOptions()
        options.method = method
        options.epochs = progressive ? 5 : 2
        options.batchSize = 64
        options.stepsPerEpoch = progressive ? 40 : 75
        options.learningRate = 0.05
        options.warmupEpochs = 0.2
        options.seed = 3
        options.architecture = architecture
        let network = ElasticSupernet(space: Self.smallSpace, seed: 3)
        let trainer = try SupernetTrainer(
            network: network, options: options, train: train, validation: validation,
            calibration: Array(train.images[0..<(500 * 784)]), normalization: .fashionMNIST, reporter: nil,
            log: nil)
        let history = try trainer.run()
        let (a, b) = progressive ? (2, 3) : (0, history.count - 1)
        return (
            history[a].trainLoss, history[b].trainLoss, history.last!.validationLargest,
            history.last!.validationSmallest
        )
    }

    private func check(_ method: TrainingMethod, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try train(method)
        // Within one progressive phase the learning rate is a quarter of the base rate, so the fall is smaller.
        let factor = method == .progressive ? 0.99 : 0.95
        XCTAssertLessThan(result.last, result.first * factor, "\(method): loss falls", file: file, line: line)
        XCTAssertGreaterThan(
            result.largest, 0.5, "\(method): largest subnet beats chance (10%)", file: file,
            line: line)
        XCTAssertGreaterThan(
            result.smallest, 0.4, "\(method): smallest subnet beats chance (10%)", file: file,
            line: line)
    }

    func testSandwichLearns() throws { try check(.sandwich) }
    func testProgressiveShrinkingLearns() throws { try check(.progressive) }
    func testAttentiveLearns() throws { try check(.attentive) }
    func testSlimmableLearns() throws { try check(.slimmable) }
    func testUniformLearns() throws { try check(.uniform) }

    func testStandaloneTrainsTheGivenArchitecture() throws {
        let result = try train(.standalone, architecture: Self.smallSpace.smallest)
        XCTAssertLessThan(result.last, result.first * 0.95, "standalone: loss falls")
        XCTAssertGreaterThan(result.smallest, 0.5, "the trained (smallest) architecture beats chance (10%)")
    }

    func testProgressivePhasesCoverTheEpochsInOrder() {
        XCTAssertEqual(ProgressivePhase.boundaries(epochs: 20), [0, 5, 9, 14])
        XCTAssertEqual(ProgressivePhase.phase(epoch: 0, epochs: 20), .full)
        XCTAssertEqual(ProgressivePhase.phase(epoch: 8, epochs: 20), .kernel)
        XCTAssertEqual(ProgressivePhase.phase(epoch: 13, epochs: 20), .depth)
        XCTAssertEqual(ProgressivePhase.phase(epoch: 19, epochs: 20), .expand)
    }

    func testAResumedRunEndsWithTheSameWeights() throws {
        guard let (train, validation) = Self.data else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 32
        options.stepsPerEpoch = 8
        options.epochValidationCount = 100
        let calibration = Array(train.images[0..<(100 * 784)])
        func trainer(_ network: ElasticSupernet) throws -> SupernetTrainer {
            try SupernetTrainer(
                network: network, options: options, train: train, validation: validation,
                calibration: calibration, normalization: .fashionMNIST, reporter: nil, log: nil)
        }
        let straight = ElasticSupernet(space: Self.smallSpace, seed: 9)
        _ = try trainer(straight).run()

        let first = ElasticSupernet(space: Self.smallSpace, seed: 9)
        var stopped = options
        stopped.epochs = 1
        _ = try SupernetTrainer(
            network: first, options: stopped, train: train, validation: validation,
            calibration: calibration, normalization: .fashionMNIST, reporter: nil, log: nil
        ).run()
        let resumed = ElasticSupernet(space: Self.smallSpace, seed: 0)
        resumed.copyWeights(from: first)
        for (a, b) in zip(resumed.parameters, first.parameters) {
            a.velocity.pointer.update(from: b.velocity.pointer, count: a.count)
        }
        _ = try trainer(resumed).run(from: 1)
        for (a, b) in zip(straight.parameters, resumed.parameters) {
            XCTAssertEqual(a.value.array(), b.value.array(), a.name)
        }
    }
}

final class PredictorFittingTests: XCTestCase {
    func testKendallTauOnHandComputedCases() {
        XCTAssertEqual(PredictorFitting.kendallTau([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-12)
        XCTAssertEqual(PredictorFitting.kendallTau([1, 2, 3, 4], [40, 30, 20, 10]), -1, accuracy: 1e-12)
        // Pairs: (1,2)+ (1,3)+ (1,4)+ (2,3)- (2,4)+ (3,4)+ → (5 − 1) / 6.
        XCTAssertEqual(PredictorFitting.kendallTau([1, 2, 3, 4], [1, 3, 2, 4]), 4.0 / 6.0, accuracy: 1e-12)
    }

    func testTheMLPLearnsAKnownFunctionOfTheArchitecture() {
        let space = SearchSpace.fmnistMBV3
        var random = SeededRandom(seed: 4)
        var data = MeasuredArchitectures(archs: [], accuracies: [])
        for _ in 0..<1000 {
            let arch = space.sample(&random).canonical(maxDepth: space.maxDepth)
            // Accuracy rises with capacity, saturating: 0.90 + 0.04 · (1 − exp(−3 · MACs / max)).
            let macs = Double(space.costs(for: arch).macs) / Double(space.costs(for: space.largest).macs)
            data.archs.append(arch)
            data.accuracies.append(0.90 + 0.04 * (1 - exp(-3 * macs)) + Double(arch.resolution) * 1e-4)
        }
        let (predictor, summary) = PredictorFitting.fit(data, space: space, seed: 1, epochs: 150)
        XCTAssertLessThan(summary.rmsePoints, 0.25, "RMSE in accuracy points")
        XCTAssertGreaterThan(summary.kendallTau, 0.8)
        XCTAssertEqual(summary.samples, 1000)
        let restored = try? AccuracyPredictor(space: space, tensors: predictor.tensors)
        XCTAssertEqual(restored?.predict(space.largest), predictor.predict(space.largest))
    }
}

final class UserDataTests: XCTestCase {
    func testASafetensorsDataSetLoadsAndABadOneIsRefused() throws {
        let directory = NSTemporaryDirectory() + "user-data-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var writer = SafeTensorsWriter()
        try writer.add(name: "images", uint8: (0..<(5 * 4 * 4 * 3)).map { UInt8($0 % 251) }, shape: [5, 4, 4, 3])
        try writer.add(name: "labels", int64: [0, 1, 2, 1, 0], shape: [5])
        try writer.write(to: directory + "/good.safetensors")
        let data = try TrainingData.loadUserFile(directory + "/good.safetensors")
        XCTAssertEqual([data.count, data.height, data.width, data.channels, data.classes], [5, 4, 4, 3, 3])
        XCTAssertEqual(data.labels, [0, 1, 2, 1, 0])

        var bad = SafeTensorsWriter()
        try bad.add(name: "images", floats: [Float](repeating: 0, count: 16), shape: [1, 4, 4])
        try bad.add(name: "labels", int64: [0], shape: [1])
        try bad.write(to: directory + "/bad.safetensors")
        XCTAssertThrowsError(try TrainingData.loadUserFile(directory + "/bad.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("U8"), "\(error)")
        }
    }
}
