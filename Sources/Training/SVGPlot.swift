// Dependency-free SVG charts: line charts for training curves, scatter charts for accuracy against MACs.
import Engine
import Foundation

/// A point of a chart.
public struct PlotPoint: Sendable, Equatable {
    /// Horizontal value.
    public var x: Double
    /// Vertical value.
    public var y: Double

    /// Creates a point.
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A named set of points drawn in one colour.
public struct PlotSeries: Sendable {
    /// Legend name; an empty name keeps the series out of the legend.
    public var name: String
    /// The points, in drawing order (line charts join them in this order).
    public var points: [PlotPoint]
    /// A CSS colour, or nil for the next palette colour.
    public var color: String?

    /// Creates a series from points.
    public init(name: String, points: [PlotPoint], color: String? = nil) {
        self.name = name
        self.points = points
        self.color = color
    }

    /// Creates a series from parallel x and y arrays (the longer one is cut to the shorter).
    public init(name: String, x: [Double], y: [Double], color: String? = nil) {
        self.init(name: name, points: zip(x, y).map { PlotPoint(x: $0, y: $1) }, color: color)
    }

    /// Creates a series whose x values are 1, 2, 3, … (e.g. per-epoch values).
    public init(name: String, values: [Double], color: String? = nil) {
        self.init(name: name, x: values.indices.map { Double($0 + 1) }, y: values, color: color)
    }
}

/// How tick labels are written.
public enum AxisFormat: Sendable {
    /// Plain decimals, switching to SI suffixes (k, M, G) from 10,000 on.
    case automatic
    /// Always SI suffixes (k, M, G, T) where they apply: 150M.
    case si
    /// Values are fractions shown as percentages: 0.9 → 90%.
    case percent
}

/// A failure to write a chart file.
public struct PlotError: Error, Sendable, CustomStringConvertible {
    /// The output file.
    public let path: String
    /// What went wrong and what to do.
    public let message: String

    /// "path: message".
    public var description: String { "\(path): \(message)" }
}

/// A line chart: several named series joined by lines, with nice axes, a legend and titles.
public struct LineChart: Sendable {
    /// Title above the chart.
    public var title: String
    /// Horizontal axis title.
    public var xTitle: String
    /// Vertical axis title.
    public var yTitle: String
    /// The series.
    public var series: [PlotSeries]
    /// Fixed vertical range, or nil to fit the data. Points outside are clipped.
    public var yRange: ClosedRange<Double>?
    /// Tick label format of the horizontal axis.
    public var xFormat: AxisFormat
    /// Tick label format of the vertical axis.
    public var yFormat: AxisFormat
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int

    /// Creates a chart.
    public init(
        title: String, xTitle: String, yTitle: String, series: [PlotSeries], yRange: ClosedRange<Double>? = nil,
        xFormat: AxisFormat = .automatic, yFormat: AxisFormat = .automatic, width: Int = 760, height: Int = 440
    ) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
        self.yRange = yRange
        self.xFormat = xFormat
        self.yFormat = yFormat
        self.width = width
        self.height = height
    }

    /// The chart as an SVG document.
    public func svg() -> String {
        var frame = PlotFrame(
            width: width, height: height, title: title, xTitle: xTitle, yTitle: yTitle, series: series,
            marker: .line, extraLegend: [], yRange: yRange, xFormat: xFormat, yFormat: yFormat)
        for (index, one) in series.enumerated() {
            let color = frame.color(of: index)
            let runs = finiteRuns(one.points)
            for run in runs {
                let coordinates = run.map { frame.position($0) }.map { "\(svgNumber($0.0)),\(svgNumber($0.1))" }
                if run.count > 1 {
                    frame.plot +=
                        "<polyline points=\"\(coordinates.joined(separator: " "))\" fill=\"none\" "
                        + "stroke=\"\(escapeXML(color))\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n"
                }
            }
            let finiteCount = runs.reduce(0) { $0 + $1.count }
            if finiteCount <= 40 {
                for point in runs.joined() {
                    let (x, y) = frame.position(point)
                    frame.plot +=
                        "<circle cx=\"\(svgNumber(x))\" cy=\"\(svgNumber(y))\" r=\"2.5\" "
                        + "fill=\"\(escapeXML(color))\"/>\n"
                }
            }
        }
        return frame.document()
    }

