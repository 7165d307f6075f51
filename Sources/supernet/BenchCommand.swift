import Benchmarks
import CommandLineSupport
import Engine
import Foundation
import Supernet

func benchCommand(_ argv: [String]) throws {
    let hint = "supernet bench engine|serve|train|search|targets [--json]"
    let args = try Arguments(
        argv,
        options: [
            "threads", "space", "only", "rounds", "models", "plugins", "daemon", "target",
            "soak", "model", "evaluations", "seeds",
        ],
        flags: ["json"], hint: hint)
    switch args.positionals {
    case ["engine"]: try benchEngine(args, hint: hint)
    case ["serve"]: try benchServe(args)
    case ["search"]: try benchSearch(args)
    case ["targets"]:
        let results = try TargetAccuracyBenchmark(plugins: installedPath(args, "plugins", "lib/supernetd/plugins"))
            .run()
        if args.flag("json") {
            try printJSON(results)
        } else {
            for key in results.keys.sorted() {
                print("\(key.padding(toLength: 20, withPad: " ", startingAt: 0)) \(results[key]!)")
            }
        }
    case ["train"]:
        let results = try TrainBenchmark(space: .fmnistMBV3).run()
        if args.flag("json") {
            try printJSON(results)
        } else {
            for key in results.keys.sorted() {
                print(
                    key.padding(toLength: 12, withPad: " ", startingAt: 0)
                        + String(format: " %.1f img/s", results[key]!)
                )
            }
        }
    default: throw CommandError.usage("unknown benchmark \(args.positionals.joined(separator: " "))", hint: hint)
    }
}

/// `supernet bench serve`: a daemon started here, with the models and plugins installed beside this executable
/// (`../share/supernetd/models`, `../lib/supernetd/plugins`) unless told otherwise.
func benchServe(_ args: Arguments) throws {
    var benchmark = ServeBenchmark(
        daemon: args.value("daemon").map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("supernetd").path,
        models: installedPath(args, "models", "share/supernetd/models"),
        plugins: installedPath(args, "plugins", "lib/supernetd/plugins"))
    if let target = args.value("target") {
        benchmark.target = target
    }
    benchmark.soakRequests = try args.integer("soak", default: benchmark.soakRequests, in: 0...10_000_000)
    for (name, path) in [("models", benchmark.models), ("plugins", benchmark.plugins)]
    where !FileManager.default.fileExists(atPath: path) {
        throw CommandError("no \(name) directory at \(path); give --\(name) DIR", code: .noInput)
    }
    let results = try benchmark.run()
    if args.flag("json") {
        try printJSON(results)
    } else {
        for key in results.keys.sorted() {
            print("\(key.padding(toLength: 24, withPad: " ", startingAt: 0)) \(results[key]!)")
        }
    }
}

func benchEngine(_ args: Arguments, hint: String) throws {
    let threads = try args.integer("threads", default: Parallel.threadCount, in: 1...256)
    Parallel.setThreadCount(threads)
    let spaceName = args.value("space") ?? SearchSpace.fmnistMBV3.name
    guard let space = SearchSpace.builtIn[spaceName] else {
        throw CommandError.usage("unknown space \(spaceName)", hint: hint)
    }
    var benchmark = EngineBenchmark(space: space)
    benchmark.only = args.value("only")
    benchmark.repeats = try args.integer("rounds", default: benchmark.repeats, in: 1...1000)
    let results = benchmark.run()
    if args.flag("json") {
        var object: [String: Any] = results
        object["openblas_core"] = OpenBLASCore.name
        try printJSON(object)
    } else {
        for key in results.keys.sorted() {
            print("\(key.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%.1f", results[key]!))")
        }
        print("openblas_core            \(OpenBLASCore.name)")
    }
}

/// `supernet bench search`: every strategy at an equal number of scored candidates, per target and budget.
func benchSearch(_ args: Arguments) throws {
    var benchmark = SearchBenchmark(
        model: try args.required("model"), plugins: installedPath(args, "plugins", "lib/supernetd/plugins"))
    benchmark.evaluations = try args.integer("evaluations", default: benchmark.evaluations, in: 10...1_000_000)
    benchmark.seeds = (1...UInt64(try args.integer("seeds", default: 3, in: 1...100))).map { $0 }
    if let target = args.value("target") {
        benchmark.targets = target.split(separator: ",").map(String.init)
    }
    let rows = try benchmark.run()
    if args.flag("json") {
        try printJSON(
            rows.map { row -> [String: Any] in
                [
                    "target": row.target, "budget_ms": row.budgetMs, "strategy": row.strategy,
                    "mean_predicted_accuracy": row.meanAccuracy, "predicted_accuracy": row.accuracies,
                    "evaluations": row.evaluations,
                    "mean_ms": row.milliseconds.reduce(0, +) / Double(max(row.milliseconds.count, 1)),
                ]
            })
    } else {
        print("TARGET      BUDGET_MS  STRATEGY   MEAN_ACC  EVALS  MEAN_MS")
        for row in rows {
            let columns = [
                row.target.padding(toLength: 11, withPad: " ", startingAt: 0),
                String(format: "%9.4f", row.budgetMs), row.strategy.padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%7.2f%%", row.meanAccuracy * 100), String(format: "%5d", row.evaluations.min() ?? 0),
                String(format: "%8.1f", row.milliseconds.reduce(0, +) / Double(max(row.milliseconds.count, 1))),
            ]
            print(columns.joined(separator: "  "))
        }
    }
}

/// The path given with `--OPTION` made absolute (supernetd takes absolute paths only), else `relative` under the
/// installation prefix this executable runs from (its directory's parent).
func installedPath(_ args: Arguments, _ option: String, _ relative: String) -> String {
    if let given = args.value(option) {
        return URL(fileURLWithPath: given).standardizedFileURL.path
    }
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relative).path
}
