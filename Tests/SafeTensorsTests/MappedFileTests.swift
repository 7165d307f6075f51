import Foundation
import SafeTensors
import XCTest

/// Tests of the mmap-backed reader and the atomic file writer, using a fresh temporary directory.
final class MappedFileTests: XCTestCase {
    private var directory = ""
    private var cleanup: () -> Void = {}

    override func setUpWithError() throws {
        (directory, cleanup) = try makeTemporaryDirectory()
    }

    override func tearDown() {
        cleanup()
    }

    private func sampleWriter() throws -> SafeTensorsWriter {
        var writer = SafeTensorsWriter(metadata: ["arch": "supernet-v1"])
        try writer.add(name: "labels", uint8: [3, 1, 4], shape: [3])
        try writer.add(name: "w", floats: (0..<1000).map { Float($0) / 7 }, shape: [10, 100])
        return writer
    }

    func testWriteThenMapRoundTrip() throws {
        let path = directory + "/model.supernet"
        let writer = try sampleWriter()
        try writer.write(to: path)
        let onDisk = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(onDisk, try writer.serialized())

        let mapped = try SafeTensorsFile(contentsOf: path)
        XCTAssertEqual(mapped.path, path)
        XCTAssertEqual(mapped.metadata, ["arch": "supernet-v1"])
        XCTAssertEqual(mapped.tensors.map(\.name), ["labels", "w"])
        XCTAssertEqual(try mapped.int32s("labels"), [3, 1, 4])
        XCTAssertEqual(try mapped.floats("w"), (0..<1000).map { Float($0) / 7 })
    }

    func testWriteLeavesNoTemporaryFilesAndOverwrites() throws {
        let path = directory + "/out.safetensors"
        try sampleWriter().write(to: path)
        var second = SafeTensorsWriter()
        try second.add(name: "only", uint8: [9], shape: [1])
        try second.write(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(contentsOf: path).tensors.map(\.name), ["only"])
    }

    func testWriteIntoMissingDirectoryFailsWithPath() throws {
        let path = directory + "/missing/out.safetensors"
        let error = assertThrowsKind(.io) { try self.sampleWriter().write(to: path) }
        XCTAssertEqual(error?.path, path)
        XCTAssertTrue(error?.message.contains("No such file") ?? false, error?.message ?? "")
    }

    func testFailedRenameRemovesTemporaryFile() throws {
        let target = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: target + "/child", withIntermediateDirectories: true)
        assertThrowsKind(.io) { try self.sampleWriter().write(to: target) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["occupied"])
    }

    func testMissingFileIsAnIOErrorWithPath() {
        let path = directory + "/nope.safetensors"
        let error = assertThrowsKind(.io) { _ = try SafeTensorsFile(contentsOf: path) }
        XCTAssertEqual(error?.path, path)
        XCTAssertTrue(error?.description.hasPrefix(path) ?? false)
    }

    func testDirectoryIsRejected() {
        let error = assertThrowsKind(.io) { _ = try SafeTensorsFile(contentsOf: self.directory) }
        XCTAssertTrue(error?.message.contains("not a regular file") ?? false)
    }

    func testEmptyAndShortFilesAreRejectedWithPath() throws {
        for length in [0, 1, 7] {
            let path = directory + "/short\(length)"
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0, count: length)))
            let error = assertThrowsKind(.fileTooShort) { _ = try SafeTensorsFile(contentsOf: path) }
            XCTAssertEqual(error?.path, path)
        }
    }

    func testCorruptFileOnDiskReportsPathAndKind() throws {
        let path = directory + "/corrupt"
        var bytes = try sampleWriter().serialized()
        bytes.append(0)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let error = assertThrowsKind(.trailingBytes) { _ = try SafeTensorsFile(contentsOf: path) }
        XCTAssertEqual(error?.path, path)
    }

    func testHeaderLengthPastEndOfMappedFile() throws {
        let path = directory + "/truncated"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(lengthPrefix(64) + [0x7B])))
        assertThrowsKind(.headerExceedsFile) { _ = try SafeTensorsFile(contentsOf: path) }
    }

    func testConcurrentReadsShareOneMapping() async throws {
        let path = directory + "/shared"
        try sampleWriter().write(to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        let expected = (0..<1000).map { Float($0) / 7 }
        let matches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { try file.floats("w") == expected }
            }
            return try await group.reduce(true) { $0 && $1 }
        }
        XCTAssertTrue(matches)
    }
}
