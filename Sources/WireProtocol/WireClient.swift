#if canImport(Glibc)
import Glibc
#endif

/// Why a request got no answer from the service.
public enum WireClientError: Error, Sendable, Equatable {
    /// The service was unreachable for the whole hold time (HTTP 503).
    case unavailable
    /// The request's deadline passed while waiting for the answer (HTTP 504).
    case timedOut
    /// The connection failed on a protocol error while the request was in flight; it is not
    /// resent, since the same bytes would fail again (HTTP 502).
    case protocolFailure(String)
    /// The connection was lost after the request was written, more often than a request may
    /// be resent (HTTP 502).
    case connectionLost
    /// The request's frame (this many payload bytes) would exceed the frame limit the service
    /// accepts: it is refused here, never sent (HTTP 413).
    case tooLarge(Int)
}

/// Limits and timings of a `WireClient`, in one place.
public struct WireClientConfiguration: Sendable {
    /// How long a request waits for an unreachable or restarting service before failing (ms).
    public var holdMillis: Int64 = 10_000
    /// First and largest pause between reconnect attempts (ms).
    public var reconnectInitialMillis: Int64 = 20
    public var reconnectMaxMillis: Int64 = 500
    /// How long an answer may take once sent, when the request carries no deadline (ms).
    public var defaultTimeoutMillis: Int64 = 30_000
    public var maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength
    /// How long a new connection may take to complete its hello before it is dropped and
    /// tried again (ms): a service that accepts but never answers is not waited for for ever.
    public var helloTimeoutMillis: Int64 = 3_000
    /// How many times one request may be written to a connection. A request is resent only
    /// when its connection was lost without a protocol error (the service restarted); the
    /// service's request-id record makes the resend of a mutation safe, and this bound keeps a
    /// request that kills its service from killing it again and again.
    public var maxTransmissions = 3
    public init() {}
}

/// A long-lived, multiplexed, self-reconnecting connection to one service endpoint.
///
/// Many requests are in flight at once and answered in any order, matched by id. When the
/// service drains or the connection drops, unanswered requests are held and resent (same
/// request id) as soon as the service is reachable again, for up to `holdMillis`.
/// `send` may be called from any thread; completions run on the client's loop.
public final class WireClient: WireConnectionDelegate, @unchecked Sendable {
    public typealias Completion = @Sendable (Result<WireResponse, WireClientError>) -> Void
    /// A completion that stays on the loop (for callers already on it).
    public typealias LoopCompletion = (Result<WireResponse, WireClientError>) -> Void

    /// One request from its arrival to its answer: waiting for a connection, in flight, moved
    /// between the clients of a pool's replicas, resent. One object per request, referenced from
    /// one queue or table at a time (loop thread only): moving it is a retain, not a copy of the
    /// request and its completion.
    public final class Pending {
        fileprivate var request: WireRequest
        fileprivate let completion: LoopCompletion
        /// Fixed when the request first arrives: resends never push it forward.
        public let holdUntil: Int64
        public let answerBy: Int64
        /// Times the request was written to a connection.
        fileprivate var transmissions = 0
        /// Position in arrival order at its client (resent requests keep their place).
        fileprivate var sequence: UInt64 = 0

        fileprivate init(request: WireRequest, completion: @escaping LoopCompletion, holdUntil: Int64, answerBy: Int64) {
            self.request = request
            self.completion = completion
            self.holdUntil = holdUntil
            self.answerBy = answerBy
        }

        /// A request not sent yet, for a client or a pool that holds it until it can be sent.
        public convenience init(_ request: WireRequest, holdMillis: Int64, defaultTimeoutMillis: Int64, completion: @escaping LoopCompletion) {
            let now = monotonicMillis()
            let answerBy = request.deadline > 0 ? now + max(0, request.deadline - wallClockMillis()) : now + defaultTimeoutMillis
            self.init(request: request, completion: completion, holdUntil: now + holdMillis, answerBy: answerBy)
        }

        /// Answers the request's caller with `error`.
        public func fail(_ error: WireClientError) { completion(.failure(error)) }
    }
    private var nextSequence: UInt64 = 0

    public let loop: EventLoop
    public let endpoint: Endpoint
    public let serviceName: String
    private let hello: Hello
    private let config: WireClientConfiguration

