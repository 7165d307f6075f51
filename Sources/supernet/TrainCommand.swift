import CommandLineSupport
import Engine
import Foundation
import Supernet
import Training

func trainCommand(_ argv: [String]) throws {
    let hint = "supernet train --method sandwich --epochs 15 --out FILE.supernet"
    let args = try Arguments(
        argv,
        options: [
            "method", "epochs", "batch-size", "lr", "warmup-epochs", "seed", "threads", "space", "data",
            "test-data", "out", "resume", "validation", "calibration", "predictor-samples", "steps-per-epoch",
            "attentive-rule", "run-dir", "epoch-validation", "arch",
        ],
        flags: [], hint: hint)
    try args.expectPositionals(0)
    var options = TrainingOptions()
    let methodName = args.value("method") ?? options.method.rawValue
    guard let method = TrainingMethod(rawValue: methodName) else {
        throw CommandError.usage(
            "unknown method \(methodName)",
            hint: "methods: \(TrainingMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    options.method = method
    options.epochs = try args.integer("epochs", default: options.epochs, in: 1...10_000)
    options.batchSize = try args.integer("batch-size", default: options.batchSize, in: 2...4096)
    options.learningRate = Float(try args.number("lr", default: Double(options.learningRate)) { $0 > 0 }!)
    options.warmupEpochs = Float(try args.number("warmup-epochs", default: Double(options.warmupEpochs)) { $0 >= 0 }!)
    options.seed = UInt64(try args.integer("seed", default: 0))
    options.validationCount = try args.integer("validation", default: options.validationCount)
    options.calibrationCount = try args.integer("calibration", default: options.calibrationCount, in: 1...1_000_000)
    if args.value("steps-per-epoch") != nil {
        options.stepsPerEpoch = try args.integer("steps-per-epoch", default: 0, in: 1...1_000_000)
    }
    if args.value("epoch-validation") != nil {
        options.epochValidationCount = try args.integer("epoch-validation", default: 0, in: 1...1_000_000)
    }
    if let rule = args.value("attentive-rule") {
        guard let parsed = AttentiveRule(rawValue: rule) else {
            throw CommandError.usage("unknown attentive rule \(rule)", hint: "best or worst")
        }
        options.attentiveRule = parsed
    }
    Parallel.setThreadCount(try args.integer("threads", default: Parallel.threadCount, in: 1...256))

    let spaceName = args.value("space") ?? SearchSpace.fmnistMBV3.name
    guard let space = SearchSpace.builtIn[spaceName] else {
        throw CommandError.usage("unknown space \(spaceName)", hint: "known: \(SearchSpace.builtIn.keys.sorted())")
    }
    if method == .standalone {
        guard let json = args.value("arch") else {
            throw CommandError.usage(
                "--method standalone trains one architecture: give it with --arch JSON",
                hint: "supernet train --method standalone --arch '{\"r\":28,...}' --out FILE.supernet")
        }
        do {
            options.architecture = try ArchConfig(json: json, space: space)
        } catch {
            throw CommandError("\(error)", code: .dataError)
        }
    } else if args.value("arch") != nil {
        throw CommandError.usage("--arch applies only to --method standalone", hint: hint)
    }
    let dataPath = args.value("data") ?? FashionMNIST.defaultDirectory
    let data: TrainingData =
        dataPath.hasSuffix(".safetensors")
        ? .safetensors(train: dataPath, test: args.value("test-data"))
        : .fashionMNIST(directory: dataPath)
    var pipeline = TrainingPipeline(options: options, space: space, data: data, output: try args.required("out"))
    pipeline.resume = args.value("resume")
    pipeline.predictorSamples = try args.integer("predictor-samples", default: 1000)
    pipeline.runDirectory = args.value("run-dir")
    pipeline.reporter = ProgressReporter()
    printTrainingSummary(try pipeline.run())
}

func predictCommand(_ argv: [String]) throws {
    let hint = "supernet predict --model FILE (--arch JSON|--max|--min) [--json]"
    let args = try Arguments(argv, options: ["model", "arch"], flags: ["max", "min", "json"], hint: hint)
    try args.expectPositionals(0)
    let file = try loadSupernet(try args.required("model"))
    let arch = try chosenArch(args, space: file.manifest.space, hint: hint)
    guard let predictor = try file.predictor() else {
        throw CommandError(
            "\(args.value("model")!) holds no accuracy predictor (train with --predictor-samples > 0)",
            code: .dataError)
    }
    let accuracy = predictor.predict(arch)
    let costs = file.manifest.space.costs(for: arch)
    if args.flag("json") {
        try printJSON(
            [
                "predicted_accuracy": accuracy, "macs": costs.macs, "params": costs.parameters,
                "arch": arch.canonical(maxDepth: file.manifest.space.maxDepth).json,
            ] as [String: Any])
    } else {
        print(
            String(
                format: "predicted accuracy %.2f%%; %d MACs, %d params", accuracy * 100, costs.macs,
                costs.parameters))
    }
}

func fitPredictorCommand(_ argv: [String]) throws {
    let hint = "supernet fit-predictor --model FILE [--samples 1000] [--data DIR] [--threads N]"
    let args = try Arguments(
        argv, options: ["model", "samples", "data", "test-data", "threads"], flags: [], hint: hint)
    try args.expectPositionals(0)
    Parallel.setThreadCount(try args.integer("threads", default: Parallel.threadCount, in: 1...256))
    let path = try args.required("model")
    _ = try loadSupernet(path)
    let dataPath = args.value("data") ?? FashionMNIST.defaultDirectory
    let data: TrainingData =
        dataPath.hasSuffix(".safetensors")
        ? .safetensors(train: dataPath, test: args.value("test-data"))
        : .fashionMNIST(directory: dataPath)
    var job = PredictorJob(
        path: path, samples: try args.integer("samples", default: 1000, in: 10...1_000_000),
        data: data)
    job.reporter = ProgressReporter()
    let manifest = try job.run()
    printTrainingSummary(manifest)
}

/// Prints the measured accuracies and the predictor's quality of a finished model.
func printTrainingSummary(_ manifest: Manifest) {
    for measured in manifest.measured ?? [] {
        print(
            String(
                format: "%-10@ %6.2f%% test accuracy  %9d MACs  %@", measured.label as NSString,
                measured.accuracy * 100, measured.macs, measured.arch.json as NSString))
    }
    if let predictor = manifest.predictor {
        print(
            String(
                format: "predictor: RMSE %.3f points, Kendall tau %.3f on held-out subnets (%d measured)",
                predictor.rmsePoints, predictor.kendallTau, predictor.samples))
    }
}

/// `supernet plot-samples`: the accuracy-vs-MACs plot of the subnets `fit-predictor` (or `train`) measured.
func plotSamplesCommand(_ argv: [String]) throws {
    let hint = "supernet plot-samples --samples RUN/predictor-samples.jsonl --out FILE.svg [--space NAME]"
    let args = try Arguments(argv, options: ["samples", "out", "space"], flags: [], hint: hint)
    try args.expectPositionals(0)
    let spaceName = args.value("space") ?? SearchSpace.fmnistMBV3.name
    guard let space = SearchSpace.builtIn[spaceName] else {
        throw CommandError.usage("unknown space \(spaceName)", hint: "known: \(SearchSpace.builtIn.keys.sorted())")
    }
    let path = try args.required("samples")
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CommandError("cannot read \(path)", code: .noInput)
    }
    var measured = MeasuredArchitectures(archs: [], accuracies: [])
    for (number, line) in text.split(separator: "\n").enumerated() {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let json = object["arch"] as? String, let accuracy = object["val_accuracy"] as? Double
        else {
            throw CommandError("\(path):\(number + 1): expected an object with arch and val_accuracy", code: .dataError)
        }
        do {
            measured.archs.append(try ArchConfig(json: json, space: space))
        } catch {
            throw CommandError("\(path):\(number + 1): \(error)", code: .dataError)
        }
        measured.accuracies.append(accuracy)
    }
    try SampledSubnetsPlot.write(measured, space: space, to: try args.required("out"))
}
