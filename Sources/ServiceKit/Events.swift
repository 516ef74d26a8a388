import Synchronization
import WireProtocol

/// One outbox event as a consumer sees it.
public struct Event: Sendable {
    public var seq: Int64
    public var type: String
    public var entityID: Int64
    /// The entity's full new state.
    public var state: JSONObject
    public var time: String

    init?(_ json: JSON) {
        guard let seq = json["seq"]?.intValue, let type = json["type"]?.stringValue, let entityID = json["entity_id"]?.intValue else { return nil }
        self.seq = seq
        self.type = type
        self.entityID = entityID
        state = json["state"]?.objectValue ?? JSONObject()
        time = json["time"]?.stringValue ?? ""
    }
}

/// What a service copies from another one: events of `source` (a service name) applied to
/// its own tables. `apply` must be an idempotent upsert by entity id: a replay is harmless.
public struct EventSubscription: Sendable {
    public var source: String
    public var apply: @Sendable (SQLiteConnection, Event) throws -> Void

    public init(source: String, apply: @escaping @Sendable (SQLiteConnection, Event) throws -> Void) {
        self.source = source
        self.apply = apply
    }
}

/// Serving the outbox: `GET /internal/events?after=N&limit=M&wait_ms=T` answers the events after
/// sequence number N (at most M), waiting up to T ms for one when there is none (long poll).
/// `after=-1` answers no events and the newest sequence number as `last`: where a follower
/// that needs no history (the gateway's revocation feed) starts.
/// Every service has it; the gateway never routes `/internal/…`.
enum EventFeed {
    static let path = "/internal/events"
    static let maxLimit: Int64 = 1000
    static let maxWaitMillis: Int64 = 30_000
    /// How often a waiting poll looks again when no local write signalled (writes by another
    /// replica of the service are seen this way).
    static let recheckMillis: Int64 = 200

    /// The feed as the catalog declares it (every service has it).
    static var declaration: APIRoute {
        Catalog.routes(of: .users).first { $0.path == path } ?? APIRoute("GET", path, nil, .public, "Outbox events", answer: .object)
    }

    static let route = Route.get(path) { ctx in
        let after = try ctx.params.int("after") ?? 0
        if after == -1 {
            let last = try await ctx.database.read { try $0.scalar("SELECT COALESCE(MAX(seq), 0) FROM events") }
            return Reply.ok(data: .object(JSONObject([("events", .array([])), ("last", .int(last))])))
        }
        guard after >= 0 else { throw APIError.badRequest("after must be -1 (the tail) or a sequence number") }
        let limit = min(max(try ctx.params.int("limit") ?? 200, 1), maxLimit)
        let wait = min(max(try ctx.params.int("wait_ms") ?? 0, 0), maxWaitMillis)
        let deadline = monotonicMillis() + wait
        var lastCheck: Int64 = -1
        var lastCommits = -1
        while true {
            let commits = ctx.database.commitCount
            let now = monotonicMillis()
            let closing = ctx.database.isClosing
            if commits != lastCommits || now - lastCheck >= recheckMillis || now >= deadline || closing {
                lastCommits = commits
                lastCheck = now
                let events = try await ctx.database.read { try Outbox.read($0, after: after, limit: limit) }
                if !events.isEmpty || now >= deadline || closing {
                    let last = events.last?["seq"]?.intValue ?? after
                    return Reply.ok(data: .object(JSONObject([("events", .array(events)), ("last", .int(last))])))
                }
            }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }
}

/// Pulls one source's events and applies them, storing the source's sequence number in the
/// same transaction: effectively-once application, catching up after any downtime.
final class EventConsumer: Sendable {
    let subscription: EventSubscription
    let client: WireClient
    let database: Database
    private let stopped = Atomic<Bool>(false)
    static let batch: Int64 = 500
    static let waitMillis: Int64 = 5_000

    init(subscription: EventSubscription, client: WireClient, database: Database) {
        self.subscription = subscription
        self.client = client
        self.database = database
    }

    func start() {
        client.start()
        Task { await run() }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        client.stop()
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func run() async {
        let source = subscription.source
        let apply = subscription.apply
        while !isStopped {
            do {
                let cursor = try await database.read { db in
                    try db.scalar("SELECT seq FROM event_cursors WHERE source = ?", [.text(source)])
                }
                let request = WireRequest(method: "GET", path: EventFeed.path,
                                          params: JSONObject([("after", .int(cursor)), ("limit", .int(EventConsumer.batch)), ("wait_ms", .int(EventConsumer.waitMillis))]),
                                          caller: nil, requestID: "", deadline: wallClockMillis() + EventConsumer.waitMillis + 10_000)
                let answer = try await client.send(request).get()
                guard answer.status == 200, let items = answer.body["data"]?["events"]?.arrayValue else {
                    throw APIError(status: answer.status, "event feed of \(source) answered \(answer.status)")
                }
                let events = items.compactMap(Event.init)
                guard let last = events.last?.seq, !isStopped else { continue }
                try await database.write { db in
                    // Only events past the stored cursor: a batch that arrives twice changes nothing.
                    let stored = try db.scalar("SELECT seq FROM event_cursors WHERE source = ?", [.text(source)])
                    for event in events where event.seq > stored { try apply(db, event) }
                    try db.run("INSERT INTO event_cursors(source, seq) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET seq = max(seq, excluded.seq)",
                               [.text(source), .int(last)])
                }
            } catch {
                if isStopped { return }
                Log.warning("events from \(source): \(error); retrying")
                try? await Task.sleep(nanoseconds: 500_000_000)
            }
        }
    }
}
