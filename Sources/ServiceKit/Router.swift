import WireProtocol

/// What a route handler gets: the parsed parameters, the caller and the service's database.
public struct RequestContext: Sendable {
    public let method: String
    public let path: String
    public let params: Params
    public let caller: Caller?
    public let requestID: String
    /// The session token the client presented (only the session owner receives it).
    public let session: String?
    public let database: Database

    /// The authenticated caller (routes declared with `.roles` always have one).
    public func requireCaller() throws(APIError) -> Caller {
        guard let caller else { throw .unauthorized() }
        return caller
    }

    /// Runs a mutation in one `BEGIN IMMEDIATE` transaction together with the request-id record:
    /// a repeated request id gets the stored answer and changes nothing; the same id with other
    /// parameters is a 422.
    public func mutate(_ body: @escaping @Sendable (SQLiteConnection) throws -> WireResponse) async throws -> WireResponse {
        try await mutateReportingReplay(body).response
    }

    /// `mutate`, also telling whether the answer is a stored one (the body did not run) — for a
    /// handler that adds to the live answer what must not be stored, such as a generated password.
    ///
    /// A client's `Idempotency-Key` is looked up before the body runs: clients resend on
    /// purpose. Any other id is looked up only when the write fails: its body's own checks, or
    /// the record's primary key, which refuses an id already stored. That attempt is then
    /// rolled back and the request runs again, looking up first — so a resend still gets the
    /// stored answer and changes nothing, and the first run of an id, the usual case, saves the
    /// writer a query (4 % of its time per customer create; docs/BENCHMARKS.md).
    public func mutateReportingReplay(_ body: @escaping @Sendable (SQLiteConnection) throws -> WireResponse) async throws -> (response: WireResponse, replayed: Bool) {
        try await withCheckedThrowingContinuation { continuation in
            mutateReportingReplay(body) { continuation.resume(with: $0) }
        }
    }

    /// `mutate` for a caller that is not a task (`Route.direct`): `completion` gets the answer
    /// on the writer's queue once it is committed.
    public func mutate(_ body: @escaping @Sendable (SQLiteConnection) throws -> WireResponse,
                       completion: @escaping @Sendable (Result<WireResponse, Error>) -> Void) {
        mutateReportingReplay(body) { completion($0.map(\.response)) }
    }

    /// `mutateReportingReplay` for a caller that is not a task.
    public func mutateReportingReplay(_ body: @escaping @Sendable (SQLiteConnection) throws -> WireResponse,
                                      completion: @escaping @Sendable (Result<(response: WireResponse, replayed: Bool), Error>) -> Void) {
        let key = answerKey  // the fingerprint's digest, made once rather than per lookup and record
        let lookUpFirst = key.requestID.hasPrefix(WireRequest.clientKeyPrefix)
        let database = database
        database.write({ db in try applyOnce(db, key, lookUpFirst: lookUpFirst, body) }) { result in
            guard case .failure(let error) = result, error is StoredBefore else { return completion(result) }
            database.write({ db in try applyOnce(db, key, lookUpFirst: true, body) }, completion: completion)
        }
    }

    /// The write transaction's part of `mutateReportingReplay`: the stored answer when looking
    /// up first finds one; else the body's answer, recorded. Throws `StoredBefore` (the job's
    /// changes are then rolled back) when, without the lookup, the id turns out to be stored.
    func applyOnce(_ db: SQLiteConnection, _ key: IdempotencyStore.Key, lookUpFirst: Bool,
                   _ body: (SQLiteConnection) throws -> WireResponse) throws -> (response: WireResponse, replayed: Bool) {
        if lookUpFirst, let stored = try IdempotencyStore.lookup(db, key) { return (stored, true) }
        let response: WireResponse
        do {
            response = try body(db)
        } catch {
            // A resend may fail checks its first run passed (a name that run took).
            if !lookUpFirst, try IdempotencyStore.lookup(db, key) != nil { throw StoredBefore() }
            throw error
        }
        do {
            try IdempotencyStore.record(db, key, response)
        } catch let error as SQLiteError where error.isConstraint && !lookUpFirst {
            throw StoredBefore()
        }
        return (try stamped(db, response), false)
    }

