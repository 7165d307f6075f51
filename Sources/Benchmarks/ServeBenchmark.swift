import Client
import Foundation
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Measures a real supernetd (`supernet bench serve`): it starts the daemon on a temporary socket with the given
/// models and plugins, drives it with client threads, and stops it.
public struct ServeBenchmark {
    /// The supernetd executable.
    public var daemon: String
    /// Directory with `*.supernet` files.
    public var models: String
    /// Directory with the plugins.
    public var plugins: String
    /// Target used for every request.
    public var target = "analytic"
    /// Requests per latency figure.
    public var samples = 200
    /// Warm requests whose effect on the daemon's RSS is measured.
    public var soakRequests = 10_000

    /// Creates a benchmark.
    public init(daemon: String, models: String, plugins: String) {
        self.daemon = daemon
        self.models = models
        self.plugins = plugins
    }

    /// Runs every measurement; figures by name (latencies in ms, rates per second, sizes in MB).
    public func run() throws -> [String: Any] {
        let root = NSTemporaryDirectory() + "supernet-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let socket = root + "/client.sock"
        let process = try startDaemon(root: root, socket: socket)
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }

        let client = try SupernetClient(socketPath: socket, name: "bench")
        guard let model = try client.models().first else {
            throw BenchmarkError("no model in \(models)")
        }
        var results: [String: Any] = ["model": model.name, "target": target]
        let smallest = request(model.name, macs: Double(model.smallestMACs))
        let largest = request(model.name, macs: Double(model.largestMACs))

        let (frontSeconds, lookups) = try frontLatencies(client, model: model)
        results["pareto_ready_s"] = frontSeconds
        results["front_lookup_p50_ms"] = percentile(lookups, 0.5)
        results["front_lookup_p99_ms"] = percentile(lookups, 0.99)
        // The other targets' archives build, and the archives' answers are recalibrated, in the background; let
        // that finish so it does not slow what follows.
        let idleStart = monotonic()
        while monotonic() - idleStart < 900 {
            let stats = try client.stats()
            if stats["pareto_archives_building", default: 0] == 0 && stats["prewarm_pending", default: 0] == 0 {
                break
            }
            usleep(200_000)
        }
        results["prewarm_s"] = monotonic() - idleStart + frontSeconds

        // Cold: budgets never asked before. With the default strategy the daemon answers from its archive and
        // the statistics prepared for it; naming the strategy makes it search and recalibrate there and then.
        let cold = try coldLatencies(client, model: model, strategy: "")
        results["cold_p50_ms"] = percentile(cold, 0.5)
        results["cold_p99_ms"] = percentile(cold, 0.99)
        let searched = try coldLatencies(client, model: model, strategy: "evolution")
        results["cold_search_p50_ms"] = percentile(searched, 0.5)
        results["cold_search_p99_ms"] = percentile(searched, 0.99)
        _ = try client.specialize(smallest)
        let warm = try (0..<samples).map { _ in try timed { _ = try client.specializeWithoutDecoding(smallest) } }
        results["warm_p50_ms"] = percentile(warm, 0.5)
        results["warm_p99_ms"] = percentile(warm, 0.99)
        let decoded = try (0..<max(20, samples / 4)).map { _ in try timed { _ = try client.specialize(smallest) } }
        results["warm_decoded_p50_ms"] = percentile(decoded, 0.5)

        results["rps_1_client"] = try throughput(socket: socket, clients: 1, request: smallest, seconds: 2)
        results["rps_32_clients"] = try throughput(socket: socket, clients: 32, request: smallest, seconds: 3)
        let (stream, limit) = try streamAndSocketRates(client, request: largest)
        results["stream_mb_per_s"] = stream
        results["socket_limit_mb_per_s"] = limit
        results["compression"] = try compressionRatios(client, model: model.name, macs: Double(model.largestMACs))

