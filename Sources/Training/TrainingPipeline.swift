import Engine
import Foundation
import SafeTensors
import Supernet

/// Where training data comes from.
public enum TrainingData: Sendable {
    /// The Fashion-MNIST IDX files in a directory (train split for training, test split for reporting).
    case fashionMNIST(directory: String)
    /// A user's safetensors file with `images` (u8 N×H×W×C) and `labels` (integers), and an optional test file.
    case safetensors(train: String, test: String?)

    /// Loads (train, test); test is nil for user data without a test file.
    public func load() throws -> (train: ImageDataset, test: ImageDataset?) {
        switch self {
        case .fashionMNIST(let directory):
            return (
                try FashionMNIST.load(directory: directory, split: .train),
                try FashionMNIST.load(directory: directory, split: .test)
            )
        case .safetensors(let train, let test):
            return (try Self.loadUserFile(train), try test.map(Self.loadUserFile))
        }
    }

    /// Reads `images` u8 [N, H, W, C] (or [N, H, W]) and `labels` [N] of any integer dtype.
    public static func loadUserFile(_ path: String) throws -> ImageDataset {
        let file = try SafeTensorsFile(contentsOf: path)
        guard let info = file["images"], info.dtype == .uint8, info.shape.count == 3 || info.shape.count == 4 else {
            throw DatasetError(
                kind: .invalidShape,
                message: "\(path): needs a tensor `images` of dtype U8 and shape N×H×W×C")
        }
        guard file["labels"] != nil else {
            throw DatasetError(
                kind: .invalidShape, message: "\(path): needs a tensor `labels` with one integer per image")
        }
        let labels = try file.int32s("labels")
        let classes = Int(labels.max() ?? 0) + 1
        return try ImageDataset(
            images: try file.bytes("images"), labels: labels, height: info.shape[1],
            width: info.shape[2], channels: info.shape.count == 4 ? info.shape[3] : 1,
            classes: classes)
    }
}

/// The whole `supernet train` job: data, training with checkpoints, BatchNorm calibration set, accuracy
/// predictor, measured accuracies and plots, written into one `.supernet` file.
public struct TrainingPipeline {
    /// Training options.
    public var options: TrainingOptions
    /// The space (from `--space`, or the resumed checkpoint's).
    public var space: SearchSpace
    /// Data source.
    public var data: TrainingData
    /// Output `.supernet` path.
    public var output: String
    /// Resume from this checkpoint when set.
    public var resume: String?
    /// Subnets measured for the accuracy predictor (0 skips it).
    public var predictorSamples = 1000
    /// Folder for the SVG plots and the metrics log (default: OUTPUT minus extension + "-run").
    public var runDirectory: String?
    /// Progress output.
    public var reporter: ProgressReporter?

    /// Creates a pipeline.
    public init(options: TrainingOptions, space: SearchSpace, data: TrainingData, output: String) {
        self.options = options
        self.space = space
        self.data = data
        self.output = output
    }

    /// The checkpoint path written after every epoch.
    public var checkpointPath: String { output + ".checkpoint" }

    /// Runs the job; returns the final file's manifest.
    @discardableResult
    public func run() throws -> Manifest {
        let started = ProgressReporter.monotonicSeconds()
        let directory = runDirectory ?? (output.hasSuffix(".supernet") ? String(output.dropLast(9)) : output) + "-run"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (all, test) = try data.load()
        let (train, validation) = try all.holdOut(validationCount: options.validationCount, seed: options.seed)
        let calibration = calibrationImages(train)
        let normalization = Normalization(mean: FashionMNIST.mean, std: FashionMNIST.std)

        let (network, startEpoch, elapsed) = try startingPoint()
        let log = try MetricsLog(path: directory + "/metrics.jsonl", truncate: startEpoch == 0)
        let trainer = try SupernetTrainer(
            network: network, options: options, train: train, validation: validation,
            calibration: calibration, normalization: normalization,
            reporter: reporter, log: log)
        _ = try trainer.run(from: startEpoch) { epoch in
            let seconds = elapsed + ProgressReporter.monotonicSeconds() - started
            try checkpoint(network, epoch: epoch, seconds: seconds, normalization: normalization)
        }
        let trainingSeconds = elapsed + ProgressReporter.monotonicSeconds() - started
        try plotCurves(from: directory + "/metrics.jsonl", to: directory + "/training-curves.svg")

        var manifest = Manifest(space: space, normalization: normalization, calibrationImages: calibration.count)
        manifest.training = record(seconds: trainingSeconds, completed: options.epochs)
        var extras = trainer.switchableNormTensors
        if predictorSamples > 0 {
            reporter?.message("measuring \(predictorSamples) subnets for the accuracy predictor")
            let measured = try PredictorFitting.measure(
                network, count: predictorSamples, calibration: calibration, validation: validation.labelled(),
                normalization: normalization, seed: options.seed &+ 1)
            let (predictor, summary) = PredictorFitting.fit(measured, space: space, seed: options.seed)
            manifest.predictor = summary
            extras += predictor.tensors
            try SampledSubnetsPlot.write(measured, space: space, to: directory + "/accuracy-vs-macs.svg")
        }
        var file = SupernetFile(manifest: manifest, network: network, calibrationImages: calibration, extras: extras)
        if let test {
            file.manifest.measured = try PredictorJob.measureOnTest(file, test: test, seed: options.seed)
        }
        try file.write(to: output)
        try? FileManager.default.removeItem(atPath: checkpointPath)
        return file.manifest
    }

