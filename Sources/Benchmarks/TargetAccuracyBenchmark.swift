import Daemon
import Engine
import Foundation
import Supernet
import SystemdSupport

/// How well the `host-cpu` target predicts this machine (`supernet bench targets`): the time to build its
/// per-layer table from scratch, and over random subnets the relative error of its predicted latency against the
/// engine running the whole extracted subnet at batch 1 (median of repeated runs).
public struct TargetAccuracyBenchmark {
    /// Plugin directory holding `libtarget-host-cpu.so`.
    public var plugins: String
    /// Random subnets compared.
    public var subnets = 50
    /// Timed runs per subnet (the median is kept).
    public var runs = 31

    /// Creates a benchmark.
    public init(plugins: String) {
        self.plugins = plugins
    }

    /// Figures by name: `table_build_s`, `median_abs_error`, `worst_abs_error`, `mean_signed_error`, `subnets`.
    public func run() throws -> [String: Double] {
        var configuration = DaemonConfiguration()
        configuration.plugins = [plugins]
        configuration.stateDirectory = NSTemporaryDirectory() + "supernet-target-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: configuration.stateDirectory) }
        let (catalog, _) = try PluginCatalogHost.make(configuration)
        guard let target = catalog.target("host-cpu") else {
            throw BenchmarkError("no host-cpu target in \(plugins)")
        }
        let space = SearchSpace.fmnistMBV3
        let started = Date()
        try catalog.calibrate(target: "host-cpu")
        let buildSeconds = Date().timeIntervalSince(started)

        let supernet = ElasticSupernet(space: space, seed: 9)
        var random = SeededRandom(seed: 2026)
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let image = FloatBuffer(count: pixels)
        for i in 0..<pixels {
            image[i] = random.nextGaussian()
        }
        var errors: [Double] = []
        for _ in 0..<subnets {
            let arch = space.sample(&random)
            let predicted = try target.cost(of: space.layers(for: arch)).latencyMs
            let network = try SubnetNetwork(supernet.extract(arch))
            let workspace = InferenceWorkspace()
            var times: [Double] = []
            for run in 0...runs {
                let t0 = now()
                withExtendedLifetime(workspace) { _ = network.forward(image.pointer, batch: 1, workspace: workspace) }
                if run > 0 { times.append((now() - t0) * 1000) }
            }
            let measured = median(times)
            errors.append((predicted - measured) / measured)
        }
        return [
            "table_build_s": buildSeconds, "median_abs_error": median(errors.map(abs)),
            "worst_abs_error": errors.map(abs).max() ?? .nan,
            "mean_signed_error": errors.reduce(0, +) / Double(max(errors.count, 1)), "subnets": Double(subnets),
        ]
    }
}
