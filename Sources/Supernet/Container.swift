import Engine
import Foundation
import SafeTensors

/// Measured test accuracy of one subnet, recorded in the manifest.
public struct MeasuredSubnet: Codable, Hashable, Sendable {
    /// A label: "largest", "smallest", or "sample-N".
    public var label: String
    /// The architecture (canonical JSON form).
    public var arch: ArchConfig
    /// Test accuracy in [0, 1] after BatchNorm recalibration.
    public var accuracy: Double
    /// MACs at batch 1.
    public var macs: Int

    /// Creates a record.
    public init(label: String, arch: ArchConfig, accuracy: Double, macs: Int) {
        self.label = label
        self.arch = arch
        self.accuracy = accuracy
        self.macs = macs
    }
}

/// How the accuracy predictor did on held-out subnets.
public struct PredictorSummary: Codable, Hashable, Sendable {
    /// Root-mean-square error in accuracy points (percent).
    public var rmsePoints: Double
    /// Kendall rank correlation on the held-out subnets.
    public var kendallTau: Double
    /// Subnets measured to fit and test it.
    public var samples: Int

    enum CodingKeys: String, CodingKey {
        case rmsePoints = "rmse_points", kendallTau = "kendall_tau", samples
    }

    /// Creates a summary.
    public init(rmsePoints: Double, kendallTau: Double, samples: Int) {
        self.rmsePoints = rmsePoints
        self.kendallTau = kendallTau
        self.samples = samples
    }
}

/// How a supernet was trained (the recipe that reproduces it).
public struct TrainingRecord: Codable, Hashable, Sendable {
    /// Training method (progressive, sandwich, attentive, slimmable, uniform).
    public var method: String
    /// Epochs over the training split.
    public var epochs: Int
    /// Batch size.
    public var batchSize: Int
    /// Peak learning rate.
    public var learningRate: Double
    /// Random seed.
    public var seed: UInt64
    /// Wall time of the run in seconds.
    public var seconds: Double
    /// Data set description.
    public var dataset: String
    /// Epochs completed (a checkpoint has fewer than `epochs`).
    public var completedEpochs: Int
    /// Images held out of the training set for validation (the split is stratified and seeded by `seed`).
    public var validationCount: Int

    /// Creates a record.
    public init(
        method: String, epochs: Int, batchSize: Int, learningRate: Double, seed: UInt64, seconds: Double,
        dataset: String, completedEpochs: Int, validationCount: Int
    ) {
        self.method = method
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.seed = seed
        self.seconds = seconds
        self.dataset = dataset
        self.completedEpochs = completedEpochs
        self.validationCount = validationCount
    }
}

/// The JSON manifest stored under the `.supernet` file's `__metadata__`.
public struct Manifest: Codable, Sendable {
    /// Format name and version of the container.
    public static let format = "supernet"
    /// Current container format version; readers refuse other versions.
    public static let formatVersion = 1
    /// The search space (also the layer graph: blocks follow from it).
    public var space: SearchSpace
    /// Pixel normalization the network expects.
    public var normalization: Normalization
    /// How it was trained, when it was.
    public var training: TrainingRecord?
    /// Measured accuracies, when known.
    public var measured: [MeasuredSubnet]?
    /// Accuracy predictor quality, when a predictor is stored.
    public var predictor: PredictorSummary?
    /// Number of calibration images stored (0 if none).
    public var calibrationImages: Int

    /// Creates a manifest.
    public init(
        space: SearchSpace, normalization: Normalization, training: TrainingRecord? = nil,
        measured: [MeasuredSubnet]? = nil, predictor: PredictorSummary? = nil, calibrationImages: Int = 0
    ) {
        self.space = space
        self.normalization = normalization
        self.training = training
        self.measured = measured
        self.predictor = predictor
        self.calibrationImages = calibrationImages
    }
}

/// A problem with a `.supernet` or subnet file's content (the container itself was readable).
public struct ModelFileError: Error, CustomStringConvertible {
    /// The file.
    public let path: String
    /// What is wrong.
    public let message: String

    /// Creates an error about `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// "PATH: message".
    public var description: String { "\(path): \(message)" }
}

/// A supernet file's parts: the manifest, the network and the extras stored beside it.
public struct SupernetFile {
    /// Tensor name of the stored calibration images (u8, N × S × S × C).
    public static let calibrationTensor = "calibration.images"
    /// The manifest.
    public var manifest: Manifest
    /// The trainable network with the stored weights.
    public var network: ElasticSupernet
    /// Calibration images, N × S × S × C u8 (empty if none).
    public var calibrationImages: [UInt8]
    /// Extra tensors kept as they are: the accuracy predictor (`predictor.*`), a slimmable run's private
    /// BatchNorm sets (`switchable.*`), a checkpoint's optimizer state (`optimizer.*`).
    public var extras: [NamedTensor]

    /// The stored accuracy predictor, if any.
    public func predictor() throws -> AccuracyPredictor? {
        try AccuracyPredictor(space: manifest.space, tensors: extras.filter { $0.name.hasPrefix("predictor.") })
    }

    /// Number of calibration images.
    public var calibrationCount: Int {
        let s = manifest.space
        return calibrationImages.count / (s.imageSize * s.imageSize * s.inputChannels)
    }

    /// Wraps a network with a manifest and no extras.
    public init(
        manifest: Manifest, network: ElasticSupernet, calibrationImages: [UInt8] = [],
        extras: [NamedTensor] = []
    ) {
        self.manifest = manifest
        self.network = network
        self.calibrationImages = calibrationImages
        self.extras = extras
    }

