import Benchmarks
import CommandLineSupport
import Engine
import Foundation
import Supernet

func benchCommand(_ argv: [String]) throws {
    let hint = "supernet bench engine|serve|train [--json]"
    let args = try Arguments(
        argv,
        options: [
            "threads", "space", "only", "models", "plugins", "daemon", "target",
            "soak",
        ],
        flags: ["json"], hint: hint)
    switch args.positionals {
    case ["engine"]: try benchEngine(args, hint: hint)
    case ["serve"]: try benchServe(args)
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
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let bin = executable.deletingLastPathComponent()
    let prefix = bin.deletingLastPathComponent()
    var benchmark = ServeBenchmark(
        daemon: args.value("daemon") ?? bin.appendingPathComponent("supernetd").path,
        models: args.value("models") ?? prefix.appendingPathComponent("share/supernetd/models").path,
        plugins: args.value("plugins") ?? prefix.appendingPathComponent("lib/supernetd/plugins").path)
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
    let results = benchmark.run()
    if args.flag("json") {
        try printJSON(results)
    } else {
        for key in results.keys.sorted() {
            print("\(key.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%.1f", results[key]!))")
        }
    }
}
