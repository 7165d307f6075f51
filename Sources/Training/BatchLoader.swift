// Batches for training and evaluation: shuffling, random crop + horizontal flip, normalization to float32 NHWC,
// and a background thread that prepares batch k + 1 while the caller trains on batch k.
//
// Determinism: the order of epoch e is a Fisher–Yates shuffle driven by a generator keyed by (seed, e), and the
// augmentation of a sample by a generator keyed by (seed, e, sample index). No draw depends on which thread fills
// which sample, so batches are bitwise identical for any thread count and with or without prefetching.
import Engine
import Dispatch
import Foundation
import Synchronization

/// Options that do not fit a dataset or each other.
public struct BatchError: Error, Sendable, CustomStringConvertible {
    /// A sentence saying which option is wrong and what it must be.
    public let message: String

    /// Creates an error.
    public init(message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// How a `BatchPlan` turns samples into batches.
public struct BatchOptions: Sendable {
    /// Samples per batch.
    public var batchSize: Int
    /// Reorder the samples at random every epoch.
    public var shuffle: Bool
    /// Pad each side by `cropPadding` pixels of value 0, then cut out a random height × width window.
    public var randomCrop: Bool
    /// Padding of the random crop, in pixels.
    public var cropPadding: Int
    /// Mirror left-right with probability `flipProbability` (after the crop).
    public var horizontalFlip: Bool
    /// Probability of the horizontal flip.
    public var flipProbability: Float
    /// Drop the last batch of an epoch when it would hold fewer than `batchSize` samples.
    public var dropLast: Bool
    /// Per-channel mean on the 0...1 scale; one value applies to every channel.
    public var mean: [Float]
    /// Per-channel standard deviation on the 0...1 scale; one value applies to every channel.
    public var std: [Float]
    /// Seed of the order and the augmentation.
    public var seed: UInt64
    /// Threads filling one batch (1 = the filling thread alone). Results do not depend on it.
    public var fillThreads: Int

    /// Creates options; the defaults are those of evaluation on Fashion-MNIST.
    public init(
        batchSize: Int, shuffle: Bool = false, randomCrop: Bool = false, cropPadding: Int = 2,
        horizontalFlip: Bool = false, flipProbability: Float = 0.5, dropLast: Bool = false,
        mean: [Float] = [FashionMNIST.mean], std: [Float] = [FashionMNIST.std], seed: UInt64 = 0,
        fillThreads: Int = 1
    ) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.randomCrop = randomCrop
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.flipProbability = flipProbability
        self.dropLast = dropLast
        self.mean = mean
        self.std = std
        self.seed = seed
        self.fillThreads = fillThreads
    }

    /// Training: shuffled, random crop (padding 2) and flip (p = 0.5), last partial batch dropped.
    public static func training(batchSize: Int, seed: UInt64) -> BatchOptions {
        BatchOptions(
            batchSize: batchSize, shuffle: true, randomCrop: true, horizontalFlip: true, dropLast: true, seed: seed)
    }

    /// Evaluation: dataset order, no augmentation, last partial batch kept.
    public static func evaluation(batchSize: Int) -> BatchOptions {
        BatchOptions(batchSize: batchSize)
    }
}

/// The augmentation chosen for one sample: the crop window's corner in the padded image, and the flip.
public struct SampleTransform: Sendable, Equatable {
    /// Row of the window's top edge in the padded image (0...2 × padding; `padding` = no shift).
    public var offsetY: Int
    /// Column of the window's left edge in the padded image (0...2 × padding).
    public var offsetX: Int
    /// Whether the window is mirrored left-right.
    public var flip: Bool

    /// Creates a transform.
    public init(offsetY: Int, offsetX: Int, flip: Bool) {
        self.offsetY = offsetY
        self.offsetX = offsetX
        self.flip = flip
    }
}

/// The batches of one dataset under one set of options: a pure description, shareable between threads.
public struct BatchPlan: Sendable {
    /// The samples.
    public let dataset: ImageDataset
    /// How they are batched.
    public let options: BatchOptions
    /// Normalized value of byte v in channel c at [c * 256 + v].
    let table: [Float]

