#if canImport(Glibc)
import Glibc
#endif
import APICatalog
import CLinux
import Synchronization
import WireProtocol

/// What the gateway's loops share (`GatewayConfiguration.loops`): the connection budget
/// (`maxConnections` counts every loop's connections), the session cache and where the
/// revocation feed is (one loop follows it for all), the revoking writes any loop forwarded,
/// and each other, for `/metrics`. The sessions thus behave as with one loop: a session
/// validated through one loop is known to all, and so is every revocation.
final class GatewayGroup: Sendable {
    let openConnections = Atomic<Int>(0)
    let sessions: SessionCache

    /// Where the gateway is in UserService's event feed (nil until it learned the tail), when
    /// the feed last answered, when UserService last answered anything (any loop's question),
    /// and when the last answered feed poll was sent (every event committed before then has
    /// arrived).
    struct Feed {
        var cursor: Int64?
        var answeredAt: Int64 = 0
        var usersAnsweredAt: Int64 = 0
        var currentAsOf: Int64 = 0
    }
    let feed = Mutex(Feed())
    private let feedClaimed = Atomic<Bool>(false)

    /// `gw-<random>-`: the start of every request id the process makes. One prefix and one
    /// counter for all loops, so the ids the loops send together sort in the order they were
    /// made: with a prefix per loop, each group commit's ids went to two places of every
    /// service's `applied_requests` and its index by time (docs/BENCHMARKS.md).
    let requestIDPrefix: [UInt8]
    private let requestIDCounter = Atomic<UInt64>(0)
    /// The next number for a request id (shared by the loops).
    func nextRequestNumber() -> UInt64 { requestIDCounter.wrappingAdd(1, ordering: .relaxed).newValue }

    /// Request ids must not repeat across gateways and restarts: without real randomness the
    /// gateway does not start (fails closed).
    init(configuration: GatewayConfiguration) throws(SyscallError) {
        sessions = SessionCache(ttlMillis: configuration.sessionCacheMillis, staleMillis: configuration.sessionStaleMillis)
        requestIDPrefix = Array(("gw-" + (try Gateway.randomHex(8)) + "-").utf8)
    }

    /// True for the one loop that follows the revocation feed (the first to ask).
    func claimFeed() -> Bool {
        feedClaimed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    /// Requests that can revoke sessions (logout, password, employee changes) sent to
    /// UserService and not answered yet; the newest event UserService had when it answered one
    /// (`event-seq`: every loop's feed must reach it before its fallback vouches again); when
    /// the last one whose outcome was lost ended (a feed poll sent after it must have answered).
    struct RevokingWrites {
        var inFlight = 0
        var requiredFeedSeq: Int64 = 0
        var lostAt: Int64?
    }
    let revokingWrites = Mutex(RevokingWrites())
    private let members = Mutex<[Gateway]>([])

    func add(_ gateway: Gateway) { members.withLock { $0.append(gateway) } }
    var gateways: [Gateway] { members.withLock { $0 } }

    /// The loop with the fewest connections, `own` when it is among them. Connections are
    /// spread by count whichever loop accepted them: when every loop waits on the one listening
    /// socket, whichever thread is running takes most of a burst of connects, and one loop then
    /// serves twice the requests of the other while its core is the bottleneck (livez:
    /// 53,500 requests/s at 69 % / 37 % of a core per loop, 63,000 at 52 % / 52 %).
    func leastBusy(preferring own: Gateway) -> Gateway {
        members.withLock { members in
            var best = own
            var fewest = own.loopConnections.load(ordering: .relaxed)
            for member in members where member !== own {
                let count = member.loopConnections.load(ordering: .relaxed)
                if count < fewest { best = member; fewest = count }
            }
            return best
        }
    }
}

/// The HTTP front: accepts connections, answers the operational endpoints itself, checks the
/// session, and forwards every API request to the service that owns its path prefix.
/// One `Gateway` runs on one event loop thread; a process runs one per loop
/// (`GatewayConfiguration.loops`), each accepting from the same listening socket with its own
/// connections, service clients, session cache and access log (see docs/ARCHITECTURE.md).
final class Gateway: @unchecked Sendable {
    let configuration: GatewayConfiguration
    let loop: EventLoop
    /// Per service, its replicas' connections (one socket, or a folder of replica sockets).
    private(set) var clients: [ServiceName: ReplicaPool] = [:]
    private var listener: Listener?
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    /// The connections this loop serves or is about to: `connections` plus those another loop
    /// handed over that are not adopted yet. New connections go to the loop with the fewest
    /// (`GatewayGroup.leastBusy`), and a drain ends only when it is 0.
    let loopConnections = Atomic<Int>(0)
    private let sessions: SessionCache
    let metrics = Metrics(documentedPaths: OpenAPI.paths)
    /// `/livez`'s counters, found once (not by its path per probe).
    private lazy var livezCounts = metrics.counts(forRoute: "/livez")
    private let accessLog: AccessLog
    /// The group's request-id prefix (`tracePrefix` is the same with a `t`: the ids of requests).
    private let ridPrefix: [UInt8]

