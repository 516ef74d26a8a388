#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// Request ids, access logs without secrets, response headers, the Secure cookie and the
/// cross-site check — with `CRM_LOG_LEVEL=debug` (the most verbose), a public origin and
/// `CRM_COOKIE_SECURE=1`.
final class RequestLogTests: SystemTestCase {
    static let origin = "http://crm.example.test"
    override class var environment: [String: String] { ["CRM_LOG_LEVEL": "debug", "CRM_PUBLIC_ORIGIN": origin, "CRM_COOKIE_SECURE": "1"] }

    /// The JSON lines of the log that parse as objects.
    func logLines(_ system: SystemHarness) -> [JSON] {
        system.log.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{"), let json = try? JSONParser.parse(String(line)), json.objectValue != nil else { return nil }
            return json
        }
    }

    func testAClientRequestIdIsNotAnIdempotencyKey() throws {
        // Clients may repeat an X-Request-Id (or send one per session): two writes carrying the
        // same one are two writes, not a resend answered from the first one's record.
        let token = try system.login()
        let name = "trace-\(UInt32.random(in: 0...UInt32.max))"
        var ids: [Int64] = []
        for index in 0..<2 {
            let created = try system.post("/api/user/group", json: ["name": .string("\(name)-\(index)")], token: token,
                                          headers: [("X-Request-Id", "same-trace")])
            XCTAssertEqual(created.status, 200, created.text)
            XCTAssertEqual(created.header("X-Request-Id"), "same-trace")
            ids.append(try XCTUnwrap(created.json["data"]?["id"]?.intValue))
        }
        XCTAssertNotEqual(ids[0], ids[1])
    }

    func testEveryAnswerCarriesARequestIdThatTheGatewayAndTheServiceLog() throws {
        let system = try system
        let token = try system.login()
        let given = try system.client().request("GET", "/api/user/group", token: token, headers: [("X-Request-Id", "trace-abc.123")])
        XCTAssertEqual(given.status, 200)
        XCTAssertEqual(given.header("X-Request-Id"), "trace-abc.123", "a well-formed id is kept")
        for bad in ["has space", String(repeating: "a", count: 129), "quote\"d"] {
            let answer = try system.client().request("GET", "/livez", headers: [("X-Request-Id", bad)])
            let id = try XCTUnwrap(answer.header("X-Request-Id"))
            XCTAssertNotEqual(id, bad, "a malformed id is replaced")
            XCTAssertFalse(id.isEmpty)
        }
        let malformed = try system.client()
        malformed.sendRaw("GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        let refused = try malformed.readResponse()
        XCTAssertEqual(refused.status, 400)
        XCTAssertNotNil(refused.header("X-Request-Id"), "an unreadable request's answer carries one too")
        let unknown = try system.get("/nothing")
        XCTAssertNotNil(unknown.header("X-Request-Id"), "errors carry one too")
        XCTAssertEqual(unknown.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(unknown.header("Cache-Control"), "no-store")
        XCTAssertEqual(given.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(given.header("Cache-Control"), "no-store")

        XCTAssertTrue(eventually(timeout: 5, interval: 0.05) {
            self.logLines(system).contains { $0["request_id"]?.stringValue == "trace-abc.123" && $0["process"]?.stringValue == "users" }
        }, "UserService logs the request with the same id")
        let access = try XCTUnwrap(logLines(system).first { $0["request_id"]?.stringValue == "trace-abc.123" && $0["route"] != nil })
        XCTAssertEqual(access["method"]?.stringValue, "GET")
        XCTAssertEqual(access["route"]?.stringValue, "/api/user/group")
        XCTAssertEqual(access["status"]?.intValue, 200)
        XCTAssertEqual(access["service"]?.stringValue, "users")
        XCTAssertEqual(access["caller"]?.intValue, 1)
        XCTAssertNotNil(access["ms"]?.intValue)
        XCTAssertEqual(access["in"]?.intValue, 0)
        XCTAssertEqual(access["out"]?.intValue, Int64(given.body.count))
    }

    func testNoSecretEverReachesTheLogs() throws {
        let system = try system
        let admin = try system.login()
        let phone = "138\(UInt32.random(in: 10_000_000...99_999_999))"
        let firstPassword = "first-secret-\(UInt32.random(in: 0...UInt32.max))"
        let secondPassword = "second-secret-\(UInt32.random(in: 0...UInt32.max))"
        let key = "idem-secret-\(UInt32.random(in: 0...UInt32.max))"
        let created = try system.post("/api/user/user", json: ["phoneNumber": .string(phone), "group_id": [1], "password": .string(firstPassword)],
                                      token: admin, headers: [("Idempotency-Key", key)])
        XCTAssertEqual(created.status, 200, created.text)
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "wrong-secret-password"]).status, 401)
        let token = try system.login(phone, firstPassword)
        let changed = try system.post("/api/user/password", json: ["phoneNumber": .string(phone), "old_password": .string(firstPassword), "new_password": .string(secondPassword)], token: token)
        XCTAssertEqual(changed.status, 200, changed.text)
        let cookieToken = try system.login(phone, secondPassword)
        let viaCookie = try system.client().request("GET", "/api/user/group", headers: [("Cookie", "crm_session=\(cookieToken)")])
        XCTAssertEqual(viaCookie.status, 200)
        XCTAssertEqual(try system.get("/api/user/group", token: "not-a-real-token-secret").status, 401)
        // Give the services' lines time to arrive, then look for every secret.
        XCTAssertTrue(eventually(timeout: 5, interval: 0.05) { self.logLines(system).contains { $0["route"]?.stringValue == "/api/user/group" && $0["status"]?.intValue == 401 } })
        let log = system.log
        for secret in [firstPassword, secondPassword, key, token, cookieToken, admin, "wrong-secret-password", "not-a-real-token-secret", system.adminPassword] {
            XCTAssertFalse(log.contains(secret), "a secret reached the log: \(secret.prefix(6))…")
        }
    }

