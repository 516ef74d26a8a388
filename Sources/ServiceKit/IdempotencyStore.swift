#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The record of applied mutations by request id, kept in the service's own database and
/// written in the same transaction as the mutation (architecture: "Restarts without downtime").
public enum IdempotencyStore {
    static let schema = """
    CREATE TABLE IF NOT EXISTS applied_requests (
        request_id TEXT PRIMARY KEY,
        caller_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS applied_requests_created ON applied_requests(created_at);
    """

    /// How long answers are kept (at least 24 h, as API.md promises).
    public static let retentionSeconds: Int64 = 48 * 3600

    public struct Key: Sendable {
        public var requestID: String
        public var callerID: Int64
        public var fingerprint: String
    }

    /// A digest of the request. Password fields are left out: a fast hash over a password
    /// kept for two days would be a shortcut around the slow password hash.
    static func fingerprint(method: String, path: String, params: JSONObject) -> String {
        var bytes = Array(method.utf8) + [0] + Array(path.utf8) + [0]
        var kept = JSONObject()
        for (key, value) in params where !key.lowercased().contains("password") { kept.append(key, value) }
        JSON.object(kept).serialize(into: &bytes)
        return SessionToken.hex(SessionToken.sha256(bytes))
    }

    static func lookup(_ db: SQLiteConnection, _ key: Key) throws -> WireResponse? {
        guard !key.requestID.isEmpty else { return nil }
        guard let row = try db.queryOne("SELECT caller_id, fingerprint, status, body FROM applied_requests WHERE request_id = ?", [.text(key.requestID)]) else {
            return nil
        }
        guard row.int(0) == key.callerID, row.string(1) == key.fingerprint else {
            throw APIError.unprocessable("Idempotency-Key was already used with different parameters")
        }
        let body = (try? JSONParser.parse(row.string(3) ?? "null")) ?? .null
        return WireResponse(status: Int(row.int(2) ?? 200), body: body)
    }

    static func record(_ db: SQLiteConnection, _ key: Key, _ response: WireResponse) throws {
        guard !key.requestID.isEmpty else { return }
        let now = time(nil)
        try db.run("INSERT INTO applied_requests(request_id, caller_id, fingerprint, status, body, created_at) VALUES (?,?,?,?,?,?)",
                   [.text(key.requestID), .int(key.callerID), .text(key.fingerprint), .int(Int64(response.status)), .text(response.body.jsonString), .int(Int64(now))])
    }

    /// Forgets answers older than the retention time.
    public static func purge(_ db: SQLiteConnection) throws {
        let cutoff = Int64(time(nil)) - retentionSeconds
        try db.run("DELETE FROM applied_requests WHERE created_at < ?", [.int(cutoff)])
    }
}
