#if canImport(Glibc)
import Glibc
#endif

/// Why a request got no answer from the service.
public enum WireClientError: Error, Sendable, Equatable {
    /// The service was unreachable for the whole hold time.
    case unavailable
    /// The request's deadline passed while waiting for the answer.
    case timedOut
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

    private struct Pending {
        var request: WireRequest
        var completion: LoopCompletion
        var holdUntil: Int64
        var answerBy: Int64
    }

    public let loop: EventLoop
    public let endpoint: Endpoint
    public let serviceName: String
    private let hello: Hello
    private let config: WireClientConfiguration

    private var connection: WireConnection?
    private var ready = false
    private var connecting = false
    private var backoff: Int64
    private var nextID: UInt64 = 1
    private var inFlight: [UInt64: Pending] = [:]
    private var waiting: [Pending] = []
    private var pings: [UInt64: @Sendable (Bool) -> Void] = [:]
    private var sweepScheduled = false
    private var stopped = false
    /// Connections told to drain: still answering what they took.
    private var drainingConnections: [ObjectIdentifier: (WireConnection, [UInt64: Pending])] = [:]

    /// Resends after a lost connection (for metrics).
    public private(set) var retries: Int = 0

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
            for (c, _) in drainingConnections.values { c.close() }
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
        let now = monotonicMillis()
        let answerBy: Int64
        if request.deadline > 0 {
            answerBy = now + max(0, request.deadline - wallClockMillis())
        } else {
            answerBy = now + config.defaultTimeoutMillis
        }
        let pending = Pending(request: request, completion: completion, holdUntil: now + config.holdMillis, answerBy: answerBy)
        if ready, let connection {
            transmit(pending, on: connection)
        } else {
            waiting.append(pending)
            scheduleSweep()
            if !connecting && connection == nil { connect() }
        }
    }

    private func transmit(_ pending: Pending, on connection: WireConnection) {
        var entry = pending
        let id = nextID
        nextID += 1
        entry.request.id = id
        inFlight[id] = entry
        connection.send(.request(entry.request))
        scheduleSweep()
    }

    private func connect() {
        guard !stopped, !connecting, connection == nil else { return }
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
        guard !stopped else { return }
        let delay = backoff
        backoff = min(backoff * 2, config.reconnectMaxMillis)
        loop.schedule(afterMillis: delay) { [weak self] in self?.connect() }
    }

    /// A connection closed or failed before or after its hello.
    private func lost(_ wire: WireConnection) {
        if let entry = drainingConnections.removeValue(forKey: ObjectIdentifier(wire)) {
            requeue(Array(entry.1.values))
            return
        }
        guard connection === wire else { return }
        connection = nil
        connecting = false
        ready = false
        let unanswered = Array(inFlight.values)
        inFlight.removeAll()
        requeue(unanswered)
        for waiter in pings.values { waiter(false) }
        pings.removeAll()
        scheduleReconnect()
    }

    /// Puts unanswered requests back in front of the queue, in their original order.
    private func requeue(_ entries: [Pending]) {
        guard !entries.isEmpty else { return }
        let now = monotonicMillis()
        let ordered = entries.sorted { $0.request.id < $1.request.id }.map { entry -> Pending in
            var e = entry
            e.holdUntil = max(e.holdUntil, now + config.holdMillis)
            return e
        }
        retries += ordered.count
        waiting.insert(contentsOf: ordered, at: 0)
        scheduleSweep()
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
        flushWaiting(on: wire)
    }

    public func wireConnection(_ wire: WireConnection, didReceive message: Message) {
        switch message {
        case .response(let response):
            if connection === wire, let entry = inFlight.removeValue(forKey: response.id) {
                entry.completion(.success(response))
            } else if var draining = drainingConnections[ObjectIdentifier(wire)],
                      let entry = draining.1.removeValue(forKey: response.id) {
                drainingConnections[ObjectIdentifier(wire)] = draining
                entry.completion(.success(response))
            }
        case .pong(let id):
            pings.removeValue(forKey: id)?(true)
        case .drain(let lastID):
            guard connection === wire else { return }
            // Requests after lastID were never processed: resend them on a new connection.
            var kept: [UInt64: Pending] = [:]
            var resend: [Pending] = []
            for (id, entry) in inFlight {
                if id <= lastID { kept[id] = entry } else { resend.append(entry) }
            }
            inFlight.removeAll()
            drainingConnections[ObjectIdentifier(wire)] = (wire, kept)
            connection = nil
            ready = false
            connecting = false
            for waiter in pings.values { waiter(false) }
            pings.removeAll()
            requeue(resend)
            connect()
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

    /// Fails held requests past their hold time and sent ones past their deadline.
    private func sweep() {
        sweepScheduled = false
        let now = monotonicMillis()
        var keep: [Pending] = []
        for entry in waiting {
            if entry.holdUntil <= now { entry.completion(.failure(.unavailable)) }
            else if entry.answerBy <= now { entry.completion(.failure(.timedOut)) }
            else { keep.append(entry) }
        }
        waiting = keep
        for (id, entry) in inFlight where entry.answerBy <= now {
            inFlight[id] = nil
            entry.completion(.failure(.timedOut))
        }
        for (key, var value) in drainingConnections {
            for (id, entry) in value.1 where entry.answerBy <= now {
                value.1[id] = nil
                entry.completion(.failure(.timedOut))
            }
            drainingConnections[key] = value
        }
        if !waiting.isEmpty || !inFlight.isEmpty || drainingConnections.values.contains(where: { !$0.1.isEmpty }) {
            scheduleSweep()
        }
    }

    private func failAll(_ error: WireClientError) {
        let all = Array(inFlight.values) + waiting + drainingConnections.values.flatMap { $0.1.values }
        inFlight.removeAll()
        waiting.removeAll()
        drainingConnections.removeAll()
        for entry in all { entry.completion(.failure(error)) }
    }
}
