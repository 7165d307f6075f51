@testable import Training
import Engine
import XCTest

final class DatasetTests: XCTestCase {
    func testInitRejectsInconsistentArrays() {
        XCTAssertThrowsError(
            try ImageDataset(
                images: [1, 2, 3], labels: [0], height: 2, width: 2, channels: 1,
                classes: 2)
        ) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .sizeMismatch)
        }
        XCTAssertThrowsError(
            try ImageDataset(
                images: [1, 2, 3, 4], labels: [2], height: 2, width: 2, channels: 1,
                classes: 2)
        ) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .labelOutOfRange)
        }
        XCTAssertThrowsError(
            try ImageDataset(
                images: [], labels: [], height: 0, width: 2, channels: 1,
                classes: 2)
        ) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .invalidShape)
        }
        XCTAssertNoThrow(
            try ImageDataset(
                images: [1, 2, 3, 4, 5, 6], labels: [1], height: 1, width: 2,
                channels: 3, classes: 2))
    }

    func testSubsetCopiesTheChosenSamples() throws {
        let data = try syntheticDataset(count: 20, height: 3, width: 2, channels: 2)
        let part = data.subset([7, 3, 7])
        XCTAssertEqual(part.count, 3)
        XCTAssertEqual(part.labels, [7, 3, 7])
        XCTAssertEqual(Array(part.images[0..<12]), Array(data.images[84..<96]))
        XCTAssertEqual(Array(part.images[12..<24]), Array(data.images[36..<48]))
        XCTAssertEqual([part.height, part.width, part.channels, part.classes], [3, 2, 2, 10])
    }

    func testHoldOutIsDisjointCompleteDeterministicAndStratified() throws {
        // Unbalanced classes: 50, 30 and 20 samples.
        let labels =
            [Int32](repeating: 0, count: 50) + [Int32](repeating: 1, count: 30)
            + [Int32](repeating: 2, count: 20)
        let data = try ImageDataset(
            images: (0..<100).map { UInt8($0) }, labels: labels, height: 1, width: 1, channels: 1, classes: 3)
        let split = try data.holdOutIndices(validationCount: 10, seed: 42)
        XCTAssertEqual(split.validation.count, 10)
        XCTAssertEqual(Set(split.train).intersection(split.validation), [])
        XCTAssertEqual((split.train + split.validation).sorted(), Array(0..<100))
        XCTAssertEqual(split.train, split.train.sorted())
        let perClass = (0..<3).map { c in split.validation.filter { labels[$0] == c }.count }
        XCTAssertEqual(perClass, [5, 3, 2])
        let again = try data.holdOutIndices(validationCount: 10, seed: 42)
        XCTAssertEqual(again.validation, split.validation)
        let other = try data.holdOutIndices(validationCount: 10, seed: 43)
        XCTAssertNotEqual(other.validation, split.validation)
        let (train, validation) = try data.holdOut(validationCount: 10, seed: 42)
        XCTAssertEqual(validation.images, split.validation.map { UInt8($0) })
        XCTAssertEqual(train.count, 90)
        XCTAssertThrowsError(try data.holdOutIndices(validationCount: 101, seed: 1))
    }

    func testQuotasSumExactly() {
        XCTAssertEqual(ImageDataset.proportionalQuotas(sizes: [3, 3, 3], total: 4), [2, 1, 1])
        XCTAssertEqual(ImageDataset.proportionalQuotas(sizes: [10, 0, 5], total: 15), [10, 0, 5])
        XCTAssertEqual(ImageDataset.proportionalQuotas(sizes: [7, 2, 1], total: 5).reduce(0, +), 5)
    }

    func testFashionMNISTHoldOutTakesFiveHundredPerClass() throws {
        let train = try FashionMNIST.load(split: .train)
        let (rest, validation) = try train.holdOut(validationCount: 5_000, seed: 7)
        XCTAssertEqual(validation.classCounts(), [Int](repeating: 500, count: 10))
        XCTAssertEqual(rest.count, 55_000)
        let statistics = train.pixelStatistics()
        XCTAssertEqual(statistics.mean[0], FashionMNIST.mean, accuracy: 0.0005)
        XCTAssertEqual(statistics.std[0], FashionMNIST.std, accuracy: 0.0005)
    }

    func testPixelStatisticsPerChannel() throws {
        // Channel 0 always 255; channel 1 alternates 0 and 255.
        let images: [UInt8] = [255, 0, 255, 255, 255, 0, 255, 255]
        let data = try ImageDataset(images: images, labels: [0, 0], height: 1, width: 2, channels: 2, classes: 1)
        let statistics = data.pixelStatistics()
        XCTAssertEqual(statistics.mean[0], 1, accuracy: 1e-6)
        XCTAssertEqual(statistics.std[0], 0, accuracy: 1e-6)
        XCTAssertEqual(statistics.mean[1], 0.5, accuracy: 1e-6)
        XCTAssertEqual(statistics.std[1], 0.5, accuracy: 1e-6)
    }
}