    /// Checks the options against the dataset.
    public init(dataset: ImageDataset, options: BatchOptions) throws(BatchError) {
        guard options.batchSize > 0 else {
            throw BatchError(message: "batch size \(options.batchSize) must be positive")
        }
        guard options.cropPadding >= 0 else {
            throw BatchError(message: "crop padding \(options.cropPadding) must not be negative")
        }
        guard options.fillThreads >= 1 else {
            throw BatchError(message: "fill threads \(options.fillThreads) must be at least 1")
        }
        guard (0...1).contains(options.flipProbability) else {
            throw BatchError(message: "flip probability \(options.flipProbability) must lie in 0...1")
        }
        for (name, values) in [("mean", options.mean), ("std", options.std)]
        where values.count != 1 && values.count != dataset.channels {
            throw BatchError(
                message: "\(name) has \(values.count) values; give 1 or one per channel (\(dataset.channels))")
        }
        guard options.std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw BatchError(message: "std \(options.std) must be positive and finite")
        }
        self.dataset = dataset
        self.options = options
        var table = [Float](repeating: 0, count: dataset.channels * 256)
        for c in 0..<dataset.channels {
            let mean = options.mean.count == 1 ? options.mean[0] : options.mean[c]
            let std = options.std.count == 1 ? options.std[0] : options.std[c]
            for value in 0..<256 {
                table[c * 256 + value] = (Float(value) / 255 - mean) / std
            }
        }
        self.table = table
    }

    /// Batches per epoch.
    public var batchCount: Int {
        let n = dataset.count
        let size = options.batchSize
        return options.dropLast ? n / size : (n + size - 1) / size
    }

    /// Floats of one full image batch: batchSize × height × width × channels.
    public var imageCapacity: Int { options.batchSize * dataset.sampleSize }

    /// Sample indices in the order epoch `epoch` visits them.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        if options.shuffle {
            var random = SeededRandom(seed: key(stream: 0x6F72_6465_72, epoch: epoch))
            partialShuffle(&order, first: order.count, using: &random)
        }
        return order
    }

    /// The augmentation sample `sample` receives in epoch `epoch` (identity when augmentation is off).
    public func transform(sample: Int, epoch: Int) -> SampleTransform {
        transform(sample: sample, epochKey: key(stream: 0x6175_676D, epoch: epoch))
    }

    /// The batches of one epoch, ready to be filled.
    public func epoch(_ epoch: Int) -> EpochBatches {
        EpochBatches(
            plan: self, epoch: epoch, order: order(epoch: epoch), augmentKey: key(stream: 0x6175_676D, epoch: epoch))
    }

    func transform(sample: Int, epochKey: UInt64) -> SampleTransform {
        let padding = options.cropPadding
        guard options.randomCrop || options.horizontalFlip else {
            return SampleTransform(offsetY: padding, offsetX: padding, flip: false)
        }
        var random = SeededRandom(seed: epochKey ^ UInt64(sample))
        var offsetY = padding
        var offsetX = padding
        if options.randomCrop {
            offsetY = random.nextInt(below: 2 * padding + 1)
            offsetX = random.nextInt(below: 2 * padding + 1)
        }
        let flip = options.horizontalFlip && random.nextUnitFloat() < options.flipProbability
        return SampleTransform(offsetY: offsetY, offsetX: offsetX, flip: flip)
    }

    /// A generator seed for (options.seed, stream, epoch); distinct streams and epochs give unrelated seeds.
    private func key(stream: UInt64, epoch: Int) -> UInt64 {
        var outer = SeededRandom(seed: options.seed ^ stream)
        var inner = SeededRandom(seed: outer.next() ^ UInt64(bitPattern: Int64(epoch)))
        return inner.next()
    }

    /// Writes one sample: the padded image cut at the transform's window, mirrored if asked, then normalized.
    ///
    /// Output pixel (y, x) reads source pixel (y + offsetY − padding, x' + offsetX − padding) where x' is x, or
    /// width − 1 − x when flipped; positions outside the source read byte 0 (normalized like any other 0).
    static func render(
        source: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int, padding: Int,
        transform: SampleTransform, table: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        let shiftY = transform.offsetY - padding
        let shiftX = transform.offsetX - padding
        for y in 0..<height {
            let sourceY = y + shiftY
            let row = output + y * width * channels
            guard sourceY >= 0 && sourceY < height else {
                for x in 0..<width {
                    for c in 0..<channels {
                        row[x * channels + c] = table[c * 256]
                    }
                }
                continue
            }
            let sourceRow = source + sourceY * width * channels
            if channels == 1 {
                for x in 0..<width {
                    let sourceX = (transform.flip ? width - 1 - x : x) + shiftX
                    let value = sourceX >= 0 && sourceX < width ? sourceRow[sourceX] : 0
                    row[x] = table[Int(value)]
                }
            } else {
                for x in 0..<width {
                    let sourceX = (transform.flip ? width - 1 - x : x) + shiftX
                    let inside = sourceX >= 0 && sourceX < width
                    for c in 0..<channels {
                        let value = inside ? sourceRow[sourceX * channels + c] : 0
                        row[x * channels + c] = table[c * 256 + Int(value)]
                    }
                }
            }
        }
    }
}

