#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// ContractService through the gateway and the real processes: feedback and contracts, money,
/// windows, roles, partial updates, soft delete and restore, names from the copies, events.
final class ContractTests: SystemTestCase {
    static func unique(_ prefix: String) -> String { "\(prefix)\(UInt32.random(in: 0...UInt32.max))" }

    /// `now` shifted by whole days, as the API writes times.
    static func daysAgo(_ days: Int64, _ extraSeconds: Int64 = 0) -> String {
        Timestamp.shift(Timestamp.now(), seconds: -days * 86_400 + extraSeconds) ?? ""
    }

    func created(_ response: HTTPTestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> Int64 {
        guard response.status == 200, let id = response.json["data"]?["id"]?.intValue else {
            XCTFail("expected a created id: \(response.status) \(response.text)", file: file, line: line)
            throw HarnessError("create: \(response.text)")
        }
        return id
    }

    func organization(_ token: String) throws -> (id: Int64, name: String) {
        let name = Self.unique("国务院-")
        return (try created(system.post("/api/customers/organization", json: ["groupName": .string(name)], token: token)), name)
    }

    func customer(_ token: String, _ name: String) throws -> Int64 {
        try created(system.post("/api/customers/customers", json: ["realName": .string(name)], token: token))
    }

    /// An employee of `role` with a session (role 2 employee, 3 courier).
    func employee(role: Int64, realName: String = ContractTests.unique("员工")) throws -> (id: Int64, token: String) {
        let admin = try system.login()
        let phone = "137\(UInt32.random(in: 10_000_000...99_999_999))"
        let made = try system.post("/api/user/user", json: ["phoneNumber": .string(phone), "group_id": [1], "role_id": .int(role),
                                                             "password": "password-123", "realName": .string(realName)], token: admin)
        return (try created(made), try system.login(phone, "password-123"))
    }

    func rows(_ path: String, _ token: String, file: StaticString = #filePath, line: UInt = #line) throws -> (rows: [JSON], total: Int64?) {
        let response = try system.get(path, token: token)
        XCTAssertEqual(response.status, 200, "\(path): \(response.text)", file: file, line: line)
        XCTAssertEqual(response.json["msg"]?.stringValue, "查询成功", file: file, line: line)
        return (response.json["data"]?.arrayValue ?? [], response.json["page_info"]?["total"]?.intValue)
    }

    func contract(_ id: Int64, _ token: String, query: String = "status=all&start_time=2000-01-01&end_time=2100-01-01&count=100") throws -> JSON? {
        try rows("/api/contract/contract?\(query)", token).rows.first { $0["id"]?.intValue == id }
    }

    func feedback(_ id: Int64, _ token: String, query: String = "status=all&start_time=2000-01-01&end_time=2100-01-01&count=100") throws -> JSON? {
        try rows("/api/feedback/satisfy?\(query)", token).rows.first { $0["id"]?.intValue == id }
    }

    /// A POST with a raw body (JSON the encoder would not write, e.g. `1e3`).
    func postRaw(_ path: String, _ body: String, contentType: String = "application/json", token: String) throws -> HTTPTestResponse {
        try system.client().request("POST", path, body: Array(body.utf8), contentType: contentType, token: token)
    }

    func assertRefused(_ response: HTTPTestResponse, _ status: Int = 400, naming field: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.json["status"]?.intValue, 1, file: file, line: line)
        XCTAssertTrue(response.json["msg"]?.stringValue?.contains(field) ?? false, "\(field): \(response.text)", file: file, line: line)
    }

    // MARK: Feedback

