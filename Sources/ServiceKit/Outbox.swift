import WireProtocol

/// The service's append-only `events` table: every change to an entity other services copy is
/// written here in the same transaction as the change (architecture: "Events: outbox and pull
/// replication"). Sequence numbers become visible in commit order, so a reader never skips one.
public enum Outbox {
    static let schema = """
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        entity_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        time TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS event_cursors (
        source TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    """

    /// Records the entity's full new state.
    public static func append(_ db: SQLiteConnection, type: String, entityID: Int64, state: JSONObject) throws {
        try db.run("INSERT INTO events(type, entity_id, state, time) VALUES (?, ?, ?, ?)",
                   [.text(type), .int(entityID), .text(JSON.object(state).jsonString), .text(Timestamp.now())])
    }

    /// Events after `seq`, oldest first, at most `limit`.
    public static func read(_ db: SQLiteConnection, after seq: Int64, limit: Int64) throws -> [JSON] {
        try db.query("SELECT seq, type, entity_id, state, time FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [.int(seq), .int(limit)]).map { row in
            let state = (try? JSONParser.parse(row.string(3) ?? "{}")) ?? .null
            return .object(JSONObject([("seq", row[0].json), ("type", row[1].json), ("entity_id", row[2].json), ("state", state), ("time", row[4].json)]))
        }
    }
}
