import Foundation
import Digest
import Engine

/// One subnet of a search space: input resolution, depth per stage, kernel and expand ratio per block slot.
///
/// JSON form: `{"r":28,"d":[4,4,4],"k":[7,…12 values],"e":[6,…12 values]}`. Kernel and expand
/// entries of block slots beyond a stage's depth do not affect the subnet; the canonical form writes
/// them as 0 and the digest is taken over the canonical form, so equal subnets have equal digests.
public struct ArchConfig: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Input resolution (side of the square image the network sees).
    public var resolution: Int
    /// Active blocks per stage.
    public var depths: [Int]
    /// Depthwise kernel size per block slot (stages × maxDepth).
    public var kernels: [Int]
    /// Expand ratio per block slot (stages × maxDepth).
    public var expandRatios: [Int]

    enum CodingKeys: String, CodingKey {
        case resolution = "r", depths = "d", kernels = "k", expandRatios = "e"
    }

    /// Creates a configuration; call `validate(in:)` before using one from outside.
    public init(resolution: Int, depths: [Int], kernels: [Int], expandRatios: [Int]) {
        self.resolution = resolution
        self.depths = depths
        self.kernels = kernels
        self.expandRatios = expandRatios
    }

    /// Parses the JSON form and validates it against `space`.
    /// - Throws: `ArchError` naming the bad field and the allowed values.
    public init(json: String, space: SearchSpace) throws {
        guard let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw ArchError(
                field: "arch", message: "is not a JSON object like {\"r\":28,\"d\":[4,4,4],\"k\":[…],\"e\":[…]}")
        }
        let unknown = Set(object.keys).subtracting(["r", "d", "k", "e"])
        if let extra = unknown.sorted().first {
            throw ArchError(field: extra, message: "is not an arch field (expected r, d, k, e)")
        }
        resolution = try Self.integer(object["r"], field: "r")
        depths = try Self.integers(object["d"], field: "d")
        kernels = []
        expandRatios = []
        try validateResolutionAndDepths(in: space)
        kernels = try Self.integers(object["k"], field: "k")
        expandRatios = try Self.integers(object["e"], field: "e")
        try validate(in: space)
    }

    /// Checks every field against `space`; inactive block slots may hold 0 or any allowed value.
    /// - Throws: `ArchError` for the first bad field, naming it and the allowed values.
    public func validate(in space: SearchSpace) throws {
        try validateResolutionAndDepths(in: space)
        let slots = space.stages.count * space.maxDepth
        try checkSlots(kernels, name: "k", allowed: space.kernels, slots: slots, space: space)
        try checkSlots(expandRatios, name: "e", allowed: space.expandRatios, slots: slots, space: space)
    }

    private func validateResolutionAndDepths(in space: SearchSpace) throws {
        guard space.resolutions.contains(resolution) else {
            throw ArchError(field: "r", message: "= \(resolution); allowed: \(list(space.resolutions))")
        }
        guard depths.count == space.stages.count else {
            throw ArchError(
                field: "d", message: "has \(depths.count) entries; needs one per stage (\(space.stages.count))")
        }
        for (i, d) in depths.enumerated() where !space.depths.contains(d) {
            throw ArchError(field: "d[\(i)]", message: "= \(d); allowed: \(list(space.depths))")
        }
    }

    /// Whether block slot `index` runs in this subnet.
    public func isActive(slot index: Int, maxDepth: Int) -> Bool {
        index % maxDepth < depths[index / maxDepth]
    }

    /// The same subnet with inactive slots' kernel and expand entries set to 0.
    public func canonical(maxDepth: Int) -> ArchConfig {
        var copy = self
        for i in 0..<kernels.count where !isActive(slot: i, maxDepth: maxDepth) {
            copy.kernels[i] = 0
            copy.expandRatios[i] = 0
        }
        return copy
    }

    /// Compact JSON with keys in the order r, d, k, e (stable: used for digests and display).
    public var json: String {
        func join(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }
        return "{\"r\":\(resolution),\"d\":[\(join(depths))],\"k\":[\(join(kernels))],\"e\":[\(join(expandRatios))]}"
    }

    /// The JSON form.
    public var description: String { json }

    private func checkSlots(_ values: [Int], name: String, allowed: [Int], slots: Int, space: SearchSpace) throws {
        guard values.count == slots else {
            throw ArchError(
                field: name,
                message:
                    "has \(values.count) entries; needs \(slots) (\(space.maxDepth) per stage, inactive ones may be 0)")
        }
        for (i, v) in values.enumerated() {
            let active = isActive(slot: i, maxDepth: space.maxDepth)
            if allowed.contains(v) || (!active && v == 0) {
                continue
            }
            throw ArchError(field: "\(name)[\(i)]", message: "= \(v); allowed: \(list(allowed))")
        }
    }

    private func list(_ values: [Int]) -> String {
        values.map(String.init).joined(separator: ", ")
    }

    private static func integer(_ value: Any?, field: String) throws -> Int {
        guard let value else {
            throw ArchError(field: field, message: "is missing")
        }
        // JSON true/false also arrive as NSNumber; their type code is "c" (char).
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
            let exact = Int(exactly: number.doubleValue)
        else {
            throw ArchError(field: field, message: "must be an integer, got \(value)")
        }
        return exact
    }

    private static func integers(_ value: Any?, field: String) throws -> [Int] {
        guard let value else {
            throw ArchError(field: field, message: "is missing")
        }
        guard let array = value as? [Any] else {
            throw ArchError(field: field, message: "must be an array of integers")
        }
        return try array.enumerated().map { try integer($0.element, field: "\(field)[\($0.offset)]") }
    }
}