    @exclusivity(unchecked) private var connection: WireConnection?
    @exclusivity(unchecked) private var ready = false
    private var connecting = false
    private var backoff: Int64
    @exclusivity(unchecked) private var nextID: UInt64 = 1
    @exclusivity(unchecked) private var inFlight = IDTable<Pending>()
    @exclusivity(unchecked) private var waiting: [Pending] = []
    private var pings: [UInt64: @Sendable (Bool) -> Void] = [:]
    @exclusivity(unchecked) private var sweepScheduled = false
    @exclusivity(unchecked) private var stopped = false
    /// Connections told to drain: still answering what they took.
    private var drainingConnections: [ObjectIdentifier: Draining] = [:]
    private final class Draining {
        let wire: WireConnection
        var inFlight: IDTable<Pending>
        init(wire: WireConnection, inFlight: IDTable<Pending>) {
            self.wire = wire
            self.inFlight = inFlight
        }
    }

    /// Resends after a lost connection (for metrics).
    public private(set) var retries: Int = 0

    /// Called on the loop when the client became ready, lost its connection (its unanswered
    /// requests are then back in `waiting`), or, once retired, has nothing left: a
    /// `ReplicaPool` moves held requests to another replica then.
    public var onChange: (() -> Void)?
    /// Retired (its replica's socket is gone): it sends nothing new and does not reconnect,
    /// and closes its connection once every request on it is answered.
    @exclusivity(unchecked) public private(set) var isRetired = false

    /// Requests sent or waiting here and not answered yet (loop thread): the load measure of
    /// least-outstanding balancing.
    public var outstanding: Int { inFlight.count + waiting.count }

    /// Nothing left: no connection, nothing in flight, waiting or draining (loop thread).
    public var isIdle: Bool { connection == nil && inFlight.isEmpty && waiting.isEmpty && drainingConnections.isEmpty }

    /// Takes every request waiting for this client's connection (loop thread).
    public func takeWaiting() -> [Pending] {
        let taken = waiting
        waiting.removeAll()
        return taken
    }

    /// Sends requests taken from another client: now when ready, else once connected. A
    /// request already written `maxTransmissions` times fails instead (loop thread).
    public func adopt(_ entries: [Pending]) {
        guard !entries.isEmpty else { return }
        for entry in entries {
            nextSequence += 1
            entry.sequence = nextSequence
        }
        if isRetired || stopped {
            for entry in entries { entry.completion(.failure(.unavailable)) }
            return
        }
        let exhausted = entries.filter { $0.transmissions >= config.maxTransmissions }
        let sendable = entries.filter { $0.transmissions < config.maxTransmissions }
        if ready, let connection {
            for entry in sendable { transmit(entry, on: connection) }
        } else {
            waiting.append(contentsOf: sendable)
            scheduleSweep()
            if !connecting && connection == nil { connect() }
        }
        for entry in exhausted { entry.completion(.failure(.connectionLost)) }
    }

    /// Stops using this client (loop thread): see `isRetired`. Requests still waiting stay for
    /// the caller to `takeWaiting()`.
    public func retire() {
        guard !isRetired else { return }
        isRetired = true
        closeIfRetiredAndIdle()
    }

    /// Closing reports through `lost`, which calls `onChange`; without a connection the owner
    /// is told at once.
    private func closeIfRetiredAndIdle() {
        guard isRetired, inFlight.isEmpty else { return }
        if let connection { connection.close() } else { onChange?() }
    }

    public init(loop: EventLoop, endpoint: Endpoint, serviceName: String, hello: Hello, configuration: WireClientConfiguration = WireClientConfiguration()) {
        self.loop = loop
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.hello = hello
        self.config = configuration
        self.backoff = configuration.reconnectInitialMillis
    }

    /// Starts connecting (and keeps reconnecting whenever the connection is lost).
    public func start() {
        loop.execute { [self] in connect() }
    }

    public func stop() {
        loop.execute { [self] in
            stopped = true
            connection?.close()
            for draining in drainingConnections.values { draining.wire.close() }
            failAll(.unavailable)
        }
    }

    /// True when a connection is open and past its hello (loop thread).
    public var isReady: Bool { ready }

    /// Number of requests waiting for a connection (loop thread).
    public var waitingCount: Int { waiting.count }

    public func send(_ request: WireRequest, completion: @escaping Completion) {
        if loop.inEventLoop {
            enqueue(request, completion)
        } else {
            loop.execute { [self] in enqueue(request, completion) }
        }
    }

    /// `send` for callers on the client's loop thread: the completion never leaves the loop.
    public func sendOnLoop(_ request: WireRequest, completion: @escaping LoopCompletion) {
        assert(loop.inEventLoop, "sendOnLoop must be called on the client's loop")
        enqueue(request, completion)
    }

