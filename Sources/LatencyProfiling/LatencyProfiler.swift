// Measures layer shapes with the engine and writes the latency table of this machine.
import Engine
import LatencyTable

#if canImport(Glibc)
import Glibc
#endif

/// How carefully the profiler measures.
public struct ProfilerSettings: Hashable, Sendable {
    /// Timed samples per layer; the latency is their median.
    public var samples = 15
    /// Each sample repeats the layer until it lasts at least this long (beats the clock's resolution), ms.
    public var minimumSampleMilliseconds = 0.25
    /// Untimed runs before the samples, at least this long (caches, pages and worker threads warmed up), ms.
    public var warmupMilliseconds = 2.0
    /// Whole random subnets run to measure the per-inference overhead.
    public var overheadNetworks = 12
    /// Seeds the random weights and the overhead subnets.
    public var seed: UInt64 = 1

    /// The defaults: 15 samples of at least 0.25 ms after 2 ms of warm-up, 12 overhead subnets.
    public init() {}
}

/// A layer shape the profiler will not measure, saying why.
public struct ProfilingProblem: Error, CustomStringConvertible {
    /// What is wrong.
    public let message: String

    /// The message.
    public var description: String { message }
}

/// Measures the batch-1 latency of layer shapes as the engine runs them and builds latency tables.
///
/// Method: a layer is its engine calls (see `LayerKernel`) on buffers of its own with random weights; it is run
/// untimed for `warmupMilliseconds`, then timed in `samples` samples, each repeating it enough times to last
/// `minimumSampleMilliseconds`; its latency is the median sample divided by the repeats. The kernels use the
/// engine's thread count in force (`Parallel.threadCount`, by default the active processors), the same one the
/// daemon's inference uses; tables record it under `threads`. The per-inference overhead is what whole passes
/// take beyond their layers: the median, over `overheadNetworks` random subnets, of the measured pass (timed as
/// a layer is) minus the sum of its layers' table latencies. It covers the resize of the input, residual
/// additions and the hand-over between layers.
/// TODO: the overhead is one number for every subnet; the resize (resolutions other than the image side) and
/// the residual additions (deeper stages) make it vary by a few microseconds between subnets.
public struct LatencyProfiler: Sendable {
    /// The space whose shapes `profile` measures.
    public var space: ProfiledSpace
    /// How carefully.
    public var settings: ProfilerSettings

    /// Largest buffer, in floats, a shape may need to be measured (64 MiB).
    public static let maximumFloats = 16 << 20
    /// Most multiply-accumulates a shape may have to be measured.
    public static let maximumMACs = 4e9

    /// Creates a profiler.
    public init(space: ProfiledSpace = .fmnistMBV3, settings: ProfilerSettings = ProfilerSettings()) {
        self.space = space
        self.settings = settings
    }

    /// The engine's thread count, which the measurements use.
    public static var engineThreads: Int { Parallel.threadCount }

    /// Sets the engine's thread count for this process (affects every engine user in it).
    public static func setEngineThreads(_ count: Int) {
        Parallel.setThreadCount(count)
    }

    /// Throws when `key` is malformed or too large to measure here (see `maximumFloats`, `maximumMACs`).
    public static func checkMeasurable(_ key: LayerKey) throws(ProfilingProblem) {
        let canonical: LayerKey
        do throws(LayerShapeProblem) {
            canonical = try key.validated()
        } catch {
            throw ProfilingProblem(message: error.message)
        }
        // In doubles: the fields come from 32-bit ABI values, whose products overflow integers.
        let inSide = Double(canonical.size)
        let outSide = Double(canonical.outputSize)
        let window = Double(canonical.kernel) * Double(canonical.kernel)
        let inputs = Double(canonical.inputChannels)
        let floats = [
            inSide * inSide * inputs, outSide * outSide * Double(canonical.outputChannels),
            canonical.op == .conv ? outSide * outSide * inputs * window : 0,
            inputs * Double(canonical.outputChannels) * window,
        ]
        guard floats.allSatisfy({ $0 <= Double(maximumFloats) }), canonical.macs <= maximumMACs else {
            throw ProfilingProblem(
                message: "\(key): too large to measure (buffers over \(maximumFloats) floats or over "
                    + "\(Int(maximumMACs / 1e9)) GMACs)")
        }
    }

    /// The median batch-1 latency of `key` in milliseconds; `key` must pass `checkMeasurable`.
    public func measure(_ key: LayerKey) -> Double {
        // Weights depend on the seed and the shape only (not on Swift's per-process hash seed).
        let fields = [key.inputChannels, key.outputChannels, key.kernel, key.stride, key.size, key.hidden]
        let shapeSeed = fields.reduce(UInt64(key.op.code)) { $0 &* 1_000_003 &+ UInt64(truncatingIfNeeded: $1) }
        var generator = SeededGenerator(seed: settings.seed ^ shapeSeed)
        let kernel = LayerKernel(key, generator: &generator)
        let input = LayerKernel.uniform(kernel.inputCount, fanIn: 3, &generator)
        let output = FloatBuffer(count: kernel.outputCount)
        // Squeeze-excite scales in place in a network; here it writes a second buffer so repeated runs do not
        // shrink the input towards subnormal numbers.
        return medianMilliseconds { kernel.run(input.pointer, output.pointer) }
    }