    /// Writes the SVG document to `path`.
    public func write(to path: String) throws(PlotError) {
        try writeDocument(svg(), to: path)
    }

    /// The points split where a coordinate is not finite (NaN losses leave a gap instead of a wild line).
    private func finiteRuns(_ points: [PlotPoint]) -> [[PlotPoint]] {
        var runs: [[PlotPoint]] = [[]]
        for point in points {
            if point.x.isFinite && point.y.isFinite {
                runs[runs.count - 1].append(point)
            } else if !runs[runs.count - 1].isEmpty {
                runs.append([])
            }
        }
        return runs.filter { !$0.isEmpty }
    }
}

/// A scatter chart, e.g. accuracy against MACs of sampled subnets, with an optional Pareto front.
public struct ScatterChart: Sendable {
    /// Title above the chart.
    public var title: String
    /// Horizontal axis title.
    public var xTitle: String
    /// Vertical axis title.
    public var yTitle: String
    /// The series, each in its own colour.
    public var series: [PlotSeries]
    /// Draw the front of points no other point beats (smaller or equal x with larger y) over all series.
    public var paretoFront: Bool
    /// Tick label format of the horizontal axis.
    public var xFormat: AxisFormat
    /// Tick label format of the vertical axis.
    public var yFormat: AxisFormat
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int

    /// Creates a chart.
    public init(
        title: String, xTitle: String, yTitle: String, series: [PlotSeries], paretoFront: Bool = false,
        xFormat: AxisFormat = .automatic, yFormat: AxisFormat = .automatic, width: Int = 760, height: Int = 440
    ) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
        self.paretoFront = paretoFront
        self.xFormat = xFormat
        self.yFormat = yFormat
        self.width = width
        self.height = height
    }

    /// The points of the Pareto front (lower x and higher y are better), by increasing x.
    public static func paretoFront(of points: [PlotPoint]) -> [PlotPoint] {
        let sorted = points.filter { $0.x.isFinite && $0.y.isFinite }.sorted {
            $0.x != $1.x ? $0.x < $1.x : $0.y > $1.y
        }
        var front: [PlotPoint] = []
        for point in sorted where front.last.map({ point.y > $0.y }) ?? true {
            front.append(point)
        }
        return front
    }

    /// The chart as an SVG document.
    public func svg() -> String {
        let frontColor = "#111827"
        var frame = PlotFrame(
            width: width, height: height, title: title, xTitle: xTitle, yTitle: yTitle, series: series,
            marker: .dot, extraLegend: paretoFront ? [("Pareto front", frontColor)] : [], yRange: nil,
            xFormat: xFormat, yFormat: yFormat)
        for (index, one) in series.enumerated() {
            let color = escapeXML(frame.color(of: index))
            for point in one.points where point.x.isFinite && point.y.isFinite {
                let (x, y) = frame.position(point)
                frame.plot +=
                    "<circle cx=\"\(svgNumber(x))\" cy=\"\(svgNumber(y))\" r=\"3.5\" fill=\"\(color)\" "
                    + "fill-opacity=\"0.75\" stroke=\"white\" stroke-width=\"0.6\"/>\n"
            }
        }
        if paretoFront {
            let front = Self.paretoFront(of: series.flatMap(\.points))
            let coordinates = front.map { frame.position($0) }.map { "\(svgNumber($0.0)),\(svgNumber($0.1))" }
            if front.count > 1 {
                frame.plot +=
                    "<polyline points=\"\(coordinates.joined(separator: " "))\" fill=\"none\" "
                    + "stroke=\"\(frontColor)\" stroke-width=\"1.8\" stroke-dasharray=\"6 3\"/>\n"
            }
            for (x, y) in front.map({ frame.position($0) }) {
                frame.plot +=
                    "<circle cx=\"\(svgNumber(x))\" cy=\"\(svgNumber(y))\" r=\"4.5\" fill=\"none\" "
                    + "stroke=\"\(frontColor)\" stroke-width=\"1.4\"/>\n"
            }
        }
        return frame.document()
    }

    /// Writes the SVG document to `path`.
    public func write(to path: String) throws(PlotError) {
        try writeDocument(svg(), to: path)
    }
}

