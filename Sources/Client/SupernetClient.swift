import Foundation
import SafeTensors
import Supernet
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// A failure talking to supernetd: the server's error (code, message, infeasibility) or a connection problem.
public struct ClientError: Error, CustomStringConvertible {
    /// The server's error code; nil for local failures (connect, timeout, malformed reply).
    public let code: ErrorCode?
    /// What went wrong, in words.
    public let message: String
    /// For an infeasible budget: the smallest achievable value.
    public let infeasible: Infeasibility?

    /// Creates an error.
    public init(code: ErrorCode?, message: String, infeasible: Infeasibility? = nil) {
        self.code = code
        self.message = message
        self.infeasible = infeasible
    }

    /// The message, prefixed with the code's name when there is one.
    public var description: String {
        code.map { "\($0): \(message)" } ?? message
    }
}

/// A specialized subnet as received: the header, and the tensors decoded from the weight stream.
public struct SpecializedSubnet: Sendable {
    /// The header (arch, predicted accuracy, costs, tensor table, digest, metadata).
    public let header: SpecializeHeader
    /// The tensors, dequantized to float32 (f16 and int8 streams carry fewer bits).
    public let tensors: [WeightTensor]
    /// Compressed bytes received.
    public let compressedBytes: Int

    /// The subnet as the model layer knows it (space and arch from the metadata).
    public func subnet() throws -> Subnet {
        guard let spaceJSON = header.metadata["space"]?.data(using: .utf8),
            let space = try? JSONDecoder().decode(SearchSpace.self, from: spaceJSON)
        else {
            throw ClientError(code: nil, message: "the reply's metadata has no valid search space")
        }
        let arch = try ArchConfig(json: header.arch, space: space)
        return Subnet(
            space: space, arch: arch,
            tensors: tensors.map { NamedTensor(name: $0.name, shape: $0.shape, values: $0.values) })
    }

    /// Writes a safetensors subnet file: F32 tensors (F16 for an f16 stream) and the server's metadata, the same
    /// layout `supernet extract` writes.
    public func write(to path: String) throws {
        var writer = SafeTensorsWriter()
        for tensor in tensors {
            if header.dtype == .f16 {
                try writer.add(name: tensor.name, float16From: tensor.values, shape: tensor.shape)
            } else {
                try writer.add(name: tensor.name, floats: tensor.values, shape: tensor.shape)
            }
        }
        writer.metadata = header.metadata
        try writer.write(to: path)
    }
}

/// A blocking client for supernetd's protocol over a Unix socket (see PROTOCOL.md).
///
/// One connection; requests are numbered and replies matched by id. Not thread-safe: use one client per
/// thread (connections are cheap).
public final class SupernetClient {
    /// The server's hello reply (version, limits).
    public private(set) var server: HelloReply
    private let fd: Int32
    private var decoder: FrameDecoder
    private var nextID: UInt32 = 1
    private let timeout: Double
    /// Reused receive buffer (allocating and zeroing 1 MiB per read cost a third of the stream rate).
    /// Bytes asked of one `recv`.
    private static let receiveBytes = 1 << 20

    /// Connects to `socketPath` and exchanges hello.
    /// - Throws: `ClientError` when the socket is missing or refuses, or the hello fails.
    public init(socketPath: String, name: String = "supernet-client", timeout: Double = 60) throws {
        self.timeout = timeout
        fd = try Self.connect(socketPath)
        decoder = FrameDecoder(maxFrameBytes: 64 << 20)
        server = HelloReply(
            version: 0, serverName: "", serverVersion: "",
            limits: ServerLimits(
                maxFrameBytes: 0, maxInFlight: 0, weightChunkBytes: 0,
                maxBudgetCount: 0))
        server = try call(Hello(versions: [1], clientName: name), HelloReply.self)
    }

    deinit {
        close(fd)
    }

