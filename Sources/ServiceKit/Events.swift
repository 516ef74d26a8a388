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

/// A copy of another service's entities in this service's tables (docs/EVENTS.md):
///
/// ```swift
/// Projection(name: "employees", version: 1, source: "users", eventTypes: ["employee"],
///            schema: "CREATE TABLE emp_copy(id INTEGER PRIMARY KEY, realName TEXT, status INTEGER)") { db, event in
///     try db.run("INSERT INTO emp_copy(id, realName, status) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET realName = excluded.realName, status = excluded.status",
///                [.int(event.entityID), SQLValue(event.state["realName"]?.stringValue), SQLValue(event.state["status"]?.intValue)])
/// }
/// ```
///
/// - `schema` creates the projection's tables (and indexes); the objects it creates are recorded
///   as the projection's own.
/// - Each projection keeps its own cursor (`projections.seq`), stored in the transaction that
///   applies the events, so every event is applied once and a restart continues where it stopped.
/// - Changing `version` (or `source` or `eventTypes`) drops the recorded objects, runs `schema`
///   again and replays the source from event 0.
/// - `apply` sees only events of `eventTypes`, oldest first; it must be an upsert by
///   `event.entityID` (after compaction only each entity's latest event may be left, and
///   events of different entities may arrive in another order than they were written).
public struct Projection: Sendable {
    public var name: String
    public var version: Int64
    /// The service whose events are copied (`--source NAME=ENDPOINT`).
    public var source: String
    /// Sorted, without duplicates.
    public var eventTypes: [String]
    public var schema: String
    public var apply: @Sendable (SQLiteConnection, Event) throws -> Void

    public init(name: String, version: Int64, source: String, eventTypes: [String], schema: String,
                apply: @escaping @Sendable (SQLiteConnection, Event) throws -> Void) {
        self.name = name
        self.version = version
        self.source = source
        self.eventTypes = Array(Set(eventTypes)).sorted()
        self.schema = schema
        self.apply = apply
    }

    var typesText: String { JSON.array(eventTypes.map { .string($0) }).jsonString }

    /// Whether the stored row (`version, source, event_types` from `projections`) is this definition.
    func isStored(_ row: Row) -> Bool {
        row.int(0) == version && row.string(1) == source && row.string(2) == typesText
    }

    /// Makes the stored projection this definition (in the caller's write transaction): when it
    /// is new or changed, drops what the previous definition created, runs `schema`, records
    /// what it created and starts the cursor at 0.
    func prepare(_ db: SQLiteConnection) throws {
        guard !name.isEmpty, !eventTypes.isEmpty, eventTypes.allSatisfy({ !$0.isEmpty && !$0.contains(",") }) else {
            throw ProjectionError(reason: "projection '\(name)' needs a name and at least one event type (without commas)")
        }
        let stored = try db.queryOne("SELECT version, source, event_types, objects FROM projections WHERE name = ?", [.text(name)])
        if let stored, isStored(stored) { return }
        if let stored {
            Log.info("projection \(name): rebuilding as version \(version) of \(source) \(eventTypes) (was version \(stored.int(0) ?? 0))")
            let objects = (try? JSONParser.parse(stored.string(3) ?? "[]"))?.arrayValue ?? []
            // Newest first: indexes and triggers before their tables, referencing tables before referenced ones.
            for object in objects.reversed() {
                guard let type = object["type"]?.stringValue, ["table", "index", "view", "trigger"].contains(type),
                      let objectName = object["name"]?.stringValue else { continue }
                try db.execute("DROP \(type.uppercased()) IF EXISTS \(quotedIdentifier(objectName))")
            }
        }
        let objectsSQL = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid"
        let before = Set(try db.query(objectsSQL).compactMap { $0.string(1) })
        try db.execute(schema)
        let created: [JSON] = try db.query(objectsSQL).compactMap { row in
            guard let type = row.string(0), let objectName = row.string(1), !before.contains(objectName) else { return nil }
            return .object(JSONObject([("type", .string(type)), ("name", .string(objectName))]))
        }
        try db.run("""
            INSERT INTO projections(name, version, source, event_types, objects, seq) VALUES (?, ?, ?, ?, ?, 0)
            ON CONFLICT(name) DO UPDATE SET version = excluded.version, source = excluded.source,
                event_types = excluded.event_types, objects = excluded.objects, seq = 0
            """, [.text(name), .int(version), .text(source), .text(typesText), .text(JSON.array(created).jsonString)])
    }
}