/// One epoch of a `BatchPlan`: its sample order, and filling of its batches.
public struct EpochBatches: Sendable {
    /// The plan.
    public let plan: BatchPlan
    /// The epoch number.
    public let epoch: Int
    /// Sample indices in visiting order.
    public let order: [Int]
    let augmentKey: UInt64

    /// Batches in this epoch.
    public var count: Int { plan.batchCount }

    /// Number of samples in batch `batch`.
    public func size(of batch: Int) -> Int {
        precondition(batch >= 0 && batch < count, "batch \(batch) outside 0..<\(count)")
        return min(plan.options.batchSize, order.count - batch * plan.options.batchSize)
    }

    /// Writes batch `batch` as normalized float32 NHWC into `images` and its labels into `labels`.
    ///
    /// Returns the number of samples written; buffers must hold at least that many samples.
    @discardableResult
    public func fill(
        batch: Int, images: UnsafeMutableBufferPointer<Float>, labels: UnsafeMutableBufferPointer<Int32>
    ) -> Int {
        let samples = size(of: batch)
        let sampleSize = plan.dataset.sampleSize
        precondition(
            images.count >= samples * sampleSize,
            "image buffer holds \(images.count) floats, "
                + "batch needs \(samples * sampleSize)")
        precondition(labels.count >= samples, "label buffer holds \(labels.count), batch needs \(samples)")
        let first = batch * plan.options.batchSize
        let threads = min(plan.options.fillThreads, samples)
        let output = ImageBufferAccess(base: images.baseAddress!)
        plan.dataset.images.withUnsafeBufferPointer { pixels in
            plan.table.withUnsafeBufferPointer { table in
                let source = PixelAccess(base: pixels.baseAddress!, table: table.baseAddress!)
                let work: @Sendable (Int) -> Void = { part in
                    let start = samples * part / threads
                    let end = samples * (part + 1) / threads
                    for slot in start..<end {
                        let sample = order[first + slot]
                        let transform = plan.transform(sample: sample, epochKey: augmentKey)
                        BatchPlan.render(
                            source: source.base + sample * sampleSize, height: plan.dataset.height,
                            width: plan.dataset.width, channels: plan.dataset.channels,
                            padding: plan.options.cropPadding, transform: transform, table: source.table,
                            output: output.base + slot * sampleSize)
                    }
                }
                if threads == 1 {
                    work(0)
                } else {
                    DispatchQueue.concurrentPerform(iterations: threads, execute: work)
                }
            }
        }
        for slot in 0..<samples {
            labels[slot] = plan.dataset.labels[order[first + slot]]
        }
        return samples
    }
}

/// Read access to the pixels and the normalization table for the fill workers.
///
/// `@unchecked Sendable`: the pointers come from arrays kept alive (and unmodified) for the whole fill call, and
/// the workers only read through them.
private struct PixelAccess: @unchecked Sendable {
    let base: UnsafePointer<UInt8>
    let table: UnsafePointer<Float>
}

/// Write access to a batch buffer for the fill workers.
///
/// `@unchecked Sendable`: each worker writes a disjoint range of samples, and the caller owns the buffer until
/// the fill call returns.
private struct ImageBufferAccess: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
}

/// Batches of a plan, prepared one ahead on a background thread (double buffering).
///
/// Use from one thread: `startEpoch(e)`, then `next(images:labels:)` until it returns nil. While the caller
/// trains on a batch, the worker fills the next one into a staging buffer; `next` copies it into the caller's
/// buffers and starts the following one. After the last batch of epoch e, batch 0 of epoch e + 1 is prepared.
/// `close()` (or deinit) stops the worker and waits for it to exit.
public final class BatchLoader {
    /// The batches produced.
    public let plan: BatchPlan
    private let core: PrefetchCore
    private var epoch: EpochBatches?
    private var nextBatch = 0
    private var inFlight: (epoch: Int, batch: Int)?
    private var closed = false

    /// Starts the background thread.
    public init(dataset: ImageDataset, options: BatchOptions) throws(BatchError) {
        plan = try BatchPlan(dataset: dataset, options: options)
        core = PrefetchCore(plan: plan)
        let core = self.core
        let thread = Thread { core.run() }
        thread.name = "BatchLoader"
        thread.start()
    }

    deinit {
        close()
    }

    /// Batches per epoch.
    public var batchCount: Int { plan.batchCount }

    /// Begins epoch `epoch` (any epoch, in any order); any unconsumed batch of the previous one is discarded.
    public func startEpoch(_ epoch: Int) {
        precondition(!closed, "BatchLoader used after close()")
        if let job = inFlight, job != (epoch, 0) {
            _ = core.collect()
            inFlight = nil
        }
        self.epoch = plan.epoch(epoch)
        nextBatch = 0
        if inFlight == nil && plan.batchCount > 0 {
            post(epoch: epoch, batch: 0)
        }
    }

