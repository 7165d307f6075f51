// IDX files (the MNIST family's format), plain or gzip'd, decoded with zlib's inflate.
// Layout: a big-endian header (magic 0x0000TTDD: type TT, DD dimensions; then one u32 size per dimension),
// followed by the elements in row-major order. Only unsigned-byte data (type 0x08) is supported.
import Engine
import CZlib
import Foundation

/// A failure while reading an IDX file, with the file, what kind of failure it is and what to do about it.
public struct IDXError: Error, Sendable, CustomStringConvertible {
    /// The kinds of IDX failure.
    public enum Kind: String, Sendable {
        /// No file at the path.
        case fileMissing
        /// The file exists but could not be read (permissions, a directory, an I/O error).
        case unreadable
        /// The file starts neither with the gzip signature nor with an IDX header.
        case notGzip
        /// The gzip stream is damaged or cut short.
        case corrupt
        /// The IDX magic number is not the one expected for this kind of file.
        case wrongMagic
        /// The file holds fewer bytes than its header promises.
        case truncated
        /// The file holds more bytes than its header promises.
        case trailingData
        /// The image and label files disagree on the number of samples.
        case countMismatch
        /// A label lies outside 0..<classes.
        case labelOutOfRange
    }

    /// The file the failure is about.
    public let path: String
    /// What went wrong.
    public let kind: Kind
    /// A sentence saying what went wrong and what to do next.
    public let message: String

    /// Creates an error about `path`.
    public init(path: String, kind: Kind, message: String) {
        self.path = path
        self.kind = kind
        self.message = message
    }

    /// "path: message".
    public var description: String { "\(path): \(message)" }
}

/// The images of an IDX image file: `count` images of `rows` × `columns` unsigned bytes, row-major.
public struct IDXImages: Sendable {
    /// count × rows × columns pixels.
    public let pixels: [UInt8]
    /// Number of images.
    public let count: Int
    /// Image height.
    public let rows: Int
    /// Image width.
    public let columns: Int
}

/// Reads IDX image and label files, gzip'd or plain.
public enum IDX {
    /// Magic number of an unsigned-byte file with three dimensions (images: count, rows, columns).
    public static let imageMagic: UInt32 = 0x0000_0803
    /// Magic number of an unsigned-byte file with one dimension (labels: count).
    public static let labelMagic: UInt32 = 0x0000_0801

    /// Reads an image file (magic 0x00000803).
    public static func readImages(path: String) throws(IDXError) -> IDXImages {
        let bytes = try readDecompressed(path: path)
        return try parseImages(bytes, path: path)
    }

    /// Reads a label file (magic 0x00000801) whose labels must all lie in 0..<classes.
    public static func readLabels(path: String, classes: Int) throws(IDXError) -> [Int32] {
        let bytes = try readDecompressed(path: path)
        return try parseLabels(bytes, path: path, classes: classes)
    }

    /// Reads an image file and its label file and checks that they describe the same number of samples.
    public static func readPair(
        imagesPath: String, labelsPath: String, classes: Int
    ) throws(IDXError) -> (images: IDXImages, labels: [Int32]) {
        let images = try readImages(path: imagesPath)
        let labels = try readLabels(path: labelsPath, classes: classes)
        guard images.count == labels.count else {
            throw IDXError(
                path: labelsPath, kind: .countMismatch,
                message: "holds \(labels.count) labels but \(imagesPath) holds \(images.count) images; "
                    + "the two files come from different sets or downloads, fetch them again together")
        }
        return (images, labels)
    }

