import Engine
import Foundation
import Supernet

/// What one epoch of training measured.
public struct EpochMetrics: Codable, Sendable {
    /// Epoch index (0-based).
    public var epoch: Int
    /// Mean training loss of the supervised (largest or sampled) subnet.
    public var trainLoss: Double
    /// Learning rate at the epoch's last step.
    public var learningRate: Double
    /// Wall time of the epoch's training steps.
    public var seconds: Double
    /// Training images per second (images of the batches, not subnet passes).
    public var imagesPerSecond: Double
    /// Validation accuracy of the largest subnet after BatchNorm recalibration.
    public var validationLargest: Double
    /// Validation accuracy of the smallest subnet after BatchNorm recalibration.
    public var validationSmallest: Double
}

/// Trains an `ElasticSupernet` with one of the `TrainingMethod`s.
///
/// Steps run on the caller's thread; kernels spread each step over the engine's threads; a `BatchLoader`
/// prepares the next batch meanwhile. Randomness comes from (seed, epoch), so a run resumed from the
/// checkpoint of epoch e continues exactly as the uninterrupted one would have.
public final class SupernetTrainer {
    /// The network being trained.
    public let network: ElasticSupernet
    /// The run's options.
    public let options: TrainingOptions
    let space: SearchSpace
    let train: ImageDataset
    let validation: ImageDataset
    let calibration: [UInt8]
    let normalization: Normalization
    let reporter: ProgressReporter?
    let log: MetricsLog?
    let loader: BatchLoader
    private let images: FloatBuffer
    private let labels: UnsafeMutableBufferPointer<Int32>
    private let gradient: FloatBuffer
    private let extraGradient: FloatBuffer
    private let teacherLogits: FloatBuffer
    private var teacher: ElasticSupernet?
    private let normParameters: Set<ObjectIdentifier>
    private var widthBanks: [Int: [FloatBuffer]] = [:]
    private let macsRange: ClosedRange<Int>

    /// Prepares a run; `calibration` holds the u8 images used to recalibrate BatchNorm for validation.
    public init(
        network: ElasticSupernet, options: TrainingOptions, train: ImageDataset, validation: ImageDataset,
        calibration: [UInt8], normalization: Normalization, reporter: ProgressReporter?, log: MetricsLog?
    )
        throws
    {
        self.network = network
        self.options = options
        self.train = train
        self.validation = validation
        self.calibration = calibration
        self.normalization = normalization
        self.reporter = reporter
        self.log = log
        space = network.space
        var batchOptions = BatchOptions.training(batchSize: options.batchSize, seed: options.seed)
        batchOptions.mean = [normalization.mean]
        batchOptions.std = [normalization.std]
        loader = try BatchLoader(dataset: train, options: batchOptions)
        images = FloatBuffer(count: options.batchSize * train.sampleSize)
        labels = .allocate(capacity: options.batchSize)
        gradient = FloatBuffer(count: options.batchSize * space.classes)
        extraGradient = FloatBuffer(count: options.batchSize * space.classes)
        teacherLogits = FloatBuffer(count: options.batchSize * space.classes)
        normParameters = Set(network.batchNormTensors.flatMap { $0.parameters.map(ObjectIdentifier.init) })
        macsRange = space.costs(for: space.smallest).macs...space.costs(for: space.largest).macs
        if options.method == .slimmable {
            for ratio in space.expandRatios {
                widthBanks[ratio] = saveNorms()
            }
        }
    }

    deinit {
        labels.deallocate()
        loader.close()
    }

    /// Steps per epoch.
    public var stepsPerEpoch: Int {
        min(loader.batchCount, options.stepsPerEpoch ?? Int.max)
    }

