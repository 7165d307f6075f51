import Engine
import Foundation
import Supernet
import Synchronization

/// Wall-clock seconds from a monotonic clock.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// Throughput of the engine on the largest and smallest subnets of a space (`supernet bench engine`).
///
/// Every figure is the median of `repeats` timed rounds of about `roundSeconds` each, after a warm-up, on a
/// randomly initialized supernet (speed does not depend on the weights' values). Each also comes as `NAME_best`,
/// its fastest round: on a machine shared with other tenants (runs here move by ±30%) that is the round least
/// disturbed, the figure to compare two builds by.
public struct EngineBenchmark {
    /// The space to measure.
    public var space: SearchSpace
    /// Timed rounds per figure.
    public var repeats = 5
    /// Target length of one round in seconds.
    public var roundSeconds = 0.4
    /// Measure only the figures whose names contain this (profiling one path), all when nil.
    public var only: String?

    /// Creates a benchmark for `space`.
    public init(space: SearchSpace) {
        self.space = space
    }

    /// Runs every measurement and returns the figures by name (images/s unless the name says otherwise).
    public func run() -> [String: Double] {
        let supernet = ElasticSupernet(space: space, seed: 1)
        var results: [String: Double] = ["threads": Double(Parallel.threadCount)]
        if Parallel.threadCount > 1 {
            results["core_round_trip_ns"] = Self.coreRoundTripNanoseconds()
        }
        func wanted(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }
        for (label, arch) in [("largest", space.largest), ("smallest", space.smallest)] {
            let network = try! SubnetNetwork(supernet.extract(arch))
            for batch in [1, 256] where wanted("\(label)_infer_b\(batch)") {
                (results["\(label)_infer_b\(batch)"], results["\(label)_infer_b\(batch)_best"]) =
                    inference(network, batch: batch)
            }
            results["\(label)_macs"] = Double(space.costs(for: arch).macs)
            if wanted("\(label)_train_b128") {
                (results["\(label)_train_b128"], results["\(label)_train_b128_best"]) =
                    training(supernet, arch: arch, batch: 128)
            }
        }
        return results
    }

    private func randomImages(_ count: Int) -> FloatBuffer {
        var random = SeededRandom(seed: 7)
        let buffer = FloatBuffer(count: count)
        for i in 0..<count {
            buffer[i] = random.nextGaussian()
        }
        return buffer
    }

    /// Nanoseconds for one value to go from this thread to a second one and back through a shared word: the
    /// median of 5 runs of about 20 ms each. On a 2-core virtual machine the two threads run on the two virtual
    /// CPUs; whether those share a cache (about 80 ns here) or not (several times more) changes from hour to
    /// hour, and batch-1 inference on two threads, which hands data between the cores at every layer, moves with
    /// it. Time-boxed: on one CPU (`taskset`) each trip waits for a time slice, and the figure is then large.
    static func coreRoundTripNanoseconds() -> Double {
        final class Court: @unchecked Sendable {
            let ball = Atomic<Int>(0)
            let over = Atomic<Bool>(false)
        }
        let court = Court()
        let partner = Thread {
            var expected = 1
            while !court.over.load(ordering: .relaxed) {
                if court.ball.load(ordering: .acquiring) == expected {
                    court.ball.store(expected + 1, ordering: .releasing)
                    expected += 2
                }
            }
        }
        partner.start()
        defer { court.over.store(true, ordering: .relaxed) }
        var times: [Double] = []
        var serve = 1
        for _ in 0..<5 {
            let start = now()
            var trips = 0
            var elapsed = 0.0
            while elapsed < 0.02 {
                for _ in 0..<64 {
                    court.ball.store(serve, ordering: .releasing)
                    while court.ball.load(ordering: .acquiring) != serve + 1 {}
                    serve += 2
                }
                trips += 64
                elapsed = now() - start
            }
            times.append(elapsed / Double(trips) * 1e9)
        }
        return median(times)
    }

    /// Times `body` (which processes `items` images per call) and returns the median and the best images/s.
    private func measure(items: Int, _ body: () -> Void) -> (median: Double, best: Double) {
        body()
        let start = now()
        body()
        let once = max(now() - start, 1e-6)
        let calls = max(1, Int(roundSeconds / once))
        var rates: [Double] = []
        for _ in 0..<repeats {
            let t0 = now()
            for _ in 0..<calls {
                body()
            }
            rates.append(Double(items * calls) / (now() - t0))
        }
        return (median(rates), rates.max()!)
    }

    private func inference(_ network: SubnetNetwork, batch: Int) -> (median: Double, best: Double) {
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let images = randomImages(batch * pixels)
        let workspace = InferenceWorkspace()
        return measure(items: batch) {
            _ = network.forward(images.pointer, batch: batch, workspace: workspace)
        }
    }

    private func training(
        _ supernet: ElasticSupernet, arch: ArchConfig, batch: Int
    ) -> (median: Double, best: Double) {
        let pixels = space.imageSize * space.imageSize * space.inputChannels
        let images = randomImages(batch * pixels)
        let labels = (0..<batch).map { Int32($0 % space.classes) }
        let gradient = FloatBuffer(count: batch * space.classes)
        var random = SeededRandom(seed: 3)
        let parameters = supernet.parameters
        return measure(items: batch) {
            supernet.zeroGradients()
            let logits = supernet.forward(images.pointer, batch: batch, arch: arch, training: true, random: &random)
            _ = labels.withUnsafeBufferPointer {
                Loss.softmaxCrossEntropy(
                    logits: logits, labels: $0.baseAddress!, batch: batch,
                    classes: space.classes, smoothing: 0.1, logitsGradient: gradient.pointer)
            }
            supernet.backward(gradient.pointer)
            for p in parameters {
                SGD.nesterovStep(
                    parameters: p.value.pointer, gradients: p.gradient.pointer,
                    velocity: p.velocity.pointer, count: p.count, learningRate: 1e-4, momentum: 0.9,
                    weightDecay: p.decays ? 4e-5 : 0)
            }
        }
    }
}
