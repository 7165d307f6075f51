@testable import Training
import Engine
import XCTest

final class BatchLoaderTests: XCTestCase {
    private let mean: Float = 0.286
    private let std: Float = 0.353

    private func normalized(_ byte: UInt8) -> Float {
        (Float(byte) / 255 - mean) / std
    }

    /// All batches of one epoch, filled synchronously.
    private func epochContents(_ plan: BatchPlan, epoch: Int) -> (images: [Float], labels: [Int32]) {
        let batches = plan.epoch(epoch)
        var images: [Float] = []
        var labels: [Int32] = []
        var imageBuffer = [Float](repeating: .nan, count: plan.imageCapacity)
        var labelBuffer = [Int32](repeating: -1, count: plan.options.batchSize)
        for batch in 0..<batches.count {
            let samples = imageBuffer.withUnsafeMutableBufferPointer { imageBuffer in
                labelBuffer.withUnsafeMutableBufferPointer { labelBuffer in
                    batches.fill(batch: batch, images: imageBuffer, labels: labelBuffer)
                }
            }
            images += imageBuffer[0..<(samples * plan.dataset.sampleSize)]
            labels += labelBuffer[0..<samples]
        }
        return (images, labels)
    }

    func testNormalizationWithoutAugmentation() throws {
        let pixels: [UInt8] = [0, 51, 128, 255]
        let data = try ImageDataset(images: pixels, labels: [3], height: 2, width: 2, channels: 1, classes: 4)
        let plan = try BatchPlan(dataset: data, options: .evaluation(batchSize: 1))
        let (images, labels) = epochContents(plan, epoch: 0)
        XCTAssertEqual(labels, [3])
        for (value, byte) in zip(images, pixels) {
            XCTAssertEqual(value, normalized(byte), accuracy: 1e-6)
        }
        XCTAssertEqual(images[0], -0.286 / 0.353, accuracy: 1e-6)
        XCTAssertEqual(images[3], (1 - 0.286) / 0.353, accuracy: 1e-6)
    }

    func testPerChannelNormalization() throws {
        let data = try ImageDataset(images: [255, 255], labels: [0], height: 1, width: 1, channels: 2, classes: 1)
        let options = BatchOptions(batchSize: 1, mean: [0.5, 0.25], std: [0.5, 0.25])
        let (images, _) = epochContents(try BatchPlan(dataset: data, options: options), epoch: 0)
        XCTAssertEqual(images[0], 1, accuracy: 1e-6)
        XCTAssertEqual(images[1], 3, accuracy: 1e-6)
        XCTAssertThrowsError(try BatchPlan(dataset: data, options: BatchOptions(batchSize: 1, std: [1, 1, 1])))
        XCTAssertThrowsError(try BatchPlan(dataset: data, options: BatchOptions(batchSize: 0)))
    }