/// `name` as an SQL identifier.
private func quotedIdentifier(_ name: String) -> String {
    "\"" + String(name.flatMap { $0 == "\"" ? [$0, $0] : [$0] }) + "\""
}

/// A projection that cannot be set up, or that another process rebuilt as another definition.
public struct ProjectionError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Serving the outbox: `GET /internal/events?after=N&limit=M&wait_ms=T&types=a,b` answers the
/// events after sequence number N (at most M, only of the listed types when `types` is given),
/// waiting up to T ms for one when there is none (long poll); `last` is where to continue.
/// `after=-1` answers no events and the newest sequence number as `last`: where a follower
/// that needs no history (the gateway's revocation feed) starts.
/// Every service has it; the gateway never routes `/internal/…`.
enum EventFeed {
    static let path = "/internal/events"
    static let maxLimit: Int64 = 1000
    static let maxWaitMillis: Int64 = 30_000
    static let maxTypes = 100
    /// How often a waiting poll looks again when no local commit signalled (writes by another
    /// replica of the service are seen this way).
    static let recheckMillis: Int64 = 200

    /// The feed as the catalog declares it (every service has it).
    static var declaration: APIRoute {
        Catalog.routes(of: .users).first { $0.path == path } ?? APIRoute("GET", path, nil, .public, "Outbox events", answer: .object)
    }