    /// Reads a `.supernet` file (mmapped); checks the format, version, and every tensor's shape.
    /// - Throws: the container's error for a malformed file, `ModelFileError` for a wrong content.
    public init(path: String) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        let metadata = file.metadata
        guard metadata["format"] == Manifest.format else {
            throw ModelFileError(
                path: path,
                message: "not a supernet file (metadata format is "
                    + "\(metadata["format"].map { "\"\($0)\"" } ?? "missing"), expected \"supernet\")")
        }
        guard metadata["format_version"] == String(Manifest.formatVersion) else {
            throw ModelFileError(
                path: path,
                message: "format version \(metadata["format_version"] ?? "missing") "
                    + "is not supported (this build reads version \(Manifest.formatVersion))")
        }
        guard let json = metadata["manifest"]?.data(using: .utf8) else {
            throw ModelFileError(path: path, message: "metadata has no manifest")
        }
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: json)
        } catch {
            throw ModelFileError(path: path, message: "manifest is not valid: \(error)")
        }
        network = ElasticSupernet(space: manifest.space)
        try Self.load(network, from: file, path: path)
        calibrationImages = file[Self.calibrationTensor] == nil ? [] : try file.bytes(Self.calibrationTensor)
        let known = Set(network.parameters.map(\.name) + network.state.map(\.name) + [Self.calibrationTensor])
        extras = try file.tensors.filter { !known.contains($0.name) }.map {
            NamedTensor(name: $0.name, shape: $0.shape, values: try file.floats($0.name))
        }
    }

    private static func load(_ network: ElasticSupernet, from file: SafeTensorsFile, path: String) throws {
        let named: [(String, [Int], FloatBuffer)] =
            network.parameters.map { ($0.name, $0.shape, $0.value) }
            + network.state.map { ($0.name, $0.shape, $0.buffer) }
        for (name, shape, buffer) in named {
            guard let info = file[name] else {
                throw ModelFileError(path: path, message: "tensor \(name) is missing")
            }
            guard info.shape == shape else {
                throw ModelFileError(path: path, message: "tensor \(name) has shape \(info.shape), expected \(shape)")
            }
            let values = try file.floats(name)
            values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: values.count) }
        }
    }

    /// Writes the file atomically: parameters and running statistics (F32), extras, calibration images (U8),
    /// and the manifest as JSON metadata.
    public func write(to path: String) throws {
        var writer = SafeTensorsWriter()
        for parameter in network.parameters {
            try writer.add(name: parameter.name, floats: parameter.value.array(), shape: parameter.shape)
        }
        for tensor in network.state {
            try writer.add(name: tensor.name, floats: tensor.buffer.array(), shape: tensor.shape)
        }
        for tensor in extras {
            try writer.add(name: tensor.name, floats: tensor.values, shape: tensor.shape)
        }
        var manifest = self.manifest
        manifest.calibrationImages = calibrationCount
        if calibrationCount > 0 {
            let s = manifest.space
            try writer.add(
                name: Self.calibrationTensor, uint8: calibrationImages,
                shape: [calibrationCount, s.imageSize, s.imageSize, s.inputChannels])
        }
        writer.metadata = [
            "format": Manifest.format,
            "format_version": String(Manifest.formatVersion),
            "manifest": String(decoding: try manifestJSON(manifest), as: UTF8.self),
        ]
        try writer.write(to: path)
    }

    private func manifestJSON(_ manifest: Manifest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(manifest)
    }
}

extension Subnet {
    /// Metadata `format` of subnet files.
    public static let format = "supernet-subnet"

    /// Writes the subnet as a safetensors file: F32 tensors in execution order, with the arch, space,
    /// normalization and costs in the metadata.
    public func write(to path: String, normalization: Normalization) throws {
        var writer = SafeTensorsWriter()
        for tensor in tensors {
            try writer.add(name: tensor.name, floats: tensor.values, shape: tensor.shape)
        }
        writer.metadata = try metadata(normalization: normalization)
        try writer.write(to: path)
    }

    /// The metadata written with the subnet (shared with the daemon's stream header).
    public func metadata(normalization: Normalization) throws -> [String: String] {
        try Self.metadata(arch: arch, space: space, normalization: normalization)
    }

    /// The metadata of a subnet with this arch and space, without extracting it.
    public static func metadata(
        arch: ArchConfig, space: SearchSpace, normalization: Normalization
    ) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) throws -> String {
            String(decoding: try encoder.encode(value), as: UTF8.self)
        }
        return [
            "format": Self.format,
            "format_version": "1",
            "arch": arch.json,
            "space": try json(space),
            "normalization": try json(normalization),
            "costs": try json(space.costs(for: arch)),
        ]
    }

    /// Reads a subnet file written by `write(to:normalization:)` (any float dtype is widened to F32).
    public static func read(path: String) throws -> (subnet: Subnet, normalization: Normalization) {
        let file = try SafeTensorsFile(contentsOf: path)
        let metadata = file.metadata
        guard metadata["format"] == format else {
            throw ModelFileError(path: path, message: "not a subnet file (metadata format is not \"\(format)\")")
        }
        let decoder = JSONDecoder()
        guard let spaceJSON = metadata["space"]?.data(using: .utf8),
            let space = try? decoder.decode(SearchSpace.self, from: spaceJSON),
            let normJSON = metadata["normalization"]?.data(using: .utf8),
            let normalization = try? decoder.decode(Normalization.self, from: normJSON),
            let archJSON = metadata["arch"]
        else {
            throw ModelFileError(path: path, message: "subnet metadata lacks a valid space, normalization or arch")
        }
        let arch = try ArchConfig(json: archJSON, space: space)
        let tensors = try file.tensors.map {
            NamedTensor(name: $0.name, shape: $0.shape, values: try file.floats($0.name))
        }
        return (Subnet(space: space, arch: arch, tensors: tensors), normalization)
    }
}
