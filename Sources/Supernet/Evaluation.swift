import Engine

/// Labelled images as the model layer needs them: u8 pixels N × S × S × C and Int32 labels.
public struct LabelledImages: Sendable {
    /// Pixels, channels-last.
    public var pixels: [UInt8]
    /// Labels in 0..<classes.
    public var labels: [Int32]

    /// Number of images.
    public var count: Int { labels.count }

    /// Wraps pixels and labels (the pixel count must be a multiple of the label count).
    public init(pixels: [UInt8], labels: [Int32]) {
        self.pixels = pixels
        self.labels = labels
    }
}

extension SubnetNetwork {
    /// Fraction of `data` classified correctly, evaluated in batches of `batchSize`.
    public func accuracy(on data: LabelledImages, normalization: Normalization, batchSize: Int = 500) -> Double {
        guard data.count > 0 else {
            return 0
        }
        let pixels = data.pixels.count / data.count
        let workspace = InferenceWorkspace()
        let input = FloatBuffer(count: batchSize * pixels)
        var correct = 0
        // The logits live in the workspace: keep it alive across every use of the returned pointer.
        withExtendedLifetime(workspace) {
            data.pixels.withUnsafeBufferPointer { all in
                data.labels.withUnsafeBufferPointer { labels in
                    var start = 0
                    while start < data.count {
                        let n = min(batchSize, data.count - start)
                        normalization.apply(all.baseAddress! + start * pixels, count: n * pixels, into: input.pointer)
                        let logits = forward(input.pointer, batch: n, workspace: workspace)
                        correct += Loss.correctCount(
                            logits: logits, labels: labels.baseAddress! + start, batch: n,
                            classes: space.classes)
                        start += n
                    }
                }
            }
        }
        return Double(correct) / Double(data.count)
    }
}

extension SupernetFile {
    /// Cuts out `arch`; recalibrates BatchNorm on the stored calibration images when asked and when the
    /// file has any (else on `fallbackCalibration` when given).
    public func subnet(
        _ arch: ArchConfig, recalibrate: Bool, fallbackCalibration: LabelledImages? = nil
    )
        throws -> Subnet
    {
        let subnet = network.extract(arch)
        guard recalibrate else {
            return subnet
        }
        if calibrationCount > 0 {
            return try subnet.recalibrated(
                images: calibrationImages, count: calibrationCount,
                normalization: manifest.normalization)
        }
        if let fallbackCalibration {
            return try subnet.recalibrated(
                images: fallbackCalibration.pixels, count: fallbackCalibration.count,
                normalization: manifest.normalization)
        }
        return subnet
    }
}