    /// `calibrationCount` training images in a seed-determined order.
    private func calibrationImages(_ train: ImageDataset) -> [UInt8] {
        var random = SeededRandom(seed: options.seed &+ 2)
        var order = Array(0..<train.count)
        order.shuffle(using: &random)
        let chosen = order.prefix(min(options.calibrationCount, train.count)).sorted()
        return train.subset(Array(chosen)).images
    }

    private func record(seconds: Double, completed: Int) -> TrainingRecord {
        let dataset: String
        switch data {
        case .fashionMNIST: dataset = "fashion-mnist"
        case .safetensors(let train, _): dataset = train
        }
        return TrainingRecord(
            method: options.method.rawValue, epochs: options.epochs, batchSize: options.batchSize,
            learningRate: Double(options.learningRate), seed: options.seed, seconds: seconds,
            dataset: dataset, completedEpochs: completed, validationCount: options.validationCount)
    }

    /// A fresh network, or the checkpoint's with its optimizer state and completed epochs.
    private func startingPoint() throws -> (ElasticSupernet, Int, Double) {
        guard let resume else {
            let network = ElasticSupernet(space: space, seed: options.seed)
            if [.sandwich, .attentive].contains(options.method) {
                network.zeroResidualGammas()
            }
            return (network, 0, 0)
        }
        let file = try SupernetFile(path: resume)
        let velocities = Dictionary(file.extras.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
        for parameter in file.network.parameters {
            if let v = velocities["optimizer.velocity.\(parameter.name)"], v.count == parameter.count {
                v.withUnsafeBufferPointer { parameter.velocity.pointer.update(from: $0.baseAddress!, count: v.count) }
            }
        }
        guard let training = file.manifest.training else {
            throw ModelFileError(path: resume, message: "not a training checkpoint (no training record)")
        }
        return (file.network, training.completedEpochs, training.seconds)
    }

    private func checkpoint(
        _ network: ElasticSupernet, epoch: Int, seconds: Double,
        normalization: Normalization
    ) throws {
        var manifest = Manifest(space: space, normalization: normalization)
        manifest.training = record(seconds: seconds, completed: epoch + 1)
        let velocities = network.parameters.map {
            NamedTensor(name: "optimizer.velocity.\($0.name)", shape: $0.shape, values: $0.velocity.array())
        }
        try SupernetFile(manifest: manifest, network: network, extras: velocities).write(to: checkpointPath)
    }

    private func plotCurves(from log: String, to path: String) throws {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return }
        var largest: [PlotPoint] = []
        var smallest: [PlotPoint] = []
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let epoch = object["epoch"] as? Double ?? (object["epoch"] as? Int).map(Double.init)
            else { continue }
            if let v = object["val_largest"] as? Double { largest.append(PlotPoint(x: epoch + 1, y: v * 100)) }
            if let v = object["val_smallest"] as? Double { smallest.append(PlotPoint(x: epoch + 1, y: v * 100)) }
        }
        let chart = LineChart(
            title: "Validation accuracy during \(options.method.rawValue) training",
            xTitle: "epoch", yTitle: "accuracy (%)",
            series: [
                PlotSeries(name: "largest", points: largest),
                PlotSeries(name: "smallest", points: smallest),
            ])
        try chart.write(to: path)
    }

}

/// Fits (or refits) the accuracy predictor of a trained `.supernet` file and records measured test accuracies:
/// the second half of `make train-default`, runnable on its own (`supernet fit-predictor`).
public struct PredictorJob {
    /// The model file, rewritten in place (atomically).
    public var path: String
    /// Subnets to measure.
    public var samples: Int
    /// Data source (must be the one the model was trained on, for the validation split to be held out).
    public var data: TrainingData
    /// Progress output.
    public var reporter: ProgressReporter?