/// Tick positions for chart axes.
public enum NiceTicks {
    /// Round tick values (steps of 1, 2 or 5 × 10^k) covering lower...upper with about `target` intervals.
    ///
    /// The first tick is at or below `lower` and the last at or above `upper`; a degenerate or non-finite range
    /// is widened first.
    public static func ticks(lower: Double, upper: Double, target: Int = 6) -> (values: [Double], step: Double) {
        var lower = lower.isFinite ? lower : 0
        var upper = upper.isFinite ? upper : 1
        if lower > upper {
            swap(&lower, &upper)
        }
        if upper - lower < max(abs(upper), abs(lower), 1e-300) * 1e-12 {
            let pad = lower == 0 ? 1 : abs(lower) * 0.1
            lower -= pad
            upper += pad
        }
        let rough = (upper - lower) / Double(max(target, 1))
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let fraction = rough / magnitude
        let factor: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        let step = factor * magnitude
        // The tolerance keeps a bound that is a multiple of the step (up to rounding) from adding a tick.
        let first = (lower / step + 1e-9).rounded(.down)
        let last = (upper / step - 1e-9).rounded(.up)
        let values = stride(from: first, through: last, by: 1).map { $0 * step }
        return (values, step)
    }

    /// Tick labels with as many decimals as the step needs, in the given format.
    public static func labels(_ values: [Double], step: Double, format: AxisFormat) -> [String] {
        let largest = values.map(abs).max() ?? 0
        var scale = 1.0
        var suffix = ""
        switch format {
        case .percent:
            scale = 0.01
            suffix = "%"
        case .si, .automatic:
            let units: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
            let threshold = format == .si ? 1.0 : 10.0
            if let unit = units.first(where: { largest >= $0.0 * threshold }) {
                (scale, suffix) = unit
            }
        }
        let scaledStep = step / scale
        var decimals = max(0, Int((-log10(scaledStep)).rounded(.up)))
        while decimals < 10 {
            let shifted = scaledStep * pow(10, Double(decimals))
            if abs(shifted - shifted.rounded()) < 1e-6 * max(1, shifted) {
                break
            }
            decimals += 1
        }
        return values.map { value in
            var text = String(format: "%.\(decimals)f", value / scale)
            if text.hasPrefix("-") && Double(text) == 0 {
                text.removeFirst()
            }
            return text + suffix
        }
    }
}

/// The frame shared by the charts: layout, scales, grid, axes, titles and legend around the plotted marks.
private struct PlotFrame {
    /// How the series are shown in the legend (extra entries are always lines).
    enum Marker {
        case line
        case dot
    }

    static let palette = [
        "#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563", "#65a30d",
        "#92400e",
    ]

    let width: Double
    let height: Double
    let title: String
    let xTitle: String
    let yTitle: String
    let series: [PlotSeries]
    let legend: [(String, String)]
    let marker: Marker
    let seriesInLegend: Int
    let left: Double
    let right: Double
    let top: Double
    let bottom: Double
    let xTicks: (values: [Double], step: Double)
    let yTicks: (values: [Double], step: Double)
    let xFormat: AxisFormat
    let yFormat: AxisFormat
    /// Data values at the plot area's left and right edges.
    let xScaleRange: (Double, Double)
    /// Data values at the plot area's bottom and top edges.
    let yScaleRange: (Double, Double)
    /// The marks, drawn inside the plot area's clip.
    var plot = ""