    private static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ClientError(code: nil, message: "socket(): \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw ClientError(code: nil, message: "socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ClientError(code: nil, message: "cannot connect to \(path): \(reason) (is supernetd running?)")
        }
        return fd
    }

    // MARK: - Requests

    /// Round trip time of a ping, in milliseconds.
    public func ping() throws -> Double {
        let start = Date()
        _ = try call(Ping(echo: 42), Pong.self)
        return Date().timeIntervalSince(start) * 1000
    }

    /// The loaded models.
    public func models() throws -> [ModelInfo] { try call(ListModels(), ModelsReply.self).models }

    /// The loaded hardware targets.
    public func targets() throws -> [PluginDescriptor] { try call(ListTargets(), TargetsReply.self).targets }

    /// The loaded search strategies.
    public func strategies() throws -> [PluginDescriptor] {
        try call(ListStrategies(), StrategiesReply.self).strategies
    }

    /// The daemon's counters.
    public func stats() throws -> [String: Double] { try call(Stats(), StatsReply.self).values }

    /// Accuracy-versus-cost front of a model on a target.
    public func pareto(model: String, target: String, points: Int) throws -> [ParetoPoint] {
        try call(Pareto(model: model, target: target, points: UInt32(points)), ParetoReply.self).points
    }

    /// Every plugin and its state (admin socket).
    public func plugins() throws -> [PluginInfo] { try call(PluginList(), PluginListReply.self).plugins }

    /// Loads a plugin file from the daemon's plugin directories (admin socket).
    public func loadPlugin(_ file: String) throws { _ = try call(PluginLoad(fileName: file), Ok.self) }

    /// Retires a plugin (admin socket).
    public func unloadPlugin(_ name: String) throws { _ = try call(PluginUnload(name: name), Ok.self) }

    /// Rebuilds a target's measurements (admin socket).
    public func calibrate(target: String) throws { _ = try call(TargetCalibrate(target: target), Ok.self) }

    /// Asks for a subnet and receives it: header, chunks decoded as they arrive, end; checks the digest.
    public func specialize(_ request: Specialize) throws -> SpecializedSubnet {
        let id = try send(request)
        let header = try expect(SpecializeHeader.self, id: id)
        if request.noWeights {
            _ = try expect(SpecializeEnd.self, id: id)
            return SpecializedSubnet(header: header, tensors: [], compressedBytes: 0)
        }
        let stream = try WeightStreamDecoder(header: header)
        let (end, received) = try receiveChunks(id: id) { try stream.feed($0) }
        return SpecializedSubnet(header: header, tensors: try stream.finish(end: end), compressedBytes: received)
    }

    /// Asks for a subnet and reads the reply without decoding it; returns the header and the compressed bytes
    /// received (for measuring the stream itself).
    public func specializeWithoutDecoding(_ request: Specialize) throws -> (header: SpecializeHeader, bytes: Int) {
        let id = try send(request)
        let header = try expect(SpecializeHeader.self, id: id)
        let (_, received) = try receiveChunks(id: id) { _ in }
        return (header, received)
    }

    /// Reads the weight chunks of request `id` up to its end frame, lending each chunk's payload in place to
    /// `consume` (no copy out of the receive buffer); returns the end frame and the chunk bytes received.
    private func receiveChunks(
        id: UInt32, _ consume: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> (SpecializeEnd, Int) {
        var received = 0
        while true {
            let other = try decoder.nextFrame { header, payload -> Frame? in
                if header.kind == .weightChunk, header.requestID == id {
                    received += payload.count
                    try consume(payload)
                    return nil
                }
                return Frame(
                    kind: header.kind, requestID: header.requestID, flags: header.flags, payload: Array(payload))
            }
            switch other {
            case .none:
                try fill()
            case .some(nil):
                continue
            case .some(let frame?):
                guard frame.requestID == id || (frame.requestID == 0 && frame.kind == .error) else { continue }
                return (try decode(frame, SpecializeEnd.self), received)
            }
        }
    }

    // MARK: - Frames

    /// Sends `message` under a new request id and returns the id.
    @discardableResult
    public func send<M: WireMessage>(_ message: M) throws -> UInt32 {
        let id = nextID
        nextID = nextID == UInt32.max ? 1 : nextID + 1
        var encoder = FrameEncoder()
        try encoder.append(message, requestID: id)
        try writeAll(encoder.bytes)
        return id
    }

    /// Cancels request `id` (the server answers that request with error `cancelled` if it was still running).
    public func cancel(_ id: UInt32) throws {
        var encoder = FrameEncoder()
        try encoder.append(Cancel(requestID: id), requestID: 0)
        try writeAll(encoder.bytes)
    }

    private func call<M: WireMessage, R: WireMessage>(_ message: M, _ reply: R.Type) throws -> R {
        try expect(reply, id: try send(message))
    }

    private func expect<R: WireMessage>(_ reply: R.Type, id: UInt32) throws -> R {
        try decode(try next(id: id), reply)
    }

    private func decode<R: WireMessage>(_ frame: Frame, _ reply: R.Type) throws -> R {
        if frame.kind == .error {
            let error = try ErrorReply(frame: frame)
            throw ClientError(code: error.code, message: error.message, infeasible: error.infeasible)
        }
        guard frame.kind == R.kind else {
            throw ClientError(code: nil, message: "expected \(R.kind) from the server, got \(frame.kind)")
        }
        return try R(frame: frame)
    }

    /// The next frame of request `id` (frames of other ids are dropped: this client has one request at a time;
    /// a connection-level error with id 0 is returned too).
    public func next(id: UInt32) throws -> Frame {
        while true {
            if let frame = try decoder.nextFrame() {
                if frame.requestID == id || (frame.requestID == 0 && frame.kind == .error) {
                    return frame
                }
                continue
            }
            try fill()
        }
    }

    private func fill() throws {
        // Bytes already waiting are taken at once (a weight stream mostly is); poll only when none are, for the
        // timeout. Half the system calls of polling first.
        var count = decoder.receive(atMost: Self.receiveBytes) {
            recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
        }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollFD, 1, Int32(timeout * 1000))
            guard ready > 0 else {
                throw ClientError(code: nil, message: ready == 0 ? "no reply within \(Int(timeout)) s" : "poll failed")
            }
            count = decoder.receive(atMost: Self.receiveBytes) { recv(fd, $0.baseAddress, $0.count, 0) }
        }
        guard count > 0 else {
            throw ClientError(code: nil, message: "the daemon closed the connection")
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw ClientError(code: nil, message: "send: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }
}