    /// The live answer of a write with header `event-seq`: the seq of the last event this
    /// write appended, or of the newest event when it appended none. A follower whose cursor
    /// reached it has seen this write's events (the gateway uses it to know a revocation it
    /// forwarded has reached its session cache). Its own event's seq needs no read.
    public func stamped(_ db: SQLiteConnection, _ response: WireResponse) throws -> WireResponse {
        var stamped = response
        let seq = db.lastAppendedSeq > 0 ? db.lastAppendedSeq : try Outbox.newestSeq(db)
        stamped.headers.append((name: "event-seq", value: String(seq)))
        return stamped
    }

    /// A write run without looking its request id up found the id already stored.
    struct StoredBefore: Error {}

    /// The key this request's answer is stored under (no request id: nothing is stored).
    var answerKey: IdempotencyStore.Key {
        IdempotencyStore.Key(requestID: requestID, callerID: caller?.id ?? 0, fingerprint: IdempotencyStore.fingerprint(method: method, path: path, params: params.values))
    }

    /// Inside a write transaction: the answer already stored for this request id, if any — for
    /// a handler split around slow work outside a transaction (login: check, hash, write), which
    /// looks its request id up in each of its transactions.
    public func storedAnswer(_ db: SQLiteConnection) throws -> WireResponse? {
        try IdempotencyStore.lookup(db, answerKey)
    }

    /// Inside the write transaction that makes the request's change: stores its answer.
    /// `keepSeconds` is for an answer that holds a secret: it is served for that long only,
    /// then blanked, and a repeat gets 409.
    public func recordAnswer(_ db: SQLiteConnection, _ response: WireResponse, keepSeconds: Int64? = nil) throws {
        try IdempotencyStore.record(db, answerKey, response, keepSeconds: keepSeconds)
    }
}

public typealias RouteHandler = @Sendable (RequestContext) async throws -> WireResponse

/// A handler that hands its answer to `done` instead of returning it: a write whose work is
/// checks and then one `mutate`, answered straight from the writer's queue. The service runs it
/// on its event loop, so what it does before `mutate` must not block (`Route.direct`).
public typealias DirectHandler = @Sendable (RequestContext, _ done: @escaping @Sendable (Result<WireResponse, Error>) -> Void) -> Void

/// A handler that only reads: it runs on a reader's queue inside one read transaction, and the
/// service answers from there without a task (`Route.read`).
public typealias ReadHandler = @Sendable (RequestContext, SQLiteConnection) throws -> WireResponse

/// A handler bound to a method and path. Who may call it, and what it takes, is declared in the
/// catalog (`APICatalog`), not here.
public struct Route: Sendable {
    public var method: String
    public var path: String
    public var handler: RouteHandler
    /// Set for a route that only reads: the service runs it on a reader's queue straight from
    /// its event loop. `handler` does the same through a task (for callers that are tasks).
    public var read: ReadHandler?
    /// Set for a route that answers through a callback: the service calls it straight from its
    /// event loop, and a write answers from the writer with no task to wake (each woken task's
    /// thread preempted the writer: docs/BENCHMARKS.md). `handler` does the same for tasks.
    public var direct: DirectHandler?

    public init(_ method: String, _ path: String, _ handler: @escaping RouteHandler) {
        self.method = method
        self.path = path
        self.handler = handler
    }

    /// A GET answered by one read transaction (`ReadHandler`).
    public static func read(_ path: String, _ body: @escaping ReadHandler) -> Route {
        var route = Route("GET", path) { ctx in try await ctx.database.read { db in try body(ctx, db) } }
        route.read = body
        return route
    }

