import Foundation
import LatencyProfiling
import LatencyTable
import PluginHost
import Synchronization
import XCTest

/// One host-cpu plugin copy, its state directory and its statistics hook.
struct HostCPUCopy {
    let target: HardwareTarget
    let stateDirectory: String
    private let statistics: @convention(c) (UnsafeMutablePointer<Double>?, Int) -> Int

    /// Installs a fresh copy (a new mapping with its own state) using `stateDirectory` (a new one when nil).
    init(stateDirectory: String? = nil) throws {
        let plugin = try installAndLoad(buildDirectory() + "/libtarget-host-cpu.so")
        guard let target = plugin.target else {
            throw HelperFailure(description: "host-cpu is not a target")
        }
        guard let handle = dlopen(plugin.info.path, RTLD_NOW | RTLD_NOLOAD),
            let symbol = dlsym(handle, "target_host_cpu_statistics")
        else {
            throw HelperFailure(description: "host-cpu has no statistics hook")
        }
        self.target = target
        self.stateDirectory = try stateDirectory ?? makeTemporaryDirectory("state")
        self.statistics = unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Double>?, Int) -> Int).self)
        try target.plugin.configure(
            json: #"{"state_dir": "\#(self.stateDirectory)", "threads": \#(testThreads)}"#)
    }

    /// [shapes measured on the fly, tables built, tables loaded, last build ms].
    func counters() -> [Double] {
        var values = [Double](repeating: -1, count: 4)
        XCTAssertEqual(values.withUnsafeMutableBufferPointer { statistics($0.baseAddress, 4) }, 4)
        return values
    }

    /// The cached table.
    func cachedTable() throws -> LatencyTableDocument {
        try LatencyTableDocument(json: TableFiles.read(stateDirectory + "/host-cpu-latency.json"))
    }
}

/// The engine thread count of the test's own runs and of every plugin copy: TARGETS_TEST_THREADS when set, else
/// the engine's default (the active processors, as in the daemon).
let testThreads: Int = {
    if let threads = ProcessInfo.processInfo.environment["TARGETS_TEST_THREADS"].flatMap(Int.init) {
        LatencyProfiler.setEngineThreads(threads)
    }
    return LatencyProfiler.engineThreads
}()

/// The first copy, whose table is built on first use; shared by the tests (building takes seconds).
final class HostCPUFixture: Sendable {
    let copy: HostCPUCopy
    let buildSeconds: Double

    static func shared() throws -> HostCPUFixture {
        try built.get()
    }

    private static let built: Result<HostCPUFixture, any Error> = Result { try HostCPUFixture() }

    private init() throws {
        copy = try HostCPUCopy()
        let start = ContinuousClock.now
        _ = try copy.target.cost(of: [networkLayer(ProfiledSpace.fmnistMBV3.allLayerShapes()[0])])
        let elapsed = ContinuousClock.now - start
        buildSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("host-cpu: table built on first use in \(buildSeconds) s")
    }
}

extension HostCPUCopy: @unchecked Sendable {}

final class HostCPUTargetTests: XCTestCase {
    private let space = ProfiledSpace.fmnistMBV3

    func testTableIsBuiltOnFirstUseWithinAMinuteAndCached() throws {
        let fixture = try HostCPUFixture.shared()

        let counters = fixture.copy.counters()
        let table = try fixture.copy.cachedTable()

        XCTAssertLessThan(fixture.buildSeconds, 60, "building the table took \(fixture.buildSeconds) s")
        XCTAssertEqual(counters[1], 1, "tables built")
        XCTAssertEqual(counters[2], 0, "tables loaded")
        XCTAssertLessThan(counters[3], 60_000)
        // Every shape of the space, plus the shapes measured on the fly since (testUnknownShape... adds one).
        XCTAssertTrue(Set(space.allLayerShapes()).isSubset(of: Set(table.entries.map(\.key))))
        XCTAssertEqual(Double(table.entries.count - space.allLayerShapes().count), counters[0])
        XCTAssertEqual(table.metadata("threads")?.number, Double(testThreads))
        XCTAssertTrue(table.entries.allSatisfy { $0.latencyMilliseconds > 0 })
    }

