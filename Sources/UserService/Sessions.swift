#if canImport(Glibc)
import Glibc
#endif
import ServiceKit
import WireProtocol

/// Login, logout and session validation (for the gateway).
///
/// Every state change here is safe against a resend of the same request id (the gateway
/// resends when it lost the connection before the answer): login, logout and password change
/// store their answer with the change (`RequestContext.recordAnswer`); the session check's
/// writes are repeat-safe by construction (see `check`).
enum Sessions {
    static let routes: [Route] = [
        .post("/api/user/login", login),
        .post("/api/user/logout", logout),
        .post("/api/user/password", changePassword),
        .post("/internal/session", check),
    ]

    /// Sessions end after this long without use (`CRM_SESSION_IDLE_DAYS`, default 30).
    static let idleSeconds: Int64 = {
        if let text = getenv("CRM_SESSION_IDLE_DAYS"), let days = Int64(String(cString: text)), days > 0 { return days * 86_400 }
        return 30 * 86_400
    }()
    /// Failed logins per phone number within the window before 429.
    static let maxFailures: Int64 = 5
    static let failureWindowSeconds: Int64 = 15 * 60
    /// last_seen is refreshed at most this often (a write per request would be wasteful).
    static let touchIntervalSeconds: Int64 = 3600
    /// How long a login's stored answer, which holds the session token, is replayed to a
    /// resend of its request id; later the answer is blanked and a resend gets 409.
    static let loginAnswerSeconds: Int64 = 300

    static let badCredentials = "手机号或密码错误 (wrong phone number or password)"
    /// Verified against when the phone number is unknown, so both failures take the same time.
    static let dummyHash = PasswordHasher.hashNow("not a real password") ?? ""

    static func unixNow() -> Int64 { Int64(time(nil)) }

    // MARK: Password checks

    /// An employee that may log in by phone number (not deleted).
    struct Account: Sendable {
        var id: Int64
        var hash: String
        var status: Int64
    }

    /// The outcome of the first transaction of a password check.
    enum Attempt: Sendable {
        /// The request's answer is already known (stored, or 429): send it.
        case answered(WireResponse)
        /// Check the password against `account` (nil: unknown phone); `attempt` is the rowid
        /// of the failure recorded in advance.
        case check(account: Account?, attempt: Int64)
    }

    /// A change made once the password proved right, in the transaction that stores its answer:
    /// the answer and, for an answer holding a secret, how long it may be replayed.
    typealias Change = @Sendable (SQLiteConnection) throws -> (answer: WireResponse, keepSeconds: Int64?)

    /// First transaction, before the (slow) hash check: the stored answer of this request id if
    /// there is one; else 429 (stored) after too many recent failures; else this attempt is
    /// recorded as a failure, once per request id, so concurrent guesses cannot slip past the
    /// limit and a resend is not counted twice. A success deletes it again.
    static func beginAttempt(_ ctx: RequestContext, phone: String) async throws -> Attempt {
        let now = unixNow()
        let rid = ctx.requestID
        return try await ctx.database.write { db -> Attempt in
            if let stored = try ctx.storedAnswer(db) { return .answered(stored) }
            try db.run("DELETE FROM login_failures WHERE at <= ?", [.int(now - failureWindowSeconds)])
            // A resend's own attempt, recorded before its first run was cut off, does not count against it.
            let failures = try db.scalar("SELECT COUNT(*) FROM login_failures WHERE phone = ? AND (request_id IS NULL OR request_id <> ?)",
                                         [.text(phone), .text(rid)])
            if failures >= maxFailures {
                let answer = APIError.tooManyRequests("too many failed logins for this phone number; try again later").response
                try ctx.recordAnswer(db, answer)
                return .answered(answer)
            }
            let attempt: Int64
            if rid.isEmpty {
                try db.run("INSERT INTO login_failures(phone, at) VALUES (?, ?)", [.text(phone), .int(now)])
                attempt = db.lastInsertRowID
            } else {
                try db.run("INSERT OR IGNORE INTO login_failures(phone, at, request_id) VALUES (?, ?, ?)", [.text(phone), .int(now), .text(rid)])
                attempt = try db.scalar("SELECT rowid FROM login_failures WHERE request_id = ?", [.text(rid)])
            }
            guard let row = try db.queryOne("SELECT id, password_hash, status FROM employees WHERE phoneNumber = ? AND status <> -1", [.text(phone)]),
                  let id = row.int("id"), let hash = row.string("password_hash"), let status = row.int("status") else { return .check(account: nil, attempt: attempt) }
            return .check(account: Account(id: id, hash: hash, status: status), attempt: attempt)
        }
    }