    /// Runs epochs `startEpoch..<epochs`, calling `checkpoint(e)` after each; returns their metrics.
    public func run(from startEpoch: Int = 0, checkpoint: (Int) throws -> Void = { _ in }) throws -> [EpochMetrics] {
        var history: [EpochMetrics] = []
        if options.method == .progressive && startEpoch > 0 {
            prepareProgressivePhase(ProgressivePhase.phase(epoch: startEpoch, epochs: options.epochs), resumed: true)
        }
        for epoch in startEpoch..<options.epochs {
            if options.method == .progressive {
                let phase = ProgressivePhase.phase(epoch: epoch, epochs: options.epochs)
                if ProgressivePhase.boundaries(epochs: options.epochs)[phase.rawValue] == epoch && epoch > 0 {
                    prepareProgressivePhase(phase, resumed: false)
                }
            }
            let metrics = try runEpoch(epoch)
            history.append(metrics)
            try log?.append([
                ("epoch", .int(epoch)), ("method", .string(options.method.rawValue)),
                ("train_loss", .double(metrics.trainLoss)), ("lr", .double(metrics.learningRate)),
                ("seconds", .double(metrics.seconds)), ("images_per_second", .double(metrics.imagesPerSecond)),
                ("val_largest", .double(metrics.validationLargest)),
                ("val_smallest", .double(metrics.validationSmallest)),
            ])
            try checkpoint(epoch)
        }
        if options.method == .slimmable {
            loadNorms(widthBanks[space.expandRatios.max()!]!)
        }
        return history
    }

    private func runEpoch(_ epoch: Int) throws -> EpochMetrics {
        let steps = stepsPerEpoch
        var random = SeededRandom(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9)
        loader.startEpoch(epoch)
        reporter?.startEpoch(epoch, of: options.epochs, steps: steps)
        let start = ProgressReporter.monotonicSeconds()
        var lossSum = 0.0
        var rate: Float = 0
        var seen = 0
        for step in 0..<steps {
            guard
                let n = loader.next(
                    images: UnsafeMutableBufferPointer(start: images.pointer, count: images.count),
                    labels: labels)
            else { break }
            rate = learningRate(epoch: epoch, step: step, steps: steps)
            let loss = trainStep(batch: n, epoch: epoch, learningRate: rate, random: &random)
            lossSum += Double(loss)
            seen += n
            reporter?.update(step: step + 1, images: n, metrics: ["loss": Double(loss), "lr": Double(rate)])
        }
        let seconds = ProgressReporter.monotonicSeconds() - start
        let (largest, smallest) = try validate()
        reporter?.finishEpoch(metrics: ["val_largest": largest * 100, "val_smallest": smallest * 100])
        return EpochMetrics(
            epoch: epoch, trainLoss: lossSum / Double(max(steps, 1)), learningRate: Double(rate),
            seconds: seconds, imagesPerSecond: Double(seen) / max(seconds, 1e-9),
            validationLargest: largest, validationSmallest: smallest)
    }

    /// Linear warm-up then cosine decay; progressive shrinking restarts the schedule in every phase.
    func learningRate(epoch: Int, step: Int, steps: Int) -> Float {
        var base = options.learningRate
        var first = 0
        var last = options.epochs
        var warmup = Int(options.warmupEpochs * Float(steps))
        if options.method == .progressive {
            let phase = ProgressivePhase.phase(epoch: epoch, epochs: options.epochs)
            let starts = ProgressivePhase.boundaries(epochs: options.epochs) + [options.epochs]
            first = starts[phase.rawValue]
            last = starts[phase.rawValue + 1]
            base *= ProgressivePhase.rateFactors[phase.rawValue]
            warmup = phase == .full ? warmup : 0
        }
        return SGD.cosineLearningRate(
            base: base, step: (epoch - first) * steps + step,
            totalSteps: max(1, (last - first) * steps), warmupSteps: warmup)
    }

    // MARK: - One step

