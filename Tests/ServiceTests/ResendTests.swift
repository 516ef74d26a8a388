#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// What the gateway does after losing a connection: the same request frame (same `rid`) sent
/// to UserService again. Driven straight at the real UserService's socket; every write must
/// take effect once and answer the same both times.
final class ResendTests: SystemTestCase {
    static let admin = Caller(id: 1, role: 1)

    /// A wire connection to the running UserService.
    final class UserSocket {
        let loop: EventLoop
        let client: WireClient

        init(_ system: SystemHarness) throws {
            loop = try EventLoop.start(name: "resend-test")
            client = WireClient(loop: loop, endpoint: .unix(path: system.dataDir + "/run/users/1.sock"), serviceName: "users",
                                hello: Hello(peer: "gateway", replica: "resend-test"))
            client.start()
        }

        deinit {
            client.stop()
            loop.stop()
        }

        func send(_ path: String, _ params: JSONObject, rid: String, caller: Caller? = nil, session: String? = nil, method: String = "POST") async throws -> WireResponse {
            try await client.send(WireRequest(method: method, path: path, params: params, caller: caller, requestID: rid, deadline: 0, session: session)).get()
        }

        /// Sends one request frame twice with the same request id; both answers must match.
        func twice(_ path: String, _ params: JSONObject, caller: Caller? = nil, session: String? = nil,
                   file: StaticString = #filePath, line: UInt = #line) async throws -> WireResponse {
            let rid = "resend-\(UUID().uuidString)"
            let first = try await send(path, params, rid: rid, caller: caller, session: session)
            let second = try await send(path, params, rid: rid, caller: caller, session: session)
            XCTAssertEqual(first.status, second.status, "\(path): same status both times", file: file, line: line)
            XCTAssertEqual(first.body.jsonString, second.body.jsonString, "\(path): same answer both times", file: file, line: line)
            return second
        }

        /// Outbox events after `seq` (the feed other services and the gateway follow).
        func events(after seq: Int64) async throws -> [JSON] {
            let answer = try await send("/internal/events", ["after": .int(seq), "limit": 1000, "wait_ms": 0], rid: "", method: "GET")
            return answer.body["data"]?["events"]?.arrayValue ?? []
        }

        func lastEventSeq() async throws -> Int64 {
            var last: Int64 = 0
            while true {
                let batch = try await events(after: last)
                guard let seq = batch.last?["seq"]?.intValue else { return last }
                last = seq
            }
        }
    }

    /// users.sqlite, opened beside the running service (reads only, unless a test says otherwise).
    func usersDB() throws -> SQLiteConnection {
        try SQLiteConnection(path: try system.dataDir + "/users.sqlite")
    }

    func count(_ sql: String, _ binds: [SQLValue] = []) throws -> Int64 {
        try usersDB().scalar(sql, binds)
    }

    static func uniquePhone() -> String { "137\(UInt32.random(in: 10_000_000...99_999_999))" }

    /// Creates an employee through the socket; answers id, phone, password.
    func makeEmployee(_ socket: UserSocket) async throws -> (id: Int64, phone: String, password: String) {
        let phone = Self.uniquePhone()
        let answer = try await socket.send("/api/user/user", ["phoneNumber": .string(phone), "group_id": [1], "role_id": 2, "password": .string("pw-\(phone)")],
                                           rid: UUID().uuidString, caller: Self.admin)
        guard answer.status == 200, let id = answer.body["data"]?["id"]?.intValue else { throw HarnessError("employee: \(answer.body.jsonString)") }
        return (id, phone, "pw-\(phone)")
    }

    func login(_ socket: UserSocket, _ phone: String, _ password: String) async throws -> String {
        let answer = try await socket.send("/api/user/login", ["phoneNumber": .string(phone), "password": .string(password)], rid: UUID().uuidString)
        guard answer.status == 200, let token = answer.body["data"]?["token"]?.stringValue else { throw HarnessError("login: \(answer.body.jsonString)") }
        return token
    }

    // MARK: Sessions

    func testResentLoginMakesOneSessionAndReplaysTheSameToken() async throws {
        let socket = try UserSocket(try system)
        let before = try count("SELECT COUNT(*) FROM sessions WHERE employee_id = 1")
        let answer = try await socket.twice("/api/user/login", ["phoneNumber": "admin", "password": .string(try system.adminPassword)])
        XCTAssertEqual(answer.status, 200, answer.body.jsonString)
        let token = try XCTUnwrap(answer.body["data"]?["token"]?.stringValue)
        XCTAssertTrue(answer.headers.contains { $0.name == "set-cookie" && $0.value.contains("crm_session=\(token)") }, "the replay sets the cookie too")
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE employee_id = 1"), before + 1, "one session for two frames")
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE token_hash = ?", [.blob(SessionToken.digest(token))]), 1)
    }