    /// Async form of `send`.
    public func send(_ request: WireRequest) async -> Result<WireResponse, WireClientError> {
        await withCheckedContinuation { continuation in
            send(request) { continuation.resume(returning: $0) }
        }
    }

    /// Pings the service; `completion(true)` when a pong arrives within `timeoutMillis`.
    public func ping(timeoutMillis: Int64 = 1000, completion: @escaping @Sendable (Bool) -> Void) {
        loop.execute { [self] in
            guard ready, let connection else { completion(false); return }
            let id = nextID
            nextID += 1
            pings[id] = completion
            connection.send(.ping(id: id))
            loop.schedule(afterMillis: timeoutMillis) { [self] in
                if let waiter = pings.removeValue(forKey: id) { waiter(false) }
            }
        }
    }

    // MARK: Loop-thread internals

    private func enqueue(_ request: WireRequest, _ completion: @escaping LoopCompletion) {
        guard !stopped else { completion(.failure(.unavailable)); return }
        let pending = Pending(request, holdMillis: config.holdMillis, defaultTimeoutMillis: config.defaultTimeoutMillis, completion: completion)
        nextSequence += 1
        pending.sequence = nextSequence
        if ready, let connection {
            transmit(pending, on: connection)
        } else {
            waiting.append(pending)
            scheduleSweep()
            if !connecting && connection == nil { connect() }
        }
    }

    private func transmit(_ entry: Pending, on connection: WireConnection) {
        let id = nextID
        nextID += 1
        entry.request.id = id
        let frame = entry.request.frame()
        // The frame limit is checked here, where the frame is made: a request the service's
        // decoder would refuse is answered alone instead of breaking the shared connection.
        let payload = frame.count - FrameEncoder.headerLength
        guard payload <= config.maxFrameLength else {
            entry.completion(.failure(.tooLarge(payload)))
            return
        }
        entry.transmissions += 1
        inFlight.set(entry, for: id)
        connection.sendFrames(frame)
        scheduleSweep()
    }

    private func connect() {
        guard !stopped, !isRetired, !connecting, connection == nil else { return }
        connecting = true
        let fd: Int32
        let inProgress: Bool
        do {
            (fd, inProgress) = try Socket.connect(to: endpoint)
        } catch {
            connecting = false
            scheduleReconnect()
            return
        }
        let stream = StreamConnection(fd: fd, loop: loop)
        let wire = WireConnection(stream: stream, localHello: hello, maxFrameLength: config.maxFrameLength)
        wire.delegate = self
        connection = wire
        // A peer that accepts but never says hello (stopped, wedged) is dropped and tried again.
        loop.schedule(afterMillis: config.helloTimeoutMillis) { [weak self, weak wire] in
            guard let self, let wire, self.connection === wire, !self.ready else { return }
            wire.close()
        }
        do {
            if inProgress {
                try stream.startConnecting { [weak self, weak wire] error in
                    guard let self, let wire else { return }
                    if error != nil {
                        self.lost(wire)
                    } else {
                        wire.sendHello()
                    }
                }
            } else {
                try stream.start()
                wire.sendHello()
            }
        } catch {
            stream.close()
            lost(wire)
        }
    }

    private func scheduleReconnect() {
        guard !stopped, !isRetired else { return }
        let delay = backoff
        backoff = min(backoff * 2, config.reconnectMaxMillis)
        loop.schedule(afterMillis: delay) { [weak self] in self?.connect() }
    }

    /// A connection closed or failed before or after its hello. What it carried is resent only
    /// when that cannot hurt: never after a protocol error (the same frame would fail again),
    /// and at most `maxTransmissions` times (writes are idempotent by request id).
    private func lost(_ wire: WireConnection) {
        var unanswered: [Pending]
        if let draining = drainingConnections.removeValue(forKey: ObjectIdentifier(wire)) {
            unanswered = draining.inFlight.removeAll()
        } else {
            guard connection === wire else { return }
            connection = nil
            connecting = false
            ready = false
            unanswered = inFlight.removeAll()
            let waiters = Array(pings.values)
            pings.removeAll()
            for waiter in waiters { waiter(false) }
            scheduleReconnect()
        }
        unanswered.sort { $0.sequence < $1.sequence }
        if let failure = wire.protocolFailure {
            for entry in unanswered { entry.completion(.failure(.protocolFailure(failure))) }
        } else {
            requeue(unanswered)
        }
        onChange?()
    }