    private func trainStep(batch n: Int, epoch: Int, learningRate rate: Float, random: inout SeededRandom) -> Float {
        network.zeroGradients()
        var loss: Float = 0
        switch options.method {
        case .uniform:
            loss = supervised(space.sample(&random), batch: n, keepAsTeacher: false, random: &random)
        case .standalone:
            loss = supervised(options.architecture ?? space.largest, batch: n, keepAsTeacher: false, random: &random)
        case .sandwich, .attentive:
            loss = supervised(space.largest, batch: n, keepAsTeacher: true, random: &random)
            _ = distilled(space.smallest, batch: n, withLabels: false, random: &random)
            for _ in 0..<2 {
                let arch =
                    options.method == .sandwich ? space.sample(&random) : attentiveChoice(batch: n, random: &random)
                _ = distilled(arch, batch: n, withLabels: false, random: &random)
            }
        case .progressive:
            loss = progressiveStep(batch: n, epoch: epoch, random: &random)
        case .slimmable:
            loss = slimmableStep(batch: n, learningRate: rate, random: &random)
            applySGD(learningRate: rate, only: { !normParameters.contains(ObjectIdentifier($0)) })
            return loss
        }
        applySGD(learningRate: rate, only: { _ in true })
        return loss
    }

    private func applySGD(learningRate rate: Float, only include: (Parameter) -> Bool) {
        for p in network.parameters where include(p) {
            SGD.nesterovStep(
                parameters: p.value.pointer, gradients: p.gradient.pointer, velocity: p.velocity.pointer,
                count: p.count, learningRate: rate, momentum: options.momentum,
                weightDecay: p.decays ? options.weightDecay : 0)
        }
    }

    /// Label-smoothed cross-entropy on `arch` (with dropout); optionally keeps its logits as the teacher's.
    private func supervised(
        _ arch: ArchConfig, batch n: Int, keepAsTeacher: Bool, random: inout SeededRandom
    )
        -> Float
    {
        let logits = network.forward(
            images.pointer, batch: n, arch: arch, training: true, dropout: true,
            random: &random)
        if keepAsTeacher {
            teacherLogits.pointer.update(from: logits, count: n * space.classes)
        }
        let loss = Loss.softmaxCrossEntropy(
            logits: logits, labels: labels.baseAddress!, batch: n,
            classes: space.classes, smoothing: options.labelSmoothing,
            logitsGradient: gradient.pointer)
        network.backward(gradient.pointer)
        return loss
    }

    /// KL divergence to the teacher's soft output (plus the supervised loss when `withLabels`).
    private func distilled(_ arch: ArchConfig, batch n: Int, withLabels: Bool, random: inout SeededRandom) -> Float {
        let logits = network.forward(
            images.pointer, batch: n, arch: arch, training: true, dropout: withLabels,
            random: &random)
        var loss = Loss.distillationKL(
            studentLogits: logits, teacherLogits: teacherLogits.pointer, batch: n,
            classes: space.classes, studentGradient: gradient.pointer)
        if withLabels {
            loss += Loss.softmaxCrossEntropy(
                logits: logits, labels: labels.baseAddress!, batch: n,
                classes: space.classes, smoothing: options.labelSmoothing,
                logitsGradient: extraGradient.pointer)
            Elementwise.add(
                gradient.pointer, extraGradient.pointer, output: gradient.pointer,
                count: n * space.classes)
        }
        network.backward(gradient.pointer)
        return loss
    }

    /// The loss of `arch` against the teacher on this batch, without a backward pass.
    private func probeLoss(_ arch: ArchConfig, batch n: Int, random: inout SeededRandom) -> Float {
        let logits = network.forward(
            images.pointer, batch: n, arch: arch, training: true, dropout: false,
            random: &random)
        return Loss.distillationKL(
            studentLogits: logits, teacherLogits: teacherLogits.pointer, batch: n,
            classes: space.classes, studentGradient: nil)
    }

    // MARK: - AttentiveNAS

