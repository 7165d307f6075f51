// Helpers shared by the tests: temporary directories and crafted IDX files.
import CZlib
import Foundation
import Training
import XCTest

/// A fresh directory under the system's temporary directory, removed on deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("trainsupport-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String {
        (path as NSString).appendingPathComponent(name)
    }
}

/// The bytes of an IDX image file; `count` is what the header claims, the pixels are written as given.
func idxImageBytes(count: Int, rows: Int, columns: Int, pixels: [UInt8], magic: UInt32 = 0x0803) -> [UInt8] {
    bigEndian(magic) + bigEndian(UInt32(count)) + bigEndian(UInt32(rows)) + bigEndian(UInt32(columns)) + pixels
}

/// The bytes of an IDX label file; `count` defaults to the number of labels given.
func idxLabelBytes(_ labels: [UInt8], count: Int? = nil) -> [UInt8] {
    bigEndian(0x0801) + bigEndian(UInt32(count ?? labels.count)) + labels
}

func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

/// Gzip-compresses `bytes` with zlib's gz* functions into `path`.
func writeGzip(_ bytes: [UInt8], to path: String) {
    guard let file = gzopen(path, "wb") else {
        XCTFail("gzopen failed for \(path)")
        return
    }
    let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    XCTAssertEqual(Int(written), bytes.count)
    gzclose(file)
}

/// The gzip'd form of `bytes`, via a scratch file.
func gzipped(_ bytes: [UInt8]) -> [UInt8] {
    let directory = TemporaryDirectory()
    let path = directory.file("scratch.gz")
    writeGzip(bytes, to: path)
    return [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
}

/// A small dataset whose sample i has label i % classes and pixels derived from i.
func syntheticDataset(
    count: Int, height: Int, width: Int, channels: Int = 1, classes: Int = 10
) throws -> ImageDataset {
    let size = height * width * channels
    var images = [UInt8](repeating: 0, count: count * size)
    for i in 0..<count {
        for p in 0..<size {
            images[i * size + p] = UInt8((i * 7 + p * 13) % 256)
        }
    }
    let labels = (0..<count).map { Int32($0 % classes) }
    return try ImageDataset(
        images: images, labels: labels, height: height, width: width, channels: channels, classes: classes)
}