    /// Second transaction, after the hash check: the stored answer if a duplicate of this
    /// request finished first; else `change` (nil: wrong password, answered 401) — either way
    /// the answer is stored with it, so a resend gets the same answer and changes nothing.
    static func finishAttempt(_ ctx: RequestContext, _ change: Change?) async throws -> WireResponse {
        try await ctx.database.write { db in
            if let stored = try ctx.storedAnswer(db) { return stored }
            guard let change else {
                let answer = APIError.unauthorized(badCredentials).response
                try ctx.recordAnswer(db, answer)
                return try ctx.stamped(db, answer)
            }
            let (answer, keepSeconds) = try change(db)
            try ctx.recordAnswer(db, answer, keepSeconds: keepSeconds)
            return try ctx.stamped(db, answer)
        }
    }

    /// Checks `phone` + `password` (429 after too many recent failures, the same 401 for an
    /// unknown phone and a wrong password, both costing one hash) and on success runs
    /// `change(account, attempt)`, idempotently by request id.
    static func withPassword(_ ctx: RequestContext, phone: String, password: String,
                             _ change: @escaping @Sendable (SQLiteConnection, Account, Int64) throws -> (answer: WireResponse, keepSeconds: Int64?)) async throws -> WireResponse {
        switch try await beginAttempt(ctx, phone: phone) {
        case .answered(let answer):
            return answer
        case .check(let account, let attempt):
            let matches = try await PasswordHasher.shared.verify(password, against: account?.hash ?? dummyHash)
            guard let account, matches else { return try await finishAttempt(ctx, nil) }
            return try await finishAttempt(ctx) { db in try change(db, account, attempt) }
        }
    }

    // MARK: Ending sessions

