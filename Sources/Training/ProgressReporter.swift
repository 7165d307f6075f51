// The trainer's progress display on stderr: a redrawn bar on a terminal, throttled plain lines otherwise.
import Engine
import Dispatch
import Foundation

/// Shows training progress on a file descriptor (stderr by default).
///
/// On a terminal, one line is redrawn in place (at most every `redrawInterval` seconds) with a bar, the step, the
/// image rate, the epoch's ETA and the latest metrics. Otherwise (a log file, a pipe) a plain line is written at
/// most every `plainInterval` seconds. Every epoch ends with one summary line in both styles. `update` costs a
/// clock read and an addition unless it draws; the metrics are only evaluated when drawn. Use from one thread.
public final class ProgressReporter {
    /// How to draw.
    public enum Style: Sendable {
        /// `terminal` when the descriptor is a terminal, else `plain`.
        case automatic
        /// One line redrawn in place with a carriage return.
        case terminal
        /// Ordinary lines, throttled.
        case plain
    }

    /// The style in use (`automatic` resolved).
    public let style: Style
    private let fileDescriptor: Int32
    private let redrawInterval: Double
    private let plainInterval: Double
    private let clock: () -> Double
    private var epoch = 0
    private var epochs = 0
    private var steps = 0
    private var step = 0
    private var images = 0
    private var epochStart = 0.0
    private var lastDraw = 0.0
    private var lastDrawImages = 0
    private var lastDrawStep = 0
    private var imageRate = 0.0
    private var stepRate = 0.0
    private var lineOpen = false

    /// Creates a reporter writing to `fileDescriptor`; `clock` returns seconds (tests pass a fake one).
    public init(
        fileDescriptor: Int32 = 2, style: Style = .automatic, redrawInterval: Double = 0.1,
        plainInterval: Double = 10, clock: @escaping () -> Double = ProgressReporter.monotonicSeconds
    ) {
        self.fileDescriptor = fileDescriptor
        if style == .automatic {
            self.style = isatty(fileDescriptor) == 1 ? .terminal : .plain
        } else {
            self.style = style
        }
        self.redrawInterval = redrawInterval
        self.plainInterval = plainInterval
        self.clock = clock
    }

    /// Seconds since an arbitrary fixed point, from the monotonic clock.
    public static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
    }

    /// Starts epoch `epoch` (0-based) of `epochs`, which has `steps` steps.
    public func startEpoch(_ epoch: Int, of epochs: Int, steps: Int) {
        closeLine()
        self.epoch = epoch
        self.epochs = epochs
        self.steps = steps
        step = 0
        images = 0
        epochStart = clock()
        lastDraw = epochStart
        lastDrawImages = 0
        lastDrawStep = 0
        imageRate = 0
        stepRate = 0
    }

    /// Records that step `step` (1-based count of steps done) has finished, having processed `images` images.
    public func update(step: Int, images: Int, metrics: @autoclosure () -> KeyValuePairs<String, Double> = [:]) {
        self.step = step
        self.images += images
        let now = clock()
        let interval = style == .terminal ? redrawInterval : plainInterval
        guard now - lastDraw >= interval || (style == .terminal && step == steps) else { return }
        measureRates(now: now)
        draw(line(metrics: metrics()))
    }

    /// Ends the epoch with a summary line: duration, mean image rate and `metrics` (e.g. validation accuracy).
    public func finishEpoch(metrics: KeyValuePairs<String, Double> = [:]) {
        let elapsed = clock() - epochStart
        closeLine()
        let rate = elapsed > 0 ? Double(images) / elapsed : 0
        var text = "\(epochLabel) done in \(Self.duration(elapsed)), \(Self.integer(rate)) img/s"
        text += Self.metricsText(metrics)
        emit(text + "\n")
    }

    /// Writes a line of text without garbling the bar (which is redrawn at the next update).
    public func message(_ text: String) {
        closeLine()
        emit(text + "\n")
    }

    private var epochLabel: String { "epoch \(epoch + 1)/\(epochs)" }

    private func measureRates(now: Double) {
        let span = now - lastDraw
        if span > 0 {
            let images = Double(self.images - lastDrawImages) / span
            let steps = Double(step - lastDrawStep) / span
            let weight = imageRate == 0 ? 1.0 : min(1.0, span / 2)
            imageRate += weight * (images - imageRate)
            stepRate += weight * (steps - stepRate)
        }
        lastDraw = now
        lastDrawImages = self.images
        lastDrawStep = step
    }

    private func line(metrics: KeyValuePairs<String, Double>) -> String {
        let eta = stepRate > 0 ? Self.duration(Double(max(steps - step, 0)) / stepRate) : "?"
        let counts = "\(step)/\(steps)"
        let tail = "\(Self.integer(imageRate)) img/s  ETA \(eta)" + Self.metricsText(metrics)
        guard style == .terminal else {
            let percent = steps > 0 ? 100 * step / steps : 0
            return "\(epochLabel) step \(counts) (\(percent)%)  \(tail)"
        }
        // TODO: widths are counted in Characters, so East Asian wide characters or emoji in metric names make the
        // line wider than counted and it may wrap instead of being redrawn in place.
        let columns = terminalColumns()
        let fixed = epochLabel.count + counts.count + tail.count + 8
        let barWidth = max(10, min(30, columns - 1 - fixed))
        let filled = steps > 0 ? min(barWidth, barWidth * step / steps) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: barWidth - filled)
        let text = "\(epochLabel) [\(bar)] \(counts)  \(tail)"
        return text.count < columns ? text : String(text.prefix(max(columns - 1, 0)))
    }

    private func draw(_ text: String) {
        if style == .terminal {
            emit("\r" + text + "\u{1B}[K")
            lineOpen = true
        } else {
            emit(text + "\n")
        }
    }

    private func closeLine() {
        if lineOpen {
            emit("\n")
            lineOpen = false
        }
    }

    private func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(fileDescriptor, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 {
            return Int(size.ws_col)
        }
        return 100
    }

    /// Writes all of `text`, retrying short writes; failures are ignored (progress is not worth stopping for).
    private func emit(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    static func metricsText(_ metrics: KeyValuePairs<String, Double>) -> String {
        metrics.map { "  \($0.key) \(number($0.value))" }.joined()
    }

    /// Four significant digits: 0.4312, 0.01, 1.235e-05, 12.5.
    static func number(_ value: Double) -> String {
        String(format: "%.4g", value)
    }

    /// A whole number with thousands separators: 12,345.
    static func integer(_ value: Double) -> String {
        guard value.isFinite else { return "?" }
        let digits = String(Int(value.rounded()))
        var groups: [Substring] = []
        var end = digits.endIndex
        while end > digits.startIndex {
            let start = digits.index(end, offsetBy: -3, limitedBy: digits.startIndex) ?? digits.startIndex
            groups.insert(digits[start..<end], at: 0)
            end = start
        }
        return groups.joined(separator: ",")
    }

    /// "m:ss", or "h:mm:ss" from an hour on.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite && seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let tail = String(format: "%02d", secs)
        return hours > 0 ? "\(hours):" + String(format: "%02d", minutes) + ":" + tail : "\(minutes):" + tail
    }
}
