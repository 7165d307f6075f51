import Foundation
import Supernet
import Synchronization

/// A supernet the daemon serves: its file, network, predictor and calibration images.
///
/// Immutable after loading; shared between request threads. The weights were copied out of the mmapped file
/// into the network, so a later reload that replaces the file does not disturb requests that hold this value.
public final class LoadedModel: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the network is only read (extraction and
    // recalibration read weights; they write only their own outputs).
    /// Name clients use: the file name without `.supernet`.
    public let name: String
    /// Where it was loaded from.
    public let path: String
    /// The file's content.
    public let file: SupernetFile
    /// The accuracy predictor (nil when the file has none: searches then use a MACs-based proxy).
    public let predictor: AccuracyPredictor?
    /// Bumped on every reload that replaced this model, so caches keyed by it never mix versions.
    public let generation: Int
    /// Serializes extraction from the shared network (its kernel-transform scratch is per unit).
    let extractionLock = Mutex(())

    init(name: String, path: String, file: SupernetFile, generation: Int) throws {
        self.name = name
        self.path = path
        self.file = file
        predictor = try file.predictor()
        self.generation = generation
    }

    /// The space.
    public var space: SearchSpace { file.manifest.space }

    /// Extracts `arch` and recalibrates it on the first `calibrationLimit` stored images (all when 0) exactly
    /// as `supernet extract` does: the same bytes for the same count.
    func subnet(_ arch: ArchConfig, calibrationLimit: Int) throws -> Subnet {
        let extracted = extractionLock.withLock { _ in file.network.extract(arch) }
        let count = calibrationLimit > 0 ? min(calibrationLimit, file.calibrationCount) : file.calibrationCount
        guard count > 0 else {
            return extracted
        }
        return try extracted.recalibrated(
            images: file.calibrationImages, count: count, normalization: file.manifest.normalization)
    }

    /// Extracts `arch` and puts in the BatchNorm running statistics of an earlier recalibration of the same arch
    /// (`statistics`, by tensor name): the same bytes as `subnet(_:calibrationLimit:)` without the forward passes.
    func subnet(_ arch: ArchConfig, statistics: [String: [Float]]) -> Subnet {
        var subnet = extractionLock.withLock { _ in file.network.extract(arch) }
        for index in subnet.tensors.indices {
            if let values = statistics[subnet.tensors[index].name] {
                subnet.tensors[index].values = values
            }
        }
        return subnet
    }
}

/// Why a model file was not loaded.
public struct ModelLoadFailure: Sendable, CustomStringConvertible {
    /// The file.
    public let path: String
    /// The reason.
    public let reason: String

    /// "path: reason".
    public var description: String { "\(path): \(reason)" }
}

/// The models the daemon serves, loaded from one directory; `reload()` rescans it.
///
/// A file that fails to load is reported and skipped; on reload, a model whose new file is bad keeps its
/// previous version. Thread-safe.
public final class ModelStore: Sendable {
    private struct State {
        var models: [String: LoadedModel] = [:]
        var fingerprints: [String: String] = [:]
        var generation = 0
    }

    /// The directory scanned for `*.supernet`.
    public let directory: String
    private let state = Mutex(State())

    /// Creates an empty store for `directory` (call `reload()` to load).
    public init(directory: String) {
        self.directory = directory
    }

    /// The model called `name`.
    public func model(_ name: String) -> LoadedModel? {
        state.withLock { $0.models[name] }
    }

    /// All models, by name.
    public var all: [LoadedModel] {
        state.withLock { $0.models.values.sorted { $0.name < $1.name } }
    }

    /// Rescans the directory: loads new and changed files, drops models whose file is gone, keeps the previous
    /// version of a model whose new file fails. Returns the failures.
    @discardableResult
    public func reload() -> [ModelLoadFailure] {
        var failures: [ModelLoadFailure] = []
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".supernet") }.sorted()
        } catch {
            return [ModelLoadFailure(path: directory, reason: "cannot list the models directory: \(error)")]
        }
        var present: Set<String> = []
        for file in names {
            let path = (directory as NSString).appendingPathComponent(file)
            let name = String(file.dropLast(".supernet".count))
            present.insert(name)
            let fingerprint = Self.fingerprint(path)
            if state.withLock({ $0.fingerprints[name] }) == fingerprint {
                continue
            }
            do {
                let generation = state.withLock { s -> Int in
                    s.generation += 1
                    return s.generation
                }
                let model = try LoadedModel(
                    name: name, path: path, file: try SupernetFile(path: path),
                    generation: generation)
                state.withLock {
                    $0.models[name] = model
                    $0.fingerprints[name] = fingerprint
                }
            } catch {
                failures.append(ModelLoadFailure(path: path, reason: "\(error)"))
            }
        }
        state.withLock { s in
            for name in s.models.keys where !present.contains(name) {
                s.models.removeValue(forKey: name)
                s.fingerprints.removeValue(forKey: name)
            }
        }
        return failures
    }

    /// Size, modification time and inode: a changed file gets a new fingerprint.
    private static func fingerprint(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "" }
        return "\(info.st_size)-\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)-\(info.st_ino)"
    }
}
