import WireProtocol

/// The service's `events` table: every change to an entity other services copy is written here
/// in the same transaction as the change (docs/EVENTS.md). Sequence numbers become visible in
/// commit order, so a reader never skips one, and are never reused (AUTOINCREMENT), also
/// after compaction.
public enum Outbox {
    /// The table events are appended to.
    static let table = "events"
    static let schema = """
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        entity_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        time TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_by_entity ON events(type, entity_id, seq);
    DROP TABLE IF EXISTS event_cursors;
    CREATE TABLE IF NOT EXISTS projections (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        source TEXT NOT NULL,
        event_types TEXT NOT NULL,
        objects TEXT NOT NULL,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    """

    /// Records the entity's full new state.
    public static func append(_ db: SQLiteConnection, type: String, entityID: Int64, state: JSONObject) throws {
        try append(db, type: type, entityID: entityID, stateText: JSON.object(state).jsonString)
    }

    /// `append` with the state already written as a JSON object's text.
    static func append(_ db: SQLiteConnection, type: String, entityID: Int64, stateText: String) throws {
        try db.run("INSERT INTO events(type, entity_id, state, time) VALUES (?, ?, ?, ?)",
                   [.text(type), .int(entityID), .text(stateText), .text(Timestamp.now())])
        db.appendedEventTypes.insert(type)
        db.lastAppendedSeq = db.lastInsertRowID
    }

    /// One page of the feed: `events`, the JSON array text of the events (each stored state
    /// passed through as it was written, not parsed into a tree and written again), how many,
    /// and `last`, the sequence number a reader continues after.
    public struct Page: Sendable {
        public var events: [UInt8]
        public var count: Int
        public var last: Int64
    }

    /// Events after `seq` of the given types (all when empty), oldest first, at most `limit`;
    /// `last` is past every event it skipped, so a consumer of rare types still moves forward.
    /// A stored state that is not valid JSON (never written by `append`) is answered as `null`,
    /// so one bad row cannot break the frame every consumer reads.
    public static func read(_ db: SQLiteConnection, after seq: Int64, limit: Int64, types: [String] = []) throws -> Page {
        var text = JSONText(capacity: 512)
        text.openArray()
        var count = 0
        var lastSeq = seq
        let (sql, binds): (String, [SQLValue])
        switch types.count {
        case 0: (sql, binds) = ("SELECT seq, type, entity_id, state, time FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [.int(seq), .int(limit)])
        case 1: (sql, binds) = (oneTypeReadSQL, [.int(seq), .text(types[0]), .int(limit)])
        case 2: (sql, binds) = (twoTypesReadSQL, [.int(seq), .text(types[0]), .text(types[1]), .int(limit)])
        default: (sql, binds) = (typedReadSQL, [.int(seq), .text(JSON.array(types.map { .string($0) }).jsonString), .int(limit)])
        }
        try db.forEachRow(sql, binds) { row in
            if count > 0 { text.comma() }
            count += 1
            lastSeq = row.int(0)
            text.raw(#"{"seq":"#)
            text.int(lastSeq)
            text.raw(#","type":"#)
            writeText(row[1], into: &text)
            text.raw(#","entity_id":"#)
            text.int(row.int(2))
            text.raw(#","state":"#)
            if case .bytes(let state) = row[3], isValidState(state) { text.raw(state) } else { text.null() }
            text.raw(#","time":"#)
            writeText(row[4], into: &text)
            text.closeObject()
        }
        text.closeArray()
        // A short page: everything after `seq` was looked at, continue after the newest event.
        let last = Int64(count) == limit ? lastSeq : max(seq, try newestSeq(db))
        return Page(events: text.bytes(), count: count, last: last)
    }

    /// The sequence number of the newest event `db` sees (0: none). Its statement begins the
    /// snapshot of a read transaction not yet used.
    static func newestSeq(_ db: SQLiteConnection) throws -> Int64 {
        var newest: Int64 = 0
        try db.forEachRow("SELECT COALESCE(MAX(seq), 0) FROM events") { newest = $0.int(0) }
        return newest
    }

    /// A text column as a JSON string (`null` when it is not text).
    private static func writeText(_ value: ColumnValues.Value, into text: inout JSONText) {
        if case .bytes(let bytes) = value { text.string(utf8: bytes) } else { text.null() }
    }

    /// Whether a stored state is one JSON value, nested no deeper than leaves room for the
    /// envelope, event and array around it.
    private static func isValidState(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        do throws(JSONParseError) {
            try JSONParser.validate(UnsafeRawBufferPointer(bytes), maxDepth: JSONParser.defaultMaxDepth - 4)
            return true
        } catch {
            return false
        }
    }

    /// The feed's read with a `types` filter. `+type` keeps SQLite from answering it through
    /// `events_by_entity (type, …)`: that plan read every event of the types ever written and
    /// sorted them by `seq` — 22 ms per poll over 100,000 follow-up events, on every long-poll
    /// recheck (RecordService spent 6 % of a core idle, and StatsService's statistics lagged by
    /// tens of ms). Walking the primary key from `seq` reads only the events after the cursor.
    static let typedReadSQL = "SELECT seq, type, entity_id, state, time FROM events WHERE seq > ? AND +type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?"
    /// `typedReadSQL` for one type and for two, the feeds' common cases (each copy follows one,
    /// the statistics two): no `json_each` and no ephemeral table built for the `IN` at every
    /// poll (SQLite compares a list of two in place) — four polls of CustomerService's feed per
    /// commit, 8 % of its instructions per customer create one at a time.
    static let oneTypeReadSQL = "SELECT seq, type, entity_id, state, time FROM events WHERE seq > ? AND +type = ? ORDER BY seq LIMIT ?"
    static let twoTypesReadSQL = "SELECT seq, type, entity_id, state, time FROM events WHERE seq > ? AND +type IN (?, ?) ORDER BY seq LIMIT ?"

    /// How old a superseded event must be before compaction deletes it: followers within a day
    /// of the head see every event in order (docs/EVENTS.md, "Compaction").
    public static let compactionGraceSeconds: Int64 = 86_400

    /// Log compaction: deletes every event written at least `graceSeconds` ago that a later
    /// event of the same (type, entity_id) supersedes. The latest event of each entity stays, so
    /// a replay from 0 still ends in every entity's current state. Answers how many were deleted.
    @discardableResult
    public static func compact(_ db: SQLiteConnection, graceSeconds: Int64 = compactionGraceSeconds) throws -> Int {
        let now = Timestamp.now()
        let cutoff = Timestamp.shift(now, seconds: -max(0, graceSeconds)) ?? now
        return try db.run("""
            DELETE FROM events WHERE seq IN (
                SELECT e.seq FROM events e WHERE e.time <= ?
                AND EXISTS (SELECT 1 FROM events l WHERE l.type = e.type AND l.entity_id = e.entity_id AND l.seq > e.seq))
            """, [.text(cutoff)])
    }
}