    /// Picks a MACs level uniformly, draws k candidates near it, and keeps the best- or worst-scoring one.
    private func attentiveChoice(batch n: Int, random: inout SeededRandom) -> ArchConfig {
        let bins = 10
        let width = Double(macsRange.upperBound - macsRange.lowerBound) / Double(bins)
        let bin = random.nextInt(below: bins)
        let low = Double(macsRange.lowerBound) + Double(bin) * width
        var candidates: [ArchConfig] = []
        for _ in 0..<400 where candidates.count < options.attentiveCandidates {
            let arch = space.sample(&random)
            let macs = Double(space.costs(for: arch).macs)
            if macs >= low && macs <= low + width {
                candidates.append(arch)
            }
        }
        while candidates.count < options.attentiveCandidates {
            candidates.append(space.sample(&random))
        }
        let scored = candidates.map { ($0, probeLoss($0, batch: n, random: &random)) }
        let pick = options.attentiveRule == .best ? scored.min { $0.1 < $1.1 }! : scored.max { $0.1 < $1.1 }!
        return pick.0
    }

    // MARK: - Progressive shrinking

    private func prepareProgressivePhase(_ phase: ProgressivePhase, resumed: Bool) {
        guard phase != .full else { return }
        if teacher == nil {
            // The teacher is the full network as it stands when the first elastic phase begins; a resumed run
            // rebuilds it from the current weights (documented shortcoming: not bit-identical after a resume).
            let copy = ElasticSupernet(space: space)
            copy.copyWeights(from: network)
            teacher = copy
        }
        if phase == .expand && !resumed {
            network.sortChannelsByImportance()
        }
    }

    private func progressiveStep(batch n: Int, epoch: Int, random: inout SeededRandom) -> Float {
        let phase = ProgressivePhase.phase(epoch: epoch, epochs: options.epochs)
        if phase == .full {
            var arch = space.largest
            arch.resolution = space.resolutions[random.nextInt(below: space.resolutions.count)]
            return supervised(arch, batch: n, keepAsTeacher: false, random: &random)
        }
        var teacherRandom = SeededRandom(seed: 0)
        let soft = teacher!.forward(
            images.pointer, batch: n, arch: space.largest, training: false,
            random: &teacherRandom)
        teacherLogits.pointer.update(from: soft, count: n * space.classes)
        var loss: Float = 0
        for _ in 0..<ProgressivePhase.samplesPerStep[phase.rawValue] {
            loss += distilled(progressiveSample(phase, random: &random), batch: n, withLabels: true, random: &random)
        }
        return loss / Float(ProgressivePhase.samplesPerStep[phase.rawValue])
    }

    /// A subnet whose elastic dimensions are those unlocked by `phase` (resolution is elastic throughout).
    private func progressiveSample(_ phase: ProgressivePhase, random: inout SeededRandom) -> ArchConfig {
        let sample = space.sample(&random)
        var arch = space.largest
        arch.resolution = sample.resolution
        arch.kernels = sample.kernels
        if phase.rawValue >= ProgressivePhase.depth.rawValue {
            arch.depths = sample.depths
        }
        if phase == .expand {
            arch.expandRatios = sample.expandRatios
        }
        return arch
    }

    // MARK: - Slimmable (switchable BatchNorm)

    /// Every width in turn (uniform expand ratio), each with its own BatchNorm parameters and statistics,
    /// which are updated right after that width's backward pass; shared weights are updated by the caller.
    private func slimmableStep(batch n: Int, learningRate rate: Float, random: inout SeededRandom) -> Float {
        var loss: Float = 0
        for ratio in space.expandRatios.sorted(by: >) {
            loadNorms(widthBanks[ratio]!)
            for (_, parameters, _) in network.batchNormTensors {
                parameters.forEach { $0.gradient.zero() }
            }
            var arch = space.largest
            arch.expandRatios = arch.expandRatios.map { _ in ratio }
            let l = supervised(arch, batch: n, keepAsTeacher: false, random: &random)
            loss = ratio == space.expandRatios.max()! ? l : loss
            applySGD(learningRate: rate, only: { normParameters.contains(ObjectIdentifier($0)) })
            widthBanks[ratio] = saveNorms()
        }
        return loss
    }

