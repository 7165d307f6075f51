// Random search, the baseline every NAS paper compares with: uniformly random architectures scored in batches,
// the most accurate one meeting every budget kept.
//
// "Uniform" is per decision, as in the usual baseline: the resolution, each stage's depth and each used block's
// kernel and ratio are drawn independently and uniformly, so a deep stage is not favoured although it has more
// distinct architectures than a shallow one.
import PluginSupport

/// The tunable numbers of the random search.
struct RandomSettings: FlatConfigurable {
    /// Most architectures sent to the host per search.
    var evaluations = 10_000
    /// Architectures per call to the host.
    var batchSize = 100
    /// Batches in a row that may bring nothing new (every sample a repeat) before the search gives up: the space is
    /// then as good as exhausted.
    var maxIdleBatches = 100

    /// Returns these settings with the pairs of a configure call applied; all or nothing.
    func applying(_ pairs: [(key: String, value: Double)]) throws(ConfigProblem) -> RandomSettings {
        var result = self
        for (key, value) in pairs {
            switch key {
            case "evaluations":
                result.evaluations = try configInteger(key, value, atLeast: 1)
            case "batch_size":
                result.batchSize = try configInteger(key, value, atLeast: 1)
            case "max_idle_batches":
                result.maxIdleBatches = try configInteger(key, value, atLeast: 1)
            default:
                throw ConfigProblem(
                    message: "unknown key \"\(key)\"; known keys: evaluations, batch_size, max_idle_batches")
            }
        }
        return result
    }
}

/// Runs a random search; returns the batches completed. The best feasible architecture is the scorer's.
func runRandomSearch(
    settings: RandomSettings, scorer: inout Scorer, seed: UInt64
) throws(SearchFailure) -> UInt64 {
    var random = SeededGenerator(seed: seed)
    var batches: UInt64 = 0
    var idle = 0

    while !scorer.isDone, idle < settings.maxIdleBatches {
        let batch = (0..<min(settings.batchSize, scorer.remaining)).map { _ in
            scorer.space.uniformGenes(using: &random)
        }
        let before = scorer.evaluations
        _ = try scorer.score(batch)
        idle = scorer.evaluations == before ? idle + 1 : 0
        if !scorer.stopped {
            batches += 1
        }
    }
    return batches
}