    /// The file's content, decompressed if it is gzip'd (detected from its first bytes, not its name).
    public static func readDecompressed(path: String) throws(IDXError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw IDXError(
                path: path, kind: .fileMissing,
                message: "no such file; check the data directory or download the data set there")
        }
        guard !isDirectory.boolValue else {
            throw IDXError(path: path, kind: .unreadable, message: "is a directory, expected an IDX file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw IDXError(
                path: path, kind: .unreadable,
                message: "cannot be read (\(error.localizedDescription)); check its permissions")
        }
        if data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B {
            let result = data.withUnsafeBytes { raw in
                Result { () throws(IDXError) -> [UInt8] in try gunzip(raw, path: path) }
            }
            return try result.get()
        }
        if data.count >= 4 && data[data.startIndex] == 0 && data[data.startIndex + 1] == 0 {
            return [UInt8](data)
        }
        let head = data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw IDXError(
            path: path, kind: .notGzip,
            message: "is neither gzip (starts 1f 8b) nor a raw IDX file (starts 00 00), it starts '\(head)'; "
                + "it is probably an HTML error page or a partial download, download it again")
    }

    /// Parses the bytes of an image file; `path` only labels errors.
    public static func parseImages(_ bytes: [UInt8], path: String) throws(IDXError) -> IDXImages {
        try checkHeader(bytes, path: path, expectedMagic: imageMagic, what: "image")
        let count = Int(readBigEndian(bytes, at: 4))
        let rows = Int(readBigEndian(bytes, at: 8))
        let columns = Int(readBigEndian(bytes, at: 12))
        let (pixelsPerImage, overflow1) = rows.multipliedReportingOverflow(by: columns)
        let (promised, overflow2) = count.multipliedReportingOverflow(by: pixelsPerImage)
        guard !overflow1 && !overflow2 else {
            throw IDXError(
                path: path, kind: .corrupt,
                message: "header claims \(count) images of \(rows)×\(columns), which overflows; the file is damaged")
        }
        try checkPayload(
            bytes, path: path, headerSize: 16, promised: promised,
            what: "\(count) images of \(rows)×\(columns)")
        // TODO: this copies the pixels once more (47 MB for Fashion-MNIST's training set, briefly held twice);
        // inflating straight into an array that starts after the header would avoid the copy.
        return IDXImages(pixels: Array(bytes[16...]), count: count, rows: rows, columns: columns)
    }

    /// Parses the bytes of a label file; every label must lie in 0..<classes. `path` only labels errors.
    public static func parseLabels(_ bytes: [UInt8], path: String, classes: Int) throws(IDXError) -> [Int32] {
        try checkHeader(bytes, path: path, expectedMagic: labelMagic, what: "label")
        let count = Int(readBigEndian(bytes, at: 4))
        try checkPayload(bytes, path: path, headerSize: 8, promised: count, what: "\(count) labels")
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let label = bytes[8 + i]
            guard Int(label) < classes else {
                throw IDXError(
                    path: path, kind: .labelOutOfRange,
                    message: "label \(label) of sample \(i) is outside 0..<\(classes); "
                        + "this is not a \(classes)-class label file, or the class count passed in is wrong")
            }
            labels[i] = Int32(label)
        }
        return labels
    }

    /// A human description of an IDX magic number, e.g. "0x00000801 (unsigned bytes, 1 dimension)".
    public static func describeMagic(_ magic: UInt32) -> String {
        let hex = "0x" + String(format: "%08x", magic)
        guard magic >> 16 == 0 else { return "\(hex) (not an IDX magic number)" }
        let types: [UInt32: String] = [
            0x08: "unsigned bytes", 0x09: "signed bytes", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
            0x0E: "float64",
        ]
        let type = types[(magic >> 8) & 0xFF] ?? "unknown element type"
        let dimensions = magic & 0xFF
        return "\(hex) (\(type), \(dimensions) dimension\(dimensions == 1 ? "" : "s"))"
    }

    private static func checkHeader(
        _ bytes: [UInt8], path: String, expectedMagic: UInt32, what: String
    ) throws(IDXError) {
        let headerSize = 4 + 4 * Int(expectedMagic & 0xFF)
        guard bytes.count >= 4 else {
            throw IDXError(
                path: path, kind: .truncated,
                message: "holds only \(bytes.count) bytes, not even a magic number; download it again")
        }
        let magic = readBigEndian(bytes, at: 0)
        guard magic == expectedMagic else {
            var hint = "check that the path names the \(what) file"
            if magic == imageMagic || magic == labelMagic {
                hint = "the image and label paths look swapped"
            }
            throw IDXError(
                path: path, kind: .wrongMagic,
                message: "found magic \(describeMagic(magic)), expected \(describeMagic(expectedMagic)) "
                    + "for an IDX \(what) file; \(hint)")
        }
        guard bytes.count >= headerSize else {
            throw IDXError(
                path: path, kind: .truncated,
                message: "header needs \(headerSize) bytes but the file holds \(bytes.count); download it again")
        }
    }

    private static func checkPayload(
        _ bytes: [UInt8], path: String, headerSize: Int, promised: Int, what: String
    ) throws(IDXError) {
        let present = bytes.count - headerSize
        guard present >= promised else {
            throw IDXError(
                path: path, kind: .truncated,
                message: "header promises \(what) (\(promised) bytes) but only \(present) bytes follow; "
                    + "the file is incomplete, download it again")
        }
        guard present == promised else {
            throw IDXError(
                path: path, kind: .trailingData,
                message: "header promises \(what) (\(promised) bytes) but \(present) bytes follow; "
                    + "the header or the file is wrong, download it again")
        }
    }

    private static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    /// Inflates every gzip member of `input` (concatenated members are allowed, as gzip allows them).
    private static func gunzip(_ input: UnsafeRawBufferPointer, path: String) throws(IDXError) -> [UInt8] {
        var stream = z_stream()
        // 15 + 16: largest window, expect a gzip wrapper (not zlib, not raw deflate).
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw IDXError(path: path, kind: .corrupt, message: "zlib could not start inflating (out of memory?)")
        }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        output.reserveCapacity(expectedSize(input))
        let base = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let inputChunk = 1 << 20
        var fed = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            if stream.avail_in == 0 && fed < input.count {
                let size = min(inputChunk, input.count - fed)
                stream.next_in = UnsafeMutablePointer(mutating: base + fed)
                stream.avail_in = uInt(size)
                fed += size
            }
            let status = chunk.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                output.append(contentsOf: buffer[0..<(buffer.count - Int(stream.avail_out))])
                return status
            }
            let unread = input.count - fed + Int(stream.avail_in)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                if unread == 0 {
                    return output
                }
                let next = input.count - unread
                guard unread >= 2 && input[next] == 0x1F && input[next + 1] == 0x8B else {
                    throw IDXError(
                        path: path, kind: .corrupt,
                        message: "\(unread) bytes of garbage follow the gzip data; download the file again")
                }
                inflateReset(&stream)
            case Z_BUF_ERROR where unread == 0:
                throw IDXError(
                    path: path, kind: .corrupt,
                    message: "gzip data ends early (after \(output.count) decompressed bytes); "
                        + "the download was cut short, download it again")
            case Z_BUF_ERROR:
                continue
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw IDXError(
                    path: path, kind: .corrupt,
                    message: "gzip data is corrupt (\(reason)); download the file again")
            }
        }
    }

    /// The uncompressed size recorded in the last gzip trailer (modulo 2^32), clamped to a sane capacity hint.
    private static func expectedSize(_ input: UnsafeRawBufferPointer) -> Int {
        guard input.count >= 18 else { return 0 }
        let end = input.count
        let size =
            Int(input[end - 4]) | Int(input[end - 3]) << 8 | Int(input[end - 2]) << 16
            | Int(input[end - 1]) << 24
        return min(size, input.count * 64 + (1 << 20))
    }
}