    /// The median latency of one whole pass of `arch` with weights from `seed`, in milliseconds.
    public func measurePass(_ arch: ProfiledArch, seed: UInt64) -> Double {
        let runner = NetworkRunner(space: space, arch: arch, seed: seed)
        return medianMilliseconds { runner.run() }
    }

    /// The per-inference overhead: the median over `settings.overheadNetworks` random subnets of the measured
    /// pass minus the sum of its layers' latencies in `latencies` (which must hold every shape of the space).
    public func measureOverhead(latencies: [LayerKey: Double]) -> Double {
        var generator = SeededGenerator(seed: settings.seed &+ 0x5EED)
        var differences: [Double] = []
        for index in 0..<max(settings.overheadNetworks, 1) {
            let arch = space.randomArch(using: &generator)
            let layers = space.layers(for: arch).map { latencies[$0] ?? measure($0) }
            differences.append(measurePass(arch, seed: settings.seed &+ UInt64(index)) - layers.reduce(0, +))
        }
        return Self.median(differences)
    }

    /// Predicted and measured pass latencies of `count` random subnets drawn from `seed`: the table's sum plus its
    /// overhead against `measurePass` (a check of a table on this machine).
    public func check(
        _ table: LatencyTableDocument, count: Int, seed: UInt64
    ) -> [(arch: ProfiledArch, predicted: Double, measured: Double)] {
        let latencies = table.latencies
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            let arch = space.randomArch(using: &generator)
            let layers = space.layers(for: arch).map { latencies[$0] ?? measure($0) }
            let predicted = layers.reduce(0, +) + table.perInferenceMilliseconds
            return (arch, predicted, measurePass(arch, seed: seed &+ UInt64(index)))
        }
    }

    /// Measures every shape of the space and the per-inference overhead; `progress(done, total)` is called after
    /// each shape.
    public func profile(device: String? = nil, progress: (Int, Int) -> Void = { _, _ in }) -> LatencyTableDocument {
        let shapes = space.allLayerShapes()
        var entries: [LatencyEntry] = []
        entries.reserveCapacity(shapes.count)
        for (index, key) in shapes.enumerated() {
            entries.append(LatencyEntry(key: key, latencyMilliseconds: Self.nanosecondRounded(measure(key))))
            progress(index + 1, shapes.count)
        }
        let latencies = Dictionary(uniqueKeysWithValues: entries.map { ($0.key, $0.latencyMilliseconds) })
        let overhead = Self.nanosecondRounded(measureOverhead(latencies: latencies))
        let metadata: [(key: String, value: JSONValue)] = [
            ("threads", .number(Double(Self.engineThreads))),
            ("image_size", .number(Double(space.imageSize))),
            ("method", .string(methodDescription)),
        ]
        return LatencyTableDocument(
            device: device ?? Self.deviceName(), created: Self.timestamp(), perInferenceMilliseconds: overhead,
            entries: entries, metadata: metadata)
    }

    /// Bumped when the way layers are run or timed changes, so cached tables of older profilers are not reused.
    public static let methodVersion = 1

    /// The `method` metadata of the tables this profiler writes: the method version and the settings.
    public var methodDescription: String {
        "supernetd engine v\(Self.methodVersion), batch 1, median of \(settings.samples) samples of at least "
            + "\(settings.minimumSampleMilliseconds) ms after \(settings.warmupMilliseconds) ms warm-up, overhead "
            + "over \(settings.overheadNetworks) subnets, seed \(settings.seed)"
    }

    /// Runs `body` as the settings say and returns the median time of one run in milliseconds.
    func medianMilliseconds(_ body: () -> Void) -> Double {
        let start = Self.nowMilliseconds()
        var runs = 0
        repeat {
            body()
            runs += 1
        } while runs < 2 || Self.nowMilliseconds() - start < settings.warmupMilliseconds

        let perRun = (Self.nowMilliseconds() - start) / Double(runs)
        let repeats = max(1, Int((settings.minimumSampleMilliseconds / max(perRun, 1e-6)).rounded(.up)))
        var samples: [Double] = []
        samples.reserveCapacity(settings.samples)
        for _ in 0..<max(settings.samples, 1) {
            let sampleStart = Self.nowMilliseconds()
            for _ in 0..<repeats {
                body()
            }
            samples.append((Self.nowMilliseconds() - sampleStart) / Double(repeats))
        }
        return Self.median(samples)
    }

    /// `milliseconds` rounded to the nanosecond, so tables carry no digits below the clock's resolution.
    public static func nanosecondRounded(_ milliseconds: Double) -> Double {
        (milliseconds * 1e6).rounded() / 1e6
    }

    /// The median of a non-empty list (the mean of the middle two for an even count).
    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The monotonic clock in milliseconds.
    public static func nowMilliseconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) * 1e3 + Double(time.tv_nsec) * 1e-6
    }

    /// "host-cpu", the processor model from /proc/cpuinfo and the engine's thread count.
    public static func deviceName() -> String {
        var model = "unknown processor"
        if let bytes = try? TableFiles.read("/proc/cpuinfo") {
            let text = String(decoding: bytes, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
                let colon = line.firstIndex(of: ":")
            {
                model = line[line.index(after: colon)...].trimmingPrefix(" ").description
            }
        }
        return "host-cpu \(model), \(engineThreads) engine thread\(engineThreads == 1 ? "" : "s")"
    }

    /// The current UTC time as ISO 8601 to the second, for `created`.
    public static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String {
            value < 10 ? "0\(value)" : "\(value)"
        }

        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