    private let group: GatewayGroup

    /// What forwarding a documented path needs, found with one lookup per request: its facts,
    /// its service's pool (nil when that service is not configured) and its counters.
    private final class Route {
        let facts: PathFacts
        let client: ReplicaPool?
        let counts: Metrics.RouteCounts
        init(facts: PathFacts, client: ReplicaPool?, counts: Metrics.RouteCounts) {
            self.facts = facts
            self.client = client
            self.counts = counts
        }
    }
    private var routes: [String: Route] = [:]

    init(configuration: GatewayConfiguration, loop: EventLoop, group: GatewayGroup? = nil) throws {
        self.configuration = configuration
        self.loop = loop
        let group = try group ?? GatewayGroup(configuration: configuration)
        self.group = group
        accessLog = AccessLog(loop: loop)
        sessions = group.sessions
        ridPrefix = group.requestIDPrefix
        tracePrefix = group.requestIDPrefix + [UInt8(ascii: "t")]
        var clientConfig = WireClientConfiguration()
        clientConfig.holdMillis = configuration.holdMillis
        clientConfig.defaultTimeoutMillis = configuration.requestTimeoutMillis
        for (name, endpoint) in configuration.services {
            clients[name] = ReplicaPool(loop: loop, endpoint: endpoint, serviceName: name.rawValue,
                                        hello: Hello(peer: "gateway", replica: Gateway.hostName()), configuration: clientConfig)
        }
        for route in Catalog.routes where routes[route.path] == nil {
            let facts = PathFacts(route.path)
            routes[route.path] = Route(facts: facts, client: facts.service.flatMap { clients[$0] }, counts: metrics.counts(forRoute: route.path))
        }
        group.add(self)
    }

    /// `count` bytes from getrandom as hex; throws when the system cannot give them all.
    static func randomHex(_ count: Int) throws(SyscallError) -> String {
        var random = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = random.withUnsafeMutableBytes { getrandom($0.baseAddress.map { $0 + filled }, count - filled, 0) }
            if n > 0 { filled += n } else if n < 0 && errno == EINTR { continue } else {
                throw SyscallError(call: "getrandom", errno: n < 0 ? errno : EIO)
            }
        }
        return random.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "-\(getpid())"
    }

    /// The listener the launcher handed over (`listenFD`: the launcher keeps it open, so
    /// connections queue in the kernel while no gateway runs), else the HTTP port bound
    /// (SO_REUSEPORT, so a new gateway can take over from an old one).
    static func openListener(_ configuration: GatewayConfiguration) throws(SyscallError) -> Int32 {
        try configuration.listenFD.map { inherited throws(SyscallError) in try Socket.adoptListener(inherited) }
            ?? Socket.listen(on: .tcp(host: configuration.host, port: configuration.port), reusePort: true)
    }

    /// Accepts from the listening socket `fd` (this gateway's own descriptor of it: the loops
    /// each hold a duplicate, and a draining loop closes only its own); connects to every service.
    func start(listening fd: Int32) {
        loop.execute { [self] in
            let listener = Listener(fd: fd, loop: loop) { [weak self] client in
                guard let self else { close(client); return }
                self.accepted(client)
            }
            do { try listener.start() } catch { listener.close(); return }
            self.listener = listener
            for client in clients.values { client.start() }
            scheduleSweep()
            if group.claimFeed() { followRevocations() }
        }
    }

    private func accepted(_ fd: Int32) {
        // Every loop's connections count against the one limit.
        guard group.openConnections.wrappingAdd(1, ordering: .relaxed).newValue <= configuration.maxConnections else {
            group.openConnections.wrappingSubtract(1, ordering: .relaxed)
            let stream = StreamConnection(fd: fd, loop: loop)
            var refused = HTTPResponse.error(503, "too many connections", close: true)
            refused.requestID = newRequestID()
            stream.write(refused.serialized(keepAlive: false))
            stream.close()
            return
        }
        // A draining loop keeps what it takes off the queue: the others may be done already.
        let target = draining ? self : group.leastBusy(preferring: self)
        target.loopConnections.wrappingAdd(1, ordering: .relaxed)
        if target === self {
            adopt(fd)
        } else {
            target.loop.execute { target.adopt(fd) }
        }
    }

    /// Serves an accepted connection on this loop (counted in `loopConnections` already).
    private func adopt(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let stream = StreamConnection(fd: fd, loop: loop)
        let connection = HTTPConnection(stream: stream, gateway: self)
        connections[ObjectIdentifier(connection)] = connection
        do { try stream.start() } catch { stream.close(); return }
    }

