import Digest
import Foundation
import Supernet
import Synchronization
import SystemdSupport
import Wire

/// The plugins as the service sees them: lookup for requests, and the admin operations.
public protocol PluginCatalog: Sendable {
    /// A loaded target by name (nil when unknown or retired).
    func target(_ name: String) -> CostModel?
    /// A loaded strategy by name.
    func strategy(_ name: String) -> ArchitectureSearch?
    /// Loaded targets, for `listTargets`.
    func targetDescriptors() -> [PluginDescriptor]
    /// Loaded strategies, for `listStrategies`.
    func strategyDescriptors() -> [PluginDescriptor]
    /// Every plugin with its lifecycle state, for `pluginList`.
    func plugins() -> [PluginInfo]
    /// Loads `file` from a configured plugin directory (all checks apply).
    func load(file: String) throws -> PluginInfo
    /// Retires `name` once its in-flight calls finish.
    func unload(name: String) throws
    /// Rebuilds a target's measurements (e.g. host-cpu's latency table).
    func calibrate(target: String) throws
}

/// Counters for `stats` and the status line.
final class ServiceCounters: Sendable {
    let requests = Atomic<Int>(0)
    let specializations = Atomic<Int>(0)
    let searchCacheHits = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let overloaded = Atomic<Int>(0)
    let bytesStreamed = Atomic<Int>(0)
}

/// The daemon's request handling: the hello exchange, queries, specialization with streamed weights, cancel,
/// and the admin operations (admin socket and an authorized peer only).
public final class DaemonService: FrameHandler, @unchecked Sendable {
    // @unchecked: all stored properties are immutable references to thread-safe objects.
    public static let protocolVersion: UInt16 = 1
    /// SHA-256 of no bytes: the digest a search-only (`noWeights`) reply carries.
    static let emptyDigest = SHA256.hash([])
    let store: ModelStore
    let catalog: PluginCatalog
    let specializer: Specializer
    let executor: RequestExecutor
    let limits: ServerLimits
    let chunkBytes: Int
    let adminGroup: String?
    let serverVersion: String
    let counters = ServiceCounters()
    private let encoded: LRUCache<EncodedWeights>
    private let started = monotonicSeconds()

    /// Creates the service.
    public init(
        store: ModelStore, catalog: PluginCatalog, specializer: Specializer, workerThreads: Int,
        queueCapacity: Int, limits: ServerLimits, chunkBytes: Int, cacheEntries: Int, adminGroup: String?,
        serverVersion: String
    ) {
        self.store = store
        self.catalog = catalog
        self.specializer = specializer
        executor = RequestExecutor(threads: workerThreads, capacity: queueCapacity)
        self.limits = limits
        self.chunkBytes = chunkBytes
        self.adminGroup = adminGroup
        self.serverVersion = serverVersion
        encoded = LRUCache(capacity: cacheEntries)
    }

    /// Requests queued or running.
    public var pendingRequests: Int { executor.pending }

    /// Waits for running requests to finish (shutdown), up to `timeout` seconds.
    public func drain(timeout: Double) -> Bool { executor.drain(timeout: timeout) }

    /// A one-line summary for systemd's STATUS=.
    public func statusLine() -> String {
        "\(store.all.count) models, \(catalog.targetDescriptors().count) targets, "
            + "\(catalog.strategyDescriptors().count) strategies; \(counters.specializations.load(ordering: .relaxed)) "
            + "subnets served"
    }

    public func closed(_ connection: ServerConnection) {}

    public func handle(_ frame: Frame, from connection: ServerConnection) {
        counters.requests.add(1, ordering: .relaxed)
        guard connection.greeted || frame.kind == .hello else {
            reject(connection, frame.requestID, .protocolError, "the first frame must be hello (see PROTOCOL.md)")
            connection.closeAfterFlush()
            return
        }
        do {
            switch frame.kind {
            case .hello: try hello(frame, connection)
            case .ping: reply(connection, frame.requestID, Pong(echo: try Ping(frame: frame).echo))
            case .cancel: connection.cancel(try Cancel(frame: frame).requestID)
            case .listModels: reply(connection, frame.requestID, ModelsReply(models: modelInfos()))
            case .listTargets: reply(connection, frame.requestID, TargetsReply(targets: catalog.targetDescriptors()))
            case .listStrategies:
                reply(connection, frame.requestID, StrategiesReply(strategies: catalog.strategyDescriptors()))
            case .stats: reply(connection, frame.requestID, StatsReply(values: stats()))
            case .specialize:
                let message = try Specialize(frame: frame)
                try submit(frame, connection) { try self.specialize(message, frame.requestID, $0, $1) }
            case .pareto:
                let message = try Pareto(frame: frame)
                try submit(frame, connection) { try self.pareto(message, frame.requestID, $0, $1) }
            case .pluginList, .pluginLoad, .pluginUnload, .targetCalibrate: try admin(frame, connection)
            default:
                reject(connection, frame.requestID, .protocolError, "\(frame.kind) is not a request a client may send")
                connection.closeAfterFlush()
            }
        } catch let error as WireError {
            reject(connection, frame.requestID, .invalidArgument, "malformed \(frame.kind) payload: \(error)")
        } catch let error as SpecializationError {
            reject(connection, frame.requestID, error.code, error.message)
        } catch {
            reject(connection, frame.requestID, .internalError, "\(error)")
        }
    }

