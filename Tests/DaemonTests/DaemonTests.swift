import Client
import Foundation
import SafeTensors
import Supernet
import Training
import Wire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The real supernetd binary on a temporary installation, driven by supernetctl, the client library and raw
/// sockets.
final class DaemonTests: XCTestCase {
    private var harness: DaemonHarness!

    override func setUpWithError() throws {
        harness = try DaemonHarness()
    }

    override func tearDown() {
        harness?.stop()
    }

    private func ctl(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try DaemonHarness.run(
            "supernetctl",
            ["--socket", harness.socket, "--admin-socket", harness.adminSocket]
                + arguments)
    }

    private func json(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    func testEverySupernetctlCommand() throws {
        try harness.start()
        XCTAssertEqual(try ctl(["ping"]).status, 0)
        let models = try ctl(["models", "--json"])
        XCTAssertEqual((json(models.out) as? [[String: Any]])?.first?["name"] as? String, "test", models.err)
        XCTAssertTrue(try ctl(["targets", "--json"]).out.contains("\"analytic\""))
        XCTAssertTrue(try ctl(["strategies", "--json"]).out.contains("\"evolution\""))
        let out = harness.root + "/s.safetensors"
        let special = try ctl([
            "specialize", "--model", "test", "--target", "analytic", "--macs", "6000000",
            "--out", out, "--json",
        ])
        XCTAssertEqual(special.status, 0, special.err)
        let reply = json(special.out) as? [String: Any]
        XCTAssertNotNil(reply?["arch"] as? [String: Any])
        XCTAssertNotNil(reply?["digest"] as? String)
        XCTAssertLessThanOrEqual((reply?["costs"] as? [String: Any])?["macs"] as? Int ?? .max, 6_000_000)
        XCTAssertNoThrow(try SafeTensorsFile(contentsOf: out))
        let pareto = try ctl([
            "pareto", "--model", "test", "--target", "analytic", "--points", "5", "--json",
            "--plot", harness.root + "/front.svg",
        ])
        XCTAssertEqual((json(pareto.out) as? [Any])?.count, 5, pareto.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: harness.root + "/front.svg"))
        let stats = json(try ctl(["stats", "--json"]).out) as? [String: Double]
        XCTAssertGreaterThanOrEqual(stats?["specializations"] ?? 0, 1)
        let plugins = json(try ctl(["plugins", "list", "--json"]).out) as? [[String: Any]]
        XCTAssertEqual(Set(plugins?.compactMap { $0["name"] as? String } ?? []), ["analytic", "evolution"])
        let human = try ctl(["models"])
        XCTAssertTrue(human.out.hasPrefix("NAME"), human.out)
    }

    func testExitCodesThatScriptsRelyOn() throws {
        try harness.start()
        let base = ["specialize", "--target", "analytic", "--out", harness.root + "/x.safetensors"]
        XCTAssertEqual(try ctl(base + ["--model", "nope", "--macs", "9000000"]).status, 65)
        XCTAssertEqual(try ctl(base + ["--model", "test", "--macs", "1"]).status, 2)
        XCTAssertEqual(try ctl(["frobnicate"]).status, 64)
        let missing = try DaemonHarness.run("supernetctl", ["--socket", harness.root + "/none.sock", "ping"])
        XCTAssertEqual(missing.status, 69)
        XCTAssertEqual(missing.err.split(separator: "\n").count, 1)
    }

    func testServedSubnetEqualsOfflineExtractionByteForByte() throws {
        try harness.start()
        let client = try harness.client()
        let received = try client.specialize(
            Specialize(
                model: "test", target: "analytic", budgets: [Budget(.macs, 9_000_000)], strategy: "", dtype: .f32,
                shuffle: true, deadlineMs: 0, noWeights: false))
        let served = harness.root + "/served.safetensors"
        try received.write(to: served)
        let offline = harness.root + "/offline.safetensors"
        let extract = try DaemonHarness.run(
            "supernet",
            [
                "extract", "--model", harness.models + "/test.supernet",
                "--arch", received.header.arch, "--out", offline,
            ])
        XCTAssertEqual(extract.status, 0, extract.err)
        let a = try SafeTensorsFile(contentsOf: served)
        let b = try SafeTensorsFile(contentsOf: offline)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        for tensor in a.tensors {
            XCTAssertEqual(try a.bytes(tensor.name), try b.bytes(tensor.name), tensor.name)
        }
        XCTAssertEqual(
            FileManager.default.contents(atPath: served), FileManager.default.contents(atPath: offline),
            "the served file is the extracted file, metadata included")

        let eval = try DaemonHarness.run(
            "supernet",
            [
                "eval", "--model", harness.models + "/test.supernet",
                "--arch", received.header.arch, "--json",
            ])
        let offlineAccuracy = (json(eval.out) as? [String: Any])?["accuracy"] as? Double
        let test = try FashionMNIST.load(split: .test).labelled()
        let servedAccuracy = try SubnetNetwork(received.subnet()).accuracy(on: test, normalization: .fashionMNIST)
        XCTAssertEqual(servedAccuracy, offlineAccuracy ?? -1, eval.err)
    }