        let before = residentMegabytes(process.processIdentifier)
        for _ in 0..<soakRequests {
            _ = try client.specializeWithoutDecoding(smallest)
        }
        let after = residentMegabytes(process.processIdentifier)
        results["rss_before_mb"] = before
        results["rss_after_mb"] = after
        results["rss_growth_mb"] = after - before
        results["soak_requests"] = soakRequests
        return results
    }

    private func request(
        _ model: String, macs: Double, dtype: WeightDType = .f32, shuffle: Bool = false, strategy: String = "",
        noWeights: Bool = false
    )
        -> Specialize
    {
        Specialize(
            model: model, target: target, budgets: [Budget(.macs, macs)], strategy: strategy, dtype: dtype,
            shuffle: shuffle, deadlineMs: 0, noWeights: noWeights)
    }

    /// Waits (up to 5 minutes) until the daemon answers default-strategy requests from its Pareto archive for the
    /// model and target, then times search-only requests for distinct budgets, each answered by lookup. Returns
    /// the seconds waited and the latencies.
    private func frontLatencies(_ client: SupernetClient, model: ModelInfo) throws -> (Double, [Double]) {
        let low = Double(model.smallestMACs)
        let high = Double(model.largestMACs)
        let start = monotonic()
        var probe = 0.0
        while true {
            probe += 1
            let header = try client.specialize(request(model.name, macs: high - probe, noWeights: true)).header
            if header.strategy.hasSuffix("(pareto front)") { break }
            guard monotonic() - start < 300 else {
                throw BenchmarkError("the daemon's Pareto archive for \(target) was not ready within 5 minutes")
            }
            usleep(200_000)
        }
        let waited = monotonic() - start
        let lookups = try (0..<samples).map { i in
            let macs = (low + (high - low) * Double(i) / Double(samples)).rounded() + 0.5
            return try timed { _ = try client.specialize(request(model.name, macs: macs, noWeights: true)) }
        }
        return (waited, lookups)
    }

    /// The plugins the benchmark needs (its target and the default strategy) copied into a directory of their
    /// own, so that the daemon does not spend the run building archives for targets nobody asks for; the whole
    /// plugin directory when they are not there under their usual file names.
    private func pluginDirectory(root: String) throws -> String {
        let files = ["libtarget-\(target).so", "libstrategy-evolution.so"]
        let manager = FileManager.default
        guard files.allSatisfy({ manager.fileExists(atPath: plugins + "/" + $0) }) else { return plugins }
        let directory = root + "/plugins"
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        for file in files {
            try manager.copyItem(atPath: plugins + "/" + file, toPath: directory + "/" + file)
            try manager.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory + "/" + file)
        }
        return directory
    }

    private func startDaemon(root: String, socket: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: daemon)
        process.arguments = [
            "--socket", socket, "--admin-socket", root + "/admin.sock", "--models", models,
            "--plugins", try pluginDirectory(root: root), "--state-dir", root + "/state", "--max-connections", "128",
            "--max-inflight-per-connection", "8",
        ]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: socket) {
            usleep(50_000)
        }
        guard FileManager.default.fileExists(atPath: socket) else {
            throw BenchmarkError("supernetd did not start (\(daemon))")
        }
        return process
    }

    /// Distinct budgets never asked before (each call shifts them), so that no request's answer is cached:
    /// with a strategy named every request searches, extracts, recalibrates and encodes.
    private func coldLatencies(_ client: SupernetClient, model: ModelInfo, strategy: String) throws -> [Double] {
        let low = Double(model.smallestMACs) * 1.2
        let high = Double(model.largestMACs)
        let shift = strategy.isEmpty ? 0.25 : 0.75
        return try (0..<20).map { i in
            let macs = (low + (high - low) * (Double(i) + shift) / 20).rounded()
            return try timed {
                _ = try client.specializeWithoutDecoding(request(model.name, macs: macs, strategy: strategy))
            }
        }
    }

    private func throughput(socket: String, clients: Int, request: Specialize, seconds: Double) throws -> Double {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: clients)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let failures = UnsafeMutableBufferPointer<Int>.allocate(capacity: clients)
        failures.initialize(repeating: 0)
        defer { failures.deallocate() }
        let shared = (counts: UncheckedBox(counts), failures: UncheckedBox(failures))
        let start = monotonic()
        DispatchQueue.concurrentPerform(iterations: clients) { i in
            guard let client = try? SupernetClient(socketPath: socket, name: "bench-\(i)") else {
                shared.failures.value[i] += 1
                return
            }
            while monotonic() - start < seconds {
                if (try? client.specializeWithoutDecoding(request)) != nil {
                    shared.counts.value[i] += 1
                } else {
                    shared.failures.value[i] += 1
                }
            }
        }
        let elapsed = monotonic() - start
        guard failures.reduce(0, +) == 0 else {
            throw BenchmarkError("\(failures.reduce(0, +)) requests failed with \(clients) clients")
        }
        return Double(counts.reduce(0, +)) / elapsed
    }

    /// Compressed megabytes per second received for the largest subnet (warm), reading frames without decoding.
    /// The median of five half-second windows of back-to-back requests.
    /// The largest subnet's received bytes/s and a trivial sender's and receiver's on a Unix socket pair (the
    /// limit), in alternating rounds (0.5 s of replies, then 512 MiB through the pair, five times): the two are
    /// compared, so they are measured under the same conditions, whatever else the machine does meanwhile (seen:
    /// another daemon's background work cut the stream to under half while the limit, measured after it, did
    /// not move). Medians of the rounds, MB/s.
    private func streamAndSocketRates(_ client: SupernetClient, request: Specialize) throws -> (Double, Double) {
        _ = try client.specializeWithoutDecoding(request)
        var streams: [Double] = []
        var limits: [Double] = []
        for _ in 0..<5 {
            var bytes = 0
            let start = monotonic()
            while monotonic() - start < 0.5 {
                bytes += try client.specializeWithoutDecoding(request).bytes
            }
            streams.append(Double(bytes) / (monotonic() - start) / 1e6)
            limits.append(try socketRate(bytes: 512 << 20))
        }
        return (median(streams), median(limits))
    }

    /// A trivial sender and receiver on a Unix socket pair, 1 MiB writes, `total` bytes: MB/s.
    private func socketRate(bytes total: Int) throws -> Double {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw BenchmarkError("socketpair failed")
        }
        defer { close(fds[0]); close(fds[1]) }
        let sender = fds[0]
        let thread = Thread {
            let chunk = [UInt8](repeating: 7, count: 1 << 20)
            var sent = 0
            while sent < total {
                let n = chunk.withUnsafeBytes { write(sender, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                sent += n
            }
        }
        let start = monotonic()
        thread.start()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var received = 0
        while received < total {
            let n = buffer.withUnsafeMutableBytes { read(fds[1], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            received += n
        }
        return Double(received) / (monotonic() - start) / 1e6
    }

    private func compressionRatios(_ client: SupernetClient, model: String, macs: Double) throws -> [String: Double] {
        var ratios: [String: Double] = [:]
        for dtype in [WeightDType.f32, .f16, .int8] {
            for shuffle in [false, true] where !(dtype == .int8 && shuffle) {
                let header = try client.specializeWithoutDecoding(
                    request(
                        model, macs: macs, dtype: dtype,
                        shuffle: shuffle)
                ).header
                let name = "\(dtype)" + (shuffle ? "+shuffle" : "")
                let f32Bytes = Double(
                    header.tensors.reduce(0) { total, tensor in
                        total + tensor.shape.reduce(1) { $0 * Int($1) } * 4
                    })
                ratios[name] = f32Bytes / Double(header.compressedBytes)
            }
        }
        return ratios
    }

    private func timed(_ body: () throws -> Void) throws -> Double {
        let start = monotonic()
        try body()
        return (monotonic() - start) * 1000
    }

    private func residentMegabytes(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Double(fields[1]) ?? 0) * Double(sysconf(Int32(_SC_PAGESIZE))) / 1e6 : 0
    }
}

/// A benchmark could not run.
public struct BenchmarkError: Error, CustomStringConvertible {
    /// Why.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Hands a pointer to concurrent workers that write disjoint elements.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T

    init(_ value: T) {
        self.value = value
    }
}

/// The q-quantile (nearest rank) of `values`.
func percentile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[
        min(
            sorted.count - 1,
            Int((Double(sorted.count) * q).rounded(.up)) - 1 < 0
                ? 0
                : Int((Double(sorted.count) * q).rounded(.up)) - 1)]
}

func monotonic() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