    // MARK: - Connection-level messages

    private func hello(_ frame: Frame, _ connection: ServerConnection) throws {
        let hello = try Hello(frame: frame)
        guard hello.versions.contains(Self.protocolVersion) else {
            reject(
                connection, frame.requestID, .unsupportedVersion,
                "this server speaks protocol version \(Self.protocolVersion); the client offered \(hello.versions)")
            connection.closeAfterFlush()
            return
        }
        connection.greeted = true
        let serverLimits = Wire.ServerLimits(
            maxFrameBytes: UInt32(limits.maxFrameBytes), maxInFlight: UInt32(limits.maxInflightPerConnection),
            weightChunkBytes: UInt32(chunkBytes), maxBudgetCount: 8)
        reply(
            connection, frame.requestID,
            HelloReply(
                version: Self.protocolVersion, serverName: "supernetd",
                serverVersion: serverVersion, limits: serverLimits))
    }

    private func modelInfos() -> [ModelInfo] {
        store.all.map { model in
            let space = model.space
            let measured = model.file.manifest.measured ?? []
            return ModelInfo(
                name: model.name, spaceName: space.name, filePath: model.path,
                parameterCount: UInt64(model.file.network.parameters.reduce(0) { $0 + $1.count }),
                largestMACs: UInt64(space.costs(for: space.largest).macs),
                smallestMACs: UInt64(space.costs(for: space.smallest).macs),
                calibrationImageCount: UInt32(model.file.calibrationCount), hasPredictor: model.predictor != nil,
                largestAccuracy: measured.first { $0.label == "largest" }?.accuracy,
                smallestAccuracy: measured.first { $0.label == "smallest" }?.accuracy)
        }
    }

    private func stats() -> [String: Double] {
        let archives = specializer.archiveCounts
        return [
            "uptime_s": monotonicSeconds() - started,
            "requests": Double(counters.requests.load(ordering: .relaxed)),
            "specializations": Double(counters.specializations.load(ordering: .relaxed)),
            "search_cache_hits": Double(counters.searchCacheHits.load(ordering: .relaxed)),
            "errors": Double(counters.errors.load(ordering: .relaxed)),
            "overloaded": Double(counters.overloaded.load(ordering: .relaxed)),
            "bytes_streamed": Double(counters.bytesStreamed.load(ordering: .relaxed)),
            "pending_requests": Double(executor.pending),
            "models": Double(store.all.count),
            "encoded_cache_entries": Double(encoded.count),
            "rss_bytes": residentBytes(),
            "pareto_archives_ready": Double(archives.ready),
            "pareto_archives_building": Double(archives.building),
            "pareto_archives_failed": Double(archives.failed),
            "prewarm_pending": Double(specializer.prewarmPending),
            "prepared_statistics_hits": Double(specializer.preparedStatisticsHits),
        ]
    }

    /// Starts building the Pareto archive of every (model, target) pair that lacks one (daemon start, reload,
    /// plugin load, recalibration); they build in the background, requests never wait for them.
    public func warmParetoArchives() {
        specializer.warmArchives(targets: catalog.targetDescriptors().map(\.name))
    }

    // MARK: - Requests that run on the executor

