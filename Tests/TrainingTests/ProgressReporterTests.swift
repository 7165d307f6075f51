@testable import Training
import Engine
import Foundation
import XCTest

final class ProgressReporterTests: XCTestCase {
    /// A clock the test moves by hand.
    private final class FakeClock {
        var now = 100.0
    }

    private func output(of path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    func testPlainLinesAreThrottledAndEpochsSummarized() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("progress.log")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        let clock = FakeClock()
        let reporter = ProgressReporter(
            fileDescriptor: descriptor, style: .plain, plainInterval: 10, clock: { clock.now })
        XCTAssertEqual(reporter.style, .plain)
        var evaluated = 0
        func metrics() -> KeyValuePairs<String, Double> {
            evaluated += 1
            return ["loss": 0.4312, "lr": 0.01]
        }
        reporter.startEpoch(2, of: 20, steps: 100)
        for step in 1...100 {
            clock.now += 1
            reporter.update(step: step, images: 128, metrics: metrics())
        }
        reporter.finishEpoch(metrics: ["val_acc": 0.8875])
        let lines = try output(of: path).split(separator: "\n")
        XCTAssertEqual(lines.count, 11, "\(lines)")
        XCTAssertEqual(evaluated, 10, "metrics are only computed for drawn lines")
        XCTAssertEqual(lines[0], "epoch 3/20 step 10/100 (10%)  128 img/s  ETA 1:30  loss 0.4312  lr 0.01")
        XCTAssertEqual(lines[10], "epoch 3/20 done in 1:40, 128 img/s  val_acc 0.8875")
        XCTAssertFalse(try output(of: path).contains("\r"))
    }

    func testTerminalStyleRedrawsOneLine() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("tty.log")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        let clock = FakeClock()
        let reporter = ProgressReporter(
            fileDescriptor: descriptor, style: .terminal, redrawInterval: 0.25, clock: { clock.now })
        reporter.startEpoch(0, of: 1, steps: 40)
        for step in 1...40 {
            clock.now += 0.125
            reporter.update(step: step, images: 256, metrics: ["loss": 1.5])
        }
        reporter.message("checkpoint saved")
        reporter.finishEpoch()
        let text = try output(of: path)
        let redraws = text.components(separatedBy: "\r").count - 1
        XCTAssertEqual(redraws, 20, "every other step at 0.125 s per step")
        XCTAssertTrue(text.contains("epoch 1/1 [" + String(repeating: "█", count: 15)), text)
        XCTAssertTrue(text.contains("\u{1B}[K"))
        XCTAssertTrue(text.contains("40/40  2,048 img/s  ETA 0:00  loss 1.5"), text)
        XCTAssertTrue(text.hasSuffix("\u{1B}[K\ncheckpoint saved\nepoch 1/1 done in 0:05, 2,048 img/s\n"), text)
    }

    func testFormatting() {
        XCTAssertEqual(ProgressReporter.integer(12_345.4), "12,345")
        XCTAssertEqual(ProgressReporter.integer(999), "999")
        XCTAssertEqual(ProgressReporter.integer(1_000_000), "1,000,000")
        XCTAssertEqual(ProgressReporter.duration(65), "1:05")
        XCTAssertEqual(ProgressReporter.duration(3_725), "1:02:05")
        XCTAssertEqual(ProgressReporter.duration(.infinity), "?")
        XCTAssertEqual(ProgressReporter.number(0.000012345), "1.234e-05")
    }
}
