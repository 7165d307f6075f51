// In-memory labelled image sets (u8, channels-last), their splits, and the Fashion-MNIST loader.
import Engine
import Foundation

/// A dataset whose arrays or arguments do not fit together, with what to do about it.
public struct DatasetError: Error, Sendable, CustomStringConvertible {
    /// The kinds of dataset failure.
    public enum Kind: String, Sendable {
        /// A dimension or the class count is not positive.
        case invalidShape
        /// The pixel array does not hold count × height × width × channels bytes.
        case sizeMismatch
        /// A label lies outside 0..<classes.
        case labelOutOfRange
        /// An argument (a split size, a sample index) does not fit the dataset.
        case invalidArgument
    }

    /// What went wrong.
    public let kind: Kind
    /// A sentence saying what went wrong and what to do next.
    public let message: String

    /// Creates an error.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// Labelled u8 images stored channels-last: pixel (n, y, x, c) sits at ((n * height + y) * width + x) * channels + c.
public struct ImageDataset: Sendable {
    /// count × height × width × channels pixels.
    public let images: [UInt8]
    /// One label per image, each in 0..<classes.
    public let labels: [Int32]
    /// Number of images.
    public let count: Int
    /// Image height in pixels.
    public let height: Int
    /// Image width in pixels.
    public let width: Int
    /// Channels per pixel (1 for grey, 3 for RGB).
    public let channels: Int
    /// Number of classes; labels lie in 0..<classes.
    public let classes: Int

    /// Bytes per image: height × width × channels.
    public var sampleSize: Int { height * width * channels }

    /// Creates a dataset from raw arrays, checking that shapes, sizes and labels agree.
    public init(
        images: [UInt8], labels: [Int32], height: Int, width: Int, channels: Int, classes: Int
    ) throws(DatasetError) {
        guard height > 0, width > 0, channels > 0, classes > 0 else {
            throw DatasetError(
                kind: .invalidShape,
                message: "height \(height), width \(width), channels \(channels) and classes \(classes) "
                    + "must all be positive")
        }
        let sampleSize = height * width * channels
        guard images.count == labels.count * sampleSize else {
            throw DatasetError(
                kind: .sizeMismatch,
                message: "\(labels.count) labels need \(labels.count * sampleSize) pixel bytes "
                    + "(\(height)×\(width)×\(channels) each) but the image array holds \(images.count); "
                    + "check the image shape and that images are u8 N×H×W×C")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw DatasetError(
                kind: .labelOutOfRange,
                message: "label \(labels[bad]) of sample \(bad) is outside 0..<\(classes); "
                    + "relabel the data or pass the right class count")
        }
        self.init(
            unchecked: images, labels: labels, height: height, width: width, channels: channels, classes: classes)
    }

    /// Creates a dataset from arrays already known to agree.
    init(unchecked images: [UInt8], labels: [Int32], height: Int, width: Int, channels: Int, classes: Int) {
        self.images = images
        self.labels = labels
        self.count = labels.count
        self.height = height
        self.width = width
        self.channels = channels
        self.classes = classes
    }

    /// The samples at `indices`, in that order (repeats allowed). Every index must lie in 0..<count.
    public func subset(_ indices: [Int]) -> ImageDataset {
        let size = sampleSize
        var newLabels = [Int32](repeating: 0, count: indices.count)
        let newImages = [UInt8](unsafeUninitializedCapacity: indices.count * size) { buffer, initialized in
            images.withUnsafeBufferPointer { source in
                for (row, index) in indices.enumerated() {
                    precondition(index >= 0 && index < count, "subset index \(index) outside 0..<\(count)")
                    let from = source.baseAddress! + index * size
                    (buffer.baseAddress! + row * size).initialize(from: from, count: size)
                    newLabels[row] = labels[index]
                }
            }
            initialized = indices.count * size
        }
        return ImageDataset(
            unchecked: newImages, labels: newLabels, height: height, width: width, channels: channels,
            classes: classes)
    }

    /// Number of samples of each class.
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels {
            counts[Int(label)] += 1
        }
        return counts
    }

    /// Splits the sample indices into training and validation parts, each in increasing order.
    ///
    /// The split is stratified: each class gives validation samples in proportion to its size (largest
    /// remainders round the shares), chosen at random within the class. The same seed gives the same split.
    public func holdOutIndices(
        validationCount: Int, seed: UInt64
    ) throws(DatasetError) -> (train: [Int], validation: [Int]) {
        guard validationCount >= 0 && validationCount <= count else {
            throw DatasetError(
                kind: .invalidArgument,
                message: "validation count \(validationCount) must lie in 0...\(count), the dataset size")
        }
        var members = [[Int]](repeating: [], count: classes)
        for (index, label) in labels.enumerated() {
            members[Int(label)].append(index)
        }
        let quotas = Self.proportionalQuotas(sizes: members.map(\.count), total: validationCount)
        var random = SeededRandom(seed: seed)
        var inValidation = [Bool](repeating: false, count: count)
        for (cls, quota) in quotas.enumerated() {
            var stream = random.split()
            var pool = members[cls]
            partialShuffle(&pool, first: quota, using: &stream)
            for index in pool[0..<quota] {
                inValidation[index] = true
            }
        }
        var train: [Int] = []
        var validation: [Int] = []
        train.reserveCapacity(count - validationCount)
        validation.reserveCapacity(validationCount)
        for index in 0..<count {
            if inValidation[index] {
                validation.append(index)
            } else {
                train.append(index)
            }
        }
        return (train, validation)
    }