    func testCostIsTheSumOfTheTableAndTheOverhead() throws {
        let fixture = try HostCPUFixture.shared()
        let table = try fixture.copy.cachedTable().latencies
        let overhead = try fixture.copy.cachedTable().perInferenceMilliseconds
        let arch = ProfiledArch(
            resolution: 24, kernels: [[3, 5], [7, 3, 5], [5, 5]], expandRatios: [[6, 3], [4, 4, 6], [3, 6]])
        let keys = space.layers(for: arch)

        let cost = try fixture.copy.target.cost(of: keys.map(networkLayer))
        let perLayer = try fixture.copy.target.layerLatencies(of: keys.map(networkLayer))

        let expected = keys.map { table[$0]! }
        XCTAssertEqual(perLayer, expected)
        XCTAssertEqual(cost.latencyMilliseconds, expected.reduce(0, +) + overhead)
        XCTAssertEqual(cost.macs, keys.reduce(0) { $0 + $1.macs })
        XCTAssertEqual(cost.params, keys.reduce(0) { $0 + $1.params })
        XCTAssertTrue(cost.energyMillijoules.isNaN)
    }

    func testCachedTableIsReusedByTheNextLoadWithoutMeasuring() throws {
        let fixture = try HostCPUFixture.shared()
        let layers = space.layers(
            for: ProfiledArch(
                resolution: 28, kernels: [[3, 3], [3, 3], [3, 3]], expandRatios: [[3, 3], [3, 3], [3, 3]]))
        let reference = try fixture.copy.target.cost(of: layers.map(networkLayer))

        let second = try HostCPUCopy(stateDirectory: fixture.copy.stateDirectory)
        let start = ContinuousClock.now
        let cost = try second.target.cost(of: layers.map(networkLayer))
        let elapsed = ContinuousClock.now - start

        XCTAssertEqual(second.counters().prefix(3), [0, 0, 1], "on the fly, built, loaded")
        XCTAssertEqual(cost.latencyMilliseconds, reference.latencyMilliseconds)
        XCTAssertLessThan(elapsed, .seconds(1))
        print("host-cpu: first cost call of a second load took \(elapsed)")
    }

    func testCacheMeasuredWithOtherSettingsIsNotReused() throws {
        let fixture = try HostCPUFixture.shared()
        let directory = try makeTemporaryDirectory("other-settings")
        try FileManager.default.copyItem(
            atPath: fixture.copy.stateDirectory + "/host-cpu-latency.json",
            toPath: directory + "/host-cpu-latency.json")
        let copy = try HostCPUCopy(stateDirectory: directory)
        try copy.target.plugin.configure(json: #"{"samples": 3, "overhead_networks": 2}"#)

        _ = try copy.target.cost(of: [networkLayer(space.allLayerShapes()[0])])

        XCTAssertEqual(copy.counters().prefix(3), [0, 1, 0], "on the fly, built, loaded")
        XCTAssertEqual(try copy.cachedTable().metadata("method")?.string?.contains("median of 3 samples"), true)
    }

    func testCalibrateRebuildsTheTableInTheGivenDirectory() throws {
        let copy = try HostCPUCopy()
        let elsewhere = try makeTemporaryDirectory("calibrated")

        try copy.target.calibrate(stateDirectory: elsewhere)

        XCTAssertEqual(copy.counters().prefix(3), [0, 1, 0])
        let table = try LatencyTableDocument(json: TableFiles.read(elsewhere + "/host-cpu-latency.json"))
        XCTAssertEqual(table.entries.count, space.allLayerShapes().count)
        XCTAssertFalse(FileManager.default.fileExists(atPath: copy.stateDirectory + "/host-cpu-latency.json"))
        assertCallFails(
            try copy.target.calibrate(stateDirectory: "/nonexistent/directory"), status: -6,
            mentioning: ["/nonexistent/directory", "cannot write"])
        XCTAssertEqual(copy.counters()[1], 1, "a failed calibrate measures nothing")
    }

    func testConcurrentCostCallsAgree() throws {
        let fixture = try HostCPUFixture.shared()
        let layers = space.layers(
            for: ProfiledArch(
                resolution: 20, kernels: [[5, 5], [5, 5], [5, 5]], expandRatios: [[4, 4], [4, 4], [4, 4]])
        ).map(networkLayer)
        let expected = try fixture.copy.target.cost(of: layers).latencyMilliseconds
        let results = Mutex([Double]())

        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<50 {
                let latency = (try? fixture.copy.target.cost(of: layers).latencyMilliseconds) ?? -1
                results.withLock { $0.append(latency) }
            }
        }

        XCTAssertEqual(results.withLock { $0 }, [Double](repeating: expected, count: 400))
    }

