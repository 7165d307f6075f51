import Foundation
import PluginHost
import XCTest

/// An error the test's evaluate closure throws.
private struct PredictorDown: Error {}

/// What every new strategy must do at its interface: budgets, deadline, stop signal, seeds, configuration.
final class StrategyBehaviourTests: XCTestCase {
    /// The strategies written here (evolution has its own tests in the main package).
    private let names = ["random", "reinforce", "relaxed"]

    /// The medium budget of the comparison.
    private let medium = Budget(.macs, macsBudgets[1].value)

    func testHeadersNameAndDescribeEachStrategy() throws {
        for name in names {
            let info = try BuiltStrategies.shared().strategy(name).plugin.info
            XCTAssertEqual(info.kind, .strategy)
            XCTAssertEqual(info.name, name)
            XCTAssertEqual(info.version, "1.0.0")
            XCTAssertGreaterThan(info.summary.count, 20, "\(name) needs a one-line description")
        }
    }

    func testTheEvaluationBudgetIsSpentExactlyWithoutRepeats() throws {
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 250}"#)
            var seen: Set<SubnetArch> = []
            var sent = 0

            let result = try strategy.search(
                space: fmnistSpace, budgets: [Budget(.macs, macsBudgets[2].value)], deadline: .seconds(60), seed: 9,
                evaluate: { archs in
                    sent += archs.count
                    seen.formUnion(archs)
                    return archs.map(syntheticEvaluation)
                })

            XCTAssertEqual(result.stats.evaluations, 250, name)
            XCTAssertEqual(sent, 250, name)
            XCTAssertEqual(seen.count, 250, "\(name) sent an architecture twice")
            XCTAssertNotNil(result.best, name)
            XCTAssertFalse(result.stoppedByHost, name)
        }
    }

    func testTheDeadlineIsRespected() throws {
        let clock = ContinuousClock()
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 100000000}"#)

            let start = clock.now
            let result = try strategy.search(
                space: fmnistSpace, budgets: [medium], deadline: .milliseconds(200), seed: 2,
                evaluate: { archs in
                    usleep(3_000)
                    return archs.map(syntheticEvaluation)
                })
            let elapsed = clock.now - start

            XCTAssertLessThan(elapsed, .milliseconds(200 + 150), "\(name) overran the deadline")
            XCTAssertGreaterThan(elapsed, .milliseconds(200), "\(name) stopped before the deadline")
            // Stopped by the host's STOP answer or by the strategy's own look at the clock (its wall time starts a
            // little after the host's clock, so it may read just under the deadline).
            XCTAssertTrue(result.stoppedByHost || result.stats.wallMilliseconds >= 190, name)
            XCTAssertNotNil(result.best, name)
            XCTAssertLessThan(result.stats.evaluations, 100_000_000, name)
        }
    }

    func testTheHostsStopSignalEndsTheSearchAtOnce() throws {
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 100000}"#)
            var batches = 0
            var sent = 0

            let result = try strategy.search(
                space: fmnistSpace, budgets: [medium], deadline: .seconds(60), seed: 2,
                isCancelled: { batches >= 3 },
                evaluate: { archs in
                    batches += 1
                    sent += archs.count
                    return archs.map(syntheticEvaluation)
                })

            XCTAssertTrue(result.stoppedByHost, name)
            XCTAssertEqual(batches, 3, "\(name) called evaluate after the host said stop")
            XCTAssertEqual(result.stats.evaluations, sent, name)
        }
    }

    func testTheSameSeedGivesTheSameSearch() throws {
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 400}"#)

            let runs = try [5, 5, 6].map { seed in
                var sent: [SubnetArch] = []
                let result = try strategy.search(
                    space: fmnistSpace, budgets: [medium], deadline: .seconds(60), seed: UInt64(seed),
                    evaluate: { archs in
                        sent += archs
                        return archs.map(syntheticEvaluation)
                    })
                return (result, sent)
            }

            XCTAssertEqual(runs[0].0.best, runs[1].0.best, name)
            XCTAssertEqual(runs[0].1, runs[1].1, "\(name) sent different architectures for the same seed")
            XCTAssertEqual(runs[0].0.stats.generations, runs[1].0.stats.generations, name)
            XCTAssertNotEqual(runs[0].1, runs[2].1, "\(name) ignores its seed")
        }
    }

    func testAnImpossibleBudgetIsReportedAsInfeasible() throws {
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 300}"#)
            var sent = 0

            // The smallest subnet costs 2.33 M MACs.
            let result = try strategy.search(
                space: fmnistSpace, budgets: [Budget(.macs, 2.0e6)], deadline: .seconds(60), seed: 4,
                evaluate: { archs in
                    sent += archs.count
                    return archs.map(syntheticEvaluation)
                })

            XCTAssertNil(result.best, "\(name) returned an architecture over the budget")
            XCTAssertGreaterThan(sent, 0, name)
            XCTAssertLessThanOrEqual(sent, 300, name)
            XCTAssertEqual(result.stats.evaluations, sent, name)
        }
    }

    func testAFailingCallbackEndsTheSearchWithItsError() throws {
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            try strategy.configure(json: #"{"evaluations": 300}"#)

            XCTAssertThrowsError(
                try strategy.search(
                    space: fmnistSpace, budgets: [medium], deadline: .seconds(60), seed: 4,
                    evaluate: { _ in throw PredictorDown() })
            ) { error in
                let failure = error as? PluginCallError
                XCTAssertEqual(failure?.kind, .callbackFailed, name)
                XCTAssertTrue(failure?.underlying is PredictorDown, name)
            }
        }
    }

    func testConfigurationIsCheckedAllOrNothing() throws {
        let valid = [
            "random": #"{"evaluations": 10, "batch_size": 5, "max_idle_batches": 3}"#,
            "reinforce": #"{"evaluations": 10, "learning_rate": 0.2, "baseline_decay": 0.5, "entropy_weight": 0,"#
                + #" "penalty": 3, "batch_size": 8}"#,
            "relaxed": #"{"evaluations": 10, "warmup": 20, "inner_steps": 10, "lambda": 2, "lambda_growth": 3,"#
                + #" "ridge": 0.5, "repair_batch": 4, "exploration": 0.2}"#,
        ]
        for name in names {
            let strategy = try BuiltStrategies.shared().strategy(name)
            XCTAssertNoThrow(try strategy.configure(json: valid[name]!), name)

            for bad in [
                #"{"evaluations": 0}"#, #"{"evaluations": 2.5}"#, #"{"unknown": 1}"#, #"{"batch_size": -1}"#, "[]",
            ] {
                XCTAssertThrowsError(try strategy.configure(json: bad), "\(name) took \(bad)") { error in
                    XCTAssertEqual((error as? PluginCallError)?.status, -5, name)
                }
            }

            // A refused configuration changes nothing: the budget set above (10) is still in force.
            XCTAssertThrowsError(try strategy.configure(json: #"{"evaluations": 50, "nonsense": 1}"#))
            let result = try strategy.search(
                space: fmnistSpace, budgets: [], deadline: .seconds(60), seed: 1,
                evaluate: { $0.map(syntheticEvaluation) })
            XCTAssertEqual(result.stats.evaluations, 10, name)
            XCTAssertNotNil(result.best, "\(name): with no budget everything is feasible")
        }
    }
}