    /// Renders a 3×4 image with distinct pixel values 10, 11, … under `transform` with padding 2.
    ///
    /// The stand-in normalization maps byte v of channel c to v + 0.5 + 1000 c, so padding shows as 0.5.
    private func render(_ transform: SampleTransform, channels: Int = 1) -> (source: [UInt8], output: [Float]) {
        let (height, width) = (3, 4)
        let source = (0..<(height * width * channels)).map { UInt8(10 + $0) }
        var table = [Float](repeating: 0, count: 256 * channels)
        for c in 0..<channels {
            for v in 0..<256 {
                table[c * 256 + v] = Float(v) + 0.5 + Float(c) * 1000
            }
        }
        var output = [Float](repeating: .nan, count: source.count)
        source.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { output in
                BatchPlan.render(
                    source: source.baseAddress!, height: height, width: width, channels: channels, padding: 2,
                    transform: transform, table: table, output: output.baseAddress!)
            }
        }
        return (source, output)
    }

    func testFlipMirrorsEachRow() {
        let (source, output) = render(SampleTransform(offsetY: 2, offsetX: 2, flip: true))
        for y in 0..<3 {
            for x in 0..<4 {
                XCTAssertEqual(output[y * 4 + x], Float(source[y * 4 + (3 - x)]) + 0.5)
            }
        }
        let (_, identity) = render(SampleTransform(offsetY: 2, offsetX: 2, flip: false))
        XCTAssertEqual(identity, source.map { Float($0) + 0.5 })
    }

    func testFlipKeepsChannelsTogether() {
        let (source, output) = render(SampleTransform(offsetY: 2, offsetX: 2, flip: true), channels: 2)
        for y in 0..<3 {
            for x in 0..<4 {
                for c in 0..<2 {
                    let expected = Float(source[(y * 4 + (3 - x)) * 2 + c]) + 0.5 + Float(c) * 1000
                    XCTAssertEqual(output[(y * 4 + x) * 2 + c], expected)
                }
            }
        }
    }

    func testCropShiftsAndPadsWithNormalizedZero() {
        let pad: Float = 0.5
        // Window at the padded image's top-left corner: content moves down and right by 2, zeros enter.
        let (source, corner) = render(SampleTransform(offsetY: 0, offsetX: 0, flip: false))
        let at = { (index: Int) -> Float in Float(source[index]) + 0.5 }
        let expectedCorner: [Float] = [
            pad, pad, pad, pad,
            pad, pad, pad, pad,
            pad, pad, at(0), at(1),
        ]
        XCTAssertEqual(corner, expectedCorner)
        // Window at (3, 1): source row y + 1, column x − 1.
        let (_, shifted) = render(SampleTransform(offsetY: 3, offsetX: 1, flip: false))
        let expectedShift: [Float] = [
            pad, at(4), at(5), at(6),
            pad, at(8), at(9), at(10),
            pad, pad, pad, pad,
        ]
        XCTAssertEqual(shifted, expectedShift)
        // Crop then flip: output (y, x) = padded (y + 3, (3 − x) + 1).
        let (_, both) = render(SampleTransform(offsetY: 3, offsetX: 1, flip: true))
        let expectedBoth: [Float] = [
            at(6), at(5), at(4), pad,
            at(10), at(9), at(8), pad,
            pad, pad, pad, pad,
        ]
        XCTAssertEqual(both, expectedBoth)
    }

    func testAugmentedSamplesAreCropsAndFlipsOfTheSource() throws {
        let data = try syntheticDataset(count: 400, height: 5, width: 6)
        let options = BatchOptions.training(batchSize: 32, seed: 9)
        let plan = try BatchPlan(dataset: data, options: options)
        var offsets = Set<Int>()
        var flips = 0
        var draws = 0
        for epoch in 0..<3 {
            let batches = plan.epoch(epoch)
            var images = [Float](repeating: 0, count: plan.imageCapacity)
            var labels = [Int32](repeating: 0, count: 32)
            for batch in 0..<batches.count {
                images.withUnsafeMutableBufferPointer { imageBuffer in
                    labels.withUnsafeMutableBufferPointer { labelBuffer in
                        _ = batches.fill(batch: batch, images: imageBuffer, labels: labelBuffer)
                    }
                }
                for slot in 0..<32 {
                    let sample = batches.order[batch * 32 + slot]
                    let transform = plan.transform(sample: sample, epoch: epoch)
                    XCTAssertTrue((0...4).contains(transform.offsetY) && (0...4).contains(transform.offsetX))
                    offsets.insert(transform.offsetY * 5 + transform.offsetX)
                    flips += transform.flip ? 1 : 0
                    draws += 1
                    // The slot holds exactly the source under that transform.
                    let expected = expectedSample(data, sample: sample, transform: transform, padding: 2)
                    XCTAssertEqual(Array(images[(slot * 30)..<(slot * 30 + 30)]), expected)
                    XCTAssertEqual(labels[slot], data.labels[sample])
                }
            }
        }
        XCTAssertEqual(offsets.count, 25, "every crop position should occur")
        XCTAssertEqual(Double(flips) / Double(draws), 0.5, accuracy: 0.05)
    }

    /// Straightforward reference: pad, crop, flip, normalize.
    private func expectedSample(
        _ data: ImageDataset, sample: Int, transform: SampleTransform, padding: Int
    ) -> [Float] {
        var out: [Float] = []
        for y in 0..<data.height {
            for x in 0..<data.width {
                let column = transform.flip ? data.width - 1 - x : x
                let sy = y + transform.offsetY - padding
                let sx = column + transform.offsetX - padding
                let inside = sy >= 0 && sy < data.height && sx >= 0 && sx < data.width
                let byte = inside ? data.images[sample * data.sampleSize + sy * data.width + sx] : 0
                out.append(normalized(byte))
            }
        }
        return out
    }

    func testSameSeedAndEpochGiveSameBatchesOtherEpochsDiffer() throws {
        let data = try syntheticDataset(count: 300, height: 6, width: 6)
        let plan = try BatchPlan(dataset: data, options: .training(batchSize: 16, seed: 5))
        let twin = try BatchPlan(dataset: data, options: .training(batchSize: 16, seed: 5))
        let epoch0 = epochContents(plan, epoch: 0)
        XCTAssertEqual(epochContents(twin, epoch: 0).images, epoch0.images)
        XCTAssertEqual(epochContents(twin, epoch: 0).labels, epoch0.labels)
        XCTAssertNotEqual(epochContents(plan, epoch: 1).images, epoch0.images)
        XCTAssertNotEqual(plan.order(epoch: 1), plan.order(epoch: 0))
        let otherSeed = try BatchPlan(dataset: data, options: .training(batchSize: 16, seed: 6))
        XCTAssertNotEqual(otherSeed.order(epoch: 0), plan.order(epoch: 0))
        // Same order under augmentation off: augmentation draws do not disturb the order stream.
        var plain = BatchOptions.training(batchSize: 16, seed: 5)
        plain.randomCrop = false
        plain.horizontalFlip = false
        XCTAssertEqual(try BatchPlan(dataset: data, options: plain).order(epoch: 3), plan.order(epoch: 3))
    }

    func testThreadCountDoesNotChangeBatches() throws {
        let data = try syntheticDataset(count: 250, height: 7, width: 5, channels: 3)
        var options = BatchOptions.training(batchSize: 40, seed: 11)
        options.mean = [0.5]
        options.std = [0.25]
        let reference = epochContents(try BatchPlan(dataset: data, options: options), epoch: 2)
        for threads in [2, 3, 8] {
            options.fillThreads = threads
            let other = epochContents(try BatchPlan(dataset: data, options: options), epoch: 2)
            XCTAssertEqual(other.images, reference.images, "fillThreads \(threads)")
            XCTAssertEqual(other.labels, reference.labels)
        }
    }

    func testEverySampleOnceAndDropLast() throws {
        // Sample i carries its index in its first two pixels, so batches can be decoded back to indices.
        let count = 103
        var images = [UInt8](repeating: 0, count: count * 4)
        for i in 0..<count {
            images[i * 4] = UInt8(i % 256)
            images[i * 4 + 1] = UInt8(i / 256)
        }
        let data = try ImageDataset(
            images: images, labels: (0..<count).map { Int32($0 % 10) }, height: 2, width: 2, channels: 1,
            classes: 10)
        for dropLast in [false, true] {
            var options = BatchOptions(batchSize: 10, shuffle: true, dropLast: dropLast, seed: 3)
            options.mean = [0]
            options.std = [1]
            let plan = try BatchPlan(dataset: data, options: options)
            XCTAssertEqual(plan.batchCount, dropLast ? 10 : 11)
            XCTAssertEqual(plan.epoch(0).size(of: plan.batchCount - 1), dropLast ? 10 : 3)
            let (floats, labels) = epochContents(plan, epoch: 4)
            var indices: [Int] = []
            for start in stride(from: 0, to: floats.count, by: 4) {
                let low = Int((floats[start] * 255).rounded())
                let high = Int((floats[start + 1] * 255).rounded())
                indices.append(low + 256 * high)
            }
            XCTAssertEqual(indices.count, dropLast ? 100 : 103)
            XCTAssertEqual(Set(indices).count, indices.count, "no sample twice")
            XCTAssertEqual(labels, indices.map { Int32($0 % 10) })
            if !dropLast {
                XCTAssertEqual(indices.sorted(), Array(0..<count))
            }
            XCTAssertNotEqual(indices, indices.sorted(), "shuffled")
        }
    }

    func testPrefetchingLoaderMatchesSynchronousFill() throws {
        let data = try syntheticDataset(count: 130, height: 4, width: 4)
        let options = BatchOptions.training(batchSize: 16, seed: 21)
        let loader = try BatchLoader(dataset: data, options: options)
        var images: [Float] = []
        var labels: [Int32] = []
        for epoch in [0, 1, 5, 2] {
            let expected = epochContents(loader.plan, epoch: epoch)
            var gotImages: [Float] = []
            var gotLabels: [Int32] = []
            loader.startEpoch(epoch)
            while let samples = loader.next(images: &images, labels: &labels) {
                gotImages += images[0..<(samples * 16)]
                gotLabels += labels[0..<samples]
            }
            XCTAssertNil(loader.next(images: &images, labels: &labels))
            XCTAssertEqual(gotImages, expected.images, "epoch \(epoch)")
            XCTAssertEqual(gotLabels, expected.labels)
        }
        // Abandon an epoch halfway; the next one must still be right.
        loader.startEpoch(7)
        _ = loader.next(images: &images, labels: &labels)
        loader.startEpoch(8)
        var first8: [Float] = []
        if let samples = loader.next(images: &images, labels: &labels) {
            first8 = Array(images[0..<(samples * 16)])
        }
        XCTAssertEqual(first8, Array(epochContents(loader.plan, epoch: 8).images.prefix(16 * 16)))
        loader.close()
        loader.close()
    }

    func testLoaderShutsDownWhenDropped() throws {
        let data = try syntheticDataset(count: 64, height: 4, width: 4)
        for _ in 0..<20 {
            let loader = try BatchLoader(dataset: data, options: .training(batchSize: 8, seed: 1))
            loader.startEpoch(0)
            var images = [Float](repeating: 0, count: 8 * 16)
            var labels = [Int32](repeating: 0, count: 8)
            XCTAssertEqual(loader.next(images: &images, labels: &labels), 8)
        }
    }

    func testFashionMNISTEpochThroughput() throws {
        let train = try FashionMNIST.load(split: .train)
        let loader = try BatchLoader(dataset: train, options: .training(batchSize: 128, seed: 1))
        let images = UnsafeMutableBufferPointer<Float>.allocate(capacity: loader.plan.imageCapacity)
        let labels = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 128)
        defer {
            images.deallocate()
            labels.deallocate()
        }
        var seen = 0
        let start = ProgressReporter.monotonicSeconds()
        loader.startEpoch(0)
        while let samples = loader.next(images: images, labels: labels) {
            seen += samples
        }
        let seconds = ProgressReporter.monotonicSeconds() - start
        XCTAssertEqual(seen, 60_000 / 128 * 128)
        let rate = Int(Double(seen) / seconds)
        print("BatchLoader: \(seen) images in \(String(format: "%.3f", seconds)) s = \(rate) images/s")
        #if DEBUG
        XCTAssertLessThan(seconds, 20)
        #else
        XCTAssertLessThan(seconds, 1)
        #endif
        // With 2 ms of simulated training per batch, the caller should hardly ever wait for a batch.
        var waited = 0.0
        loader.startEpoch(1)
        while true {
            let before = ProgressReporter.monotonicSeconds()
            guard loader.next(images: images, labels: labels) != nil else { break }
            let after = ProgressReporter.monotonicSeconds()
            waited += after - before
            while ProgressReporter.monotonicSeconds() - after < 0.002 {}
        }
        print("BatchLoader: caller waited \(String(format: "%.3f", waited)) s over an epoch of 2 ms steps")
    }
}
