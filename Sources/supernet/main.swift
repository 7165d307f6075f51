import CommandLineSupport
import Engine

// Before anything else: OpenBLAS picks its kernels while loading (see OpenBLASCore).
OpenBLASCore.ensureHaswellKernels()

let usage = """
    usage: supernet COMMAND [options]
      init     --space NAME --out FILE [--seed N]         write a randomly initialized supernet
      inspect  FILE [--json]                              summarize a .supernet file
      extract  --model FILE (--arch JSON|--max|--min) --out FILE [--no-recalibrate]
      eval     --model FILE (--arch JSON|--max|--min) [--json] [--no-recalibrate] [--data DIR]
      train    --method progressive|sandwich|attentive|slimmable|uniform --out FILE [--epochs N]
               [--batch-size N] [--lr X] [--seed N] [--threads N] [--data DIR|FILE.safetensors] [--resume CKPT]
      train    --method standalone --arch JSON --out FILE  one architecture alone (the baseline)
      fit-predictor --model FILE [--samples N]           (re)fit the accuracy predictor, measure test accuracy
      plot-samples --samples RUN/predictor-samples.jsonl --out FILE.svg   accuracy vs MACs of measured subnets
      predict  --model FILE (--arch JSON|--max|--min) [--json]
      profile  --out DEVICE.json [--device NAME]           per-layer latency table for the lut target
      bench    engine|serve|train|search|targets [--json]
    """

let commands: [String: ([String]) throws -> Void] = [
    "init": initCommand,
    "inspect": inspectCommand,
    "extract": extractCommand,
    "eval": evalCommand,
    "bench": benchCommand,
    "train": trainCommand,
    "predict": predictCommand,
    "fit-predictor": fitPredictorCommand,
    "profile": profileCommand,
    "plot-samples": plotSamplesCommand,
]

runCommand("supernet") {
    let arguments = Array(CommandLine.arguments.dropFirst())
    guard let name = arguments.first, name != "--help", name != "-h", name != "help" else {
        print(usage)
        return
    }
    guard let command = commands[name] else {
        throw CommandError.usage(
            "unknown command \(name)", hint: "commands: \(commands.keys.sorted().joined(separator: ", "))")
    }
    try command(Array(arguments.dropFirst()))
}
