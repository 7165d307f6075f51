import Foundation
import PluginHost
import XCTest

/// An error the test's evaluate closure throws.
private struct PredictorDown: Error {}

final class EvolutionStrategyTests: XCTestCase {
    /// Scores with the synthetic accuracy and prices with the built analytic target.
    private func analyticEvaluator(_ target: HardwareTarget) -> ([SubnetArch]) throws -> [Evaluation] {
        { archs in
            try archs.map { Evaluation(accuracy: syntheticAccuracy($0), cost: try target.cost(of: layers(for: $0))) }
        }
    }

    /// A cheap stand-in for a cost model: MACs grow with resolution², kernel² and expansion.
    private func cheapEvaluation(_ arch: SubnetArch) -> Evaluation {
        var work = 0.0
        for stage in 0..<arch.depths.count {
            for block in 0..<arch.depths[stage] {
                work +=
                    Double(arch.kernels[stage][block] * arch.kernels[stage][block] + 20)
                    * Double(arch.expandRatios[stage][block])
            }
        }
        let macs = work * Double(arch.resolution * arch.resolution)
        return Evaluation(
            accuracy: syntheticAccuracy(arch), cost: HardwareCost(latencyMilliseconds: 0, macs: macs, params: 0))
    }

    private func extreme(_ pick: ([Int]) -> Int) -> SubnetArch {
        let depth = pick(testSpace.depths)
        return SubnetArch(
            resolution: pick(testSpace.resolutions), depths: Array(repeating: depth, count: testSpace.stages),
            kernels: Array(repeating: Array(repeating: pick(testSpace.kernels), count: depth), count: testSpace.stages),
            expandRatios: Array(
                repeating: Array(repeating: pick(testSpace.expandRatios), count: depth), count: testSpace.stages))
    }