    func testLossyDtypesDecodeWithinTheirPrecision() throws {
        try harness.start()
        let client = try harness.client()
        var results: [WeightDType: [Float]] = [:]
        for dtype in [WeightDType.f32, .f16, .int8] {
            let received = try client.specialize(
                Specialize(
                    model: "test", target: "analytic", budgets: [Budget(.macs, 5_000_000)], strategy: "", dtype: dtype,
                    shuffle: dtype != .int8, deadlineMs: 0, noWeights: false))
            results[dtype] = received.tensors.flatMap(\.values)
        }
        let exact = results[.f32]!
        let scale = exact.map(abs).max()!
        XCTAssertLessThan(zip(exact, results[.f16]!).map { abs($0 - $1) }.max()!, scale * 1e-3)
        XCTAssertLessThan(zip(exact, results[.int8]!).map { abs($0 - $1) }.max()!, scale / 127)
        XCTAssertNotEqual(exact, results[.int8]!)
    }

    func testThirtyTwoConcurrentClients() throws {
        try harness.start()
        let failures = LockedCounter()
        let digests = LockedSet()
        let socket = harness.socket
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            do {
                let client = try SupernetClient(socketPath: socket, name: "tests")
                for round in 0..<3 {
                    let budget = Double(4_000_000 + (i % 4) * 2_000_000)
                    let reply = try client.specialize(
                        Specialize(
                            model: "test", target: "analytic", budgets: [Budget(.macs, budget)], strategy: "",
                            dtype: .f16, shuffle: true, deadlineMs: 0, noWeights: round == 1))
                    XCTAssertLessThanOrEqual(Double(reply.header.costs.macs), budget)
                    digests.insert("\(budget)|\(reply.header.archDigest)")
                }
            } catch {
                failures.increment("\(error)")
            }
        }
        XCTAssertEqual(failures.count, 0, failures.messages.joined(separator: "; "))
        XCTAssertEqual(digests.count, 4, "one architecture per budget: the search is deterministic and cached")
    }

    func testMalformedInputClosesOneConnectionWhileOthersAreServed() throws {
        try harness.start()
        let witness = try harness.client()
        let cases: [(String, [UInt8])] = [
            ("wrong magic", Array("GET / HTTP/1.0\r\n\r\n".utf8) + [UInt8](repeating: 0xFF, count: 16)),
            (
                "unknown version",
                [0x53, 0x4E, 0x52, 0x50, 9, 0x03, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
            ),
            ("oversize length", [0x53, 0x4E, 0x52, 0x50, 1, 0x03, 0, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F]),
            ("unknown kind", [0x53, 0x4E, 0x52, 0x50, 1, 0x7E, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        ]
        for (name, bytes) in cases {
            let raw = try RawConnection(harness.socket)
            try raw.send(hello(), id: 1)
            _ = try raw.frame(for: 1)
            raw.send(bytes)
            let (_, closed) = raw.readUntilClosed()
            XCTAssertTrue(closed, "\(name): the daemon closes the connection")
            XCTAssertGreaterThan(try witness.ping(), 0, "\(name): another client is still served")
        }

        let truncated = try RawConnection(harness.socket)
        truncated.send([0x53, 0x4E, 0x52, 0x50, 1, 0x01, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3])
        _ = truncated
        XCTAssertGreaterThan(try witness.ping(), 0, "a truncated frame costs only its connection")

        let beforeHello = try RawConnection(harness.socket)
        try beforeHello.send(Ping(echo: 1), id: 3)
        let refused = try ErrorReply(frame: try beforeHello.frame(for: 3))
        XCTAssertEqual(refused.code, .protocolError)
        XCTAssertTrue(beforeHello.readUntilClosed().closed)
    }

    func testGarbagePayloadIsAnErrorAndTheConnectionStaysUsable() throws {
        try harness.start()
        let raw = try RawConnection(harness.socket)
        try raw.send(hello(), id: 1)
        _ = try raw.frame(for: 1)
        var encoder = FrameEncoder()
        let garbage = [UInt8](repeating: 0xAB, count: 40)
        try garbage.withUnsafeBytes {
            try encoder.appendRaw(kind: .specialize, requestID: 2, moreFollows: false, payload: $0)
        }
        raw.send(encoder.bytes)
        XCTAssertEqual(try ErrorReply(frame: try raw.frame(for: 2)).code, .invalidArgument)
        try raw.send(Ping(echo: 9), id: 3)
        XCTAssertEqual(try Pong(frame: try raw.frame(for: 3)).echo, 9)
    }

    func testBadRequestsGetTheirErrorCodes() throws {
        try harness.start()
        let client = try harness.client()
        func code(
            _ model: String = "test", _ target: String = "analytic", _ strategy: String = "",
            budgets: [Budget] = [Budget(.macs, 8_000_000)]
        ) -> (ErrorCode?, ClientError?) {
            do {
                _ = try client.specialize(
                    Specialize(
                        model: model, target: target, budgets: budgets,
                        strategy: strategy, dtype: .f32, shuffle: false, deadlineMs: 0,
                        noWeights: true))
                return (nil, nil)
            } catch let error as ClientError {
                return (error.code, error)
            } catch {
                return (nil, nil)
            }
        }
        XCTAssertEqual(code("missing").0, .unknownModel)
        XCTAssertEqual(code("test", "tpu").0, .unknownTarget)
        XCTAssertEqual(code("test", "analytic", "annealing").0, .unknownStrategy)
        for value in [-1.0, 0, .nan, .infinity] {
            XCTAssertEqual(code(budgets: [Budget(.macs, value)]).0, .invalidArgument, "budget \(value)")
        }
        XCTAssertEqual(code(budgets: []).0, .invalidArgument)
        let (infeasible, error) = code(budgets: [Budget(.macs, 1000)])
        XCTAssertEqual(infeasible, .infeasibleBudget)
        let smallest = Double(SearchSpace.fmnistMBV3.costs(for: SearchSpace.fmnistMBV3.smallest).macs)
        XCTAssertEqual(error?.infeasible?.smallestAchievable, smallest)
        XCTAssertTrue(error?.message.contains("\(Int(smallest))") ?? false, error?.message ?? "")
        XCTAssertGreaterThan(try client.ping(), 0)
    }

    func testClientsThatVanishOrNeverReadDoNotStopTheOthers() throws {
        try harness.start()
        let request = Specialize(
            model: "test", target: "analytic", budgets: [Budget(.macs, 24_000_000)],
            strategy: "", dtype: .f32, shuffle: false, deadlineMs: 0, noWeights: false)
        for _ in 0..<3 {
            let vanishing = try RawConnection(harness.socket)
            try vanishing.send(hello(), id: 1)
            _ = try vanishing.frame(for: 1)
            try vanishing.send(request, id: 2)
        }
        let slow = try RawConnection(harness.socket)
        try slow.send(hello(), id: 1)
        _ = try slow.frame(for: 1)
        for id in 2..<10 {
            try slow.send(request, id: UInt32(id))
        }
        let witness = try harness.client()
        for _ in 0..<5 {
            let reply = try witness.specialize(request)
            XCTAssertFalse(reply.tensors.isEmpty)
        }
        XCTAssertGreaterThan(try witness.ping(), 0)
        XCTAssertTrue(harness.process?.isRunning ?? false)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var messages: [String] = []
    var count: Int { lock.withLock { messages.count } }

    func increment(_ message: String) {
        lock.withLock { messages.append(message) }
    }
}

final class LockedSet: @unchecked Sendable {
    private let lock = NSLock()
    private var values: Set<String> = []
    var count: Int { lock.withLock { values.count } }

    func insert(_ value: String) {
        _ = lock.withLock { values.insert(value) }
    }
}
