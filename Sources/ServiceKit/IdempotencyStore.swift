#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The record of applied mutations by request id, kept in the service's own database and
/// written in the same transaction as the mutation (architecture: "Restarts without downtime").
public enum IdempotencyStore {
    /// `expires_at` (Unix seconds) is set only for an answer that holds a secret (a login's
    /// session token): past it the answer is no longer served and is blanked by the sweep.
    static let schema = """
    CREATE TABLE IF NOT EXISTS applied_requests (
        request_id TEXT PRIMARY KEY,
        caller_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    ) WITHOUT ROWID;
    """

    /// Creates the table, adding `expires_at` to a table made before it existed and dropping
    /// the index on `created_at` it had: an index entry for every write (a tenth of the WAL
    /// pages per group commit, 5 % of customer creates a second: docs/BENCHMARKS.md) to make
    /// an hourly purge a range delete. The purge walks the table in steps instead (`purgeStep`).
    static func createSchema(_ db: SQLiteConnection) throws {
        try db.execute(schema)
        let columns = try db.query("PRAGMA table_info(applied_requests)").compactMap { $0.string(1) }
        if !columns.contains("expires_at") {
            try db.execute("ALTER TABLE applied_requests ADD COLUMN expires_at INTEGER")
        }
        try db.execute("CREATE INDEX IF NOT EXISTS applied_requests_expiry ON applied_requests(expires_at) WHERE expires_at > 0")
        try db.execute("DROP INDEX IF EXISTS applied_requests_created")
    }

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
        for (key, value) in params where !names(key, "password") { kept.append(key, value) }
        JSON.object(kept).serialize(into: &bytes)
        return SessionToken.hex(SessionToken.sha256(bytes))
    }

    /// Whether `key` contains `word` (lowercase ASCII) in any letter case — `lowercased()` and
    /// `contains` on `String` cost more than the digest.
    static func names(_ key: String, _ word: StaticString) -> Bool {
        let key = Array(key.utf8)
        let count = word.utf8CodeUnitCount
        guard key.count >= count else { return false }
        return word.withUTF8Buffer { word in
            (0...(key.count - count)).contains { start in
                (0..<count).allSatisfy { key[start + $0] | 0x20 == word[$0] }
            }
        }
    }

    /// The stored answer of `key`'s request id, if any; 422 when the id came with other
    /// parameters, 409 when the answer held a secret and its resend window has passed.
    static func lookup(_ db: SQLiteConnection, _ key: Key) throws -> WireResponse? {
        guard !key.requestID.isEmpty else { return nil }
        guard let row = try db.queryOne("SELECT caller_id, fingerprint, status, body, expires_at FROM applied_requests WHERE request_id = ?",
                                        [.text(key.requestID)]) else {
            return nil
        }
        guard row.int("caller_id") == key.callerID, row.string("fingerprint") == key.fingerprint else {
            throw APIError.unprocessable("Idempotency-Key was already used with different parameters")
        }
        if let expiry = row.int("expires_at"), expiry <= Int64(time(nil)) {
            throw APIError.conflict("this request was already answered and its answer is no longer kept; send a new request (log in again)")
        }
        let body = (try? JSONParser.parse(row.string("body") ?? "null")) ?? .null
        return WireResponse(status: Int(row.int("status") ?? 200), body: body)
    }

    /// Stores the answer; `keepSeconds` limits how long it is served (for an answer holding a secret).
    static func record(_ db: SQLiteConnection, _ key: Key, _ response: WireResponse, keepSeconds: Int64? = nil) throws {
        guard !key.requestID.isEmpty else { return }
        let now = Int64(time(nil))
        try db.run("INSERT INTO applied_requests(request_id, caller_id, fingerprint, status, body, created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                   [.text(key.requestID), .int(key.callerID), .text(key.fingerprint), .int(Int64(response.status)), .text(String(decoding: response.bodyBytes, as: UTF8.self)),
                    .int(now), keepSeconds.map { .int(now + max(1, $0)) } ?? .null])
    }

    /// Blanks every stored answer past its `expires_at`, so the secret it held is gone from the
    /// file (`expires_at` becomes 0: still refused with 409, no longer scanned).
    public static func forgetExpiredSecrets(_ db: SQLiteConnection) throws {
        try db.run("UPDATE applied_requests SET body = 'null', expires_at = 0 WHERE expires_at > 0 AND expires_at <= ?", [.int(Int64(time(nil)))])
    }

    /// Stored answers one purge step visits: a step is one write job, and a walk over a large
    /// table leaves the writes queued behind it a few milliseconds, not the whole walk.
    public static let purgeStepRows = 2_000

    /// One step of the purge: of the next `limit` stored answers in request-id order after
    /// `after` (from the first when nil), forgets those older than the retention time.
    /// Answers the last id visited, nil once the walk is past the end.
    public static func purgeStep(_ db: SQLiteConnection, after: String?, limit: Int = purgeStepRows,
                                 now: Int64 = Int64(time(nil))) throws -> String? {
        let start = after ?? ""  // no stored id is empty (`record`)
        guard let last = try db.queryOne("SELECT max(request_id) FROM (SELECT request_id FROM applied_requests WHERE request_id > ? ORDER BY request_id LIMIT ?)",
                                         [.text(start), .int(Int64(limit))])?.string(0) else {
            return nil
        }
        try db.run("DELETE FROM applied_requests WHERE request_id > ? AND request_id <= ? AND created_at < ?",
                   [.text(start), .text(last), .int(now - retentionSeconds)])
        return last
    }

    /// Forgets every answer older than the retention time in the caller's transaction (tests
    /// and tools; a service walks in steps between its writes: `AnswerPurge`). Expired secrets
    /// are the maintenance's (`forgetExpiredSecrets`).
    public static func purge(_ db: SQLiteConnection) throws {
        var after: String?
        while let last = try purgeStep(db, after: after) { after = last }
    }
}