    func testBeatsTheBestOf100RandomFeasibleSamplesUnderAMACsBudget() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 30}"#)
        let smallest = try plugins.analytic.cost(of: layers(for: extreme { $0.min()! })).macs
        let largest = try plugins.analytic.cost(of: layers(for: extreme { $0.max()! })).macs
        let budget = Budget(.macs, smallest + 0.3 * (largest - smallest))

        var random = TestRandom(state: 11)
        var randomBest = 0.0
        var feasible = 0
        while feasible < 100 {
            let arch = randomArch(in: testSpace, using: &random)
            if budget.isMet(by: try plugins.analytic.cost(of: layers(for: arch))) {
                feasible += 1
                randomBest = max(randomBest, syntheticAccuracy(arch))
            }
        }
        let result = try plugins.evolution.search(
            space: testSpace, budgets: [budget], deadline: .seconds(120), seed: 3,
            evaluate: analyticEvaluator(plugins.analytic))

        let best = try XCTUnwrap(result.best)
        XCTAssertTrue(testSpace.contains(best))
        XCTAssertTrue(budget.isMet(by: try plugins.analytic.cost(of: layers(for: best))))
        XCTAssertGreaterThan(syntheticAccuracy(best), randomBest)
        XCTAssertEqual(result.stats.generations, 30)
        XCTAssertGreaterThanOrEqual(result.stats.evaluations, 100 + 30 * 100)
        XCTAssertFalse(result.stoppedByHost)
    }

    func testSameSeedGivesTheSameSearch() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 10}"#)
        let budget = Budget(.macs, 2_000_000)

        let runs = try [5, 5, 6].map { seed in
            try plugins.evolution.search(
                space: testSpace, budgets: [budget], deadline: .seconds(60), seed: UInt64(seed),
                evaluate: { $0.map(cheapEvaluation) })
        }

        XCTAssertEqual(runs[0].best, runs[1].best)
        XCTAssertEqual(runs[0].stats.evaluations, runs[1].stats.evaluations)
        XCTAssertNotEqual(runs[0].stats.evaluations, 0)
        XCTAssertTrue(runs[2].best != runs[0].best || runs[2].stats.evaluations != runs[0].stats.evaluations)
    }

    /// Prints how long 500 generations take with a cheap callback (the figure in the package report).
    func testFiveHundredGenerationsWithACheapCallback() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 500}"#)
        let clock = ContinuousClock()

        let start = clock.now
        let result = try plugins.evolution.search(
            space: testSpace, budgets: [Budget(.macs, 2_000_000)], deadline: .seconds(600), seed: 1,
            evaluate: { $0.map(cheapEvaluation) })
        let elapsed = clock.now - start

        XCTAssertEqual(result.stats.generations, 500)
        XCTAssertGreaterThanOrEqual(result.stats.evaluations, 100 + 500 * 100)
        XCTAssertNotNil(result.best)
        print(
            "evolution: 500 generations, \(result.stats.evaluations) evaluations in \(elapsed) "
                + "(plugin says \(result.stats.wallMilliseconds) ms)")
    }

    func testDeadlineStopsTheSearchWithTheBestSoFar() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 500}"#)
        let clock = ContinuousClock()

        let start = clock.now
        let result = try plugins.evolution.search(
            space: testSpace, budgets: [Budget(.macs, 2_000_000)], deadline: .milliseconds(100), seed: 2,
            evaluate: { archs in
                usleep(2_000)
                return archs.map(cheapEvaluation)
            })
        let elapsed = clock.now - start

        // The plugin reads the host's clock before each batch, so it may see the deadline before the host's
        // stop answer does; either way the search ends soon after 100 ms with what it has. The plugin's own wall
        // time starts a little after the host's clock, so it may read just under 100.
        XCTAssertTrue(result.stoppedByHost || result.stats.wallMilliseconds >= 90)
        XCTAssertNotNil(result.best)
        XCTAssertLessThan(result.stats.generations, 500)
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(100))
        XCTAssertLessThan(elapsed, .seconds(1))
    }

    func testCancellationStopsTheSearch() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 500}"#)
        var batches = 0

        let result = try plugins.evolution.search(
            space: testSpace, budgets: [], deadline: .seconds(60), seed: 2, isCancelled: { batches >= 3 },
            evaluate: { archs in
                batches += 1
                return archs.map(cheapEvaluation)
            })

        XCTAssertTrue(result.stoppedByHost)
        XCTAssertEqual(batches, 3)
        XCTAssertLessThanOrEqual(result.stats.evaluations, 300)
    }

    func testNothingFeasibleIsItsOwnOutcome() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 5, "max_sample_attempts": 300}"#)
        defer { try? plugins.evolution.configure(json: #"{"max_sample_attempts": 5000}"#) }

        let result = try plugins.evolution.search(
            space: testSpace, budgets: [Budget(.macs, 1)], deadline: .seconds(60), seed: 4,
            evaluate: { $0.map(cheapEvaluation) })

        XCTAssertNil(result.best)
        XCTAssertEqual(result.stats.evaluations, 300)
        XCTAssertEqual(result.stats.generations, 0)
    }

    func testAThrowingCallbackEndsTheSearchWithItsError() throws {
        let plugins = try BuiltPlugins.shared()
        try plugins.evolution.configure(json: #"{"generations": 5}"#)

        XCTAssertThrowsError(
            try plugins.evolution.search(
                space: testSpace, budgets: [], deadline: .seconds(60), seed: 4, evaluate: { _ in throw PredictorDown() }
            )
        ) { error in
            let failure = error as? PluginCallError
            XCTAssertEqual(failure?.kind, .callbackFailed)
            XCTAssertTrue(failure?.underlying is PredictorDown)
        }
        XCTAssertThrowsError(
            try plugins.evolution.search(
                space: testSpace, budgets: [], deadline: .seconds(60), seed: 4, evaluate: { _ in [] })
        ) { error in
            XCTAssertEqual((error as? PluginCallError)?.kind, .callbackFailed)
        }
    }

    func testBadSpaceAndConfigurationAreRefused() throws {
        let plugins = try BuiltPlugins.shared()
        var space = testSpace
        space.stages = 9

        XCTAssertThrowsError(
            try plugins.evolution.search(
                space: space, budgets: [], deadline: .seconds(1), seed: 0, evaluate: { _ in [] })
        ) { error in
            XCTAssertEqual((error as? PluginCallError)?.kind, .invalidArgument)
        }
        XCTAssertThrowsError(try plugins.evolution.configure(json: #"{"population": 1}"#)) { error in
            XCTAssertEqual((error as? PluginCallError)?.status, -5)
        }
    }
}
