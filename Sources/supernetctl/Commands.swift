import Client
import CommandLineSupport
import Foundation
import Wire

func dispatch(_ name: String, _ rest: [String], _ global: GlobalOptions) throws {
    switch name {
    case "ping":
        let client = try SupernetClient(socketPath: global.socket, name: "supernetctl")
        let milliseconds = try client.ping()
        output(global, ["ok": true, "rtt_ms": milliseconds, "server_version": client.server.serverVersion]) {
            print(String(format: "pong from supernetd %@ in %.3f ms", client.server.serverVersion, milliseconds))
        }
    case "models":
        let models = try SupernetClient(socketPath: global.socket, name: "supernetctl").models()
        output(global, models.map(modelJSON)) {
            table(
                ["NAME", "SPACE", "PARAMS", "MACS (min–max)", "CALIB", "PREDICTOR", "ACC (max/min)"],
                models.map {
                    [
                        $0.name, $0.spaceName, "\($0.parameterCount)", "\($0.smallestMACs)–\($0.largestMACs)",
                        "\($0.calibrationImageCount)", $0.hasPredictor ? "yes" : "no",
                        [$0.largestAccuracy, $0.smallestAccuracy].map {
                            $0.map { String(format: "%.2f%%", $0 * 100) } ?? "-"
                        }
                        .joined(separator: " / "),
                    ]
                })
        }
    case "targets" where rest.first == "calibrate":
        guard rest.count == 2 else { throw CommandError.usage("give one target", hint: "targets calibrate NAME") }
        try SupernetClient(socketPath: global.adminSocket, name: "supernetctl").calibrate(target: rest[1])
        output(global, ["ok": true, "target": rest[1]]) { print("calibrated \(rest[1])") }
    case "targets", "strategies":
        let client = try SupernetClient(socketPath: global.socket, name: "supernetctl")
        let plugins = name == "targets" ? try client.targets() : try client.strategies()
        output(
            global,
            plugins.map {
                [
                    "name": $0.name, "file": $0.pluginFile, "version": $0.version,
                    "description": $0.summary,
                ]
            }
        ) {
            table(
                ["NAME", "VERSION", "FILE", "DESCRIPTION"],
                plugins.map {
                    [
                        $0.name, $0.version, $0.pluginFile,
                        $0.summary,
                    ]
                })
        }
    case "stats":
        let values = try SupernetClient(socketPath: global.socket, name: "supernetctl").stats()
        output(global, values) {
            table(["COUNTER", "VALUE"], values.keys.sorted().map { [$0, String(format: "%.6g", values[$0]!)] })
        }
    case "specialize":
        try specialize(rest, global)
    case "pareto":
        try pareto(rest, global)
    case "plugins":
        try plugins(rest, global)
    default:
        throw CommandError.usage("unknown command \(name)", hint: "supernetctl --help")
    }
}

func modelJSON(_ model: ModelInfo) -> [String: Any] {
    var object: [String: Any] = [
        "name": model.name, "space": model.spaceName, "path": model.filePath, "params": model.parameterCount,
        "largest_macs": model.largestMACs, "smallest_macs": model.smallestMACs,
        "calibration_images": model.calibrationImageCount, "predictor": model.hasPredictor,
    ]
    object["largest_accuracy"] = model.largestAccuracy
    object["smallest_accuracy"] = model.smallestAccuracy
    return object
}