    static let route = Route.get(path) { ctx in
        let after = try ctx.params.int("after") ?? 0
        if after == -1 {
            let last = try await ctx.database.read { try Outbox.newestSeq($0) }
            return Reply.ok(data: .object(JSONObject([("events", .array([])), ("last", .int(last))])))
        }
        guard after >= 0 else { throw APIError.badRequest("after must be -1 (the tail) or a sequence number") }
        let limit = min(max(try ctx.params.int("limit") ?? 200, 1), maxLimit)
        let wait = min(max(try ctx.params.int("wait_ms") ?? 0, 0), maxWaitMillis)
        let types = try eventTypes(ctx.params)
        let deadline = monotonicMillis() + wait
        let signal = ctx.database.outboxSignal
        // Where the next look starts: past every event already looked at in this poll. Sequence
        // numbers become visible in commit order, so nothing can appear behind it; without it a
        // consumer of rare types re-read every event written since its cursor at each commit
        // (quadratic in the wait: CustomerService spent a fifth of each customer create
        // re-reading customer events for its organization consumers).
        var from = after
        while true {
            // Read before looking: a commit after this point ends the wait below at once.
            let generation = signal.generation
            let closing = ctx.database.isClosing
            let start = from
            let page = try await ctx.database.read { try Outbox.read($0, after: start, limit: limit, types: types) }
            let now = monotonicMillis()
            if page.count > 0 || now >= deadline || closing {
                return Reply.ok(capacity: page.events.count + 96) { out in
                    out.raw(#"{"events":"#)
                    out.raw(page.events)
                    out.raw(#","last":"#)
                    out.int(page.last)
                    out.closeObject()
                }
            }
            from = max(from, page.last)
            await signal.wait(after: generation, timeoutMillis: min(deadline - now, recheckMillis), topics: types)
        }
    }

    /// `types`: a comma list or an array of strings; empty means every type.
    static func eventTypes(_ params: Params) throws(APIError) -> [String] {
        let bad = APIError.badRequest("types must be a comma list of event types")
        let names: [String]
        switch params.raw("types") {
        case nil: return []
        case .string(let text)?: names = text.split(separator: ",").map { String($0).trimmingWhitespace }
        case .array(let items)?:
            names = try items.map { item throws(APIError) in
                guard let text = item.stringValue else { throw bad }
                return text.trimmingWhitespace
            }
        default: throw bad
        }
        let types = Array(Set(names.filter { !$0.isEmpty })).sorted()
        guard types.count <= maxTypes else { throw APIError.badRequest("types lists more than \(maxTypes) event types") }
        return types
    }
}

/// Feeds one projection: long-polls its source for the projection's event types, applies the
/// events past the projection's cursor and stores the new cursor in the same transaction:
/// effectively-once application, catching up after any downtime.
final class EventConsumer: Sendable {
    let projection: Projection
    let client: ReplicaPool
    let database: Database
    private let stopped = Atomic<Bool>(false)
    static let batch: Int64 = 500
    static let waitMillis: Int64 = 5_000
    /// How long a consumer waits before its next poll after a batch that shows its source busy.
    /// Each poll costs both sides a fixed amount (the feed's read and frame, the consumer's
    /// parse, transaction and commit), paid per source commit when every commit is polled at
    /// once: under customer creates at 64 connections that was a quarter of the machine's CPU
    /// per create (docs/BENCHMARKS.md, "Gathered polls"). A copy then lags a busy source by up
    /// to this much more; an idle one is followed as live as before.
    static let gatherMillis: Int64 = 20

    /// The pause before the next poll after applying `count` events of a page of at most
    /// `limit`: `gatherMillis` when the batch held more than one event (several commits or a
    /// group commit came in since the last poll: the source is busy), none after a single event
    /// (a source written now and then is followed at once) or a full page (it is behind: read on).
    static func gatherPause(afterBatchOf count: Int, limit: Int64) -> Int64 {
        count > 1 && Int64(count) < limit ? gatherMillis : 0
    }

    /// Sets the projection up (creating or rebuilding its tables) before the service serves.
    init(projection: Projection, client: ReplicaPool, database: Database) throws {
        self.projection = projection
        self.client = client
        self.database = database
        try database.sync { db in try db.writeTransaction { try projection.prepare($0) } }
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
        let projection = self.projection
        let name = projection.name
        let wanted = Set(projection.eventTypes)
        // Where the last batch left the stored cursor: read once, then answered by each batch's
        // transaction (a read per poll was a tenth of a copying service's time under creates).
        // Another replica of this service may store a later one: its events then come again and
        // change nothing, and this batch's transaction answers the later cursor.
        var known: Int64?
        while !isStopped {
            do {
                let cursor: Int64
                if let known {
                    cursor = known
                } else {
                    cursor = try await database.read { db in
                        try db.scalar("SELECT seq FROM projections WHERE name = ?", [.text(name)])
                    }
                    known = cursor
                }
                let request = WireRequest(method: "GET", path: EventFeed.path,
                                          params: JSONObject([("after", .int(cursor)), ("limit", .int(EventConsumer.batch)), ("wait_ms", .int(EventConsumer.waitMillis)),
                                                              ("types", .string(projection.eventTypes.joined(separator: ",")))]),
                                          caller: nil, requestID: "", deadline: wallClockMillis() + EventConsumer.waitMillis + 10_000)
                let answer = try await client.send(request).get()
                guard answer.status == 200, let data = answer.body["data"], let items = data["events"]?.arrayValue, let last = data["last"]?.intValue else {
                    throw APIError(status: answer.status, "event feed of \(projection.source) answered \(answer.status)")
                }
                // Filtered here too: a source that does not know `types` sends everything.
                let events = items.compactMap(Event.init).filter { wanted.contains($0.type) }
                guard !isStopped, last > cursor || !events.isEmpty else { continue }
                known = try await database.write { db in
                    guard let row = try db.queryOne("SELECT version, source, event_types, seq FROM projections WHERE name = ?", [.text(name)]),
                          projection.isStored(row) else {
                        throw ProjectionError(reason: "projection \(name) was rebuilt as another definition by another process")
                    }
                    // Only events past the stored cursor: a batch that arrives twice changes nothing.
                    let stored = row.int(3) ?? 0
                    for event in events where event.seq > stored { try projection.apply(db, event) }
                    try db.run("UPDATE projections SET seq = max(seq, ?) WHERE name = ?", [.int(last), .text(name)])
                    return max(stored, last)
                }
                let pause = EventConsumer.gatherPause(afterBatchOf: items.count, limit: EventConsumer.batch)
                if pause > 0 { try? await Task.sleep(nanoseconds: UInt64(pause) * 1_000_000) }
            } catch let error as ProjectionError {
                Log.warning("\(error); this process stops feeding it")
                return
            } catch {
                if isStopped { return }
                known = nil  // read again after a failure
                Log.warning("events of \(projection.source) for projection \(name): \(error); retrying")
                try? await Task.sleep(nanoseconds: 500_000_000)
            }
        }
    }
}
