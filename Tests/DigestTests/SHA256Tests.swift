import Digest
import Foundation
import XCTest

/// SHA-256 against the FIPS 180-4 / NIST example vectors, plus streaming equivalence checks.
final class SHA256Tests: XCTestCase {
    func testEmptyMessage() {
        XCTAssertEqual(
            SHA256.hexDigest(of: []), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testABC() {
        XCTAssertEqual(
            SHA256.hexDigest(of: Array("abc".utf8)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func test448BitMessage() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        XCTAssertEqual(message.count * 8, 448)
        XCTAssertEqual(
            SHA256.hexDigest(of: message), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func test896BitMessage() {
        let message = Array(
            ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu").utf8)
        XCTAssertEqual(message.count * 8, 896)
        XCTAssertEqual(
            SHA256.hexDigest(of: message), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testOneMillionA() {
        var hasher = SHA256()
        let thousand = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 {
            hasher.update(thousand)
        }
        XCTAssertEqual(hasher.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSplitUpdatesMatchOneShot() {
        var generator = SplitMix64(seed: 0x5EED)
        let message = (0..<5000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let oneShot = SHA256.hash(message)
        for _ in 0..<50 {
            var hasher = SHA256()
            var offset = 0
            while offset < message.count {
                let length = min(Int(generator.next() % 150), message.count - offset)
                message[offset..<(offset + length)].withUnsafeBytes { hasher.update($0) }
                offset += length
            }
            XCTAssertEqual(hasher.finalize(), oneShot)
        }
        var byteAtATime = SHA256()
        for byte in message {
            byteAtATime.update([byte])
        }
        XCTAssertEqual(byteAtATime.finalize(), oneShot)
    }

    func testFinalizeLeavesHasherUsable() {
        var hasher = SHA256()
        hasher.update("ab")
        XCTAssertEqual(hasher.hexDigest(), SHA256.hexDigest(of: Array("ab".utf8)))
        hasher.update("c")
        XCTAssertEqual(hasher.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hasher.finalize().count, SHA256.byteCount)
    }

    func testPaddingBoundariesAgainstSystemTool() throws {
        // Lengths around the 55/56/64-byte padding boundaries, cross-checked with coreutils' sha256sum.
        let tool = "/usr/bin/sha256sum"
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            throw XCTSkip("\(tool) is missing; install coreutils to cross-check padding boundaries")
        }
        for length in [1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129] {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            input.fileHandleForWriting.write(Data(message))
            try input.fileHandleForWriting.close()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(SHA256.hexDigest(of: message), String(text.prefix(64)), "length \(length)")
        }
    }

    func testHexString() {
        XCTAssertEqual(hexString([0x00, 0x0F, 0xA0, 0xFF]), "000fa0ff")
        XCTAssertEqual(hexString([]), "")
    }
}

/// A tiny deterministic generator so the split test is reproducible.
private struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