    func testTheSessionCookieIsSecureAndCrossSiteChangesAreRefused() throws {
        let system = try system
        let login = try system.post("/api/user/login", json: ["phoneNumber": "admin", "password": .string(system.adminPassword)])
        XCTAssertTrue(login.header("Set-Cookie")?.hasSuffix("; Secure") == true, login.header("Set-Cookie") ?? "no cookie")
        let token = try XCTUnwrap(login.json["data"]?["token"]?.stringValue)
        func post(_ headers: [(String, String)], bearer: Bool = false) throws -> HTTPTestResponse {
            let name = "origin-\(UInt32.random(in: 0...UInt32.max))"
            var all = headers
            if !bearer { all.append(("Cookie", "crm_session=\(token)")) }
            return try system.client().request("POST", "/api/user/group", body: JSON.object(JSONObject([("name", .string(name))])).serialized(),
                                               contentType: "application/json", token: bearer ? token : nil, headers: all)
        }
        let foreign = try post([("Origin", "http://evil.example")])
        XCTAssertEqual(foreign.status, 403, foreign.text)
        XCTAssertTrue(foreign.json["msg"]?.stringValue?.contains("evil.example") == true)
        XCTAssertEqual(try post([("Referer", "http://evil.example/form.html")]).status, 403, "Referer is checked when Origin is absent")
        XCTAssertEqual(try post([("Origin", Self.origin)]).status, 200, "our own origin")
        XCTAssertEqual(try post([("Referer", Self.origin + "/app/groups?x=1")]).status, 200)
        XCTAssertEqual(try post([]).status, 200, "no Origin or Referer: not a browser's cross-site post")
        XCTAssertEqual(try post([("Origin", "http://evil.example")], bearer: true).status, 200, "a Bearer token is never sent by a browser on its own")
        let read = try system.client().request("GET", "/api/user/group", headers: [("Cookie", "crm_session=\(token)"), ("Origin", "http://evil.example")])
        XCTAssertEqual(read.status, 200, "reads change nothing")
    }
}