    /// γ, β, their velocities and the running statistics of every norm, in order.
    private func saveNorms() -> [FloatBuffer] {
        network.batchNormTensors.flatMap { entry in
            entry.parameters.flatMap { [FloatBuffer($0.value.array()), FloatBuffer($0.velocity.array())] }
                + entry.statistics.map { FloatBuffer($0.array()) }
        }
    }

    private func loadNorms(_ bank: [FloatBuffer]) {
        var i = 0
        for entry in network.batchNormTensors {
            for p in entry.parameters {
                p.value.pointer.update(from: bank[i].pointer, count: p.count)
                p.velocity.pointer.update(from: bank[i + 1].pointer, count: p.count)
                i += 2
            }
            for s in entry.statistics {
                s.pointer.update(from: bank[i].pointer, count: s.count)
                i += 1
            }
        }
    }

    /// The private BatchNorm sets of a slimmable run as tensors `switchable.e{R}.{norm}.{weight,bias,...}`.
    public var switchableNormTensors: [NamedTensor] {
        var tensors: [NamedTensor] = []
        for ratio in widthBanks.keys.sorted() {
            let bank = widthBanks[ratio]!
            var i = 0
            for entry in network.batchNormTensors {
                let c = entry.parameters[0].count
                for (k, suffix) in ["weight", "bias"].enumerated() {
                    tensors.append(
                        NamedTensor(
                            name: "switchable.e\(ratio).\(entry.name).\(suffix)", shape: [c],
                            values: bank[i + 2 * k].array()))
                }
                tensors.append(
                    NamedTensor(
                        name: "switchable.e\(ratio).\(entry.name).running_mean", shape: [c],
                        values: bank[i + 4].array()))
                tensors.append(
                    NamedTensor(
                        name: "switchable.e\(ratio).\(entry.name).running_var", shape: [c],
                        values: bank[i + 5].array()))
                i += 6
            }
        }
        return tensors
    }

    // MARK: - Validation

    /// Validation accuracy of the largest and smallest subnets, each after BatchNorm recalibration.
    public func validate() throws -> (largest: Double, smallest: Double) {
        var data = validation.labelled()
        if let limit = options.epochValidationCount, limit < data.count {
            data = validation.labelled(first: limit)
        }
        func accuracy(_ arch: ArchConfig, bank: [FloatBuffer]?) throws -> Double {
            var saved: [FloatBuffer]?
            if let bank {
                saved = saveNorms()
                loadNorms(bank)
            }
            defer { saved.map(loadNorms) }
            let subnet = try network.extract(arch).recalibrated(
                images: calibration, count: calibration.count / train.sampleSize, normalization: normalization)
            return try SubnetNetwork(subnet).accuracy(on: data, normalization: normalization)
        }
        if options.method == .slimmable {
            var narrow = space.largest
            narrow.expandRatios = narrow.expandRatios.map { _ in space.expandRatios.min()! }
            return (
                try accuracy(space.largest, bank: widthBanks[space.expandRatios.max()!]),
                try accuracy(narrow, bank: widthBanks[space.expandRatios.min()!])
            )
        }
        return (try accuracy(space.largest, bank: nil), try accuracy(space.smallest, bank: nil))
    }
}

extension ImageDataset {
    /// The first `count` images (all by default) with their labels, as the model layer takes them.
    public func labelled(first count: Int? = nil) -> LabelledImages {
        let n = min(count ?? self.count, self.count)
        return LabelledImages(pixels: Array(images[0..<(n * sampleSize)]), labels: Array(labels[0..<n]))
    }
}