    /// Puts unanswered requests back in front of the queue, in their arrival order; one that
    /// was already written `maxTransmissions` times fails instead.
    private func requeue(_ entries: [Pending]) {
        guard !entries.isEmpty else { return }
        var resend: [Pending] = []
        var exhausted: [Pending] = []
        for entry in entries {
            if entry.transmissions >= config.maxTransmissions { exhausted.append(entry) } else { resend.append(entry) }
        }
        retries += resend.count
        waiting.insert(contentsOf: resend, at: 0)
        scheduleSweep()
        for entry in exhausted { entry.completion(.failure(.connectionLost)) }
        if ready, let connection { flushWaiting(on: connection) }
    }

    private func flushWaiting(on connection: WireConnection) {
        let queued = waiting
        waiting.removeAll()
        for entry in queued { transmit(entry, on: connection) }
    }

    public func wireConnectionDidOpen(_ wire: WireConnection, peer: Hello) {
        guard connection === wire else { return }
        connecting = false
        ready = true
        backoff = config.reconnectInitialMillis
        if isRetired { closeIfRetiredAndIdle(); return }
        flushWaiting(on: wire)
        onChange?()
    }

    public func wireConnection(_ wire: WireConnection, didReceive message: Message) {
        switch message {
        case .response(let response):
            if connection === wire, let entry = inFlight.remove(response.id) {
                entry.completion(.success(response))
                if isRetired { closeIfRetiredAndIdle() }
            } else if let draining = drainingConnections[ObjectIdentifier(wire)], let entry = draining.inFlight.remove(response.id) {
                entry.completion(.success(response))
            }
        case .pong(let id):
            pings.removeValue(forKey: id)?(true)
        case .drain(let lastID):
            guard connection === wire else { return }
            // Requests after lastID were never processed: resend them on a new connection.
            let resend = inFlight.removeAll { id, _ in id > lastID }
            drainingConnections[ObjectIdentifier(wire)] = Draining(wire: wire, inFlight: inFlight)
            inFlight = IDTable<Pending>()
            connection = nil
            ready = false
            connecting = false
            let waiters = Array(pings.values)
            pings.removeAll()
            for waiter in waiters { waiter(false) }
            // Never processed (after lastID), so resending them is always safe.
            for entry in resend { entry.transmissions -= 1 }
            requeue(resend.sorted { $0.sequence < $1.sequence })
            connect()
            onChange?()
        default:
            break
        }
    }

    public func wireConnectionDidClose(_ wire: WireConnection, reason: String?) {
        lost(wire)
    }

    private func scheduleSweep() {
        guard !sweepScheduled else { return }
        sweepScheduled = true
        loop.schedule(afterMillis: 100) { [weak self] in self?.sweep() }
    }

    /// Fails held requests past their hold time and sent ones past their deadline. State is
    /// settled before any completion runs: a completion may queue new requests.
    private func sweep() {
        sweepScheduled = false
        let now = monotonicMillis()
        var expired = waiting.removeExpired(now: now)
        for entry in inFlight.removeAll(where: { _, entry in entry.answerBy <= now }) { expired.append((entry, .timedOut)) }
        for draining in drainingConnections.values {
            for entry in draining.inFlight.removeAll(where: { _, entry in entry.answerBy <= now }) { expired.append((entry, .timedOut)) }
        }
        for (entry, error) in expired { entry.completion(.failure(error)) }
        if !waiting.isEmpty || !inFlight.isEmpty || drainingConnections.values.contains(where: { !$0.inFlight.isEmpty }) {
            scheduleSweep()
        }
    }

    private func failAll(_ error: WireClientError) {
        let all = inFlight.removeAll() + waiting + drainingConnections.values.flatMap { $0.inFlight.removeAll() }
        waiting.removeAll()
        drainingConnections.removeAll()
        for entry in all { entry.completion(.failure(error)) }
    }
}

extension Array where Element == WireClient.Pending {
    /// Takes out the requests whose hold time or deadline has passed at `now`, each with the
    /// error it is to be answered with; the others keep their order.
    mutating func removeExpired(now: Int64) -> [(Element, WireClientError)] {
        var expired: [(Element, WireClientError)] = []
        var keep: [Element] = []
        keep.reserveCapacity(count)
        for item in self {
            if item.holdUntil <= now { expired.append((item, .unavailable)) }
            else if item.answerBy <= now { expired.append((item, .timedOut)) }
            else { keep.append(item) }
        }
        self = keep
        return expired
    }
}