    /// Copies the next batch of the current epoch into the buffers; returns its sample count, or nil at the end.
    public func next(images: UnsafeMutableBufferPointer<Float>, labels: UnsafeMutableBufferPointer<Int32>) -> Int? {
        guard let epoch, nextBatch < epoch.count else { return nil }
        precondition(inFlight != nil, "BatchLoader: no batch in flight")
        let samples = core.collect()
        let floats = samples * plan.dataset.sampleSize
        precondition(images.count >= floats && labels.count >= samples, "batch buffers are too small")
        images.baseAddress!.update(from: core.staging.images, count: floats)
        labels.baseAddress!.update(from: core.staging.labels, count: samples)
        inFlight = nil
        nextBatch += 1
        if nextBatch < epoch.count {
            post(epoch: epoch.epoch, batch: nextBatch)
        } else if plan.batchCount > 0 {
            post(epoch: epoch.epoch + 1, batch: 0)
        }
        return samples
    }

    /// Array version of `next(images:labels:)`; arrays shorter than a full batch are grown.
    public func next(images: inout [Float], labels: inout [Int32]) -> Int? {
        if images.count < plan.imageCapacity {
            images = [Float](repeating: 0, count: plan.imageCapacity)
        }
        if labels.count < plan.options.batchSize {
            labels = [Int32](repeating: 0, count: plan.options.batchSize)
        }
        return images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                next(images: imageBuffer, labels: labelBuffer)
            }
        }
    }

    /// Stops the background thread and waits for it to exit. Idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        if inFlight != nil {
            _ = core.collect()
            inFlight = nil
        }
        core.stop()
    }

    private func post(epoch: Int, batch: Int) {
        inFlight = (epoch, batch)
        core.post(epoch: epoch, batch: batch)
    }
}

/// The staging buffer the worker fills and the consumer copies out of.
///
/// `@unchecked Sendable`: ownership alternates by semaphore hand-off. The worker touches the buffers only between
/// taking a job (`jobPosted`) and reporting it (`jobDone`); the consumer only between `jobDone` and posting the
/// next job. The semaphores order the accesses, so they never overlap.
private final class StagingBuffers: @unchecked Sendable {
    let images: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>
    let imageCount: Int
    let labelCount: Int

    init(imageCount: Int, labelCount: Int) {
        self.imageCount = imageCount
        self.labelCount = labelCount
        images = .allocate(capacity: imageCount)
        images.initialize(repeating: 0, count: imageCount)
        labels = .allocate(capacity: labelCount)
        labels.initialize(repeating: 0, count: labelCount)
    }

    deinit {
        images.deallocate()
        labels.deallocate()
    }
}

/// What the consumer and the worker thread share.
private final class PrefetchCore: Sendable {
    struct State {
        var job: (epoch: Int, batch: Int)?
        var stopping = false
        var filled = 0
    }

    let plan: BatchPlan
    let staging: StagingBuffers
    let state = Mutex(State())
    let jobPosted = DispatchSemaphore(value: 0)
    let jobDone = DispatchSemaphore(value: 0)
    let exited = DispatchSemaphore(value: 0)

    init(plan: BatchPlan) {
        self.plan = plan
        staging = StagingBuffers(imageCount: plan.imageCapacity, labelCount: plan.options.batchSize)
    }

    /// The worker thread's body: fill each posted job until told to stop.
    func run() {
        var current: EpochBatches?
        while true {
            jobPosted.wait()
            let job = state.withLock { state -> (epoch: Int, batch: Int)? in
                state.stopping ? nil : state.job
            }
            guard let job else { break }
            if current?.epoch != job.epoch {
                current = plan.epoch(job.epoch)
            }
            let filled = current!.fill(
                batch: job.batch,
                images: UnsafeMutableBufferPointer(start: staging.images, count: staging.imageCount),
                labels: UnsafeMutableBufferPointer(start: staging.labels, count: staging.labelCount))
            state.withLock { $0.filled = filled }
            jobDone.signal()
        }
        exited.signal()
    }

    func post(epoch: Int, batch: Int) {
        state.withLock { $0.job = (epoch, batch) }
        jobPosted.signal()
    }

    /// Waits for the job in flight and returns its sample count.
    func collect() -> Int {
        jobDone.wait()
        return state.withLock { $0.filled }
    }

    func stop() {
        state.withLock { $0.stopping = true }
        jobPosted.signal()
        exited.wait()
    }
}