    func testResentWrongPasswordCountsOneFailure() async throws {
        let socket = try UserSocket(try system)
        let employee = try await makeEmployee(socket)
        for _ in 0..<4 {
            let answer = try await socket.twice("/api/user/login", ["phoneNumber": .string(employee.phone), "password": "wrong-password"])
            XCTAssertEqual(answer.status, 401, answer.body.jsonString)
        }
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(employee.phone)]), 4, "four failures for eight frames")
        // Eight frames of four wrong guesses leave the fifth try: the right password still logs in.
        let right = try await socket.send("/api/user/login", ["phoneNumber": .string(employee.phone), "password": .string(employee.password)], rid: UUID().uuidString)
        XCTAssertEqual(right.status, 200, right.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(employee.phone)]), 0)
    }

    func testResentLockoutAnswerIsTheStored429() async throws {
        let socket = try UserSocket(try system)
        let phone = Self.uniquePhone()
        for _ in 0..<5 {
            _ = try await socket.send("/api/user/login", ["phoneNumber": .string(phone), "password": "wrong-password"], rid: UUID().uuidString)
        }
        let params: JSONObject = ["phoneNumber": .string(phone), "password": "wrong-password"]
        let rid = UUID().uuidString
        let locked = try await socket.send("/api/user/login", params, rid: rid)
        XCTAssertEqual(locked.status, 429, locked.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(phone)]), 5)
        // Even once the failures are forgotten, the resend gets the stored answer and is not re-run.
        try usersDB().run("DELETE FROM login_failures WHERE phone = ?", [.text(phone)])
        let resent = try await socket.send("/api/user/login", params, rid: rid)
        XCTAssertEqual(resent.status, 429, resent.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(phone)]), 0, "the resend counted no failure")
    }

    func testResentLogoutsAndPasswordChangeApplyOnce() async throws {
        let socket = try UserSocket(try system)
        let employee = try await makeEmployee(socket)
        let first = try await login(socket, employee.phone, employee.password)
        let second = try await login(socket, employee.phone, employee.password)
        let third = try await login(socket, employee.phone, employee.password)
        var seq = try await socket.lastEventSeq()
        func sessionEvents() async throws -> [String] {
            let events = try await socket.events(after: seq)
            seq = events.last?["seq"]?.intValue ?? seq
            return events.filter { $0["type"]?.stringValue == "session" && $0["entity_id"]?.intValue == employee.id }
                .compactMap { $0["state"]?["reason"]?.stringValue }
        }

        var reasons: [String]

        // Logout with the session token.
        let out = try await socket.twice("/api/user/logout", [:], session: first)
        XCTAssertEqual(out.status, 200, out.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(employee.id)]), 2)
        reasons = try await sessionEvents()
        XCTAssertEqual(reasons, ["logout"])

        // Password change: ends the other session, keeps the presenting one.
        let newPassword = "new-\(employee.password)"
        let changed = try await socket.twice("/api/user/password", ["phoneNumber": .string(employee.phone), "old_password": .string(employee.password),
                                                                     "new_password": .string(newPassword)], session: second)
        XCTAssertEqual(changed.status, 200, changed.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(employee.id)]), 1)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE token_hash = ?", [.blob(SessionToken.digest(second))]), 1)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE token_hash = ?", [.blob(SessionToken.digest(third))]), 0)
        reasons = try await sessionEvents()
        XCTAssertEqual(reasons, ["password"])
        _ = try await login(socket, employee.phone, newPassword)

        // Logout of every session with phone + password.
        let all = try await socket.twice("/api/user/logout", ["phoneNumber": .string(employee.phone), "password": .string(newPassword)])
        XCTAssertEqual(all.status, 200, all.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(employee.id)]), 0)
        reasons = try await sessionEvents()
        XCTAssertEqual(reasons, ["logout_all"])
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(employee.phone)]), 0)

        // A wrong password's answer is stored like any other.
        let wrong = try await socket.twice("/api/user/password", ["phoneNumber": .string(employee.phone), "old_password": "not-it-at-all",
                                                                   "new_password": "whatever-123"])
        XCTAssertEqual(wrong.status, 401, wrong.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM login_failures WHERE phone = ?", [.text(employee.phone)]), 1)
    }

    /// A login's stored answer holds its token: replayed within the window, then refused (409)
    /// and blanked.
    func testLoginAnswerIsKeptOnlyForTheResendWindow() async throws {
        let socket = try UserSocket(try system)
        let rid = "login-window-\(UUID().uuidString)"
        let params: JSONObject = ["phoneNumber": "admin", "password": .string(try system.adminPassword)]
        let answer = try await socket.send("/api/user/login", params, rid: rid)
        let token = try XCTUnwrap(answer.body["data"]?["token"]?.stringValue)
        let db = try usersDB()
        let stored = try XCTUnwrap(try db.queryOne("SELECT body, expires_at - created_at FROM applied_requests WHERE request_id = ?", [.text(rid)]))
        XCTAssertTrue(stored.string(0)?.contains(token) ?? false)
        XCTAssertEqual(stored.int(1), 300, "kept five minutes")

        // The window has passed.
        try db.run("UPDATE applied_requests SET expires_at = created_at - 1 WHERE request_id = ?", [.text(rid)])
        let late = try await socket.send("/api/user/login", params, rid: rid)
        XCTAssertEqual(late.status, 409, late.body.jsonString)
        XCTAssertFalse(late.body.jsonString.contains(token))
        try IdempotencyStore.forgetExpiredSecrets(db)
        XCTAssertEqual(try db.queryOne("SELECT body, expires_at FROM applied_requests WHERE request_id = ?", [.text(rid)])?.string(0), "null")
        let later = try await socket.send("/api/user/login", params, rid: rid)
        XCTAssertEqual(later.status, 409)
    }

    /// The gateway's session check (sent without a request id) may expire a session: a repeat
    /// changes nothing more and publishes no second event.
    func testSessionCheckExpiryIsPublishedOnce() async throws {
        let socket = try UserSocket(try system)
        let employee = try await makeEmployee(socket)
        let token = try await login(socket, employee.phone, employee.password)
        let seq = try await socket.lastEventSeq()
        try usersDB().run("UPDATE sessions SET last_seen = last_seen - 31 * 86400 WHERE token_hash = ?", [.blob(SessionToken.digest(token))])
        for _ in 0..<2 {
            let check = try await socket.send("/internal/session", ["token": .string(token)], rid: "")
            XCTAssertEqual(check.status, 401, check.body.jsonString)
        }
        let events = try await socket.events(after: seq).filter { $0["type"]?.stringValue == "session" }
        XCTAssertEqual(events.map { $0["entity_id"]?.intValue }, [employee.id])
        XCTAssertEqual(events.map { $0["state"]?["reason"]?.stringValue }, ["expired"])
        XCTAssertEqual(events.first?["state"]?["employee_id"]?.intValue, employee.id)
    }

    // MARK: Other writes

    func testResentGroupEmployeeAndMenuWritesApplyOnce() async throws {
        let socket = try UserSocket(try system)
        let name = "resend-\(UInt32.random(in: 0...UInt32.max))"
        let group = try await socket.twice("/api/user/group", ["name": .string(name)], caller: Self.admin)
        XCTAssertEqual(group.status, 200, group.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM groups WHERE groupName = ?", [.text(name)]), 1)

        let phone = Self.uniquePhone()
        let created = try await socket.twice("/api/user/user", ["phoneNumber": .string(phone), "group_id": [1], "password": "password-123"], caller: Self.admin)
        XCTAssertEqual(created.status, 200, created.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM employees WHERE phoneNumber = ?", [.text(phone)]), 1)
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)

        // An administrator's password reset ends the employee's sessions.
        _ = try await login(socket, phone, "password-123")
        let reset = try await socket.twice("/api/user/user", ["user_id": .int(id), "password": "password-456"], caller: Self.admin)
        XCTAssertEqual(reset.status, 200, reset.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(id)]), 0)

        let token = try await login(socket, phone, "password-456")
        let disabled = try await socket.twice("/api/user/deluser", ["user_id": .int(id), "status": 0], caller: Self.admin)
        XCTAssertEqual(disabled.status, 200, disabled.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM events WHERE type = 'employee' AND entity_id = ?", [.int(id)]), 3, "created, password reset, disabled")
        let reasons = try usersDB().query("SELECT state FROM events WHERE type = 'session' AND entity_id = ? ORDER BY seq", [.int(id)])
            .compactMap { try? JSONParser.parse($0.string(0) ?? "") }.map { $0["reason"]?.stringValue }
        XCTAssertEqual(reasons, ["password", "disabled"])
        let check = try await socket.send("/internal/session", ["token": .string(token)], rid: "")
        XCTAssertEqual(check.status, 401, "a disabled employee's session is gone")

        let menu = try await socket.twice("/api/user/menu", ["name": .string(name)], caller: Self.admin)
        XCTAssertEqual(menu.status, 200, menu.body.jsonString)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM menus WHERE name = ?", [.text(name)]), 1)
    }
}