    func connectionClosed(_ connection: HTTPConnection) {
        if connections.removeValue(forKey: ObjectIdentifier(connection)) != nil {
            group.openConnections.wrappingSubtract(1, ordering: .relaxed)
            loopConnections.wrappingSubtract(1, ordering: .relaxed)
        }
    }

    /// True once shutting down: answers carry `Connection: close`.
    private(set) var draining = false

    /// Shutdown (SIGTERM): take what is already queued on the listener, stop accepting (a new
    /// gateway may already share the port through SO_REUSEPORT), answer every request with
    /// `Connection: close`, and close connections that stay idle for `drainIdleMillis` — long
    /// enough for a client that just connected to send its request. Calls `completion` when no
    /// connection is left, after `timeoutMillis` at the latest.
    func drain(timeoutMillis: Int64 = 15_000, completion: @escaping @Sendable () -> Void) {
        loop.execute { [self] in
            draining = true
            listener?.acceptQueued()
            listener?.close()
            let deadline = monotonicMillis() + timeoutMillis
            func check() {
                // `loopConnections`, not `connections`: a connection another loop is handing
                // over must be served before this loop is done.
                if loopConnections.load(ordering: .relaxed) == 0 || monotonicMillis() > deadline { accessLog.flush(); completion(); return }
                loop.schedule(afterMillis: 20) { check() }
            }
            check()
        }
    }

    /// The paths the gateway answers itself (GET only).
    static let ownPaths: Set<String> = Set(Catalog.routes.filter { $0.service == nil }.map(\.path))

    /// How long a connection may stay idle once the gateway is draining.
    static let drainIdleMillis: Int64 = 1_000

    /// Open HTTP connections of every loop.
    var openConnections: Int { group.openConnections.load(ordering: .relaxed) }

    /// Answer bytes queued for clients that have not read them yet.
    var bufferedOutputBytes: Int { connections.values.reduce(0) { $0 + $1.stream.pendingOutputBytes } }

    private func scheduleSweep() {
        loop.schedule(afterMillis: 500) { [weak self] in
            guard let self else { return }
            let now = monotonicMillis()
            for connection in connections.values { connection.checkTimers(now: now) }
            sessions.evictExpired(now: now)
            scheduleSweep()
        }
    }

    // MARK: Requests

    /// `/livez`'s answer, made once.
    private static let livezBody: [UInt8] = JSON.object(JSONObject([("status", .int(0))])).serialized()

    func handle(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        let path = request.head.path
        var method = request.head.method
        if method == "HEAD" { method = "GET" }
        metrics.inFlight += 1
        let given = givenRequestID(request.head)
        let exchange = Exchange(gateway: self, started: loop.now, method: method, path: path, trace: given ?? newRequestID(),
                                inBytes: request.body.count, respond: respond)
        exchange.traceIsOwn = given == nil
        if method != "GET" && Gateway.ownPaths.contains(path) {
            exchange.finish(HTTPResponse.error(405, "\(path) does not accept \(method); use GET"), route: path)
            return
        }
        switch path {
        case "/livez":
            exchange.counts = livezCounts
            exchange.finish(HTTPResponse(status: 200, body: Gateway.livezBody), route: path)
            return
        case "/healthz":
            health { exchange.finish($0, route: path) }
            return
        case "/metrics":
            renderMetrics { exchange.finish($0, route: path) }
            return
        case "/openapi.json":
            exchange.finish(HTTPResponse(status: 200, body: OpenAPI.document), route: path)
            return
        default:
            break
        }
        forward(request, exchange)
    }

    /// Ends one request: counts it, writes its access line, hands the answer (with its request
    /// id) to the connection.
    fileprivate func finish(_ exchange: Exchange, _ answer: HTTPResponse, route: String) {
        metrics.inFlight -= 1
        let millis = loop.now - exchange.started
        // Only documented paths get a label of their own: clients choose paths, and each
        // label is kept for ever.
        let counts = exchange.counts ?? metrics.counts(forRoute: route)
        metrics.record(counts, status: answer.status, millis: millis)
        var response = answer
        response.requestID = exchange.trace
        if Log.enabled(.info) {
            accessLog.append(requestID: exchange.trace, caller: exchange.caller, method: exchange.method,
                             route: counts === metrics.other ? .other(String(exchange.path.prefix(200))) : .documented(counts.labelJSON),
                             status: response.status, millis: millis, service: exchange.service?.rawValue,
                             inBytes: exchange.inBytes, outBytes: response.body.count)
        }
        exchange.respond(response)
    }

