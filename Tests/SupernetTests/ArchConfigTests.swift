import Engine
import XCTest
@testable import Supernet

final class ArchConfigTests: XCTestCase {
    let space = SearchSpace.fmnistMBV3

    func testParsesTheDocumentedForm() throws {
        let json = #"{"r":24,"d":[2,3,4],"k":[3,5,7,7,3,5,7,3,5,7,3,5],"e":[3,4,6,6,3,4,6,3,4,6,3,4]}"#
        let arch = try ArchConfig(json: json, space: space)
        XCTAssertEqual(arch.resolution, 24)
        XCTAssertEqual(arch.depths, [2, 3, 4])
        XCTAssertEqual(arch.kernels[1], 5)
        XCTAssertEqual(arch.expandRatios[2], 6)
    }

    func testRejectsBadFieldsNamingThemAndTheAllowedValues() {
        let cases: [(String, String, String)] = [
            (#"{"r":28,"d":[9,9,9]}"#, "d[0]", "2, 3, 4"),
            (#"{"r":27,"d":[2,2,2],"k":[],"e":[]}"#, "r", "20, 24, 28"),
            (#"{"r":28,"d":[2,2],"k":[],"e":[]}"#, "d", "one per stage"),
            (#"{"r":28,"d":[4,4,4],"k":[3,3,3,3,3,3,3,3,3,3,3,4],"e":[3,3,3,3,3,3,3,3,3,3,3,3]}"#, "k[11]", "3, 5, 7"),
            (#"{"r":28,"d":[4,4,4],"k":[3,3,3,3,3,3,3,3,3,3,3,3],"e":[3,3,3,3,3,3,3,3,3,3,3]}"#, "e", "needs 12"),
            (#"{"r":28,"d":[2,2,2],"k":[3,3,3,3,3,3,3,3,3,3,3,3]}"#, "e", "missing"),
            (#"{"r":true,"d":[2,2,2],"k":[],"e":[]}"#, "r", "integer"),
            (#"{"r":28.5,"d":[2,2,2],"k":[],"e":[]}"#, "r", "integer"),
            (#"{"r":28,"x":1}"#, "x", "not an arch field"),
            ("[1,2]", "arch", "JSON object"),
        ]
        for (json, field, hint) in cases {
            XCTAssertThrowsError(try ArchConfig(json: json, space: space), json) { error in
                guard let error = error as? ArchError else {
                    return XCTFail("\(json): unexpected error \(error)")
                }
                XCTAssertEqual(error.field, field, json)
                XCTAssertTrue(error.description.contains(hint), "\(json): \(error)")
            }
        }
    }

    func testInactiveSlotsAreNormalizedAwayInCanonicalFormAndDigest() throws {
        var a = space.largest
        a.depths = [2, 4, 3]
        var b = a
        b.kernels[2] = 3  // stage 0, slot 2: inactive at depth 2
        b.expandRatios[3] = 3  // stage 0, slot 3: inactive
        b.kernels[11] = 5  // stage 2, slot 3: inactive at depth 3
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.canonical(maxDepth: 4), b.canonical(maxDepth: 4))
        XCTAssertEqual(a.digest(maxDepth: 4), b.digest(maxDepth: 4))
        XCTAssertEqual(a.canonical(maxDepth: 4).kernels[2], 0)
        var c = a
        c.kernels[0] = 3  // active slot: a different subnet
        XCTAssertNotEqual(a.digest(maxDepth: 4), c.digest(maxDepth: 4))
        XCTAssertEqual(a.digest(maxDepth: 4).count, 64)
        let reparsed = try ArchConfig(json: a.canonical(maxDepth: 4).json, space: space)
        XCTAssertEqual(reparsed, a.canonical(maxDepth: 4))
    }

    func testSamplesAreValidAndCoverTheChoices() throws {
        var random = SeededRandom(seed: 5)
        var kernels = Set<Int>()
        var resolutions = Set<Int>()
        for _ in 0..<200 {
            let arch = space.sample(&random)
            try arch.validate(in: space)
            kernels.formUnion(arch.kernels)
            resolutions.insert(arch.resolution)
        }
        XCTAssertEqual(kernels, Set(space.kernels))
        XCTAssertEqual(resolutions, Set(space.resolutions))
    }
}
