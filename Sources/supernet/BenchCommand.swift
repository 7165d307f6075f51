import Benchmarks
import CommandLineSupport
import Engine
import Foundation
import Supernet

func benchCommand(_ argv: [String]) throws {
    let hint = "supernet bench engine [--json] [--threads N]"
    let args = try Arguments(argv, options: ["threads", "space", "only"], flags: ["json"], hint: hint)
    guard args.positionals == ["engine"] else {
        throw CommandError.usage("unknown benchmark \(args.positionals.joined(separator: " "))", hint: hint)
    }
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