    /// An API request: parameters, session, then the owning service. What the later steps need
    /// travels in `exchange`, and each callback captures only it (no context allocated per step).
    private func forward(_ request: HTTPRequest, _ exchange: Exchange) {
        let path = exchange.path, method = exchange.method
        let documented = routes[path]
        let facts = documented?.facts ?? PathFacts(path)
        guard let service = facts.service, let client = documented?.client ?? clients[service] else {
            exchange.finish(HTTPResponse.error(404, "no such endpoint: \(path)"), route: "other")
            return
        }
        exchange.counts = documented?.counts
        do {
            exchange.params = try RequestParams.build(request)
        } catch {
            exchange.finish(HTTPResponse.error(400, error.reason), route: path)
            return
        }
        let credential = RequestParams.credential(request.head)
        exchange.service = service
        exchange.client = client
        exchange.revoking = facts.revoking
        // Only the service that owns sessions gets the token (for logout).
        exchange.token = credential?.token
        // A change made with the session cookie must come from our own pages: a browser adds the
        // cookie to cross-site form posts too, but names their origin.
        if method != "GET", credential?.fromCookie == true, let foreign = foreignOrigin(request.head) {
            exchange.finish(HTTPResponse.error(403, "cross-site request refused: \(foreign) is not \(configuration.publicOrigin); send Authorization: Bearer instead of the cookie from other origins"), route: path)
            return
        }
        exchange.idempotencyKey = request.head.header("idempotency-key")
        if let key = exchange.idempotencyKey, key.utf8.count > configuration.maxIdempotencyKeyLength || key.isEmpty {
            exchange.finish(HTTPResponse.error(400, "Idempotency-Key must be 1 to \(configuration.maxIdempotencyKeyLength) characters"), route: path)
            return
        }
        if facts.isPublic {
            send(exchange, caller: nil)
            return
        }
        guard let token = exchange.token else {
            exchange.finish(HTTPResponse.error(401, "not logged in: send the crm_session cookie or Authorization: Bearer <token>"), route: path)
            return
        }
        authenticate(token) { [exchange] outcome in
            switch outcome {
            case .success(let authenticated) where authenticated.fromFallback && exchange.revoking:
                // Changes to employees and sessions wait for UserService itself.
                exchange.finish(HTTPResponse.error(503, "the users service is unavailable; try again shortly"), route: exchange.path)
            case .success(let authenticated): exchange.gateway.send(exchange, caller: authenticated.caller)
            case .failure(let error): exchange.finish(error.response, route: exchange.path)
            }
        }
    }

    /// Sends a checked request to its service (`exchange.client`).
    private func send(_ exchange: Exchange, caller: Caller?) {
        // Both are set by `forward` before anything sends; still, never leave a request unanswered.
        guard let client = exchange.client, let service = exchange.service else {
            exchange.finish(HTTPResponse.error(500, "the request lost its service on the way"), route: exchange.path)
            return
        }
        exchange.caller = caller?.id
        // The service's idempotency record must not confuse two requests: the caller's key, or
        // an id unique to this gateway process — its own request id when it made one (a
        // client's X-Request-Id may repeat), else a fresh one.
        let rid: String
        if let key = exchange.idempotencyKey {
            rid = "\(WireRequest.clientKeyPrefix)\(caller?.id ?? 0):\(key)"
        } else if exchange.traceIsOwn {
            rid = exchange.trace
        } else {
            rid = Gateway.numbered(ridPrefix, group.nextRequestNumber())
        }
        var wire = WireRequest(method: exchange.method, path: exchange.path, params: exchange.params, caller: caller, requestID: rid,
                               deadline: wallClockMillis() + configuration.requestTimeoutMillis,
                               session: service == .users ? exchange.token : nil)
        wire.trace = exchange.trace
        if exchange.revoking { group.revokingWrites.withLock { $0.inFlight += 1 } }
        // Completions of the pool run on this loop.
        client.sendOnLoop(wire) { [exchange] result in exchange.gateway.answered(exchange, result) }
    }

    /// The service's answer (or why there is none) to a forwarded request.
    private func answered(_ exchange: Exchange, _ result: Result<WireResponse, WireClientError>) {
        guard let service = exchange.service else {
            exchange.finish(HTTPResponse.error(500, "the request lost its service on the way"), route: exchange.path)
            return
        }
        if exchange.revoking { revokingWriteEnded(result) }
        finish(exchange, response(for: result, service: service), route: exchange.path)
    }

    /// What `forward` needs to know of a path: its service, whether it is public, whether its
    /// writes can end sessions.
    struct PathFacts {
        let service: ServiceName?
        let isPublic: Bool
        let revoking: Bool
        init(_ path: String) {
            service = Gateway.service(forPath: path)
            isPublic = Catalog.publicPaths.contains(path)
            revoking = Gateway.revokingPaths.contains(path)
        }
    }