    /// A route answered through a callback (`DirectHandler`).
    public static func direct(_ method: String, _ path: String, _ body: @escaping DirectHandler) -> Route {
        var route = Route(method, path) { ctx in
            try await withCheckedThrowingContinuation { continuation in body(ctx) { continuation.resume(with: $0) } }
        }
        route.direct = body
        return route
    }

    public static func get(_ path: String, _ handler: @escaping RouteHandler) -> Route {
        Route("GET", path, handler)
    }

    public static func post(_ path: String, _ handler: @escaping RouteHandler) -> Route {
        Route("POST", path, handler)
    }

    /// Every catalog route of `service` answering 501, for a service whose issue is still open.
    public static func notYetBuilt(_ service: ServiceName) -> [Route] {
        Catalog.routes(of: service).filter { !$0.isInternal }.map { declared in
            Route(declared.method, declared.path) { _ in
                throw APIError(status: 501, "\(declared.method) \(declared.path) is not built yet")
            }
        }
    }
}

/// Why a service's routes do not match the catalog: the service refuses to start.
public struct RouteCatalogError: Error, CustomStringConvertible {
    public var problems: [String]
    public var description: String { "routes disagree with the catalog: " + problems.joined(separator: "; ") }
}

/// The routing table, built once and frozen: path → method → (handler, declared access).
public struct ServiceRouter: Sendable {
    /// A bound route: its handler and the access the catalog declares for it.
    public struct Entry: Sendable {
        public var method: String
        public var path: String
        public var handler: RouteHandler
        public var read: ReadHandler?
        public var direct: DirectHandler?
        public var access: Access
    }
    private let table: [String: [String: Entry]]

    /// Binds `routes` to the `declared` ones (a service's catalog routes); every declared route
    /// needs exactly one handler and every handler a declared route.
    public init(name: String, declared declarations: [APIRoute], routes: [Route]) throws(RouteCatalogError) {
        let problems = ServiceRouter.problems(name: name, declared: declarations, routes: routes)
        guard problems.isEmpty else { throw RouteCatalogError(problems: problems) }
        var declared: [String: APIRoute] = [:]
        for route in declarations { declared[route.key] = route }
        var table: [String: [String: Entry]] = [:]
        for route in routes {
            guard let access = declared[route.method + " " + route.path]?.access else { continue }
            table[route.path, default: [:]][route.method] = Entry(method: route.method, path: route.path, handler: route.handler, read: route.read, direct: route.direct, access: access)
        }
        self.table = table
    }

    /// Disagreements between `routes` and the declared routes (empty when they agree).
    public static func problems(name: String, declared declarations: [APIRoute], routes: [Route]) -> [String] {
        var problems: [String] = []
        var declared = Set<String>()
        for route in declarations where !declared.insert(route.key).inserted { problems.append("\(route.key) is declared twice for \(name)") }
        var bound = Set<String>()
        for route in routes {
            let key = route.method + " " + route.path
            if !bound.insert(key).inserted { problems.append("\(key) is bound twice") }
            if !declared.contains(key) { problems.append("\(key) is not declared for \(name) in the catalog") }
        }
        for key in declared.subtracting(bound).sorted() { problems.append("\(key) is declared for \(name) but has no handler") }
        return problems
    }

    /// The handler and access for a request; 404 for an unknown path, 405 naming the methods.
    public func route(method: String, path: String) throws(APIError) -> Entry {
        // By bytes (counting Characters cost more than the lookup). Routes are ASCII: a path
        // ending in a "/" that is part of a longer Character names none either way.
        let normalized = path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/") ? String(decoding: path.utf8.dropLast(), as: UTF8.self) : path
        guard let methods = table[normalized] else { throw .notFound("no such endpoint: \(path)") }
        // HEAD is answered like GET by the gateway; the service sees GET.
        guard let entry = methods[method] else {
            throw .methodNotAllowed("\(path) does not accept \(method); use \(methods.keys.sorted().joined(separator: " or "))")
        }
        return entry
    }
}