    init(
        width: Int, height: Int, title: String, xTitle: String, yTitle: String, series: [PlotSeries],
        marker: Marker, extraLegend: [(String, String)], yRange: ClosedRange<Double>?, xFormat: AxisFormat,
        yFormat: AxisFormat
    ) {
        self.width = Double(width)
        self.height = Double(height)
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
        self.xFormat = xFormat
        self.yFormat = yFormat
        var legend: [(String, String)] = []
        for (index, one) in series.enumerated() where !one.name.isEmpty {
            legend.append((one.name, one.color ?? Self.palette[index % Self.palette.count]))
        }
        self.legend = legend + extraLegend
        self.marker = marker
        seriesInLegend = legend.count
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = points.map(\.x)
        let ys = points.map(\.y)
        xTicks = NiceTicks.ticks(lower: xs.min() ?? 0, upper: xs.max() ?? 1, target: 7)
        if let yRange {
            let ticks = NiceTicks.ticks(lower: yRange.lowerBound, upper: yRange.upperBound, target: 6)
            let inside = ticks.values.filter { $0 >= yRange.lowerBound - 1e-9 && $0 <= yRange.upperBound + 1e-9 }
            yTicks = (inside, ticks.step)
        } else {
            yTicks = NiceTicks.ticks(lower: ys.min() ?? 0, upper: ys.max() ?? 1, target: 6)
        }
        let yLabels = NiceTicks.labels(yTicks.values, step: yTicks.step, format: yFormat)
        // TODO: text widths are guessed at about 7 px per character (no font metrics), so very long legend
        // names are cut at the right edge and labels in wide scripts may overlap the axis.
        let longestLabel = Double(yLabels.map(\.count).max() ?? 1)
        let longestName = Double(self.legend.map(\.0.count).max() ?? 0)
        left = 34 + longestLabel * 7.2
        right = self.width - (self.legend.isEmpty ? 24 : min(220, 44 + longestName * 7))
        top = title.isEmpty ? 20 : 44
        bottom = self.height - 54
        if let yRange {
            yScaleRange = (yRange.lowerBound, yRange.upperBound)
        } else {
            yScaleRange = (yTicks.values.first ?? 0, yTicks.values.last ?? 1)
        }
        xScaleRange = (xTicks.values.first ?? 0, xTicks.values.last ?? 1)
    }

    func color(of index: Int) -> String {
        series[index].color ?? Self.palette[index % Self.palette.count]
    }

    /// Pixel position of a data point.
    func position(_ point: PlotPoint) -> (Double, Double) {
        let (x0, x1) = xScaleRange
        let (y0, y1) = yScaleRange
        let x = left + (point.x - x0) / (x1 - x0) * (right - left)
        let y = bottom - (point.y - y0) / (y1 - y0) * (bottom - top)
        return (x, y)
    }

    func document() -> String {
        var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        svg +=
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" "
            + "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#111827\">\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
        svg +=
            "<defs><clipPath id=\"plot-area\"><rect x=\"\(svgNumber(left))\" y=\"\(svgNumber(top))\" "
            + "width=\"\(svgNumber(right - left))\" height=\"\(svgNumber(bottom - top))\"/></clipPath></defs>\n"
        svg += axes()
        svg += "<g clip-path=\"url(#plot-area)\">\n" + plot + "</g>\n"
        svg += titles()
        svg += legendBox()
        return svg + "</svg>\n"
    }