    /// Deletes the sessions `condition` selects; for each employee who lost one, publishes a
    /// `session` event (`reason`) and clears `isLogin` when none is left. Answers how many ended.
    @discardableResult
    static func endSessions(_ db: SQLiteConnection, where condition: String, _ binds: [SQLValue], reason: String) throws -> Int {
        let employees = try db.queryIDs("SELECT DISTINCT employee_id FROM sessions WHERE \(condition)", binds)
        guard !employees.isEmpty else { return 0 }
        let ended = try db.run("DELETE FROM sessions WHERE \(condition)", binds)
        for id in employees {
            if try db.queryOne("SELECT 1 FROM sessions WHERE employee_id = ?", [.int(id)]) == nil {
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(id)])
            }
            try Outbox.append(db, type: "session", entityID: id, state: JSONObject([("employee_id", .int(id)), ("reason", .string(reason))]))
        }
        return ended
    }

    // MARK: Routes

    /// `phoneNumber` + `password` → a new session: cookie `crm_session` and `data.token`.
    static func login(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.requireString("phoneNumber")
        let password = try ctx.params.requireString("password", maxLength: 128)
        // Drawn before anything is written: without secure randomness the request changes nothing.
        let token = try SessionToken.generate()
        let digest = SessionToken.digest(token)
        let answer = try await withPassword(ctx, phone: phone, password: password) { db, account, attempt in
            guard account.status == 1 else {
                try db.run("DELETE FROM login_failures WHERE rowid = ?", [.int(attempt)])
                return (APIError.forbidden("this employee is disabled").response, nil)
            }
            let now = unixNow()
            try db.run("INSERT INTO sessions(token_hash, employee_id, created_at, last_seen) VALUES (?,?,?,?)", [.blob(digest), .int(account.id), .int(now), .int(now)])
            try db.run("UPDATE employees SET lastLoginTime = ?, isLogin = 1 WHERE id = ?", [.text(Timestamp.now()), .int(account.id)])
            try db.run("DELETE FROM login_failures WHERE phone = ?", [.text(phone)])
            guard let row = try db.queryOne("SELECT id, realName, nickName, roleId, phoneNumber FROM employees WHERE id = ?", [.int(account.id)]) else {
                throw APIError.internal()
            }
            let user = JSON.object(JSONObject(["id", "realName", "nickName", "roleId", "phoneNumber"].map { ($0, row[$0].json) }))
            // The answer holds the token: a resend may replay it for a few minutes only.
            return (Reply.ok("登陆成功", data: .object(JSONObject([("token", .string(token)), ("user", user)]))), loginAnswerSeconds)
        }
        // Headers are not stored, so the cookie is set from the answer's token (also on a replay).
        guard answer.status == 200, let sent = answer.body["data"]?["token"]?.stringValue else { return answer }
        var response = answer
        response.headers.append(("set-cookie", "crm_session=\(sent); HttpOnly; SameSite=Lax; Path=/; Max-Age=\(idleSeconds)"))
        return response
    }

    /// Ends the caller's session; with a valid `phoneNumber` + `password` (the seed's form),
    /// ends every session of that employee.
    static func logout(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.string("phoneNumber")
        let password = try ctx.params.string("password", maxLength: 128)
        let digest = ctx.session.map { SessionToken.digest($0) }
        let answer: WireResponse
        if let phone, let password, !phone.isEmpty, !password.isEmpty {
            answer = try await withPassword(ctx, phone: phone, password: password) { db, account, attempt in
                try db.run("DELETE FROM login_failures WHERE rowid = ?", [.int(attempt)])
                try endSessions(db, where: "employee_id = ?", [.int(account.id)], reason: "logout_all")
                if let digest { try endSessions(db, where: "token_hash = ?", [.blob(digest)], reason: "logout") }
                return (Reply.ok("登出成功"), nil)
            }
        } else {
            guard let digest else { throw APIError.unauthorized() }
            answer = try await ctx.mutate { db in
                // Nothing ended: thrown, so not stored (a repeat changes nothing either).
                guard try endSessions(db, where: "token_hash = ?", [.blob(digest)], reason: "logout") > 0 else { throw APIError.unauthorized() }
                return Reply.ok("登出成功")
            }
        }
        guard answer.status == 200 else { return answer }
        var response = answer
        response.headers.append(("set-cookie", "crm_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"))
        return response
    }

    /// `phoneNumber` + `old_password` + `new_password` (8…128 characters). Ends every other
    /// session of the employee (the one presenting this request, if any, stays).
    static func changePassword(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.requireString("phoneNumber")
        let old = try ctx.params.requireString("old_password", maxLength: 128)
        let new = try ctx.params.requireString("new_password", maxLength: 128)
        guard new.unicodeScalars.count >= 8 else { throw APIError.badRequest("new_password must be 8 to 128 characters") }
        let keep = ctx.session.map { SessionToken.digest($0) } ?? []
        switch try await beginAttempt(ctx, phone: phone) {
        case .answered(let answer):
            return answer
        case .check(let account, _):
            let matches = try await PasswordHasher.shared.verify(old, against: account?.hash ?? dummyHash)
            guard let account, matches else { return try await finishAttempt(ctx, nil) }
            let hash = try await PasswordHasher.shared.hash(new)
            return try await finishAttempt(ctx) { db in
                try db.run("UPDATE employees SET password_hash = ?, updateTime = ? WHERE id = ?", [.text(hash), .text(Timestamp.now()), .int(account.id)])
                try endSessions(db, where: "employee_id = ? AND token_hash <> ?", [.int(account.id), .blob(keep)], reason: "password")
                try db.run("DELETE FROM login_failures WHERE phone = ?", [.text(phone)])
                return (Reply.ok("修改成功", data: .object(JSONObject([("id", .int(account.id))]))), nil)
            }
        }
    }

    /// Hourly: removes sessions idle past the limit (a `session` event per employee) and
    /// failed logins past the window.
    static func forgetExpired(_ db: SQLiteConnection) throws {
        let now = unixNow()
        try endSessions(db, where: "last_seen < ?", [.int(now - idleSeconds)], reason: "expired")
        try db.run("DELETE FROM login_failures WHERE at <= ?", [.int(now - failureWindowSeconds)])
    }

    /// For the gateway: `token` → `{id, role}` of an enabled employee, else 401.
    ///
    /// Sent without a request id, so its writes are repeat-safe by construction: the expiry
    /// delete is conditional on the session still being idle (a repeat deletes nothing and
    /// publishes no second event), and the touch only moves `last_seen` forward.
    static func check(_ ctx: RequestContext) async throws -> WireResponse {
        guard let token = try ctx.params.string("token", maxLength: 256), !token.isEmpty else { throw APIError.unauthorized() }
        let digest = SessionToken.digest(token)
        let now = unixNow()
        let found = try await ctx.database.read { db -> (id: Int64, role: Int64, lastSeen: Int64)? in
            guard let row = try db.queryOne("""
                SELECT e.id, e.roleId, s.last_seen FROM sessions s JOIN employees e ON e.id = s.employee_id
                WHERE s.token_hash = ? AND e.status = 1
                """, [.blob(digest)]),
                let id = row.int("id"), let role = row.int("roleId"), let lastSeen = row.int("last_seen") else { return nil }
            return (id, role, lastSeen)
        }
        guard let found else { throw APIError.unauthorized("session is not valid; log in again") }
        if found.lastSeen < now - idleSeconds {
            _ = try await ctx.database.write { db in
                try endSessions(db, where: "token_hash = ? AND last_seen < ?", [.blob(digest), .int(now - idleSeconds)], reason: "expired")
            }
            throw APIError.unauthorized("session expired; log in again")
        }
        if now - found.lastSeen > touchIntervalSeconds {
            _ = try await ctx.database.write { db in
                try db.run("UPDATE sessions SET last_seen = max(last_seen, ?) WHERE token_hash = ?", [.int(now), .blob(digest)])
            }
        }
        return Reply.ok(data: .object(JSONObject([("id", .int(found.id)), ("role", .int(found.role))])))
    }

    /// The tables and indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        employee_id INTEGER NOT NULL REFERENCES employees(id),
        created_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_employee ON sessions(employee_id);
    CREATE TABLE login_failures (
        phone TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX login_failures_phone ON login_failures(phone, at);
    """
}