    /// Creates a job.
    public init(path: String, samples: Int, data: TrainingData) {
        self.path = path
        self.samples = samples
        self.data = data
    }

    /// Measures, fits, writes; returns the new manifest.
    @discardableResult
    public func run() throws -> Manifest {
        var file = try SupernetFile(path: path)
        guard let record = file.manifest.training else {
            throw ModelFileError(path: path, message: "has no training record: cannot rebuild its validation split")
        }
        guard file.calibrationCount > 0 else {
            throw ModelFileError(path: path, message: "holds no calibration images")
        }
        let (all, test) = try data.load()
        let validation = try all.holdOut(validationCount: record.validationCount, seed: record.seed).validation
        let normalization = file.manifest.normalization
        var options = TrainingOptions()
        options.seed = record.seed
        options.validationCount = record.validationCount
        let started = ProgressReporter.monotonicSeconds()
        let measured = try PredictorFitting.measure(
            file.network, count: samples, calibration: file.calibrationImages, validation: validation.labelled(),
            normalization: normalization, seed: record.seed &+ 1
        ) { done in
            if done % 50 == 0 {
                let rate = Double(done) / (ProgressReporter.monotonicSeconds() - started)
                reporter?.message("measured \(done)/\(samples) subnets (\(String(format: "%.2f", rate))/s)")
            }
        }
        let (predictor, summary) = PredictorFitting.fit(measured, space: file.manifest.space, seed: record.seed)
        file.manifest.predictor = summary
        file.extras = file.extras.filter { !$0.name.hasPrefix("predictor.") } + predictor.tensors
        if let test {
            file.manifest.measured = try Self.measureOnTest(file, test: test, seed: record.seed)
        }
        try file.write(to: path)
        let directory = (path.hasSuffix(".supernet") ? String(path.dropLast(9)) : path) + "-run"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? writeMeasurements(measured, space: file.manifest.space, to: directory + "/predictor-samples.jsonl")
        try? SampledSubnetsPlot.write(measured, space: file.manifest.space, to: directory + "/accuracy-vs-macs.svg")
        return file.manifest
    }

    /// Test accuracy of the largest, the smallest and 5 subnets spread evenly over the MACs range, each after
    /// BatchNorm recalibration on the file's calibration images.
    static func measureOnTest(_ file: SupernetFile, test: ImageDataset, seed: UInt64) throws -> [MeasuredSubnet] {
        let space = file.manifest.space
        var random = SeededRandom(seed: seed &+ 3)
        let pool = (0..<2000).map { _ in space.sample(&random) }.sorted {
            space.costs(for: $0).macs < space.costs(for: $1).macs
        }
        var chosen: [(String, ArchConfig)] = [("largest", space.largest), ("smallest", space.smallest)]
        for i in 1...5 {
            chosen.append(("sample-\(i)", pool[i * (pool.count - 1) / 6]))
        }
        let data = test.labelled()
        return try chosen.map { label, arch in
            let subnet = try file.subnet(arch, recalibrate: true)
            let accuracy = try SubnetNetwork(subnet).accuracy(on: data, normalization: file.manifest.normalization)
            return MeasuredSubnet(
                label: label, arch: arch.canonical(maxDepth: space.maxDepth), accuracy: accuracy,
                macs: space.costs(for: arch).macs)
        }
    }

    private func writeMeasurements(_ measured: MeasuredArchitectures, space: SearchSpace, to path: String) throws {
        let log = try MetricsLog(path: path, truncate: true)
        for (arch, accuracy) in zip(measured.archs, measured.accuracies) {
            try log.append([
                ("arch", .string(arch.json)), ("macs", .int(space.costs(for: arch).macs)),
                ("val_accuracy", .double(accuracy)),
            ])
        }
    }
}

/// The accuracy-versus-MACs scatter plot of measured subnets, with their Pareto front.
public enum SampledSubnetsPlot {
    /// Writes the plot of `measured` (validation accuracies) to `path`.
    public static func write(_ measured: MeasuredArchitectures, space: SearchSpace, to path: String) throws {
        let points = zip(measured.archs, measured.accuracies).map {
            PlotPoint(x: Double(space.costs(for: $0.0).macs) / 1e6, y: $0.1 * 100)
        }
        let chart = ScatterChart(
            title: "Sampled subnets: validation accuracy vs MACs", xTitle: "MACs (millions)",
            yTitle: "accuracy (%)", series: [PlotSeries(name: "subnets", points: points)],
            paretoFront: true)
        try chart.write(to: path)
    }
}
