#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// The whole system through the gateway: real executables, real sockets, real SQLite files.
final class GatewaySystemTests: SystemTestCase {

    // MARK: Operational endpoints

    func testLivezNeedsNoSession() throws {
        let response = try system.get("/livez")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, #"{"status":0}"#)
        XCTAssertEqual(response.header("Content-Type"), "application/json; charset=utf-8")
    }

    func testHealthzReportsEveryService() throws {
        let response = try system.get("/healthz")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.json["status"]?.intValue, 0)
        let services = response.json["services"]?.objectValue
        for name in ["users", "customers", "records", "contracts", "stats"] {
            XCTAssertEqual(services?[name]?.stringValue, "up", name)
        }
    }

    func testOpenAPIAndMetricsArePublic() throws {
        let doc = try system.get("/openapi.json")
        XCTAssertEqual(doc.status, 200)
        XCTAssertEqual(doc.json["openapi"]?.stringValue, "3.0.3")
        XCTAssertNotNil(doc.json["paths"]?["/api/user/group"]?["get"])
        let userParameters = doc.json["paths"]?["/api/user/user"]?["get"]?["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        XCTAssertEqual(Set(userParameters), ["page", "count", "status", "type", "group_ids"])
        let loginBody = doc.json["paths"]?["/api/user/login"]?["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
        XCTAssertEqual(loginBody?["required"], ["phoneNumber", "password"])
        let metrics = try system.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.text.contains("crm_http_requests_total"), metrics.text)
        XCTAssertTrue(metrics.text.contains("crm_service_connected{service=\"users\"} 1"), metrics.text)
    }

    func testMetricsCountForwardedRequestsUnderTheirRoute() throws {
        // A documented path gets a label of its own, whichever check answered it; others are "other".
        XCTAssertEqual(try system.get("/api/user/group").status, 401)
        XCTAssertEqual(try system.get("/api/user/no-such-thing-\(UUID().uuidString)").status, 401)
        XCTAssertEqual(try system.get("/api/nowhere/\(UUID().uuidString)").status, 404)
        let metrics = try system.get("/metrics").text
        XCTAssertTrue(metrics.contains(#"crm_http_requests_total{route="/api/user/group",status="401"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"crm_http_requests_total{route="other",status="401"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"crm_http_requests_total{route="other",status="404"}"#), metrics)
        XCTAssertFalse(metrics.contains("no-such-thing"), metrics)
    }

    // MARK: Authentication

    func testWithoutSessionAnswers401JSON() throws {
        let response = try system.get("/api/user/group")
        XCTAssertEqual(response.status, 401)
        XCTAssertEqual(response.json["status"]?.intValue, 1)
        XCTAssertNotNil(response.json["msg"]?.stringValue)
        XCTAssertEqual(try system.get("/api/user/group", token: "not-a-real-token").status, 401)
        XCTAssertEqual(try system.get("/api/customers/organization").status, 401)
    }

    func testLoginSetsCookieAndTokenBothWork() throws {
        let response = try system.postForm("/api/user/login", "phoneNumber=admin&password=\(try system.adminPassword)")
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(response.json["msg"]?.stringValue, "登陆成功")
        let token = try XCTUnwrap(response.json["data"]?["token"]?.stringValue)
        XCTAssertGreaterThanOrEqual(token.count, 43, "32 random bytes in base64url")
        XCTAssertEqual(response.json["data"]?["user"]?["roleId"]?.intValue, 1)
        XCTAssertNil(response.json["data"]?["user"]?["password_hash"])
        let cookie = try XCTUnwrap(response.header("Set-Cookie"))
        XCTAssertTrue(cookie.hasPrefix("crm_session=\(token);"), cookie)
        XCTAssertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), cookie)
        // Bearer
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        // Cookie
        let viaCookie = try system.client().request("GET", "/api/user/group", headers: [("Cookie", "other=1; crm_session=\(token)")])
        XCTAssertEqual(viaCookie.status, 200, viaCookie.text)
    }

    func testWrongPasswordAndUnknownPhoneAnswerTheSame() throws {
        let wrong = try system.post("/api/user/login", json: ["phoneNumber": "admin", "password": "wrong-password"])
        let unknown = try system.post("/api/user/login", json: ["phoneNumber": "13900000000", "password": "whatever-1"])
        XCTAssertEqual(wrong.status, 401)
        XCTAssertEqual(unknown.status, 401)
        XCTAssertEqual(wrong.json["msg"], unknown.json["msg"])
        let missing = try system.post("/api/user/login", json: ["phoneNumber": "admin"])
        XCTAssertEqual(missing.status, 400)
        XCTAssertTrue(missing.json["msg"]?.stringValue?.contains("password") ?? false)
    }

    func testFiveFailuresLockThePhoneNumber() throws {
        let phone = "1380000\(Int.random(in: 1000...9999))"
        for _ in 0..<5 {
            XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "bad-password"]).status, 401)
        }
        let locked = try system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "bad-password"])
        XCTAssertEqual(locked.status, 429, locked.text)
    }

    func testConcurrentGuessesCannotExceedTheLimit() throws {
        let system = try self.system
        let phone = "1350000\(Int.random(in: 1000...9999))"
        let statuses = LockedList<Int>()
        DispatchQueue.concurrentPerform(iterations: 12) { _ in
            let status = (try? system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "bad-password"]).status) ?? 0
            statuses.append(status)
        }
        XCTAssertEqual(statuses.values.count, 12)
        XCTAssertEqual(statuses.values.filter { $0 == 401 }.count, 5, "\(statuses.values)")
        XCTAssertEqual(statuses.values.filter { $0 == 429 }.count, 7, "\(statuses.values)")
    }

    func testLogoutEndsTheSessionWithinTwoSeconds() throws {
        let token = try system.login()
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        let out = try system.post("/api/user/logout", json: [:], token: token)
        XCTAssertEqual(out.status, 200, out.text)
        XCTAssertEqual(out.json["msg"]?.stringValue, "登出成功")
        XCTAssertTrue(eventually(timeout: 2) { (try? system.get("/api/user/group", token: token).status) == 401 })
        XCTAssertEqual(try system.post("/api/user/logout", json: [:]).status, 401, "no session, no credentials")
    }

    // MARK: Groups

    func testGroupLifecycle() throws {
        let token = try system.login()
        let name = "销售部-\(UInt32.random(in: 0...UInt32.max))"
        let created = try system.post("/api/user/group", json: ["name": .string(name), "content": "负责销售"], token: token)
        XCTAssertEqual(created.status, 200, created.text)
        XCTAssertEqual(created.json["msg"]?.stringValue, "操作成功")
        let id = try XCTUnwrap(created.json["data"]?["id"]?.intValue)

        // Form bodies work too, and the newest group comes first.
        let second = try system.postForm("/api/user/group", "name=\(name)-2&content=x", token: token)
        XCTAssertEqual(second.status, 200, second.text)
        let secondID = try XCTUnwrap(second.json["data"]?["id"]?.intValue)
        var list = try system.get("/api/user/group", token: token)
        XCTAssertEqual(list.status, 200)
        let rows = try XCTUnwrap(list.json["data"]?.arrayValue)
        XCTAssertEqual(rows.first?["id"]?.intValue, secondID)
        let row = try XCTUnwrap(rows.first { $0["id"]?.intValue == id })
        XCTAssertEqual(row.objectValue?.keys, ["id", "groupName", "groupDetail", "createTime", "updateTime", "status"])
        XCTAssertEqual(row["groupName"]?.stringValue, name)
        XCTAssertEqual(row["groupDetail"]?.stringValue, "负责销售")
        XCTAssertEqual(row["status"]?.intValue, 1)
        XCTAssertNotNil(Self.timePattern(row["createTime"]?.stringValue))

        // Rename keeps the detail when content is not sent.
        let renamed = try system.post("/api/user/group", json: ["group_id": .string(String(id)), "name": .string(name + "-new")], token: token)
        XCTAssertEqual(renamed.status, 200, renamed.text)
        XCTAssertEqual(renamed.json["data"]?["id"]?.intValue, id)
        list = try system.get("/api/user/group", token: token)
        let after = list.json["data"]?.arrayValue?.first { $0["id"]?.intValue == id }
        XCTAssertEqual(after?["groupName"]?.stringValue, name + "-new")
        XCTAssertEqual(after?["groupDetail"]?.stringValue, "负责销售")

        // Delete hides it by default; status -1 and all show it.
        XCTAssertEqual(try system.post("/api/user/delgroup", json: ["group_id": .int(id)], token: token).status, 200)
        XCTAssertFalse(try ids(system.get("/api/user/group", token: token)).contains(id))
        XCTAssertTrue(try ids(system.get("/api/user/group?status=-1", token: token)).contains(id))
        XCTAssertTrue(try ids(system.get("/api/user/group?status=all", token: token)).contains(id))
        XCTAssertFalse(try ids(system.get("/api/user/group?status=-1", token: token)).contains(secondID))
        XCTAssertFalse(try ids(system.get("/api/user/group?status=1", token: token)).contains(id))
        // Restore.
        XCTAssertEqual(try system.post("/api/user/delgroup", json: ["group_id": .int(id), "status": 1], token: token).status, 200)
        XCTAssertTrue(try ids(system.get("/api/user/group", token: token)).contains(id))
    }

    func testGroupInputErrorsNameTheParameter() throws {
        let token = try system.login()
        let noName = try system.post("/api/user/group", json: ["content": "x"], token: token)
        XCTAssertEqual(noName.status, 400)
        XCTAssertEqual(noName.json["status"]?.intValue, 1)
        XCTAssertTrue(noName.json["msg"]?.stringValue?.contains("name") ?? false, noName.text)

        let badID = try system.post("/api/user/group", json: ["group_id": "abc", "name": "x"], token: token)
        XCTAssertEqual(badID.status, 400)
        XCTAssertTrue(badID.json["msg"]?.stringValue?.contains("group_id") ?? false, badID.text)

        let unknown = try system.post("/api/user/group", json: ["group_id": 999_999, "name": "x"], token: token)
        XCTAssertEqual(unknown.status, 404, unknown.text)

        let badStatus = try system.get("/api/user/group?status=7", token: token)
        XCTAssertEqual(badStatus.status, 400)
        XCTAssertTrue(badStatus.json["msg"]?.stringValue?.contains("status") ?? false)

        let delMissing = try system.post("/api/user/delgroup", json: [:], token: token)
        XCTAssertEqual(delMissing.status, 400)
        XCTAssertTrue(delMissing.json["msg"]?.stringValue?.contains("group_id") ?? false)

        let long = try system.post("/api/user/group", json: ["name": .string(String(repeating: "长", count: 1001))], token: token)
        XCTAssertEqual(long.status, 400)

        let name = "dup-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(try system.post("/api/user/group", json: ["name": .string(name)], token: token).status, 200)
        XCTAssertEqual(try system.post("/api/user/group", json: ["name": .string(name)], token: token).status, 409)

        let notObject = try system.client().request("POST", "/api/user/group", body: Array("[1,2]".utf8), contentType: "application/json", token: token)
        XCTAssertEqual(notObject.status, 400)
        let badJSON = try system.client().request("POST", "/api/user/group", body: Array("{\"name\":".utf8), contentType: "application/json", token: token)
        XCTAssertEqual(badJSON.status, 400)
    }

    func testIdempotencyKeyReplaysTheFirstAnswer() throws {
        let token = try system.login()
        let key = "key-\(UInt32.random(in: 0...UInt32.max))"
        let name = "idem-\(key)"
        let first = try system.post("/api/user/group", json: ["name": .string(name)], token: token, headers: [("Idempotency-Key", key)])
        let again = try system.post("/api/user/group", json: ["name": .string(name)], token: token, headers: [("Idempotency-Key", key)])
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(again.status, 200, "a replay is not a duplicate-name conflict: \(again.text)")
        XCTAssertEqual(first.json["data"]?["id"], again.json["data"]?["id"])
        let groups = try system.get("/api/user/group", token: token).json["data"]?.arrayValue ?? []
        XCTAssertEqual(groups.filter { $0["groupName"]?.stringValue == name }.count, 1)
        let different = try system.post("/api/user/group", json: ["name": .string(name + "x")], token: token, headers: [("Idempotency-Key", key)])
        XCTAssertEqual(different.status, 422, different.text)
    }

    // MARK: Routing

    func testUnknownPathsAre404JSONAndWrongMethods405() throws {
        let token = try system.login()
        let unknown = try system.get("/api/nothing", token: token)
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.json["status"]?.intValue, 1)
        XCTAssertEqual(try system.get("/nothing").status, 404)
        let unknownUser = try system.get("/api/user/nothing", token: token)
        XCTAssertEqual(unknownUser.status, 404)
        XCTAssertEqual(unknownUser.json["status"]?.intValue, 1)
        let unknownStats = try system.get("/api/stats/nothing", token: token)
        XCTAssertEqual(unknownStats.status, 404, "the owning service's 404: \(unknownStats.text)")
        XCTAssertEqual(unknownStats.json["status"]?.intValue, 1)
        let wrongMethod = try system.get("/api/user/delgroup", token: token)
        XCTAssertEqual(wrongMethod.status, 405, wrongMethod.text)
        XCTAssertEqual(wrongMethod.json["status"]?.intValue, 1)
        let wrongMethod2 = try system.client().request("DELETE", "/api/user/group", token: token)
        XCTAssertEqual(wrongMethod2.status, 405)
        for (method, path) in [("POST", "/livez"), ("TRACE", "/metrics"), ("DELETE", "/healthz"), ("PUT", "/openapi.json")] {
            let answer = try system.client().request(method, path)
            XCTAssertEqual(answer.status, 405, "\(method) \(path): the gateway's own endpoints answer GET only")
            XCTAssertEqual(answer.json["status"]?.intValue, 1)
        }
    }

    // MARK: HTTP framing

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let token = try system.login()
        let client = try system.client()
        client.sendRaw("GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /api/user/group HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\nGET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 200)
        let second = try client.readResponse()
        XCTAssertEqual(second.status, 200)
        XCTAssertNotNil(second.json["data"]?.arrayValue)
        XCTAssertEqual(try client.readResponse().status, 404)
    }

    func testChunkedBodyIsAccepted() throws {
        let token = try system.login()
        let client = try system.client()
        let body = #"{"name":"chunked-\#(UInt32.random(in: 0...UInt32.max))"}"#
        let half = body.utf8.count / 2
        let a = String(decoding: Array(body.utf8)[..<half], as: UTF8.self)
        let b = String(decoding: Array(body.utf8)[half...], as: UTF8.self)
        client.sendRaw("POST /api/user/group HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\(String(a.utf8.count, radix: 16))\r\n\(a)\r\n\(String(b.utf8.count, radix: 16))\r\n\(b)\r\n0\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200, response.text)
    }

    func testExpectContinueIsAnswered() throws {
        let client = try system.client()
        let body = #"{"phoneNumber":"admin","password":"\#(try system.adminPassword)"}"#
        client.sendRaw("POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
        let interim = try client.readResponse()
        XCTAssertEqual(interim.status, 100, "the client is told to send its body")
        client.sendRaw(body)
        let final = try client.readResponse()
        XCTAssertEqual(final.status, 200, final.text)
    }

    func testSmugglingAndLimitsAnswer4xxAndClose() throws {
        let cases: [(String, Int)] = [
            ("POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
            ("GET /livez HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            ("GET /livez HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", 400),
            ("POST /api/user/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n", 413),
            ("GET /livez HTTP/1.1\r\nX: \(String(repeating: "a", count: 70_000))\r\n\r\n", 431),
        ]
        for (raw, status) in cases {
            let client = try system.client()
            client.sendRaw(raw)
            let response = try client.readResponse()
            XCTAssertEqual(response.status, status, raw.prefix(80).description)
            XCTAssertEqual(response.header("Connection"), "close")
            XCTAssertEqual(response.json["status"]?.intValue, 1)
            XCTAssertTrue(client.isClosedByServer(), "connection closed after \(status)")
        }
    }

    // MARK: Helpers

    func ids(_ response: HTTPTestResponse) -> [Int64] {
        (response.json["data"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }
    }

    static func timePattern(_ text: String?) -> String? {
        guard let text, text.count == 19, text.range(of: #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"#, options: .regularExpression) != nil else { return nil }
        return text
    }
}