    func testFeedbackFieldsNamesFiltersWindowAndOrder() throws {
        let admin = try system.login()
        let org = try organization(admin)
        let other = try organization(admin)
        let jerry = try customer(admin, "Jerry"), tom = try customer(admin, "tom")
        let follower = try employee(role: 2, realName: "tom ai")
        // Created a moment ago in other services: the copies catch up before the write is checked.
        let first = try created(system.post("/api/feedback/satisfy", json: [
            "organization_id": .int(org.id), "customers_id": [.int(jerry), .int(tom)], "record_time": .string(Self.daysAgo(1)),
            "follower_id": .array([.int(follower.id), 1]), "attach": "https://example.com/shot.png", "value": 4, "note": "好评",
        ], token: admin))
        let answered = try system.post("/api/feedback/satisfy", json: ["organization_id": .int(other.id), "customers_id": .string("\(tom)"),
                                                                        "record_time": .string(Self.daysAgo(2)), "value": "-10"], token: admin)
        XCTAssertEqual(answered.json["msg"]?.stringValue, "录入成功", answered.text)
        let second = try created(answered)
        let old = try created(system.post("/api/feedback/satisfy", json: ["organization_id": .int(org.id), "record_time": .string(Self.daysAgo(8)), "value": 0], token: admin))
        // Same recordTime: newer id first.
        let sameTime = Self.daysAgo(1)
        let tieA = try created(system.post("/api/feedback/satisfy", json: ["organization_id": .int(org.id), "record_time": .string(sameTime), "value": 1], token: admin))
        let tieB = try created(system.post("/api/feedback/satisfy", json: ["organization_id": .int(org.id), "record_time": .string(sameTime), "value": 2], token: admin))

        let row = try XCTUnwrap(feedback(first, admin))
        XCTAssertEqual(row.objectValue?.keys, ["id", "value", "attach", "recordTime", "operator_id", "operator_name", "organization_id", "organization_name",
                                               "createTime", "updateTime", "note", "status", "customers_name", "customer_ids", "follower_name", "follower_ids"])
        XCTAssertEqual(row["value"]?.intValue, 4)
        XCTAssertEqual(row["operator_id"]?.intValue, 1, "the caller")
        XCTAssertEqual(row["operator_name"]?.stringValue, "管理员", "the bootstrap administrator's realName")
        XCTAssertEqual(row["organization_name"]?.stringValue, org.name)
        XCTAssertEqual(row["customers_name"], ["Jerry", "tom"])
        XCTAssertEqual(row["follower_name"], ["tom ai", "管理员"])
        XCTAssertEqual(row["status"]?.intValue, 0)

        // Default window: the last week, newest recordTime first, then newest id.
        let orgRows = try rows("/api/feedback/satisfy?organization_id=\(org.id)", admin)
        XCTAssertEqual(orgRows.rows.compactMap { $0["id"]?.intValue }, [tieB, tieA, first], "tieA/tieB share a recordTime not before first's")
        XCTAssertEqual(orgRows.total, 3)
        XCTAssertFalse(orgRows.rows.contains { $0["id"]?.intValue == old }, "eight days ago is outside the default week")
        let wider = try rows("/api/feedback/satisfy?organization_id=\(org.id)&start_time=\(Self.daysAgo(9).prefix(10))", admin)
        XCTAssertEqual(wider.rows.last?["id"]?.intValue, old)
        XCTAssertEqual(wider.total, 4)
        // customers_id: rows naming any of them.
        let byTom = try rows("/api/feedback/satisfy?customers_id=\(tom)", admin).rows.compactMap { $0["id"]?.intValue }
        XCTAssertEqual(byTom, [first, second])
        let byEither = try rows("/api/feedback/satisfy?customers_id=[\(jerry),\(tom)]", admin).rows.compactMap { $0["id"]?.intValue }
        XCTAssertEqual(byEither, [first, second])
        XCTAssertEqual(try rows("/api/feedback/satisfy?customers_id=\(jerry)&customers_id=999999", admin).rows.compactMap { $0["id"]?.intValue }, [first])
        // A window that starts after it ends, a bad time.
        assertRefused(try system.get("/api/feedback/satisfy?start_time=2021-02-01&end_time=2021-01-01", token: admin), naming: "start_time")
        assertRefused(try system.get("/api/feedback/satisfy?end_time=2021-02-30", token: admin), naming: "end_time")
    }