    func testUnknownShapeIsMeasuredOnceAndAdded() throws {
        let fixture = try HostCPUFixture.shared()
        let unknown = LayerKey(
            op: .pointwise, inputChannels: 24, outputChannels: 52, size: 9, activation: .relu)
        let before = fixture.copy.counters()[0]

        let first = try fixture.copy.target.layerLatencies(of: [networkLayer(unknown)])
        let second = try fixture.copy.target.layerLatencies(of: [networkLayer(unknown)])

        XCTAssertEqual(fixture.copy.counters()[0], before + 1)
        XCTAssertEqual(first, second)
        XCTAssertGreaterThan(first[0], 0)
        XCTAssertEqual(try fixture.copy.cachedTable().latencies[unknown], first[0])
    }

    func testMalformedAndHugeLayersAreRefused() throws {
        let fixture = try HostCPUFixture.shared()
        let huge = NetworkLayer(
            op: .pointwise, inputChannels: 1 << 20, outputChannels: 1 << 20, inputSize: 64, outputSize: 64)
        let odd = NetworkLayer(
            op: .depthwise, inputChannels: 8, outputChannels: 16, kernel: 3, inputSize: 4, outputSize: 4)

        assertCallFails(try fixture.copy.target.cost(of: [huge]), status: -2, mentioning: ["layer 0", "too large"])
        assertCallFails(try fixture.copy.target.cost(of: [odd]), status: -1, mentioning: ["layer 0", "depthwise"])
        assertCallFails(
            try fixture.copy.target.plugin.configure(json: #"{"samples": 0}"#), status: -5, mentioning: ["samples"])
        assertCallFails(
            try fixture.copy.target.plugin.configure(json: #"{"threads": 1.5, "samples": 3}"#), status: -5,
            mentioning: ["threads"])
        assertCallFails(
            try fixture.copy.target.plugin.configure(json: #"{"state_dir": "relative"}"#), status: -5,
            mentioning: ["absolute"])
    }

    /// The accuracy goal: over 50 random subnets, the median relative error of the predicted latency against the
    /// latency of the whole subnet run end to end is at most 10%.
    ///
    /// A timing figure, so it runs only where timings mean something: with `SUPERNET_TIMING_CHECKS=1` on a quiet
    /// machine (CI shares its cores); `supernet bench targets` measures the same figure outside the tests.
    func testPredictionsMatchEndToEndRunsWithinTenPercent() throws {
        guard ProcessInfo.processInfo.environment["SUPERNET_TIMING_CHECKS"] == "1" else {
            throw XCTSkip("timing check: set SUPERNET_TIMING_CHECKS=1 on a quiet machine")
        }
        let fixture = try HostCPUFixture.shared()
        var generator = SeededGenerator(seed: 2026)
        var errors: [Double] = []
        var lines: [String] = []

        for index in 0..<50 {
            let arch = space.randomArch(using: &generator)
            let predicted = try fixture.copy.target.cost(of: space.layers(for: arch).map(networkLayer))
                .latencyMilliseconds
            let measured = ReferenceNetwork(arch, seed: UInt64(index + 1)).medianMilliseconds()
            errors.append((predicted - measured) / measured)
            lines.append("\(arch.resolution) \(arch.kernels.map(\.count)) predicted \(predicted) measured \(measured)")
        }

        let median = LatencyProfiler.median(errors.map(abs))
        let bias = errors.reduce(0, +) / Double(errors.count)
        print(lines.joined(separator: "\n"))
        print(
            "host-cpu: median absolute error over 50 subnets \(median * 100)%, worst \(errors.map(abs).max()! * 100)%, "
                + "mean signed error \(bias * 100)%")
        XCTAssertLessThanOrEqual(median, 0.10)
    }
}
