import CommandLineSupport
import Engine
import Foundation
import SafeTensors
import Supernet
import Training

/// Prints a JSON object with sorted keys on stdout.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Loads a supernet file, turning a missing file into exit 66 and a malformed one into exit 65.
func loadSupernet(_ path: String) throws -> SupernetFile {
    guard FileManager.default.fileExists(atPath: path) else {
        throw CommandError("\(path): no such file", code: .noInput)
    }
    do {
        return try SupernetFile(path: path)
    } catch {
        throw CommandError("cannot read \(path): \(error)", code: .dataError)
    }
}

/// The subnet chosen by `--arch JSON`, `--max` or `--min` (exactly one).
func chosenArch(_ args: Arguments, space: SearchSpace, hint: String) throws -> ArchConfig {
    let choices = [args.value("arch") != nil, args.flag("max"), args.flag("min")].filter { $0 }.count
    guard choices == 1 else {
        throw CommandError.usage("give exactly one of --arch JSON, --max, --min", hint: hint)
    }
    if args.flag("max") {
        return space.largest
    }
    if args.flag("min") {
        return space.smallest
    }
    do {
        return try ArchConfig(json: args.value("arch")!, space: space)
    } catch {
        throw CommandError("\(error)", code: .dataError)
    }
}

func initCommand(_ argv: [String]) throws {
    let hint = "supernet init --space fmnist-mbv3 --out FILE"
    let args = try Arguments(argv, options: ["space", "out", "seed"], flags: [], hint: hint)
    try args.expectPositionals(0)
    let name = try args.required("space")
    guard let space = SearchSpace.builtIn[name] else {
        throw CommandError.usage("unknown space \(name)", hint: "known: \(SearchSpace.builtIn.keys.sorted())")
    }
    let seed = try args.integer("seed", default: 0)
    let network = ElasticSupernet(space: space, seed: UInt64(seed))
    let file = SupernetFile(manifest: Manifest(space: space, normalization: .fashionMNIST), network: network)
    try file.write(to: try args.required("out"))
}

func inspectCommand(_ argv: [String]) throws {
    let hint = "supernet inspect FILE [--json]"
    let args = try Arguments(argv, options: [], flags: ["json"], hint: hint)
    try args.expectPositionals(1)
    guard let path = args.positionals.first else {
        throw CommandError.usage("missing FILE", hint: hint)
    }
    let file = try loadSupernet(path)
    let summary = try inspectionSummary(file, path: path)
    if args.flag("json") {
        try printJSON(summary)
        return
    }
    let space = file.manifest.space
    let largest = space.costs(for: space.largest)
    let smallest = space.costs(for: space.smallest)
    print("\(path): supernet, space \(space.name), format version \(Manifest.formatVersion)")
    print(
        "  stages        \(space.stages.map(\.outputChannels)) channels, depths \(space.depths), "
            + "kernels \(space.kernels), expand \(space.expandRatios), resolutions \(space.resolutions)")
    print("  parameters    \(summary["supernet_parameters"]!) in the supernet")
    print("  largest       \(largest.macs) MACs, \(largest.parameters) params")
    print("  smallest      \(smallest.macs) MACs, \(smallest.parameters) params")
    print("  calibration   \(file.calibrationCount) images")
    if let training = file.manifest.training {
        print("  trained       \(training.method), \(training.epochs) epochs, \(Int(training.seconds)) s")
    }
    for measured in file.manifest.measured ?? [] {
        print(
            "  \(measured.label.padding(toLength: 13, withPad: " ", startingAt: 0)) "
                + String(format: "%.2f%% test accuracy, %d MACs", measured.accuracy * 100, measured.macs))
    }
    if let predictor = file.manifest.predictor {
        print(
            String(
                format: "  predictor     RMSE %.3f points, Kendall tau %.3f (%d subnets)",
                predictor.rmsePoints, predictor.kendallTau, predictor.samples))
    }
}

private func inspectionSummary(_ file: SupernetFile, path: String) throws -> [String: Any] {
    let encoder = JSONEncoder()
    let manifest = try JSONSerialization.jsonObject(with: try encoder.encode(file.manifest))
    guard var summary = manifest as? [String: Any] else {
        throw CommandError("manifest of \(path) does not encode as an object")
    }
    let space = file.manifest.space
    summary["path"] = path
    summary["format"] = Manifest.format
    summary["format_version"] = Manifest.formatVersion
    summary["supernet_parameters"] = file.network.parameters.reduce(0) { $0 + $1.count }
    for (label, arch) in [("largest", space.largest), ("smallest", space.smallest)] {
        let costs = space.costs(for: arch)
        summary[label] =
            [
                "arch": arch.json, "macs": costs.macs, "params": costs.parameters,
                "peak_activation_bytes": costs.peakActivationBytes,
            ] as [String: Any]
    }
    for measured in file.manifest.measured ?? [] where measured.label == "largest" || measured.label == "smallest" {
        summary["\(measured.label)_accuracy"] = measured.accuracy
    }
    return summary
}

func extractCommand(_ argv: [String]) throws {
    let hint = "supernet extract --model FILE (--arch JSON|--max|--min) --out FILE.safetensors"
    let args = try Arguments(
        argv, options: ["model", "arch", "out"], flags: ["max", "min", "no-recalibrate"],
        hint: hint)
    try args.expectPositionals(0)
    let out = try args.required("out")
    let file = try loadSupernet(try args.required("model"))
    let arch = try chosenArch(args, space: file.manifest.space, hint: hint)
    let subnet = try file.subnet(arch, recalibrate: !args.flag("no-recalibrate"))
    try subnet.write(to: out, normalization: file.manifest.normalization)
}

func evalCommand(_ argv: [String]) throws {
    let hint = "supernet eval --model FILE (--arch JSON|--max|--min) [--json]"
    let args = try Arguments(
        argv, options: ["model", "arch", "data"], flags: ["max", "min", "json", "no-recalibrate"],
        hint: hint)
    try args.expectPositionals(0)
    let file = try loadSupernet(try args.required("model"))
    let space = file.manifest.space
    let arch = try chosenArch(args, space: space, hint: hint)
    let directory = args.value("data") ?? FashionMNIST.defaultDirectory
    let test = try FashionMNIST.load(directory: directory, split: .test)
    var fallback: LabelledImages?
    if file.calibrationCount == 0 && !args.flag("no-recalibrate") {
        let train = try FashionMNIST.load(directory: directory, split: .train)
        fallback = train.labelled(first: Subnet.defaultCalibrationCount)
    }
    let subnet = try file.subnet(arch, recalibrate: !args.flag("no-recalibrate"), fallbackCalibration: fallback)
    let accuracy = try SubnetNetwork(subnet).accuracy(on: test.labelled(), normalization: file.manifest.normalization)
    let costs = space.costs(for: arch)
    if args.flag("json") {
        try printJSON(
            [
                "accuracy": accuracy, "macs": costs.macs, "params": costs.parameters,
                "peak_activation_bytes": costs.peakActivationBytes,
                "arch": arch.canonical(maxDepth: space.maxDepth).json,
                "test_images": test.count,
            ] as [String: Any])
    } else {
        print(
            String(
                format: "accuracy %.2f%% on %d test images; %d MACs, %d params", accuracy * 100, test.count,
                costs.macs, costs.parameters))
    }
}