    func testFeedbackValidationRolesPartialUpdatesDeleteAndRestore() throws {
        let admin = try system.login()
        let org = try organization(admin)
        let courier = try employee(role: 3)
        let staff = try employee(role: 2)
        let time = Self.daysAgo(1)
        for (body, field) in [
            (["record_time": .string(time), "value": 1] as JSON, "organization_id"),
            (["organization_id": .int(org.id), "value": 1], "record_time"),
            (["organization_id": .int(org.id), "record_time": .string(time)], "value"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": 11], "value"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": -11], "value"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": 2.5], "value"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": "很好"], "value"),
            (["organization_id": .int(org.id), "record_time": "yesterday", "value": 1], "record_time"),
            (["organization_id": 999_999, "record_time": .string(time), "value": 1], "organization_id 999999 does not exist"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": 1, "customers_id": [999_999]], "customers_id 999999 does not exist"),
            (["organization_id": .int(org.id), "record_time": .string(time), "value": 1, "follower_id": "x"], "follower_id"),
        ] as [(JSON, String)] {
            assertRefused(try system.post("/api/feedback/satisfy", json: body, token: admin), naming: field)
        }
        // Form-encoded, by a courier: couriers may write feedback.
        let id = try created(system.postForm("/api/feedback/satisfy",
                                             "organization_id=\(org.id)&record_time=\(time.replacingOccurrences(of: " ", with: "+"))&value=-3&attach=a.png&note=n&follower_id=\(staff.id)",
                                             token: courier.token))
        XCTAssertEqual(try feedback(id, admin)?["operator_id"]?.intValue, courier.id)
        // Partial update by the operator: fields not sent keep their values, an empty one clears.
        let update = try system.postForm("/api/feedback/satisfy", "satisfy_id=\(id)&value=7&attach=", token: courier.token)
        XCTAssertEqual(update.json["msg"]?.stringValue, "录入成功", update.text)
        var row = try XCTUnwrap(feedback(id, admin))
        XCTAssertEqual(row["value"]?.intValue, 7)
        XCTAssertEqual(row["attach"], .null, "cleared")
        XCTAssertEqual(row["note"]?.stringValue, "n", "kept")
        XCTAssertEqual(row["follower_ids"], [.int(staff.id)], "kept")
        XCTAssertEqual(row["recordTime"]?.stringValue, time)
        assertRefused(try system.post("/api/feedback/satisfy", json: ["satisfy_id": .int(id), "value": ""], token: admin), naming: "value")
        assertRefused(try system.post("/api/feedback/satisfy", json: ["satisfy_id": .int(id), "follower_id": []], token: staff.token), 403, naming: "others created")
        assertRefused(try system.post("/api/feedback/satisfy", json: ["satisfy_id": 999_999, "value": 1], token: admin), 404, naming: "satisfy_id")
        XCTAssertEqual(try system.post("/api/feedback/satisfy", json: ["satisfy_id": .int(id), "follower_id": []], token: admin).status, 200)
        row = try XCTUnwrap(feedback(id, admin))
        XCTAssertEqual(row["follower_name"], [], "an empty array clears the list")

