#if canImport(Glibc)
import Glibc
#endif
import ServiceKit
import WireProtocol

/// Login, logout and session validation (for the gateway).
enum Sessions {
    static let routes: [Route] = [
        .post("/api/user/login", .public, login),
        .post("/api/user/logout", .public, logout),
        .post("/api/user/password", .public, changePassword),
        .post("/internal/session", .public, check),
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

    static let badCredentials = "手机号或密码错误 (wrong phone number or password)"
    /// Verified against when the phone number is unknown, so both failures take the same time.
    static let dummyHash = PasswordHasher.hashNow("not a real password") ?? ""

    static func unixNow() -> Int64 { Int64(time(nil)) }

    /// Checks a phone number and password: 429 after too many recent failures, the same 401
    /// for an unknown phone and a wrong password (both cost one hash), failures recorded.
    static func verifyCredentials(_ ctx: RequestContext, phone: String, password: String) async throws -> (id: Int64, status: Int64) {
        let now = unixNow()
        // The attempt is recorded as a failure before the (slow) check and forgotten when it
        // succeeds, so concurrent guesses cannot slip past the limit.
        let (account, attempt) = try await ctx.database.write { db -> ((id: Int64, hash: String, status: Int64)?, Int64) in
            try db.run("DELETE FROM login_failures WHERE at <= ?", [.int(now - failureWindowSeconds)])
            let failures = try db.scalar("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(phone)])
            if failures >= maxFailures {
                throw APIError.tooManyRequests("too many failed logins for this phone number; try again later")
            }
            try db.run("INSERT INTO login_failures(phone, at) VALUES (?, ?)", [.text(phone), .int(now)])
            let attempt = db.lastInsertRowID
            guard let row = try db.queryOne("SELECT id, password_hash, status FROM employees WHERE phoneNumber = ? AND status <> -1", [.text(phone)]),
                  let id = row.int(0), let hash = row.string(1), let status = row.int(2) else { return (nil, attempt) }
            return ((id, hash, status), attempt)
        }
        let matches = try await PasswordHasher.shared.verify(password, against: account?.hash ?? dummyHash)
        guard let account, matches else { throw APIError.unauthorized(badCredentials) }
        _ = try await ctx.database.write { db in
            try db.run("DELETE FROM login_failures WHERE rowid = ?", [.int(attempt)])
        }
        return (account.id, account.status)
    }

    /// `phoneNumber` + `password` → a new session: cookie `crm_session` and `data.token`.
    static func login(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.requireString("phoneNumber")
        let password = try ctx.params.requireString("password", maxLength: 128)
        let now = unixNow()
        let account = try await verifyCredentials(ctx, phone: phone, password: password)
        guard account.status == 1 else { throw APIError.forbidden("this employee is disabled") }
        let token = try SessionToken.generate()
        let digest = SessionToken.digest(token)
        let user = try await ctx.database.write { db -> JSON in
            try db.run("INSERT INTO sessions(token_hash, employee_id, created_at, last_seen) VALUES (?,?,?,?)", [.blob(digest), .int(account.id), .int(now), .int(now)])
            try db.run("UPDATE employees SET lastLoginTime = ?, isLogin = 1 WHERE id = ?", [.text(Timestamp.now()), .int(account.id)])
            try db.run("DELETE FROM login_failures WHERE phone = ?", [.text(phone)])
            guard let row = try db.queryOne("SELECT id, realName, nickName, roleId, phoneNumber FROM employees WHERE id = ?", [.int(account.id)]) else {
                throw APIError.internal()
            }
            return .object(JSONObject([("id", row[0].json), ("realName", row[1].json), ("nickName", row[2].json), ("roleId", row[3].json), ("phoneNumber", row[4].json)]))
        }
        var response = Reply.ok("登陆成功", data: .object(JSONObject([("token", .string(token)), ("user", user)])))
        response.headers = [("set-cookie", "crm_session=\(token); HttpOnly; SameSite=Lax; Path=/; Max-Age=\(idleSeconds)")]
        return response
    }

    /// Ends the caller's session; with a valid `phoneNumber` + `password` (the seed's form),
    /// ends every session of that employee.
    static func logout(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.string("phoneNumber")
        let password = try ctx.params.string("password", maxLength: 128)
        var ended = false
        if let phone, let password, !phone.isEmpty, !password.isEmpty {
            let account = try await verifyCredentials(ctx, phone: phone, password: password)
            try await ctx.database.write { db in
                try db.run("DELETE FROM sessions WHERE employee_id = ?", [.int(account.id)])
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(account.id)])
            }
            ended = true
        }
        if let token = ctx.session {
            let digest = SessionToken.digest(token)
            let removed = try await ctx.database.write { db -> Bool in
                guard let row = try db.queryOne("SELECT employee_id FROM sessions WHERE token_hash = ?", [.blob(digest)]), let id = row.int(0) else { return false }
                try db.run("DELETE FROM sessions WHERE token_hash = ?", [.blob(digest)])
                if try db.scalar("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(id)]) == 0 {
                    try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(id)])
                }
                return true
            }
            ended = ended || removed
        }
        guard ended else { throw APIError.unauthorized() }
        var response = Reply.ok("登出成功")
        response.headers = [("set-cookie", "crm_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")]
        return response
    }

    /// `phoneNumber` + `old_password` + `new_password` (8…128 characters). Ends every other
    /// session of the employee (the one presenting this request, if any, stays).
    static func changePassword(_ ctx: RequestContext) async throws -> WireResponse {
        let phone = try ctx.params.requireString("phoneNumber")
        let old = try ctx.params.requireString("old_password", maxLength: 128)
        let new = try ctx.params.requireString("new_password", maxLength: 128)
        guard new.count >= 8 else { throw APIError.badRequest("new_password must be 8 to 128 characters") }
        let account = try await verifyCredentials(ctx, phone: phone, password: old)
        let hash = try await PasswordHasher.shared.hash(new)
        let keep = ctx.session.map { SessionToken.digest($0) } ?? []
        try await ctx.database.write { db in
            try db.run("UPDATE employees SET password_hash = ?, updateTime = ? WHERE id = ?", [.text(hash), .text(Timestamp.now()), .int(account.id)])
            try db.run("DELETE FROM sessions WHERE employee_id = ? AND token_hash <> ?", [.int(account.id), .blob(keep)])
            try db.run("DELETE FROM login_failures WHERE phone = ?", [.text(phone)])
        }
        return Reply.ok("修改成功", data: .object(JSONObject([("id", .int(account.id))])))
    }

    /// Removes sessions idle past the limit and failed logins past the window.
    static func forgetExpired(_ db: SQLiteConnection) throws {
        let now = unixNow()
        try db.run("DELETE FROM sessions WHERE last_seen < ?", [.int(now - idleSeconds)])
        try db.run("DELETE FROM login_failures WHERE at <= ?", [.int(now - failureWindowSeconds)])
    }

    /// For the gateway: `token` → `{id, role}` of an enabled employee, else 401.
    static func check(_ ctx: RequestContext) async throws -> WireResponse {
        guard let token = try ctx.params.string("token", maxLength: 256), !token.isEmpty else { throw APIError.unauthorized() }
        let digest = SessionToken.digest(token)
        let now = unixNow()
        let found = try await ctx.database.read { db -> (id: Int64, role: Int64, lastSeen: Int64)? in
            guard let row = try db.queryOne("""
                SELECT e.id, e.roleId, s.last_seen FROM sessions s JOIN employees e ON e.id = s.employee_id
                WHERE s.token_hash = ? AND e.status = 1
                """, [.blob(digest)]),
                let id = row.int(0), let role = row.int(1), let lastSeen = row.int(2) else { return nil }
            return (id, role, lastSeen)
        }
        guard let found else { throw APIError.unauthorized("session is not valid; log in again") }
        if now - found.lastSeen > idleSeconds {
            _ = try await ctx.database.write { db in try db.run("DELETE FROM sessions WHERE token_hash = ?", [.blob(digest)]) }
            throw APIError.unauthorized("session expired; log in again")
        }
        if now - found.lastSeen > touchIntervalSeconds {
            _ = try await ctx.database.write { db in try db.run("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", [.int(now), .blob(digest)]) }
        }
        return Reply.ok(data: .object(JSONObject([("id", .int(found.id)), ("role", .int(found.role))])))
    }
}
