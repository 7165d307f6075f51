import Engine
import Foundation
import Supernet
import Training

/// Training throughput per method (`supernet bench train`): images per second of the step loop (forward,
/// backward and SGD for every subnet the method trains per batch), on random images of the space's size.
public struct TrainBenchmark {
    /// The space.
    public var space: SearchSpace
    /// Steps timed per method (after one warm-up step).
    public var steps = 12
    /// Batch size.
    public var batchSize = 128

    /// Creates a benchmark.
    public init(space: SearchSpace) {
        self.space = space
    }

    /// Images per second by method name.
    public func run() throws -> [String: Double] {
        let count = batchSize * (steps + 1)
        var random = SeededRandom(seed: 11)
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let images = (0..<(count * pixels)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let labels = (0..<count).map { Int32($0 % space.classes) }
        let data = try ImageDataset(
            images: images, labels: labels, height: space.imageSize, width: space.imageSize,
            channels: space.inputChannels, classes: space.classes)
        var results: [String: Double] = [:]
        // `standalone` costs what `uniform` does for one fixed subnet: not measured separately.
        for method in TrainingMethod.allCases where method != .standalone {
            var options = TrainingOptions()
            options.method = method
            options.epochs = 2
            options.batchSize = batchSize
            options.stepsPerEpoch = steps
            options.epochValidationCount = 10
            let network = ElasticSupernet(space: space, seed: 1)
            let trainer = try SupernetTrainer(
                network: network, options: options, train: data, validation: data.subset(Array(0..<10)),
                calibration: Array(images[0..<(10 * pixels)]), normalization: .fashionMNIST, reporter: nil, log: nil)
            // Epoch 0 warms buffers up; epoch 1 is timed (progressive measures its final, 4-subnet phase).
            let history = try trainer.run()
            results[method.rawValue] = history.last!.imagesPerSecond
        }
        return results
    }
}