/// Prints `json` (sorted keys) with --json, else runs `human`.
func output(_ global: GlobalOptions, _ json: Any, human: () -> Void) {
    guard global.json else {
        human()
        return
    }
    let data = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data("null".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// Prints rows under headers in aligned columns.
func table(_ headers: [String], _ rows: [[String]]) {
    let widths = headers.indices.map { column in
        ([headers[column]] + rows.map { column < $0.count ? $0[column] : "" }).map(\.count).max() ?? 0
    }
    for row in [headers] + rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}

func specialize(_ argv: [String], _ global: GlobalOptions) throws {
    let hint = "supernetctl specialize --model NAME --target NAME --macs N --out FILE"
    let args = try Arguments(
        argv,
        options: [
            "model", "target", "latency-ms", "macs", "params", "memory-kb", "strategy", "dtype", "out",
            "deadline-ms",
        ],
        flags: ["no-shuffle", "json", "no-weights"], hint: hint)
    try args.expectPositionals(0)
    var budgets: [Budget] = []
    for (flag, kind) in [
        ("latency-ms", BudgetKind.latencyMs), ("macs", .macs), ("params", .params),
        ("memory-kb", .memoryKB),
    ] {
        if let text = args.value(flag) {
            guard let value = Double(text), value.isFinite, value > 0 else {
                throw CommandError("--\(flag) must be a positive number, got \(text)", code: .dataError)
            }
            budgets.append(Budget(kind, value))
        }
    }
    guard !budgets.isEmpty else {
        throw CommandError.usage("give at least one budget (--latency-ms, --macs, --params, --memory-kb)", hint: hint)
    }
    let dtypes: [String: WeightDType] = ["f32": .f32, "f16": .f16, "int8": .int8]
    guard let dtype = dtypes[args.value("dtype") ?? "f32"] else {
        throw CommandError.usage("--dtype must be f32, f16 or int8", hint: hint)
    }
    let noWeights = args.flag("no-weights")
    let out = noWeights ? nil : try args.required("out")
    let request = Specialize(
        model: try args.required("model"), target: try args.required("target"), budgets: budgets,
        strategy: args.value("strategy") ?? "", dtype: dtype, shuffle: !args.flag("no-shuffle"),
        deadlineMs: UInt32(try args.integer("deadline-ms", default: 0, in: 0...3_600_000)), noWeights: noWeights)
    let client = try SupernetClient(socketPath: global.socket, name: "supernetctl")
    let received = try client.specialize(request)
    if let out {
        try received.write(to: out)
    }
    let header = received.header
    let arch = (try? JSONSerialization.jsonObject(with: Data(header.arch.utf8))) ?? header.arch
    var costs: [String: Any] = [
        "macs": header.costs.macs, "params": header.costs.params,
        "peak_activation_bytes": header.costs.peakActivationBytes,
    ]
    if header.costs.latencyMs.isFinite { costs["latency_ms"] = header.costs.latencyMs }
    if header.costs.energyMJ.isFinite { costs["energy_mj"] = header.costs.energyMJ }
    let json: [String: Any] = [
        "arch": arch, "predicted_accuracy": header.predictedAccuracy.isFinite ? header.predictedAccuracy : NSNull(),
        "costs": costs, "digest": header.archDigest, "strategy": header.strategy, "cached": header.fromCache,
        "evaluations": header.search.evaluations, "search_ms": header.search.wallMs,
        "compressed_bytes": received.compressedBytes, "decoded_bytes": header.decodedBytes,
        "out": out ?? NSNull(), "dtype": "\(header.dtype)",
    ]
    output(global.json || args.flag("json") ? GlobalOptions(json: true) : global, json) {
        print("arch       \(header.arch)")
        print(
            header.predictedAccuracy.isFinite
                ? String(format: "accuracy   %.2f%% (predicted)", header.predictedAccuracy * 100)
                : "accuracy   n/a (the model file has no accuracy predictor)")
        print(
            "costs      \(header.costs.macs) MACs, \(header.costs.params) params, "
                + "\(header.costs.peakActivationBytes / 1024) KB peak activations"
                + (header.costs.latencyMs.isFinite ? String(format: ", %.3f ms", header.costs.latencyMs) : ""))
        print(
            "search     \(header.strategy), \(header.search.evaluations) evaluations, "
                + String(format: "%.1f ms", header.search.wallMs) + (header.fromCache ? " (cached)" : ""))
        if let out {
            print(
                "written    \(out) (\(received.compressedBytes) bytes received, digest \(header.archDigest.prefix(16)))"
            )
        }
    }
}

func pareto(_ argv: [String], _ global: GlobalOptions) throws {
    let args = try Arguments(
        argv, options: ["model", "target", "points", "plot"], flags: ["json"],
        hint: "supernetctl pareto --model NAME --target NAME")
    let points = try SupernetClient(socketPath: global.socket, name: "supernetctl").pareto(
        model: try args.required("model"), target: try args.required("target"),
        points: try args.integer("points", default: 20, in: 1...10_000))
    if let plot = args.value("plot") {
        try paretoSVG(points, title: "\(args.value("model")!) on \(args.value("target")!)").write(
            toFile: plot, atomically: true, encoding: .utf8)
    }
    output(
        global.json || args.flag("json") ? GlobalOptions(json: true) : global,
        points.map {
            [
                "arch": $0.arch, "macs": $0.macs, "latency_ms": $0.latencyMs,
                "predicted_accuracy": $0.predictedAccuracy.isFinite ? $0.predictedAccuracy : NSNull(),
            ] as [String: Any]
        }
    ) {
        table(
            ["ACCURACY", "MACS", "LATENCY_MS", "ARCH"],
            points.map {
                [
                    $0.predictedAccuracy.isFinite ? String(format: "%.2f%%", $0.predictedAccuracy * 100) : "n/a",
                    "\($0.macs)",
                    String(format: "%.3f", $0.latencyMs),
                    $0.arch,
                ]
            })
    }
}

/// A minimal accuracy-versus-latency SVG of a Pareto front.
func paretoSVG(_ points: [ParetoPoint], title: String) -> String {
    let (w, h, m) = (640.0, 400.0, 50.0)
    let xs = points.map(\.latencyMs)
    // Without a predictor there is no accuracy to plot: MACs (millions) stand in, and the axis says so.
    let hasAccuracy = points.allSatisfy { $0.predictedAccuracy.isFinite }
    let ys = points.map { hasAccuracy ? $0.predictedAccuracy * 100 : Double($0.macs) / 1e6 }
    let yTitle = hasAccuracy ? "accuracy (%)" : "MACs (M), no predictor"
    let (x0, x1) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1e-9))
    let (y0, y1) = (ys.min() ?? 0, max(ys.max() ?? 1, (ys.min() ?? 0) + 1e-9))
    func px(_ x: Double) -> Double { m + (x - x0) / (x1 - x0) * (w - 2 * m) }
    func py(_ y: Double) -> Double { h - m - (y - y0) / (y1 - y0) * (h - 2 * m) }
    let path = zip(xs, ys).map { String(format: "%.1f,%.1f", px($0), py($1)) }.joined(separator: " ")
    let dots = zip(xs, ys).map { String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", px($0), py($1)) }
    return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" font-family="sans-serif" \
        font-size="12"><rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(m))" y="24" font-size="14">\(title): predicted accuracy vs latency</text>
        <line x1="\(m)" y1="\(h - m)" x2="\(w - m)" y2="\(h - m)" stroke="black"/>
        <line x1="\(m)" y1="\(m)" x2="\(m)" y2="\(h - m)" stroke="black"/>
        <text x="\(w / 2)" y="\(h - 12)">latency (ms) \(String(format: "%.3g–%.3g", x0, x1))</text>
        <text x="8" y="\(m - 8)">\(yTitle) \(String(format: "%.2f–%.2f", y0, y1))</text>
        <polyline fill="none" stroke="steelblue" stroke-width="2" points="\(path)"/>
        <g fill="steelblue">\(dots.joined())</g></svg>
        """
}

func plugins(_ argv: [String], _ global: GlobalOptions) throws {
    let hint = "supernetctl plugins list|load FILE|unload NAME"
    guard let action = argv.first else { throw CommandError.usage("missing plugins action", hint: hint) }
    let client = try SupernetClient(socketPath: global.adminSocket, name: "supernetctl")
    switch (action, argv.count) {
    case ("list", 1):
        let plugins = try client.plugins()
        output(
            global,
            plugins.map {
                [
                    "name": $0.name, "kind": "\($0.kind)", "version": $0.version,
                    "state": "\($0.state)", "path": $0.path,
                ]
            }
        ) {
            table(
                ["NAME", "KIND", "VERSION", "STATE", "PATH"],
                plugins.map {
                    [$0.name, "\($0.kind)", $0.version, "\($0.state)", $0.path]
                })
        }
    case ("load", 2):
        try client.loadPlugin(argv[1])
        output(global, ["ok": true, "loaded": argv[1]]) { print("loaded \(argv[1])") }
    case ("unload", 2):
        try client.unloadPlugin(argv[1])
        output(global, ["ok": true, "unloaded": argv[1]]) { print("unloaded \(argv[1])") }
    default:
        throw CommandError.usage("bad plugins command \(argv.joined(separator: " "))", hint: hint)
    }
}
