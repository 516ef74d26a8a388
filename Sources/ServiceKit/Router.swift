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
    public func mutateReportingReplay(_ body: @escaping @Sendable (SQLiteConnection) throws -> WireResponse) async throws -> (response: WireResponse, replayed: Bool) {
        try await database.write { db in
            if let stored = try storedAnswer(db) { return (stored, true) }
            let response = try body(db)
            try recordAnswer(db, response)
            return (response, false)
        }
    }

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

/// One method on one path.
public struct Route: Sendable {
    public var method: String
    public var path: String
    public var access: Access
    public var handler: RouteHandler

    public init(_ method: String, _ path: String, _ access: Access, _ handler: @escaping RouteHandler) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }

    public static func get(_ path: String, _ access: Access, _ handler: @escaping RouteHandler) -> Route {
        Route("GET", path, access, handler)
    }

    public static func post(_ path: String, _ access: Access, _ handler: @escaping RouteHandler) -> Route {
        Route("POST", path, access, handler)
    }
}

/// The routing table, built once and frozen: path → method → route.
public struct ServiceRouter: Sendable {
    private let table: [String: [String: Route]]

    public init(_ routes: [Route]) {
        var table: [String: [String: Route]] = [:]
        for route in routes { table[route.path, default: [:]][route.method] = route }
        self.table = table
    }

    public func route(method: String, path: String) throws(APIError) -> Route {
        let normalized = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let methods = table[normalized] else { throw .notFound("no such endpoint: \(path)") }
        // HEAD is answered like GET by the gateway; the service sees GET.
        guard let route = methods[method] else {
            throw .methodNotAllowed("\(path) does not accept \(method); use \(methods.keys.sorted().joined(separator: " or "))")
        }
        return route
    }
}
