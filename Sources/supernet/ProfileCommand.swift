import CommandLineSupport
import LatencyProfiling
import LatencyTable

/// `supernet profile --out DEVICE.json`: measures every layer shape of fmnist-mbv3 on this machine with the
/// engine at batch 1 and writes the table the `lut` target reads (copy it to the serving machine).
func profileCommand(_ argv: [String]) throws {
    let hint = "supernet profile --out DEVICE.json [--device NAME] [--threads N] [--samples N]"
    let args = try Arguments(argv, options: ["out", "device", "threads", "samples"], flags: [], hint: hint)
    try args.expectPositionals(0)
    let output = try args.required("out")
    if args.value("threads") != nil {
        LatencyProfiler.setEngineThreads(try args.integer("threads", default: 1, in: 1...256))
    }
    var settings = ProfilerSettings()
    settings.samples = try args.integer("samples", default: settings.samples, in: 1...1000)
    let profiler = LatencyProfiler(settings: settings)
    let table = profiler.profile(device: args.value("device")) { done, total in
        if done % 50 == 0 || done == total {
            printError("measured \(done)/\(total) layer shapes")
        }
    }
    do throws(JSONProblem) {
        try TableFiles.writeAtomically(table.jsonText(), to: output)
    } catch {
        throw CommandError("cannot write \(output): \(error.message)")
    }
    print("wrote \(output): \(table.entries.count) layer shapes")
}