    private func axes() -> String {
        var svg = "<g stroke=\"#e5e7eb\" stroke-width=\"1\">\n"
        let xLabels = NiceTicks.labels(xTicks.values, step: xTicks.step, format: xFormat)
        let yLabels = NiceTicks.labels(yTicks.values, step: yTicks.step, format: yFormat)
        for value in xTicks.values {
            let x = svgNumber(position(PlotPoint(x: value, y: 0)).0)
            svg += "<line x1=\"\(x)\" y1=\"\(svgNumber(top))\" x2=\"\(x)\" y2=\"\(svgNumber(bottom))\"/>\n"
        }
        for value in yTicks.values {
            let y = svgNumber(position(PlotPoint(x: 0, y: value)).1)
            svg += "<line x1=\"\(svgNumber(left))\" y1=\"\(y)\" x2=\"\(svgNumber(right))\" y2=\"\(y)\"/>\n"
        }
        svg += "</g>\n"
        svg +=
            "<rect x=\"\(svgNumber(left))\" y=\"\(svgNumber(top))\" width=\"\(svgNumber(right - left))\" "
            + "height=\"\(svgNumber(bottom - top))\" fill=\"none\" stroke=\"#374151\" stroke-width=\"1\"/>\n"
        svg += "<g font-size=\"11\" fill=\"#374151\">\n"
        for (value, label) in zip(xTicks.values, xLabels) {
            let x = svgNumber(position(PlotPoint(x: value, y: 0)).0)
            svg +=
                "<line x1=\"\(x)\" y1=\"\(svgNumber(bottom))\" x2=\"\(x)\" y2=\"\(svgNumber(bottom + 5))\" "
                + "stroke=\"#374151\"/>\n"
            svg +=
                "<text x=\"\(x)\" y=\"\(svgNumber(bottom + 18))\" text-anchor=\"middle\">"
                + "\(escapeXML(label))</text>\n"
        }
        for (value, label) in zip(yTicks.values, yLabels) {
            let y = position(PlotPoint(x: 0, y: value)).1
            svg +=
                "<line x1=\"\(svgNumber(left - 5))\" y1=\"\(svgNumber(y))\" x2=\"\(svgNumber(left))\" "
                + "y2=\"\(svgNumber(y))\" stroke=\"#374151\"/>\n"
            svg +=
                "<text x=\"\(svgNumber(left - 8))\" y=\"\(svgNumber(y + 4))\" text-anchor=\"end\">"
                + "\(escapeXML(label))</text>\n"
        }
        return svg + "</g>\n"
    }

    private func titles() -> String {
        var svg = ""
        let centreX = svgNumber((left + right) / 2)
        if !title.isEmpty {
            svg +=
                "<text x=\"\(centreX)\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
                + "\(escapeXML(title))</text>\n"
        }
        if !xTitle.isEmpty {
            svg +=
                "<text x=\"\(centreX)\" y=\"\(svgNumber(height - 14))\" text-anchor=\"middle\" font-size=\"13\">"
                + "\(escapeXML(xTitle))</text>\n"
        }
        if !yTitle.isEmpty {
            let centreY = svgNumber((top + bottom) / 2)
            svg +=
                "<text x=\"18\" y=\"\(centreY)\" text-anchor=\"middle\" font-size=\"13\" "
                + "transform=\"rotate(-90 18 \(centreY))\">\(escapeXML(yTitle))</text>\n"
        }
        return svg
    }

    private func legendBox() -> String {
        guard !legend.isEmpty else { return "" }
        let x = right + 14
        var svg = "<g font-size=\"12\">\n"
        for (row, (name, color)) in legend.enumerated() {
            let y = top + 10 + Double(row) * 20
            if marker == .dot && row < seriesInLegend {
                svg +=
                    "<circle cx=\"\(svgNumber(x + 9))\" cy=\"\(svgNumber(y))\" r=\"4\" "
                    + "fill=\"\(escapeXML(color))\"/>\n"
            } else {
                svg +=
                    "<line x1=\"\(svgNumber(x))\" y1=\"\(svgNumber(y))\" x2=\"\(svgNumber(x + 18))\" "
                    + "y2=\"\(svgNumber(y))\" stroke=\"\(escapeXML(color))\" stroke-width=\"3\"/>\n"
            }
            svg += "<text x=\"\(svgNumber(x + 24))\" y=\"\(svgNumber(y + 4))\">\(escapeXML(name))</text>\n"
        }
        return svg + "</g>\n"
    }
}

/// A coordinate with at most two decimals, without exponent notation.
private func svgNumber(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    var text = String(format: "%.2f", value)
    while text.hasSuffix("0") {
        text.removeLast()
    }
    if text.hasSuffix(".") {
        text.removeLast()
    }
    return text == "-0" ? "0" : text
}

/// `text` with the five XML special characters escaped (also safe inside attribute values).
func escapeXML(_ text: String) -> String {
    var out = ""
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(character)
        }
    }
    return out
}

private func writeDocument(_ svg: String, to path: String) throws(PlotError) {
    do {
        try svg.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        throw PlotError(
            path: path, message: "cannot write the chart (\(error.localizedDescription)); check the directory")
    }
}