    /// Splits off a stratified, seed-determined validation set; see `holdOutIndices(validationCount:seed:)`.
    public func holdOut(
        validationCount: Int, seed: UInt64
    ) throws(DatasetError) -> (train: ImageDataset, validation: ImageDataset) {
        let split = try holdOutIndices(validationCount: validationCount, seed: seed)
        return (subset(split.train), subset(split.validation))
    }

    /// Mean and (population) standard deviation of the pixels of each channel, on the 0...1 scale (byte / 255).
    ///
    /// These are the `mean` and `std` a `BatchLoader` normalizes with.
    public func pixelStatistics() -> (mean: [Float], std: [Float]) {
        var histogram = [Int](repeating: 0, count: channels * 256)
        images.withUnsafeBufferPointer { pixels in
            histogram.withUnsafeMutableBufferPointer { bins in
                var c = 0
                for value in pixels {
                    bins[c &* 256 &+ Int(value)] &+= 1
                    c &+= 1
                    if c == channels {
                        c = 0
                    }
                }
            }
        }
        var means: [Float] = []
        var deviations: [Float] = []
        for c in 0..<channels {
            var n = 0.0
            var sum = 0.0
            var squares = 0.0
            for value in 0..<256 {
                let k = Double(histogram[c * 256 + value])
                let x = Double(value) / 255
                n += k
                sum += k * x
                squares += k * x * x
            }
            let mean = n > 0 ? sum / n : 0
            let variance = n > 0 ? max(0, squares / n - mean * mean) : 0
            means.append(Float(mean))
            deviations.append(Float(variance.squareRoot()))
        }
        return (means, deviations)
    }

    /// Shares of `total` for groups of the given sizes, proportional to size, summing to `total` exactly.
    static func proportionalQuotas(sizes: [Int], total: Int) -> [Int] {
        let all = sizes.reduce(0, +)
        guard all > 0 else { return sizes.map { _ in 0 } }
        var quotas = sizes.map { $0 * total / all }
        let remainders = sizes.map { $0 * total % all }
        var missing = total - quotas.reduce(0, +)
        // Largest remainder first; ties go to the lower class index so the result never depends on sort stability.
        let order = sizes.indices.sorted { (remainders[$0], -$0) > (remainders[$1], -$1) }
        for index in order where missing > 0 && quotas[index] < sizes[index] {
            quotas[index] += 1
            missing -= 1
        }
        return quotas
    }
}

/// Moves a uniformly chosen `first` elements of `array` (in random order) to its front (Fisher–Yates, cut short).
///
/// Written out rather than using `shuffle(using:)` so that splits stay the same across Swift releases.
func partialShuffle(_ array: inout [Int], first: Int, using random: inout SeededRandom) {
    let n = array.count
    for i in 0..<min(first, max(n - 1, 0)) {
        let j = i + random.nextInt(below: n - i)
        array.swapAt(i, j)
    }
}

/// Which part of a data set to load.
public enum DatasetSplit: String, Sendable, CaseIterable {
    /// The training images (60,000 for Fashion-MNIST).
    case train
    /// The test images (10,000 for Fashion-MNIST).
    case test
}

/// Zalando's Fashion-MNIST: 28×28 grey images of clothing in 10 classes.
public enum FashionMNIST {
    /// Where the data set is installed on the project's machines.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// Number of classes.
    public static let classes = 10
    /// Class names, indexed by label.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]
    /// Pixel mean of the training set on the 0...1 scale.
    public static let mean: Float = 0.286
    /// Pixel standard deviation of the training set on the 0...1 scale.
    public static let std: Float = 0.353

    /// Loads one split from `directory`, which holds the four IDX files (gzip'd `.gz`, or plain without it).
    public static func load(
        directory: String = defaultDirectory, split: DatasetSplit
    ) throws(IDXError) -> ImageDataset {
        let prefix = split == .train ? "train" : "t10k"
        let imagesPath = try locate(directory: directory, name: "\(prefix)-images-idx3-ubyte")
        let labelsPath = try locate(directory: directory, name: "\(prefix)-labels-idx1-ubyte")
        let (images, labels) = try IDX.readPair(imagesPath: imagesPath, labelsPath: labelsPath, classes: classes)
        return ImageDataset(
            unchecked: images.pixels, labels: labels, height: images.rows, width: images.columns, channels: 1,
            classes: classes)
    }

    /// The path of `name.gz` in `directory`, else of `name`, else the error naming both.
    private static func locate(directory: String, name: String) throws(IDXError) -> String {
        let base = (directory as NSString).appendingPathComponent(name)
        for candidate in [base + ".gz", base] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw IDXError(
            path: base + ".gz", kind: .fileMissing,
            message: "neither \(name).gz nor \(name) is in \(directory); pass the directory holding "
                + "the Fashion-MNIST files or download them there")
    }
}
