import Client
import Engine
import Foundation
import SafeTensors
import Supernet
import Wire
import XCTest

@testable import Daemon

/// The Pareto archive: its lookup equals a brute-force search over everything it was built from, and the real
/// daemon answers default-strategy requests from it once built.
final class ParetoArchiveTests: XCTestCase {
    private func randomPoints(_ count: Int, seed: UInt64) -> [ArchivePoint] {
        let space = SearchSpace.fmnistMBV3
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            let arch = space.sample(&random).canonical(maxDepth: space.maxDepth)
            let costs = space.costs(for: arch)
            // Accuracy loosely tied to MACs, latency loosely tied to MACs: many points are dominated, not all.
            let accuracy = 0.8 + 0.1 * Double(costs.macs) / 23e6 + 0.02 * Double(random.nextUnitFloat())
            let latency = Double(costs.macs) / 1e7 * (0.8 + 0.4 * Double(random.nextUnitFloat()))
            return ArchivePoint(
                arch: arch,
                score: CandidateScore(accuracy: accuracy, costs: costs, target: TargetCost(latencyMs: latency)))
        }
    }

    func testLookupEqualsBruteForceOverAllCandidates() {
        let candidates = randomPoints(600, seed: 11)
        let archive = ParetoArchive(candidates: candidates, evaluations: candidates.count, milliseconds: 0)
        XCTAssertLessThan(archive.points.count, candidates.count, "some random points must be dominated")
        XCTAssertEqual(archive.points.map(\.score.accuracy), archive.points.map(\.score.accuracy).sorted(by: >))
        var random = SeededRandom(seed: 5)
        for _ in 0..<200 {
            var budgets = [Budget(.latencyMs, 0.1 + 2.4 * Double(random.nextUnitFloat()))]
            if random.nextUnitFloat() < 0.5 {
                budgets.append(Budget(.macs, 2e6 + 21e6 * Double(random.nextUnitFloat())))
            }
            if random.nextUnitFloat() < 0.3 {
                budgets.append(Budget(.params, 2e5 + 8e5 * Double(random.nextUnitFloat())))
            }
            let feasible = candidates.filter { point in
                budgets.allSatisfy {
                    Specializer.measure($0.kind, costs: point.score.costs, target: point.score.target) <= $0.value
                }
            }
            let expected = feasible.map(\.score.accuracy).max()
            XCTAssertEqual(archive.best(meeting: budgets)?.score.accuracy, expected, "\(budgets)")
        }
    }

    func testLatencyFrontIsMonotone() {
        let candidates = randomPoints(400, seed: 3)
        let front = ParetoArchive(candidates: candidates, evaluations: 0, milliseconds: 0).latencyFront
        XCTAssertGreaterThan(front.count, 2)
        for (a, b) in zip(front, front.dropFirst()) {
            XCTAssertLessThanOrEqual(a.score.target.latencyMs, b.score.target.latencyMs)
            XCTAssertLessThan(a.score.accuracy, b.score.accuracy)
        }
        // Nothing among the candidates beats a front point on both axes.
        for point in front {
            XCTAssertFalse(
                candidates.contains {
                    $0.score.target.latencyMs < point.score.target.latencyMs && $0.score.accuracy > point.score.accuracy
                })
        }
    }

    func testDaemonAnswersDefaultRequestsFromTheArchiveOnceBuilt() throws {
        let harness = try DaemonHarness()
        defer { harness.stop() }
        harness.paretoRungMs = 40
        try harness.start()
        let client = try harness.client()
        let deadline = Date().addingTimeInterval(120)
        while (try client.stats()["pareto_archives_ready"] ?? 0) < 1 {
            XCTAssertLessThan(Date(), deadline, "the archive was not built within 2 minutes")
            if Date() > deadline { return }
            usleep(100_000)
        }
        func ask(_ macs: Double, strategy: String) throws -> SpecializeHeader {
            try client.specialize(
                Specialize(
                    model: "test", target: "analytic", budgets: [Budget(.macs, macs)], strategy: strategy,
                    dtype: .f32, shuffle: false, deadlineMs: 0, noWeights: true)
            ).header
        }
        for macs in [3e6, 7e6, 12e6, 20e6] {
            let fromArchive = try ask(macs, strategy: "")
            XCTAssertEqual(fromArchive.strategy, "evolution (pareto front)")
            XCTAssertEqual(fromArchive.search.evaluations, 0)
            XCTAssertLessThanOrEqual(Double(fromArchive.costs.macs), macs)
            // Without a predictor the daemon ranks by MACs: the archive's answer is about as good as a fresh search.
            let searched = try ask(macs, strategy: "evolution")
            XCTAssertEqual(searched.strategy, "evolution")
            XCTAssertGreaterThan(searched.search.evaluations, 0)
            XCTAssertGreaterThanOrEqual(Double(fromArchive.costs.macs), 0.97 * Double(searched.costs.macs), "\(macs)")
        }
        // An infeasible budget is still an error naming the smallest cost.
        XCTAssertThrowsError(try ask(1000, strategy: ""))
    }

    func testPreparedStatisticsGiveTheBytesOfAFullRecalibration() throws {
        let harness = try DaemonHarness()
        defer { harness.stop() }
        harness.paretoRungMs = 20
        try harness.start()
        let client = try harness.client()
        let deadline = Date().addingTimeInterval(180)
        while true {
            let stats = try client.stats()
            if stats["pareto_archives_ready"] ?? 0 >= 1 && stats["prewarm_pending"] ?? 1 == 0 { break }
            guard Date() < deadline else { return XCTFail("archive and prewarm not done within 3 minutes") }
            usleep(100_000)
        }
        // A new budget answered from the archive, its subnet built from prepared statistics: the latency of the
        // front's most accurate point, whose statistics are always prepared (see `Specializer.prewarm`).
        let front = try client.pareto(model: "test", target: "analytic", points: 10_000)
        let budget = try XCTUnwrap(front.map(\.latencyMs).max())
        let received = try client.specialize(
            Specialize(
                model: "test", target: "analytic", budgets: [Budget(.latencyMs, budget)], strategy: "", dtype: .f32,
                shuffle: false, deadlineMs: 0, noWeights: false))
        XCTAssertEqual(received.header.strategy, "evolution (pareto front)")
        XCTAssertEqual(try client.stats()["prepared_statistics_hits"], 1, "the subnet came from prepared statistics")
        let served = harness.root + "/served.safetensors"
        try received.write(to: served)
        let offline = harness.root + "/offline.safetensors"
        let extract = try DaemonHarness.run(
            "supernet",
            ["extract", "--model", harness.models + "/test.supernet", "--arch", received.header.arch, "--out", offline])
        XCTAssertEqual(extract.status, 0, extract.err)
        XCTAssertEqual(
            FileManager.default.contents(atPath: served), FileManager.default.contents(atPath: offline),
            "prepared statistics must give exactly the recalibrated subnet")
    }
}