        // Delete: couriers may not; employees only their own rows; administrators any.
        XCTAssertEqual(try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(id)], token: courier.token).status, 403)
        XCTAssertEqual(try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(id)], token: staff.token).status, 403)
        assertRefused(try system.post("/api/feedback/delsatisfy", json: [:], token: admin), naming: "satisfy_id")
        let deleted = try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(id)], token: admin)
        XCTAssertEqual(deleted.json["msg"]?.stringValue, "删除成功", deleted.text)
        XCTAssertNil(try feedback(id, admin, query: "organization_id=\(org.id)"), "deleted rows are hidden")
        XCTAssertEqual(try feedback(id, admin, query: "organization_id=\(org.id)&status=-1")?["status"]?.intValue, -1)
        XCTAssertEqual(try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(id), "status": 0], token: admin).status, 200)
        XCTAssertEqual(try feedback(id, admin, query: "organization_id=\(org.id)")?["status"]?.intValue, 0, "restored")
        assertRefused(try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(id), "status": 1], token: admin), naming: "status")
        // An employee deletes their own feedback.
        let own = try created(system.post("/api/feedback/satisfy", json: ["organization_id": .int(org.id), "record_time": .string(time), "value": 1], token: staff.token))
        XCTAssertEqual(try system.post("/api/feedback/delsatisfy", json: ["satisfy_id": .int(own)], token: staff.token).status, 200)
    }

    // MARK: Contracts

    func testContractFieldsWindowOrderRolesPartialUpdatesDeleteAndRestore() throws {
        let admin = try system.login()
        let org = try organization(admin)
        let staff = try employee(role: 2, realName: "chally ai")
        let courier = try employee(role: 3)
        let id = try created(system.post("/api/contract/contract", json: [
            "organization_id": .int(org.id), "name": "天下第一合同", "sign_time": .string(Self.daysAgo(10)), "code": "HT-001", "amount": "112",
            "remit_amount": 100.5, "remit_time": .string(Self.daysAgo(9)), "aging_start_time": "2021-01-01", "aging_end_time": "2022-01-01 12:00:00",
            "follower_id": .array([1, .int(staff.id)]), "note": "备注",
        ], token: staff.token))
        let row = try XCTUnwrap(contract(id, admin))
        XCTAssertEqual(row.objectValue?.keys, ["id", "organization_id", "organization_name", "name", "code", "amount", "sign_time", "status", "aging_start_time",
                                               "aging_end_time", "remit_amount", "remit_time", "creator_id", "editor_id", "createTime", "updateTime", "note",
                                               "follower", "follower_ids"])
        XCTAssertEqual(row["organization_name"]?.stringValue, org.name)
        XCTAssertEqual(row["amount"]?.stringValue, "112.00")
        XCTAssertEqual(row["remit_amount"]?.stringValue, "100.50")
        XCTAssertEqual(row["aging_start_time"]?.stringValue, "2021-01-01 00:00:00")
        XCTAssertEqual(row["follower"], ["管理员", "chally ai"])
        XCTAssertEqual(row["follower_ids"], [1, .int(staff.id)])
        XCTAssertEqual(row["creator_id"]?.intValue, staff.id, "the caller")
        XCTAssertEqual(row["editor_id"], .null)
        XCTAssertEqual(row["status"]?.intValue, 0)

        // Required fields, references, roles.
        for (body, field) in [
            (["name": "x", "sign_time": "2021-01-01"] as JSON, "organization_id"),
            (["organization_id": .int(org.id), "sign_time": "2021-01-01"], "name"),
            (["organization_id": .int(org.id), "name": "x"], "sign_time"),
            (["organization_id": .int(org.id), "name": "x", "sign_time": "2021-13-01"], "sign_time"),
            (["organization_id": 999_999, "name": "x", "sign_time": "2021-01-01"], "organization_id 999999 does not exist"),
            (["organization_id": .int(org.id), "name": "x", "sign_time": "2021-01-01", "follower_id": [999_999]], "follower_id 999999 does not exist"),
            (["organization_id": .int(org.id), "name": "x", "sign_time": "2021-01-01", "remit_time": "soon"], "remit_time"),
        ] as [(JSON, String)] {
            assertRefused(try system.post("/api/contract/contract", json: body, token: admin), naming: field)
        }
        let body: JSON = ["organization_id": .int(org.id), "name": "x", "sign_time": "2021-01-01"]
        XCTAssertEqual(try system.post("/api/contract/contract", json: body, token: courier.token).status, 403, "couriers may not write contracts")
        XCTAssertEqual(try system.post("/api/contract/delcontract", json: ["contract_id": .int(id)], token: courier.token).status, 403)
        assertRefused(try system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "x", "sign_time": "2021-01-01", "creator_id": 1],
                                      token: staff.token), 403, naming: "creator_id")
        assertRefused(try system.post("/api/contract/contract", json: ["contract_id": .int(id), "editor_id": 1], token: staff.token), 403, naming: "editor_id")

        // Partial update: editor_id defaults to the caller; fields not sent keep; empty clears.
        XCTAssertEqual(try system.postForm("/api/contract/contract", "contract_id=\(id)&code=&remit_amount=&note=改", token: staff.token).status, 200)
        var updated = try XCTUnwrap(contract(id, admin))
        XCTAssertEqual(updated["editor_id"]?.intValue, staff.id)
        XCTAssertEqual(updated["code"], .null)
        XCTAssertEqual(updated["remit_amount"], .null, "cleared money is null")
        XCTAssertEqual(updated["amount"]?.stringValue, "112.00", "kept")
        XCTAssertEqual(updated["note"]?.stringValue, "改")
        XCTAssertEqual(updated["follower_ids"], [1, .int(staff.id)], "kept")
        assertRefused(try system.post("/api/contract/contract", json: ["contract_id": .int(id), "name": ""], token: admin), naming: "name")
        XCTAssertEqual(try system.post("/api/contract/contract", json: ["contract_id": .int(id), "creator_id": 1, "editor_id": .int(staff.id)], token: admin).status, 200)
        updated = try XCTUnwrap(contract(id, admin))
        XCTAssertEqual(updated["creator_id"]?.intValue, 1, "administrators may hand a contract to someone else")
        XCTAssertEqual(updated["editor_id"]?.intValue, staff.id)
        assertRefused(try system.post("/api/contract/contract", json: ["contract_id": .int(id), "note": "x"], token: staff.token), 403, naming: "others created")
        assertRefused(try system.post("/api/contract/delcontract", json: ["contract_id": .int(id)], token: staff.token), 403, naming: "employees")

        // Window: one year of sign_time by default, newest first.
        let older = try created(system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "old", "sign_time": .string(Self.daysAgo(300))], token: admin))
        let outside = try created(system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "older", "sign_time": .string(Self.daysAgo(366))], token: admin))
        let newest = try created(system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "new", "sign_time": .string(Self.daysAgo(0, -5))], token: admin))
        let list = try rows("/api/contract/contract?organization_id=\(org.id)", admin)
        XCTAssertEqual(list.rows.compactMap { $0["id"]?.intValue }, [newest, id, older])
        XCTAssertEqual(list.total, 3)
        let all = try rows("/api/contract/contract?organization_id=\(org.id)&start_time=\(Self.daysAgo(400).prefix(10))&count=2&page=2", admin)
        XCTAssertEqual(all.rows.compactMap { $0["id"]?.intValue }, [older, outside], "page 2 of 2")
        XCTAssertEqual(all.total, 4)

        // Delete and restore (administrator; the row is now the administrator's).
        let deleted = try system.post("/api/contract/delcontract", json: ["contract_id": .int(id)], token: admin)
        XCTAssertEqual(deleted.json["msg"]?.stringValue, "删除成功", deleted.text)
        XCTAssertFalse(try rows("/api/contract/contract?organization_id=\(org.id)", admin).rows.contains { $0["id"]?.intValue == id })
        XCTAssertEqual(try rows("/api/contract/contract?organization_id=\(org.id)&status=-1", admin).rows.compactMap { $0["id"]?.intValue }, [id])
        XCTAssertEqual(try rows("/api/contract/contract?organization_id=\(org.id)&status=all", admin).total, 3)
        XCTAssertEqual(try system.post("/api/contract/delcontract", json: ["contract_id": .int(id), "status": "0"], token: admin).status, 200)
        XCTAssertEqual(try rows("/api/contract/contract?organization_id=\(org.id)", admin).total, 3, "restored")
        assertRefused(try system.post("/api/contract/delcontract", json: ["contract_id": 999_999], token: admin), 404, naming: "contract_id")
        assertRefused(try system.get("/api/contract/contract?status=1", token: admin), naming: "status")
    }

    // MARK: Money

    func testMoneyFormsThroughTheAPI() throws {
        let admin = try system.login()
        let org = try organization(admin)
        func create(_ amountJSON: String) throws -> HTTPTestResponse {
            try postRaw("/api/contract/contract", #"{"organization_id":\#(org.id),"name":"m","sign_time":"2021-06-01","amount":\#(amountJSON)}"#, token: admin)
        }
        for (json, answer) in [
            ("112", "112.00"), ("\"112\"", "112.00"), ("112.5", "112.50"), ("\"112.5\"", "112.50"), ("\"0.10\"", "0.10"), ("0.1", "0.10"),
            ("0", "0.00"), ("\" 7.05 \"", "7.05"), ("10000000000000", "10000000000000.00"), ("\"10000000000000.00\"", "10000000000000.00"),
            ("9999999999999.99", "9999999999999.99"), ("1000.0", "1000.00"), ("null", nil), ("\"\"", nil),
            // A JSON number is taken by its value (docs/API.md): 1e3 is the number 1000; exponents in text are refused.
            ("1e3", "1000.00"), ("1.5E2", "150.00"),
        ] as [(String, String?)] {
            let id = try created(create(json))
            let row = try XCTUnwrap(contract(id, admin))
            XCTAssertEqual(row["amount"], answer.map { .string($0) } ?? .null, json)
        }
        for json in ["\"1.005\"", "1.005", "10000000.001", "\"-1\"", "-1", "-0.5", "\"1e3\"", "\"1E3\"", "1e300", "\"1,000\"", "\"NaN\"",
                     "\"Infinity\"", "\"+1\"", "\".5\"", "\"0x10\"", "\"10000000000000.01\"", "10000000000001", "true", "{}", "\"１２\""] {
            assertRefused(try create(json), naming: "amount")
        }
        // Form-encoded text, and remit_amount on an update.
        let form = try created(system.postForm("/api/contract/contract", "organization_id=\(org.id)&name=f&sign_time=2021-06-01&amount=0.20&remit_amount=3", token: admin))
        XCTAssertEqual(try contract(form, admin)?["amount"]?.stringValue, "0.20")
        XCTAssertEqual(try contract(form, admin)?["remit_amount"]?.stringValue, "3.00")
        for text in ["1e3", "1%2C000", "NaN", "-0.01", "0.001", "Infinity", "12.345"] {
            assertRefused(try system.postForm("/api/contract/contract", "contract_id=\(form)&remit_amount=\(text)", token: admin), naming: "remit_amount")
        }
        XCTAssertEqual(try contract(form, admin)?["remit_amount"]?.stringValue, "3.00", "a refused update changes nothing")
    }

    /// Amounts reach StatsService's feed as integer cents, and sums of them are exact.
    func testEventsCarryCentsAndSumsAreExact() async throws {
        let admin = try system.login()
        let org = try organization(admin)
        var ids: [Int64] = []
        for amount in Array(repeating: "0.10", count: 10) + Array(repeating: "0.20", count: 10) + ["10000000000000", "9999999999999.99"] {
            ids.append(try created(system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "s", "sign_time": .string(Self.daysAgo(1)),
                                                                                "amount": .string(amount)], token: admin)))
        }
        let customer = try customer(admin, "Jerry")
        let satisfied = try created(system.post("/api/feedback/satisfy", json: ["organization_id": .int(org.id), "record_time": .string(Self.daysAgo(1)),
                                                                                "value": -4, "customers_id": .array([.int(customer)]), "follower_id": [1]], token: admin))
        XCTAssertEqual(try system.post("/api/contract/delcontract", json: ["contract_id": .int(ids[0])], token: admin).status, 200)

        let loop = try EventLoop.start(name: "contract-events-test")
        let client = WireClient(loop: loop, endpoint: .unix(path: try system.dataDir + "/run/contracts/1.sock"), serviceName: "contracts",
                                hello: Hello(peer: "stats", replica: "contract-test"))
        client.start()
        defer { client.stop(); loop.stop() }
        var latest: [String: JSONObject] = [:]
        var after: Int64 = 0
        while true {
            let answer = try await eventFeed(client, ["after": .int(after), "limit": 1000, "wait_ms": 0])
            let events = answer["data"]?["events"]?.arrayValue ?? []
            guard let last = events.last?["seq"]?.intValue else { break }
            for event in events {
                guard let type = event["type"]?.stringValue, let id = event["entity_id"]?.intValue, let state = event["state"]?.objectValue else { continue }
                latest["\(type)/\(id)"] = state
            }
            after = last
        }
        let contracts = ids.compactMap { latest["contract/\($0)"] }
        XCTAssertEqual(contracts.count, ids.count)
        XCTAssertEqual(contracts.first?.keys, ["id", "organization_id", "amount", "sign_time", "status", "remit_amount", "creator_id", "updateTime"])
        XCTAssertEqual(contracts.first?["status"]?.intValue, -1, "a deletion is published as a state")
        let live = contracts.filter { $0["status"]?.intValue == 0 }
        let cents = live.compactMap { $0["amount"]?.intValue }.reduce(0, +)
        XCTAssertEqual(Params.moneyText(cents), "20000000000002.89", "9 × 0.10 + 10 × 0.20 + 10^13 + 9999999999999.99, exactly")
        XCTAssertEqual(contracts.first?["organization_id"]?.intValue, org.id)
        let feedback = try XCTUnwrap(latest["satisfaction/\(satisfied)"])
        XCTAssertEqual(feedback["value"]?.intValue, -4)
        XCTAssertEqual(feedback["organization_id"]?.intValue, org.id)
        XCTAssertEqual(feedback["customer_ids"], [.int(customer)])
        XCTAssertEqual(feedback["follower_ids"], [1])
        XCTAssertEqual(feedback["status"]?.intValue, 0)
        XCTAssertNotNil(feedback["recordTime"]?.stringValue)
    }

    /// Names come from ContractService's copies, which follow renames in the other services.
    func testNamesFollowTheCopies() throws {
        let admin = try system.login()
        let org = try organization(admin)
        let staff = try employee(role: 2, realName: "old name")
        let id = try created(system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "n", "sign_time": .string(Self.daysAgo(1)),
                                                                          "follower_id": .array([.int(staff.id)])], token: admin))
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(staff.id), "realName": "new name"], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/customers/organization", json: ["organization_id": .int(org.id), "groupName": "改名了"], token: admin).status, 200)
        let renamed = try eventually(timeout: 5) {
            let row = try contract(id, admin)
            return row?["follower"] == ["new name"] && row?["organization_name"]?.stringValue == "改名了"
        }
        let after = try contract(id, admin)
        XCTAssertTrue(renamed, "\(String(describing: after))")
        // A deleted organization can no longer be named.
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["organization_id": .int(org.id), "status": -1], token: admin).status, 200)
        XCTAssertTrue(try eventually(timeout: 5) {
            try system.post("/api/contract/contract", json: ["organization_id": .int(org.id), "name": "n", "sign_time": "2021-01-01"], token: admin).status == 400
        })
    }
}