/// An invalid architecture: which field, and what is wrong with it.
public struct ArchError: Error, CustomStringConvertible, Equatable {
    /// The offending field, e.g. `d[1]` or `k`.
    public let field: String
    /// What is wrong, including the allowed values.
    public let message: String

    /// "invalid arch: field d[1] = 9; allowed: 2, 3, 4".
    public var description: String { "invalid arch: field \(field) \(message)" }
}

extension SearchSpace {
    /// The largest subnet: maximum resolution, depth, kernel and expand ratio everywhere.
    public var largest: ArchConfig {
        let slots = stages.count * maxDepth
        return ArchConfig(
            resolution: resolutions.max()!, depths: Array(repeating: maxDepth, count: stages.count),
            kernels: Array(repeating: kernels.max()!, count: slots),
            expandRatios: Array(repeating: expandRatios.max()!, count: slots))
    }

    /// The smallest subnet: minimum resolution, depth, kernel and expand ratio everywhere.
    public var smallest: ArchConfig {
        let slots = stages.count * maxDepth
        return ArchConfig(
            resolution: resolutions.min()!, depths: Array(repeating: depths.min()!, count: stages.count),
            kernels: Array(repeating: kernels.min()!, count: slots),
            expandRatios: Array(repeating: expandRatios.min()!, count: slots))
    }

    /// A uniformly random subnet (every choice independent), drawn from `random`.
    public func sample(_ random: inout SeededRandom) -> ArchConfig {
        let slots = stages.count * maxDepth
        return ArchConfig(
            resolution: resolutions[random.nextInt(below: resolutions.count)],
            depths: (0..<stages.count).map { _ in depths[random.nextInt(below: depths.count)] },
            kernels: (0..<slots).map { _ in kernels[random.nextInt(below: kernels.count)] },
            expandRatios: (0..<slots).map { _ in expandRatios[random.nextInt(below: expandRatios.count)] })
    }
}

extension ArchConfig {
    /// SHA-256 (hex) of the canonical JSON form: equal for configurations that describe the same subnet.
    public func digest(maxDepth: Int) -> String {
        SHA256.hexDigest(of: Array(canonical(maxDepth: maxDepth).json.utf8))
    }
}
