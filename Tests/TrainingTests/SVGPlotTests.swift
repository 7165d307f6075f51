import Engine
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Training
import XCTest

/// Counts elements by name, and collects text, while checking that the document parses.
private final class SVGInspector: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var texts: [String] = []
    var root = ""
    private var currentText = ""

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if root.isEmpty {
            root = name
        }
        counts[name, default: 0] += 1
        currentText = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        currentText += string
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" {
            texts.append(currentText)
        }
    }
}

final class SVGPlotTests: XCTestCase {
    private func inspect(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> SVGInspector {
        let parser = XMLParser(data: Data(svg.utf8))
        let inspector = SVGInspector()
        parser.delegate = inspector
        XCTAssertTrue(
            parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))",
            file: file, line: line)
        XCTAssertEqual(inspector.root, "svg", file: file, line: line)
        return inspector
    }

    static func sampleLineChart() -> LineChart {
        let epochs = 30
        var loss: [Double] = []
        var validation: [Double] = []
        for epoch in 0..<epochs {
            let t = Double(epoch)
            loss.append(2.3 * exp(-t / 8) + 0.25)
            validation.append(epoch == 12 ? Double.nan : 2.3 * exp(-t / 9) + 0.32)
        }
        return LineChart(
            title: "Supernet training <stage 2 & 3>", xTitle: "epoch", yTitle: "cross-entropy loss",
            series: [PlotSeries(name: "train", values: loss), PlotSeries(name: "validation", values: validation)])
    }

    static func sampleScatterChart() -> ScatterChart {
        var random = SeededRandom(seed: 4)
        var series: [PlotSeries] = []
        for (name, base) in [("kernel 3", 0.86), ("kernel 5", 0.875), ("kernel 7", 0.88)] {
            var points: [PlotPoint] = []
            for _ in 0..<40 {
                let macs = 40e6 + Double(random.nextUnitFloat()) * 260e6
                let accuracy = base + 0.04 * log(macs / 40e6) / log(7.5) - 0.02 * Double(random.nextUnitFloat())
                points.append(PlotPoint(x: macs, y: accuracy))
            }
            series.append(PlotSeries(name: name, points: points))
        }
        return ScatterChart(
            title: "Sampled subnets", xTitle: "MACs", yTitle: "top-1 accuracy", series: series, paretoFront: true,
            xFormat: .si, yFormat: .percent)
    }

    func testLineChartParsesAndHasOneLinePerRun() {
        let inspector = inspect(Self.sampleLineChart().svg())
        // The NaN at epoch 13 splits the validation line in two.
        XCTAssertEqual(inspector.counts["polyline"], 3)
        XCTAssertTrue(inspector.texts.contains("Supernet training <stage 2 & 3>"))
        XCTAssertTrue(inspector.texts.contains("train"))
        XCTAssertTrue(inspector.texts.contains("validation"))
        XCTAssertTrue(inspector.texts.contains("cross-entropy loss"))
        XCTAssertTrue(inspector.texts.contains("30"), "x ticks should reach the last epoch: \(inspector.texts)")
    }

    func testScatterChartParsesWithFront() {
        let chart = Self.sampleScatterChart()
        let inspector = inspect(chart.svg())
        let front = ScatterChart.paretoFront(of: chart.series.flatMap(\.points))
        XCTAssertEqual(inspector.counts["circle"], 120 + front.count + 3, "points, front rings, legend dots")
        XCTAssertEqual(inspector.counts["polyline"], 1)
        XCTAssertTrue(inspector.texts.contains("Pareto front"))
        XCTAssertTrue(inspector.texts.contains { $0.hasSuffix("M") }, "\(inspector.texts)")
        XCTAssertTrue(inspector.texts.contains { $0.hasSuffix("%") }, "\(inspector.texts)")
        if let directory = ProcessInfo.processInfo.environment["SVG_SAMPLE_DIR"] {
            XCTAssertNoThrow(try chart.write(to: directory + "/scatter.svg"))
            XCTAssertNoThrow(try Self.sampleLineChart().write(to: directory + "/line.svg"))
        }
    }

    func testParetoFront() {
        let points = [
            PlotPoint(x: 1, y: 0.5), PlotPoint(x: 2, y: 0.4), PlotPoint(x: 2, y: 0.7), PlotPoint(x: 3, y: 0.6),
            PlotPoint(x: 4, y: 0.9), PlotPoint(x: 0.5, y: 0.1), PlotPoint(x: 5, y: .nan),
        ]
        XCTAssertEqual(
            ScatterChart.paretoFront(of: points),
            [
                PlotPoint(x: 0.5, y: 0.1), PlotPoint(x: 1, y: 0.5), PlotPoint(x: 2, y: 0.7), PlotPoint(x: 4, y: 0.9),
            ])
    }

    func testNiceTicks() {
        let unit = NiceTicks.ticks(lower: 0, upper: 0.93)
        XCTAssertEqual(unit.step, 0.2, accuracy: 1e-12)
        XCTAssertEqual(unit.values.count, 6)
        XCTAssertEqual(unit.values.last ?? 0, 1.0, accuracy: 1e-12)
        XCTAssertEqual(
            NiceTicks.labels(unit.values, step: unit.step, format: .automatic),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let macs = NiceTicks.ticks(lower: 42e6, upper: 298e6)
        XCTAssertEqual(macs.step, 50e6)
        XCTAssertEqual(
            NiceTicks.labels(macs.values, step: macs.step, format: .automatic),
            ["0M", "50M", "100M", "150M", "200M", "250M", "300M"])
        let loss = NiceTicks.ticks(lower: -0.013, upper: 0.021, target: 5)
        XCTAssertEqual(
            NiceTicks.labels(loss.values, step: loss.step, format: .automatic),
            ["-0.015", "-0.010", "-0.005", "0.000", "0.005", "0.010", "0.015", "0.020", "0.025"])
        XCTAssertEqual(NiceTicks.labels([0.85, 0.9], step: 0.05, format: .percent), ["85%", "90%"])
        let flat = NiceTicks.ticks(lower: 3, upper: 3)
        XCTAssertLessThan(flat.values.first ?? 3, 3)
        XCTAssertGreaterThan(flat.values.last ?? 3, 3)
    }

    func testEmptyChartIsStillValid() {
        let inspector = inspect(LineChart(title: "", xTitle: "", yTitle: "", series: []).svg())
        XCTAssertNil(inspector.counts["polyline"])
    }
}
