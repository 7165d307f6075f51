import Foundation
import Training
import XCTest

final class MetricsLogTests: XCTestCase {
    private func records(_ path: String) throws -> [(line: String, object: [String: Any])] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"))
        return try text.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (String(line), try XCTUnwrap(object))
        }
    }

    func testLinesParseKeepKeyOrderAndAppend() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("metrics.jsonl")
        var log: MetricsLog? = try MetricsLog(path: path)
        try log?.append(["epoch": 1, "train_loss": 0.6931, "lr": 1e-5, "phase": "full \"net\"\n", "ok": true])
        try log?.append(["epoch": 2, "train_loss": .double(.nan), "stage_acc": [0.5, 0.75], "note": nil])
        log = nil
        let reopened = try MetricsLog(path: path)
        let table: [String: MetricValue] = ["zeta": 1, "alpha": 2]
        try reopened.append(sortingKeys: table)
        let lines = try records(path)
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].line.hasPrefix("{\"epoch\":1,\"train_loss\":0.6931,\"lr\":1e-05,"), lines[0].line)
        XCTAssertEqual(lines[0].object["phase"] as? String, "full \"net\"\n")
        XCTAssertEqual(lines[0].object["ok"] as? Bool, true)
        XCTAssertEqual(lines[0].object["lr"] as? Double, 1e-5)
        XCTAssertTrue(lines[1].object["train_loss"] is NSNull)
        XCTAssertEqual(lines[1].object["stage_acc"] as? [Double], [0.5, 0.75])
        XCTAssertEqual(lines[2].line, "{\"alpha\":2,\"zeta\":1}")
    }

    func testControlCharactersAndTruncate() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("m.jsonl")
        try MetricsLog(path: path).append(["old": 1])
        let log = try MetricsLog(path: path, truncate: true)
        try log.append(["text": .string("tab\tbell\u{07}é")])
        let lines = try records(path)
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(lines[0].object["text"] as? String, "tab\tbell\u{07}é")
        log.close()
        XCTAssertThrowsError(try log.append(["x": 1]))
    }

    func testOpenFailureSaysWhere() {
        XCTAssertThrowsError(try MetricsLog(path: "/nonexistent/dir/m.jsonl")) { error in
            XCTAssertEqual((error as? MetricsLogError)?.path, "/nonexistent/dir/m.jsonl")
        }
    }
}
