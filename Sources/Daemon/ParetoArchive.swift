import CLinux
import Dispatch
import Engine
import Foundation
import Supernet
import Synchronization
import Wire

/// A scored subnet kept by a `ParetoArchive`.
struct ArchivePoint: Sendable {
    /// Canonical architecture.
    var arch: ArchConfig
    /// Its score: predicted accuracy, exact costs, the target's cost.
    var score: CandidateScore
}

/// The non-dominated subnets of one model on one target, most accurate first: no other kept subnet is at least
/// as accurate and no more costly in latency, MACs, parameters and peak memory alike. The most accurate point
/// that meets a set of budgets is therefore the best answer among everything the archive ever scored, found by a
/// scan from the front of the list.
struct ParetoArchive: Sendable {
    let points: [ArchivePoint]
    /// How many candidates were scored to build it, and how long it took.
    let evaluations: Int
    let milliseconds: Double

    /// Keeps the non-dominated points among `candidates` (duplicates removed).
    init(candidates: [ArchivePoint], evaluations: Int, milliseconds: Double) {
        var seen = Set<ArchConfig>()
        let unique = candidates.filter { seen.insert($0.arch).inserted }
        let sorted = unique.sorted { Self.precedes($0, $1) }
        var kept: [ArchivePoint] = []
        for point in sorted where !kept.contains(where: { Self.costsNoMore($0, than: point) }) {
            kept.append(point)
        }
        points = kept
        self.evaluations = evaluations
        self.milliseconds = milliseconds
    }

    /// The most accurate point meeting every budget, nil when none does.
    func best(meeting budgets: [Budget]) -> ArchivePoint? {
        points.first { point in
            budgets.allSatisfy {
                Specializer.measure($0.kind, costs: point.score.costs, target: point.score.target) <= $0.value
            }
        }
    }

    /// The distinct answers to requests with a single budget of `kind`: scanning from the most accurate point,
    /// each point cheaper in that kind than every point before it.
    func answers(for kind: BudgetKind) -> [ArchivePoint] {
        var cheapest = Double.infinity
        var result: [ArchivePoint] = []
        for point in points {
            let cost = Specializer.measure(kind, costs: point.score.costs, target: point.score.target)
            if cost < cheapest {
                cheapest = cost
                result.append(point)
            }
        }
        return result
    }

    /// The accuracy-versus-latency front: of the points sorted by latency, those more accurate than every
    /// faster one.
    var latencyFront: [ArchivePoint] {
        let byLatency = points.sorted {
            ($0.score.target.latencyMs, -$0.score.accuracy) < ($1.score.target.latencyMs, -$1.score.accuracy)
        }
        var front: [ArchivePoint] = []
        for point in byLatency where point.score.accuracy > (front.last?.score.accuracy ?? -.infinity) {
            front.append(point)
        }
        return front
    }

    /// Sort order: more accurate first; among equals, lower latency, then fewer MACs (deterministic).
    private static func precedes(_ a: ArchivePoint, _ b: ArchivePoint) -> Bool {
        if a.score.accuracy != b.score.accuracy { return a.score.accuracy > b.score.accuracy }
        if a.score.target.latencyMs != b.score.target.latencyMs {
            return a.score.target.latencyMs < b.score.target.latencyMs
        }
        if a.score.costs.macs != b.score.costs.macs { return a.score.costs.macs < b.score.costs.macs }
        return a.arch.json < b.arch.json
    }

    /// Whether `a` (already kept, so at least as accurate) costs no more than `b` in every budget kind.
    private static func costsNoMore(_ a: ArchivePoint, than b: ArchivePoint) -> Bool {
        a.score.target.latencyMs <= b.score.target.latencyMs && a.score.costs.macs <= b.score.costs.macs
            && a.score.costs.parameters <= b.score.costs.parameters
            && a.score.costs.peakActivationBytes <= b.score.costs.peakActivationBytes
    }
}

/// The archives of every (model, target) pair, built one at a time on a background queue so that requests never
/// wait for them; a pair whose model or target changes gets a new key and a new archive.
final class ParetoArchives: Sendable {
    private enum Status {
        case building
        case ready(ParetoArchive)
        case failed(String)
    }

    private let states = Mutex<[String: Status]>([:])
    private let queue = DispatchQueue(label: "supernetd.pareto", qos: .utility)

    /// The archive for `key` when it is built.
    func archive(_ key: String) -> ParetoArchive? {
        states.withLock { states in
            if case .ready(let archive)? = states[key] { return archive }
            return nil
        }
    }

    /// Subnets still to be prepared by `then` work (see `Specializer.prewarm`).
    let prewarmPending = Atomic<Int>(0)

    /// Starts building `key` in the background unless it is built, building or failed; `then` runs on the same
    /// queue after the archive is published.
    func schedule(
        _ key: String, build: @escaping @Sendable () throws -> ParetoArchive,
        then: @escaping @Sendable (ParetoArchive) -> Void = { _ in }
    ) {
        let isNew = states.withLock { states in
            guard states[key] == nil else { return false }
            states[key] = .building
            return true
        }
        guard isNew else { return }
        queue.async { [self] in
            Self.yieldToEverythingElse()
            let status: Status
            do {
                status = .ready(try build())
            } catch {
                status = .failed("\(error)")
            }
            // Counted as pending before the archive is published, so that "nothing building and nothing pending"
            // is never seen between the two.
            if case .ready = status { prewarmPending.add(1, ordering: .relaxed) }
            states.withLock { $0[key] = status }
            if case .ready(let archive) = status {
                then(archive)
                prewarmPending.subtract(1, ordering: .relaxed)
            }
        }
    }

    /// Gives the calling thread the lowest scheduling priority (SCHED_IDLE, and nice 19 should that be refused;
    /// both per thread on Linux): archives and their prepared statistics are background work and must not slow
    /// requests, nor other programs. At nice 19 alone, another daemon's largest-subnet stream fell to a quarter
    /// of the socket limit while this work ran beside it (`supernet bench serve` in the acceptance check): a
    /// nice-19 thread still holds its core until the scheduler's wake-up granularity runs out, an idle-policy
    /// thread gives it up at once. The settings stay with the Dispatch thread that ran the block; nothing else
    /// in the daemon runs on Dispatch.
    private static func yieldToEverythingElse() {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(supernet_thread_id()), 19)
        _ = supernet_thread_idle_policy()
        // The engine's workers run at normal priority: keep this thread's kernels off them.
        Parallel.runOnCallerOnly()
    }

    /// Drops every archive whose key does not satisfy `keep` (models or targets that are gone).
    func prune(keeping keep: (String) -> Bool) {
        states.withLock { states in
            states = states.filter { keep($0.key) }
        }
    }

    /// Counts for `stats`: archives ready, being built, failed.
    var counts: (ready: Int, building: Int, failed: Int) {
        states.withLock { states in
            var counts = (ready: 0, building: 0, failed: 0)
            for status in states.values {
                switch status {
                case .ready: counts.ready += 1
                case .building: counts.building += 1
                case .failed: counts.failed += 1
                }
            }
            return counts
        }
    }

    /// Blocks until nothing is being built (tests and benchmarks), up to `timeout` seconds; true when idle.
    func waitUntilIdle(timeout: Double) -> Bool {
        let deadline = monotonicSeconds() + timeout
        while counts.building > 0 {
            if monotonicSeconds() > deadline { return false }
            usleep(20_000)
        }
        return true
    }
}