    /// `Catalog.prefixes` by their segment (`user` for `/api/user`).
    private static let servicesBySegment: [String: ServiceName] = {
        var result: [String: ServiceName] = [:]
        for (prefix, service) in Catalog.prefixes where prefix.hasPrefix("/api/") { result[String(prefix.dropFirst(5))] = service }
        return result
    }()

    /// `Catalog.service(forPath:)` read from the path's bytes (no characters, no concatenation);
    /// paths that are not ASCII go to the catalog itself.
    static func service(forPath path: String) -> ServiceName? {
        var path = path
        return path.withUTF8 { bytes -> ServiceName? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return Catalog.service(forPath: String(decoding: bytes, as: UTF8.self)) }
            guard bytes.count > 5, bytes[0] == UInt8(ascii: "/"), bytes[1] == UInt8(ascii: "a"), bytes[2] == UInt8(ascii: "p"),
                  bytes[3] == UInt8(ascii: "i"), bytes[4] == UInt8(ascii: "/") else { return nil }
            var end = 5
            while end < bytes.count && bytes[end] != UInt8(ascii: "/") { end += 1 }
            return servicesBySegment[String(decoding: UnsafeBufferPointer(rebasing: bytes[5..<end]), as: UTF8.self)]
        }
    }

    /// The client's `X-Request-Id` when well-formed (1…128 of `A-Z a-z 0-9 . _ : -`); nil
    /// when it sent none (or a malformed one): the request gets one of the gateway's own.
    private func givenRequestID(_ head: HTTPRequestHead) -> String? {
        if let given = head.header("x-request-id"), (1...128).contains(given.utf8.count), given.utf8.allSatisfy(Gateway.isRequestIDByte) {
            return given
        }
        return nil
    }

    /// A request id of the gateway's own (for answers to requests it could not even parse).
    func newRequestID() -> String {
        Gateway.numbered(tracePrefix, group.nextRequestNumber())
    }
    private let tracePrefix: [UInt8]

    /// `prefix`, a letter for the number of digits (`a` for one … `t` for twenty), then the
    /// decimal digits of `number`: ids of one prefix sort as their numbers do (`ta9` < `tb10`),
    /// where plain digits put `t22918` between `t2291` and `t2292`. A service keeps every
    /// write's id in a B-tree (`applied_requests`, and its index by time): in order, a group
    /// commit's ids go to one place at its end instead of to a page per ten ids across it — a
    /// third of the pages each customer-create commit wrote (docs/BENCHMARKS.md). Made in one
    /// allocation (was a string for the digits, then an append: ~1,000 instructions per request).
    static func numbered(_ prefix: [UInt8], _ number: UInt64) -> String {
        var digits = 1
        var rest = number / 10
        while rest > 0 { digits += 1; rest /= 10 }
        return String(unsafeUninitializedCapacity: prefix.count + 1 + digits) { out in
            _ = out.initialize(fromContentsOf: prefix)
            out[prefix.count] = UInt8(ascii: "a") + UInt8(digits - 1)
            var value = number
            var index = prefix.count + 1 + digits
            repeat {
                index -= 1
                out[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            return prefix.count + 1 + digits
        }
    }

    static func isRequestIDByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    /// The origin a request names (`Origin`, else the origin of `Referer`) when it is not ours;
    /// nil when it is ours or names none (not a browser, or a same-origin navigation).
    private func foreignOrigin(_ head: HTTPRequestHead) -> String? {
        let named: String
        if let origin = head.header("origin"), !origin.isEmpty {
            named = origin
        } else if let referer = head.header("referer"), !referer.isEmpty {
            // scheme://host[:port] of the referring page.
            guard let schemeEnd = referer.firstRange(of: "://") else { return referer }
            let rest = referer[schemeEnd.upperBound...]
            named = String(referer[..<schemeEnd.upperBound]) + String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        } else {
            return nil
        }
        return named.lowercased() == configuration.publicOrigin.lowercased() ? nil : named
    }

    private func response(for result: Result<WireResponse, WireClientError>, service: ServiceName) -> HTTPResponse {
        switch result {
        case .success(let answer):
            let secure = configuration.cookieSecure
            let headers = answer.headers.filter { $0.name.lowercased() == "set-cookie" }.map { (name: "Set-Cookie", value: secure ? $0.value + "; Secure" : $0.value) }
            // The service's body bytes as they came (validated by the frame decoder).
            return HTTPResponse(status: answer.status, body: answer.bodyBytes, headers: headers)
        case .failure(.unavailable):
            return HTTPResponse.error(503, "the \(service) service is unavailable; try again shortly")
        case .failure(.timedOut):
            return HTTPResponse.error(504, "the \(service) service did not answer in time")
        case .failure(.tooLarge(let bytes)):
            return HTTPResponse.error(413, "the request is \(bytes) bytes once encoded for the \(service) service, more than \(FrameDecoder.defaultMaxFrameLength); send less")
        case .failure(.protocolFailure):
            return HTTPResponse.error(502, "the connection to the \(service) service failed while this request was in flight; it was not resent (it may or may not have been applied)")
        case .failure(.connectionLost):
            return HTTPResponse.error(502, "the \(service) service was lost repeatedly while answering this request")
        }
    }

    // MARK: Sessions

    /// Resolves a token to its caller: from the short cache, else by asking UserService
    /// (concurrent lookups of one token share one question). While UserService cannot answer,
    /// a recently validated session is accepted from the fallback (for reads only, see
    /// `handle`), provided the revocation feed was followed until shortly before.
    private func authenticate(_ token: String, completion: @escaping SessionCache.Waiter) {
        let now = monotonicMillis()
        if let caller = sessions.lookup(token, now: now) {
            completion(.success(Authenticated(caller: caller, fromFallback: false)))
            return
        }
        // The answer may come through another loop's question: it is handed to this loop.
        let waiter: SessionCache.Waiter = { [loop] outcome in
            if loop.inEventLoop {
                completion(outcome)
            } else {
                let bound = LoopBound(completion)
                loop.execute { bound.value(outcome) }
            }
        }
        guard sessions.addWaiter(token, waiter) else { return }
        guard let users = clients[.users] else {
            sessions.resolve(token, .failure(AuthFailure(response: HTTPResponse.error(503, "the users service is not configured"))), now: now)
            return
        }
        let request = WireRequest(method: "POST", path: "/internal/session", params: JSONObject([("token", .string(token))]),
                                  caller: nil, requestID: "", deadline: wallClockMillis() + configuration.sessionCheckTimeoutMillis)
        users.sendOnLoop(request) { [self] result in
            let outcome: Result<Authenticated, AuthFailure>
            switch result {
            case .success(let answer) where answer.status == 200:
                group.feed.withLock { $0.usersAnsweredAt = monotonicMillis() }
                if let data = answer.body["data"], let id = data["id"]?.intValue, let role = data["role"]?.intValue {
                    outcome = .success(Authenticated(caller: Caller(id: id, role: role), fromFallback: false))
                } else {
                    outcome = .failure(AuthFailure(response: HTTPResponse.error(500, "session check answered without a caller")))
                }
            case .success(let answer) where answer.status < 500:
                group.feed.withLock { $0.usersAnsweredAt = monotonicMillis() }
                sessions.forget(token)
                outcome = .failure(AuthFailure(response: HTTPResponse(status: answer.status, body: answer.bodyBytes)))
            default:
                // UserService is unreachable, slow or failing: a recently validated session stays
                // good for reads, if no revocation can have been missed.
                let now = monotonicMillis()
                if revocationFeedIsCurrent(now: now), let caller = sessions.lookupStale(token, now: now) {
                    outcome = .success(Authenticated(caller: caller, fromFallback: true))
                } else if case .success(let answer) = result {
                    outcome = .failure(AuthFailure(response: HTTPResponse(status: answer.status, body: answer.bodyBytes)))
                } else {
                    // Not a slow answer to this request but a check that could not be made: the
                    // request was not run, and the client may retry (503, not the 504 of a timeout).
                    outcome = .failure(AuthFailure(response: HTTPResponse.error(503, "the session cannot be checked: the users service is unavailable; try again shortly")))
                }
            }
            sessions.resolve(token, outcome, now: monotonicMillis())
        }
    }

    // MARK: Revocations


    /// The paths whose writes can end sessions or change who an employee is.
    static let revokingPaths: Set<String> = ["/api/user/logout", "/api/user/password", "/api/user/user", "/api/user/deluser"]

    private func revokingWriteEnded(_ result: Result<WireResponse, WireClientError>) {
        // An answer without `event-seq` (a replayed stored answer) or no answer at all: the
        // write's events are unknown, so wait for a poll sent after now.
        let seq: Int64?
        if case .success(let answer) = result {
            seq = answer.headers.first(where: { $0.name == "event-seq" }).flatMap({ Int64($0.value) })
        } else {
            seq = nil
        }
        let now = monotonicMillis()
        group.revokingWrites.withLock { writes in
            writes.inFlight -= 1
            if let seq { writes.requiredFeedSeq = max(writes.requiredFeedSeq, seq) } else { writes.lostAt = max(writes.lostAt ?? now, now) }
        }
    }
    static let feedWaitMillis: Int64 = 20_000
    static let feedRetryMillis: Int64 = 500

    /// The fallback may vouch for a session only if every revocation committed before
    /// UserService became unreachable has arrived: when UserService last answered anything,
    /// the feed had answered within one long-poll period (an idle feed answers every
    /// `feedWaitMillis`; a revocation wakes the pending poll at once, so only one committed in
    /// the instant before a crash can be missed — docs/ARCHITECTURE.md). How long the outage
    /// has lasted does not matter: nothing can be revoked while UserService is down.
    ///
    /// A revocation the gateway itself forwarded is covered exactly: its answer names the
    /// newest event (`event-seq`) and the fallback waits until the feed's cursor reached it; a
    /// revoking write still in flight, or whose answer was lost, keeps the fallback off until a
    /// feed poll sent after it has answered. Revoking writes count whichever loop forwarded
    /// them (`GatewayGroup.revokingWrites`); each loop checks its own feed against them.
    private func revocationFeedIsCurrent(now: Int64) -> Bool {
        let writes = group.revokingWrites.withLock { $0 }
        let feed = group.feed.withLock { $0 }
        // `currentAsOf` only grows, so once past a lost write's end it stays past it.
        if let lost = writes.lostAt, feed.currentAsOf <= lost { return false }
        return feed.cursor != nil && feed.usersAnsweredAt - feed.answeredAt <= Gateway.feedWaitMillis + 2_000
            && writes.inFlight == 0 && (feed.cursor ?? 0) >= writes.requiredFeedSeq
    }

    /// Follows UserService's events: a `session` event (sessions of an employee ended) or an
    /// `employee` event (disabled, deleted, role changed) drops that employee's cached sessions.
    /// Starts at the feed's tail: the cache is empty when the gateway starts.
    private func followRevocations() {
        guard let users = clients[.users] else { return }
        let cursor = group.feed.withLock { $0.cursor }
        let after = cursor ?? -1
        let sentAt = monotonicMillis()
        let request = WireRequest(method: "GET", path: "/internal/events",
                                  params: JSONObject([("after", .int(after)), ("limit", .int(1000)), ("types", "session,employee"),
                                                      ("wait_ms", .int(cursor == nil ? 0 : Gateway.feedWaitMillis))]),
                                  caller: nil, requestID: "", deadline: wallClockMillis() + Gateway.feedWaitMillis + 5_000)
        users.sendOnLoop(request) { [self] result in
            guard case .success(let answer) = result, answer.status == 200,
                  let data = answer.body["data"], let last = data["last"]?.intValue else {
                loop.schedule(afterMillis: Gateway.feedRetryMillis) { [weak self] in self?.followRevocations() }
                return
            }
            var employees = Set<Int64>()
            for event in data["events"]?.arrayValue ?? [] {
                guard let type = event["type"]?.stringValue, type == "session" || type == "employee",
                      let id = event["entity_id"]?.intValue else { continue }
                employees.insert(id)
            }
            sessions.dropEmployees(employees)
            let now = monotonicMillis()
            group.feed.withLock { feed in
                feed.cursor = last
                feed.answeredAt = now
                feed.currentAsOf = sentAt
                feed.usersAnsweredAt = now
            }
            followRevocations()
        }
    }

    // MARK: Metrics

    /// Every loop's counters (each read on its own loop), summed.
    private func renderMetrics(_ respond: @escaping (HTTPResponse) -> Void) {
        let members = group.gateways
        let tally = SnapshotTally(count: members.count) { [self] snapshots in
            let text = Metrics.render(snapshots, connections: openConnections)
            respond(HTTPResponse(status: 200, body: Array(text.utf8), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        }
        for member in members {
            if member === self {
                tally.add(metrics.snapshot(gateway: self))
                continue
            }
            member.loop.execute { [loop] in
                let snapshot = member.metrics.snapshot(gateway: member)
                loop.execute { tally.add(snapshot) }
            }
        }
    }

    // MARK: Health

    /// Pings every replica of every service from every loop (each loop has its own
    /// connections); 200 when each service has a replica that answers on every loop, else 503
    /// naming the ones without. A service with no connected replica is reported down at once
    /// (nothing is waited for). Asking every loop keeps the answer from flapping while the
    /// loops connect one after another at start (one loop's 200, the other's 503).
    private func health(_ respond: @escaping (HTTPResponse) -> Void) {
        let names = ServiceName.allCases.filter { clients[$0] != nil }
        let members = group.gateways
        let tally = HealthTally(names: names.map(\.rawValue), loops: members.count, respond: respond)
        if names.isEmpty { tally.finish(); return }
        // A bound on the wait: a loop that does not report (stopping, stuck) counts as reaching
        // nothing. The probes themselves give up after 1 s.
        let timer = loop.schedule(afterMillis: HealthTally.waitMillis) { tally.finish() }
        tally.onFinish = { [loop] in loop.cancelTimer(timer) }
        for member in members {
            member.loop.execute { [loop] in
                for name in names {
                    guard let client = member.clients[name] else {
                        loop.execute { tally.report(name.rawValue, reachable: 0, known: 0) }
                        continue
                    }
                    client.probe(timeoutMillis: 1000) { reachable, known in
                        loop.execute { tally.report(name.rawValue, reachable: reachable, known: known) }
                    }
                }
            }
        }
    }
}

/// One request between its arrival and its answer: what its access line and metrics need,
/// and where the answer goes. Loop-thread confined.
final class Exchange {
    /// The process's one gateway, which outlives every request (no reference counting).
    unowned(unsafe) let gateway: Gateway
    let started: Int64
    let method: String
    let path: String
    /// The request id (`X-Request-Id`).
    let trace: String
    /// `trace` was made by the gateway (unique, unlike a client's): it serves as the `rid` too.
    @exclusivity(unchecked) var traceIsOwn = false
    let inBytes: Int
    let respond: (HTTPResponse) -> Void
    /// Learned on the way: the caller once the session is known, the service it goes to.
    @exclusivity(unchecked) var caller: Int64?
    @exclusivity(unchecked) var service: ServiceName?
    /// The counters of its route, once known (else found by the route `finish` names).
    @exclusivity(unchecked) var counts: Metrics.RouteCounts?
    /// What a forwarded request carries from its checks to its sending (see `Gateway.forward`).
    @exclusivity(unchecked) var client: ReplicaPool?
    @exclusivity(unchecked) var params = JSONObject()
    @exclusivity(unchecked) var token: String?
    @exclusivity(unchecked) var idempotencyKey: String?
    /// Its writes can end sessions (`Gateway.revokingPaths`).
    @exclusivity(unchecked) var revoking = false

    init(gateway: Gateway, started: Int64, method: String, path: String, trace: String, inBytes: Int, respond: @escaping (HTTPResponse) -> Void) {
        self.gateway = gateway
        self.started = started
        self.method = method
        self.path = path
        self.trace = trace
        self.inBytes = inBytes
        self.respond = respond
    }

    func finish(_ answer: HTTPResponse, route: String) {
        gateway.finish(self, answer, route: route)
    }
}

/// Collects the loops' metrics for one `/metrics` request (confined to the asking loop).
final class SnapshotTally: @unchecked Sendable {
    private var snapshots: [MetricsSnapshot] = []
    private let count: Int
    private let done: ([MetricsSnapshot]) -> Void

    init(count: Int, done: @escaping ([MetricsSnapshot]) -> Void) {
        self.count = count
        self.done = done
    }

    func add(_ snapshot: MetricsSnapshot) {
        snapshots.append(snapshot)
        if snapshots.count == count { done(snapshots) }
    }
}

/// Collects the pings of one `/healthz` request from every loop (confined to the asking loop):
/// a service counts the replicas that answered on every loop (the fewest any loop reached)
/// and the most sockets any loop knows.
final class HealthTally: @unchecked Sendable {
    private let names: [String]
    private let loops: Int
    /// Replicas that answered, replica sockets known and loops that reported, by service, over
    /// the loops so far.
    private var states: [String: (reachable: Int, known: Int, loops: Int)] = [:]
    private var reports = 0
    private var finished = false
    private let respond: (HTTPResponse) -> Void
    /// Called once the answer is given (cancels the wait's timer).
    var onFinish: (() -> Void)?
    /// How long `/healthz` waits for every loop's probes (which give up after 1 s).
    static let waitMillis: Int64 = 2_000

    init(names: [String], loops: Int, respond: @escaping (HTTPResponse) -> Void) {
        self.names = names
        self.loops = max(loops, 1)
        self.respond = respond
    }

    /// One loop's probe of one service.
    func report(_ name: String, reachable: Int, known: Int) {
        if let state = states[name] {
            states[name] = (min(state.reachable, reachable), max(state.known, known), state.loops + 1)
        } else {
            states[name] = (reachable, known, 1)
        }
        reports += 1
        if reports == names.count * loops { finish() }
    }

    /// `services`: "up"/"down" by service (the contract); `replicas`: by service, how many
    /// replicas answered and how many sockets are known (a known one that does not answer is
    /// stopped, restarting or stale).
    func finish() {
        guard !finished else { return }
        finished = true
        onFinish?()
        onFinish = nil
        var services = JSONObject()
        var replicas = JSONObject()
        var allUp = true
        for name in names {
            let state = states[name] ?? (0, 0, 0)
            // A loop that did not report in time reaches nothing.
            let reachable = state.loops == loops ? state.reachable : 0
            let up = reachable > 0
            allUp = allUp && up
            services.append(name, .string(up ? "up" : "down"))
            replicas.append(name, .object(JSONObject([("reachable", .int(Int64(reachable))), ("known", .int(Int64(state.known)))])))
        }
        respond(HTTPResponse(status: allUp ? 200 : 503, json: .object(JSONObject([("status", .int(allUp ? 0 : 1)), ("services", .object(services)),
                                                                                   ("replicas", .object(replicas))]))))
    }
}
