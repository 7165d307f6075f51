import Foundation
import Training
import XCTest

final class IDXTests: XCTestCase {
    func testLoadsFashionMNISTTrainingSet() throws {
        let train = try FashionMNIST.load(split: .train)
        XCTAssertEqual(train.count, 60_000)
        XCTAssertEqual([train.height, train.width, train.channels, train.classes], [28, 28, 1, 10])
        XCTAssertEqual(train.images.count, 60_000 * 784)
        XCTAssertEqual(Array(train.labels.prefix(10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        var (lowest, highest) = (UInt8.max, UInt8.min)
        train.images.withUnsafeBufferPointer { pixels in
            for pixel in pixels {
                lowest = min(lowest, pixel)
                highest = max(highest, pixel)
            }
        }
        XCTAssertEqual([lowest, highest], [0, 255])
        XCTAssertEqual(train.classCounts(), [Int](repeating: 6_000, count: 10))
    }

    func testLoadsFashionMNISTTestSet() throws {
        let test = try FashionMNIST.load(split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(Array(test.labels.prefix(10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        XCTAssertEqual(test.classCounts(), [Int](repeating: 1_000, count: 10))
        let statistics = test.pixelStatistics()
        XCTAssertEqual(statistics.mean[0], 0.2868, accuracy: 0.0005)
    }

    func testGzipAndPlainFilesGiveTheSameContent() throws {
        let directory = TemporaryDirectory()
        let pixels = (0..<(3 * 4 * 5)).map { UInt8($0 * 4) }
        let bytes = idxImageBytes(count: 3, rows: 4, columns: 5, pixels: pixels)
        writeGzip(bytes, to: directory.file("a.gz"))
        writeBytes(bytes, to: directory.file("a"))
        for path in [directory.file("a.gz"), directory.file("a")] {
            let images = try IDX.readImages(path: path)
            XCTAssertEqual([images.count, images.rows, images.columns], [3, 4, 5])
            XCTAssertEqual(images.pixels, pixels)
        }
    }

    func testConcatenatedGzipMembersAreRead() throws {
        let directory = TemporaryDirectory()
        let bytes = idxLabelBytes([1, 2, 3, 4, 5, 6])
        writeBytes(gzipped(Array(bytes[0..<9])) + gzipped(Array(bytes[9...])), to: directory.file("l.gz"))
        XCTAssertEqual(try IDX.readLabels(path: directory.file("l.gz"), classes: 10), [1, 2, 3, 4, 5, 6])
    }

    func testMissingFile() {
        assertFails(.fileMissing, mentioning: "no such file") {
            _ = try IDX.readImages(path: "/nonexistent/train-images-idx3-ubyte.gz")
        }
        assertFails(.fileMissing, mentioning: "download") {
            _ = try FashionMNIST.load(directory: "/nonexistent", split: .test)
        }
    }

    func testWrongMagicNamesFoundAndExpected() {
        let directory = TemporaryDirectory()
        writeGzip(idxLabelBytes([1, 2]), to: directory.file("labels.gz"))
        assertFails(.wrongMagic, mentioning: "found magic 0x00000801") {
            _ = try IDX.readImages(path: directory.file("labels.gz"))
        }
        assertFails(.wrongMagic, mentioning: "expected 0x00000803") {
            _ = try IDX.readImages(path: directory.file("labels.gz"))
        }
        writeGzip(idxImageBytes(count: 1, rows: 1, columns: 1, pixels: [0], magic: 0x0C03), to: directory.file("i"))
        assertFails(.wrongMagic, mentioning: "int32") {
            _ = try IDX.readImages(path: directory.file("i"))
        }
    }

    func testTruncatedPayload() {
        let directory = TemporaryDirectory()
        let bytes = idxImageBytes(count: 10, rows: 4, columns: 4, pixels: [UInt8](repeating: 7, count: 100))
        writeGzip(bytes, to: directory.file("short.gz"))
        assertFails(.truncated, mentioning: "only 100 bytes follow") {
            _ = try IDX.readImages(path: directory.file("short.gz"))
        }
        writeGzip(idxLabelBytes([1, 2, 3], count: 5), to: directory.file("labels.gz"))
        assertFails(.truncated, mentioning: "5 labels") {
            _ = try IDX.readLabels(path: directory.file("labels.gz"), classes: 10)
        }
        writeGzip(Array(idxLabelBytes([]).prefix(6)), to: directory.file("header.gz"))
        assertFails(.truncated, mentioning: "header needs 8 bytes") {
            _ = try IDX.readLabels(path: directory.file("header.gz"), classes: 10)
        }
    }

    func testTrailingBytes() {
        let directory = TemporaryDirectory()
        writeGzip(idxLabelBytes([1, 2, 3], count: 2), to: directory.file("long.gz"))
        assertFails(.trailingData, mentioning: "3 bytes follow") {
            _ = try IDX.readLabels(path: directory.file("long.gz"), classes: 10)
        }
    }

    func testCountMismatchBetweenImagesAndLabels() {
        let directory = TemporaryDirectory()
        let pixels = [UInt8](repeating: 1, count: 5 * 28 * 28)
        writeGzip(
            idxImageBytes(count: 5, rows: 28, columns: 28, pixels: pixels),
            to: directory.file("t10k-images-idx3-ubyte.gz"))
        writeGzip(idxLabelBytes([0, 1, 2, 3]), to: directory.file("t10k-labels-idx1-ubyte.gz"))
        assertFails(.countMismatch, mentioning: "holds 4 labels") {
            _ = try FashionMNIST.load(directory: directory.path, split: .test)
        }
        writeGzip(idxLabelBytes([0, 1, 2, 3, 4]), to: directory.file("t10k-labels-idx1-ubyte.gz"))
        XCTAssertEqual(try FashionMNIST.load(directory: directory.path, split: .test).count, 5)
    }

    func testLabelOutOfRange() {
        let directory = TemporaryDirectory()
        writeGzip(idxLabelBytes([0, 9, 10]), to: directory.file("labels.gz"))
        assertFails(.labelOutOfRange, mentioning: "label 10 of sample 2") {
            _ = try IDX.readLabels(path: directory.file("labels.gz"), classes: 10)
        }
    }

    func testNotGzipAndCorruptGzip() {
        let directory = TemporaryDirectory()
        writeBytes(Array("<html>Not Found</html>".utf8), to: directory.file("page.gz"))
        assertFails(.notGzip, mentioning: "starts '3c 68 74 6d'") {
            _ = try IDX.readImages(path: directory.file("page.gz"))
        }
        let compressed = gzipped(idxLabelBytes((0..<5_000).map { UInt8($0 * 7 % 10) }))
        writeBytes(Array(compressed.prefix(compressed.count / 2)), to: directory.file("cut.gz"))
        assertFails(.corrupt, mentioning: "ends early") {
            _ = try IDX.readLabels(path: directory.file("cut.gz"), classes: 10)
        }
        var damaged = compressed
        for i in 12..<40 {
            damaged[i] ^= 0x5A
        }
        writeBytes(damaged, to: directory.file("damaged.gz"))
        assertFails(.corrupt, mentioning: "download the file again") {
            _ = try IDX.readLabels(path: directory.file("damaged.gz"), classes: 10)
        }
        writeBytes(compressed + [0x42, 0x42, 0x42], to: directory.file("garbage.gz"))
        assertFails(.corrupt, mentioning: "garbage") {
            _ = try IDX.readLabels(path: directory.file("garbage.gz"), classes: 10)
        }
    }

    private func assertFails(
        _ kind: IDXError.Kind, mentioning text: String, file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        do {
            try body()
            XCTFail("expected an IDXError of kind \(kind)", file: file, line: line)
        } catch let error as IDXError {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "'\(error.message)' lacks '\(text)'", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}