    /// Registers the request id, queues `work` and answers `overloaded` when either limit is reached.
    private func submit(
        _ frame: Frame, _ connection: ServerConnection,
        _ work: @escaping @Sendable (ServerConnection, CancelToken) throws -> Void
    ) throws {
        let id = frame.requestID
        guard !connection.isInFlight(id) else {
            reject(connection, id, .protocolError, "request id \(id) is already in flight on this connection")
            return
        }
        guard let token = connection.begin(id) else {
            counters.overloaded.add(1, ordering: .relaxed)
            reject(
                connection, id, .overloaded,
                "more than \(limits.maxInflightPerConnection) requests in flight on this connection; wait for one")
            return
        }
        let accepted = executor.submit { [self] in
            defer { connection.finish(id) }
            do {
                if token.isCancelled { throw SpecializationError(.cancelled, "request cancelled") }
                try work(connection, token)
            } catch let error as SpecializationError {
                reject(connection, id, error.code, error.message, smallest: error.smallestAchievable)
            } catch let error as WireError {
                reject(connection, id, .invalidArgument, "malformed request: \(error)")
            } catch {
                reject(connection, id, .internalError, "\(error)")
            }
        }
        if !accepted {
            connection.finish(id)
            counters.overloaded.add(1, ordering: .relaxed)
            reject(connection, id, .overloaded, "the daemon's request queue is full; retry shortly")
        }
    }

    private func specialize(
        _ message: Specialize, _ requestID: UInt32, _ connection: ServerConnection,
        _ token: CancelToken
    ) throws {
        let request = SpecializeRequest(
            model: message.model, target: message.target, budgets: message.budgets,
            strategy: message.strategy.isEmpty ? nil : message.strategy,
            deadlineMs: message.deadlineMs == 0 ? nil : Double(message.deadlineMs))
        let found = try specializer.search(request, cancel: token)
        if found.cached {
            counters.searchCacheHits.add(1, ordering: .relaxed)
        }
        let weights: EncodedWeights? = message.noWeights ? nil : try encodedWeights(found, message)
        if token.isCancelled {
            throw SpecializationError(.cancelled, "request cancelled")
        }
        let subnetMetadata = try Subnet.metadata(
            arch: found.arch, space: found.model.space, normalization: found.model.file.manifest.normalization)
        let header = SpecializeHeader(
            arch: found.arch.json, archDigest: found.digest, predictedAccuracy: found.predictedAccuracy,
            costs: CostSummary(
                macs: UInt64(found.costs.macs), params: UInt64(found.costs.parameters),
                peakActivationBytes: UInt64(found.costs.peakActivationBytes), latencyMs: found.targetCost.latencyMs,
                energyMJ: found.targetCost.energyMJ),
            strategy: found.strategy, fromCache: found.cached,
            search: SearchStatistics(evaluations: UInt64(found.evaluations), wallMs: found.searchMilliseconds),
            dtype: message.dtype, shuffle: message.shuffle, tensors: weights?.tensors ?? [],
            decodedBytes: weights?.decodedBytes ?? 0, compressedBytes: UInt64(weights?.compressed.count ?? 0),
            sha256: weights?.sha256 ?? Self.emptyDigest, metadata: subnetMetadata)
        guard connection.send(try frames(header: header, weights: weights, requestID: requestID)) else {
            throw SpecializationError(.overloaded, "the connection's output queue is full; read the replies")
        }
        counters.specializations.add(1, ordering: .relaxed)
        counters.bytesStreamed.add(weights?.compressed.count ?? 0, ordering: .relaxed)
    }

    /// Header, then every chunk as its own frame (its bytes are a slice of the cached stream, not a copy), then
    /// the end frame; all but the last flagged "more follows".
    private func frames(
        header: SpecializeHeader, weights: EncodedWeights?, requestID: UInt32
    ) throws
        -> [(head: [UInt8], body: ArraySlice<UInt8>)]
    {
        var encoder = FrameEncoder(maxFrameBytes: limits.maxFrameBytes)
        try encoder.append(header, requestID: requestID, moreFollows: true)
        var frames: [(head: [UInt8], body: ArraySlice<UInt8>)] = [(encoder.bytes, [][...])]
        let chunks = weights?.chunks ?? []
        for chunk in chunks {
            var head = WireWriter(capacity: FrameHeader.byteCount)
            FrameHeader(
                kind: .weightChunk, requestID: requestID, flags: .moreFollows,
                payloadLength: UInt32(chunk.count)
            ).write(to: &head)
            frames.append((head.bytes, chunk))
        }
        encoder.removeAll()
        try encoder.append(
            SpecializeEnd(
                chunkCount: UInt32(chunks.count),
                compressedBytes: UInt64(weights?.compressed.count ?? 0)),
            requestID: requestID)
        frames.append((encoder.bytes, [][...]))
        return frames
    }

