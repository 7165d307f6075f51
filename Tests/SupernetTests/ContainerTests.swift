import Engine
import Foundation
import SafeTensors
import XCTest
@testable import Supernet

final class ContainerTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "supernet-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testSupernetFileRoundTripsWeightsStatisticsAndManifest() throws {
        let space = SearchSpace.fmnistMBV3
        let network = perturbedSupernet(space, seed: 81)
        let pixels = randomPixels(20, space: space, seed: 82)
        var manifest = Manifest(space: space, normalization: .fashionMNIST)
        manifest.predictor = PredictorSummary(rmsePoints: 0.3, kendallTau: 0.8, samples: 1000)
        let path = directory + "/a.supernet"
        try SupernetFile(manifest: manifest, network: network, calibrationImages: pixels).write(to: path)

        let loaded = try SupernetFile(path: path)
        XCTAssertEqual(loaded.manifest.space, space)
        XCTAssertEqual(loaded.manifest.predictor, manifest.predictor)
        XCTAssertEqual(loaded.calibrationImages, pixels)
        XCTAssertEqual(loaded.calibrationCount, 20)
        for (a, b) in zip(network.parameters, loaded.network.parameters) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(a.value.array(), b.value.array(), a.name)
        }
        for (a, b) in zip(network.state, loaded.network.state) {
            XCTAssertEqual(a.buffer.array(), b.buffer.array(), a.name)
        }
    }

    func testWritingTwiceGivesTheSameBytes() throws {
        let network = ElasticSupernet(space: .fmnistMBV3, seed: 4)
        let file = SupernetFile(
            manifest: Manifest(space: .fmnistMBV3, normalization: .fashionMNIST),
            network: network)
        try file.write(to: directory + "/1.supernet")
        try file.write(to: directory + "/2.supernet")
        XCTAssertEqual(
            FileManager.default.contents(atPath: directory + "/1.supernet"),
            FileManager.default.contents(atPath: directory + "/2.supernet"))
    }

    func testAFileWhoseTensorsDoNotMatchItsSpaceIsRefused() throws {
        // Manifest says fmnist-mbv3, weights are the tiny space's.
        var writer = SafeTensorsWriter()
        for parameter in ElasticSupernet(space: tinySpace).parameters {
            try writer.add(name: parameter.name, floats: parameter.value.array(), shape: parameter.shape)
        }
        let manifest = try JSONEncoder().encode(Manifest(space: .fmnistMBV3, normalization: .fashionMNIST))
        writer.metadata = [
            "format": "supernet", "format_version": "1",
            "manifest": String(decoding: manifest, as: UTF8.self),
        ]
        let path = directory + "/bad.supernet"
        try writer.write(to: path)
        XCTAssertThrowsError(try SupernetFile(path: path)) { error in
            XCTAssertTrue("\(error)".contains("stem.conv.weight has shape"), "\(error)")
        }
    }

    func testAWrongFormatOrVersionIsRefusedWithAMessage() throws {
        for (metadata, expected) in [
            (["format": "other"], "not a supernet file"),
            (["format": "supernet", "format_version": "99"], "version 99"),
        ] {
            var writer = SafeTensorsWriter()
            writer.metadata = metadata
            let path = directory + "/m.supernet"
            try writer.write(to: path)
            XCTAssertThrowsError(try SupernetFile(path: path)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }

    func testSubnetFilesRoundTripAndRun() throws {
        let space = SearchSpace.fmnistMBV3
        var random = SeededRandom(seed: 90)
        let arch = space.sample(&random)
        let subnet = perturbedSupernet(space, seed: 91).extract(arch)
        let path = directory + "/s.safetensors"
        try subnet.write(to: path, normalization: .fashionMNIST)
        let (loaded, normalization) = try Subnet.read(path: path)
        XCTAssertEqual(normalization, .fashionMNIST)
        XCTAssertEqual(loaded.arch, arch.canonical(maxDepth: space.maxDepth))
        XCTAssertEqual(loaded.tensors.map(\.name), subnet.tensors.map(\.name))
        XCTAssertEqual(loaded.tensors.map(\.values), subnet.tensors.map(\.values))
        _ = try SubnetNetwork(loaded)
    }
}