    private func encodedWeights(_ found: Specialization, _ message: Specialize) throws -> EncodedWeights {
        let key =
            "\(found.model.name)#\(found.model.generation)|\(found.digest)|\(message.dtype.rawValue)|"
            + "\(message.shuffle)|\(chunkBytes)"
        if let hit = encoded.value(key) {
            return hit
        }
        let subnet = try specializer.subnet(for: found)
        let tensors = subnet.tensors.map { WeightTensor(name: $0.name, shape: $0.shape, values: $0.values) }
        let result = try WeightStreamEncoder.encode(
            tensors, dtype: message.dtype, shuffle: message.shuffle,
            chunkBytes: chunkBytes)
        encoded.store(key, result)
        return result
    }

    private func pareto(
        _ message: Pareto, _ requestID: UInt32, _ connection: ServerConnection,
        _ token: CancelToken
    ) throws {
        let front = try specializer.front(model: message.model, target: message.target)
        let wanted = max(1, Int(message.points))
        let chosen =
            front.count <= wanted
            ? front : (0..<wanted).map { front[$0 * (front.count - 1) / max(wanted - 1, 1)] }
        reply(
            connection, requestID,
            ParetoReply(
                points: chosen.map {
                    ParetoPoint(
                        arch: $0.arch.json, predictedAccuracy: $0.accuracy, macs: UInt64($0.costs.macs),
                        latencyMs: $0.latencyMs)
                }))
    }

    // MARK: - Admin

    private func admin(_ frame: Frame, _ connection: ServerConnection) throws {
        guard connection.role == .admin else {
            reject(
                connection, frame.requestID, .permissionDenied,
                "plugin administration is only accepted on the admin socket")
            return
        }
        guard authorized(connection.peer) else {
            reject(
                connection, frame.requestID, .permissionDenied,
                "permission denied: uid \(connection.peer.uid) is neither root nor in the admin group "
                    + "\(adminGroup.map { "\"\($0)\"" } ?? "(none configured)")")
            return
        }
        switch frame.kind {
        case .pluginList:
            reply(connection, frame.requestID, PluginListReply(plugins: catalog.plugins()))
        case .pluginLoad:
            let file = try PluginLoad(frame: frame).fileName
            try submit(frame, connection) { connection, _ in
                _ = try self.wrapPlugin { try self.catalog.load(file: file) }
                self.warmParetoArchives()
                self.reply(connection, frame.requestID, Ok())
            }
        case .pluginUnload:
            let name = try PluginUnload(frame: frame).name
            try submit(frame, connection) { connection, _ in
                try self.wrapPlugin { try self.catalog.unload(name: name) }
                self.warmParetoArchives()
                self.reply(connection, frame.requestID, Ok())
            }
        default:
            let target = try TargetCalibrate(frame: frame).target
            try submit(frame, connection) { connection, _ in
                try self.wrapPlugin { try self.catalog.calibrate(target: target) }
                self.warmParetoArchives()
                self.reply(connection, frame.requestID, Ok())
            }
        }
    }

    private func wrapPlugin<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SpecializationError {
            throw error
        } catch {
            throw SpecializationError(.pluginFailed, "\(error)")
        }
    }

    private func authorized(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 {
            return true
        }
        guard let adminGroup else {
            return false
        }
        return (try? peer.isAdministrator(adminGroup: adminGroup)) ?? false
    }

    // MARK: - Replies

    func reply<M: WireMessage>(_ connection: ServerConnection, _ requestID: UInt32, _ message: M) {
        var encoder = FrameEncoder(maxFrameBytes: limits.maxFrameBytes)
        do {
            try encoder.append(message, requestID: requestID)
        } catch {
            reject(connection, requestID, .internalError, "reply too large: \(error)")
            return
        }
        connection.send([(encoder.bytes, [][...])])
    }

    func reject(
        _ connection: ServerConnection, _ requestID: UInt32, _ code: ErrorCode, _ message: String,
        smallest: (kind: BudgetKind, value: Double)? = nil
    ) {
        counters.errors.add(1, ordering: .relaxed)
        let infeasible = smallest.map { Infeasibility(budgetKind: $0.kind, smallestAchievable: $0.value) }
        reply(connection, requestID, ErrorReply(code: code, message: message, infeasible: infeasible))
    }
}

/// Resident set size of this process in bytes (from /proc/self/statm), 0 if unavailable.
func residentBytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
}
