import XCTest
import ServiceKit
@testable import RecordService
import WireProtocol

/// RecordService's rules in process (`ServiceTester`): defaults, validation, operator rules.
/// The copies are filled directly, as their projections would fill them from events.
final class RecordRuleTests: XCTestCase {
    let admin = Caller(id: 1, role: 1)
    let employee = Caller(id: 2, role: 2)
    let otherEmployee = Caller(id: 3, role: 2)
    let courier = Caller(id: 4, role: 3)
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(ServiceDefinition.records)
        try tester.database.sync { db in
            for projection in ServiceDefinition.records.projections { try db.execute(projection.schema) }
            for (id, real, nick, status) in [(1, "Admin", "admin", 1), (2, "张三", "zs", 1), (3, "", "李四nick", 1), (4, "王五", "ww", 1), (5, "Gone", "g", -1)] as [(Int64, String, String, Int64)] {
                try db.run("INSERT INTO employee_copies(id, realName, nickName, roleId, status) VALUES (?,?,?,2,?)", [.int(id), .text(real), .text(nick), .int(status)])
            }
            try db.run("INSERT INTO organization_copies(id, groupName, status) VALUES (10, '国务院', 1), (11, '其他', 1), (12, '已删', -1)")
            try db.run("INSERT INTO customer_copies(id, realName, nickName, status) VALUES (20, 'Jerry', 'j', 1), (21, 'tom', 't', 1), (22, 'x', 'x', -1)")
        }
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    func post(_ path: String, _ params: JSONObject, as caller: Caller? = nil) async -> WireResponse {
        await tester.call(method: "POST", path: path, params: params, caller: caller ?? admin)
    }

    func list(_ path: String, _ params: JSONObject = [:]) async throws -> [JSON] {
        let response = await tester.call(path: path, params: params, caller: admin)
        XCTAssertEqual(response.status, 200, "\(response.body)")
        return try XCTUnwrap(response.body["data"]?.arrayValue)
    }

    func first(_ path: String, _ params: JSONObject = [:]) async throws -> JSON {
        let rows = try await list(path, params)
        return try XCTUnwrap(rows.first)
    }

    func created(_ response: WireResponse, file: StaticString = #filePath, line: UInt = #line) throws -> Int64 {
        XCTAssertEqual(response.status, 200, "\(response.body)", file: file, line: line)
        XCTAssertEqual(response.body["msg"]?.stringValue, "操作成功", file: file, line: line)
        return try XCTUnwrap(response.body["data"]?["id"]?.intValue, file: file, line: line)
    }

    func assertRefused(_ response: WireResponse, _ status: Int, naming: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, "\(response.body)", file: file, line: line)
        XCTAssertEqual(response.body["status"]?.intValue, 1, file: file, line: line)
        XCTAssertTrue(response.body["msg"]?.stringValue?.contains(naming) ?? false, "\(response.body) should name \(naming)", file: file, line: line)
    }

    var now: String { Timestamp.now() }
    func ago(days: Int64) -> String { Timestamp.shift(Timestamp.now(), seconds: -days * 86_400) ?? "" }

    func potential(_ caller: Caller? = nil, organization: Int64 = 10, time: String? = nil) async throws -> Int64 {
        try created(await post("/api/record/potential", ["organization_id": .int(organization), "director_id": 2, "record_time": .string(time ?? now)], as: caller))
    }

    // MARK: Potential records

    func testPotentialDefaultsFieldsAndAliases() async throws {
        let id = try await potential()
        let row = try await first("/api/record/potential")
        XCTAssertEqual(row.objectValue?.keys, ["id", "organization_id", "organization_name", "director_id", "director", "recordTime", "createTime",
                                               "updateTime", "status", "note", "operator_id", "operator_name"])
        XCTAssertEqual(row["id"]?.intValue, id)
        XCTAssertEqual(row["status"]?.intValue, 0, "new potential records start at 0")
        XCTAssertEqual(row["organization_name"]?.stringValue, "国务院")
        XCTAssertEqual(row["director"]?.stringValue, "张三")
        XCTAssertEqual(row["operator_id"]?.intValue, 1, "the operator is the caller")

        // Updates by either spelling of the id; status changes too.
        do {
            let got = try created(await post("/api/record/potential", ["protent_id": .int(id), "note": "a"]))
            XCTAssertEqual(got, id)
        }
        do {
            let got = try created(await post("/api/record/potential", ["potent_id": .int(id), "director_id": 3]))
            XCTAssertEqual(got, id)
        }
        var updated = try await first("/api/record/potential", ["potent_id": .int(id)])
        XCTAssertEqual(updated["note"]?.stringValue, "a")
        XCTAssertEqual(updated["director"]?.stringValue, "李四nick", "realName empty: nickName")
        do {
            let got = try created(await post("/api/record/delpotent", ["protent_id": .int(id), "status": 2]))
            XCTAssertEqual(got, id)
        }
        updated = try await first("/api/record/potential", ["potent_id": .int(id)])
        XCTAssertEqual(updated["status"]?.intValue, 2)

        // Default: every status but deleted; `all` includes deleted.
        let deleted = try await potential()
        _ = try created(await post("/api/record/delpotent", ["potent_id": .int(deleted), "status": -1]))
        do {
            let got = try await list("/api/record/potential").compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [id])
        }
        do {
            let got = Set(try await list("/api/record/potential", ["status": "all"]).compactMap { $0["id"]?.intValue })
            XCTAssertEqual(got, [id, deleted])
        }
        do {
            let got = try await list("/api/record/potential", ["status": -1]).compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [deleted])
        }
        assertRefused(await post("/api/record/delpotent", ["potent_id": .int(id)]), 400, naming: "status")
        assertRefused(await post("/api/record/delpotent", ["status": 1]), 400, naming: "potent_id")
    }

    func testPotentialValidation() async throws {
        for (params, naming) in [
            (["director_id": 2, "record_time": .string(now)] as JSONObject, "organization_id"),
            (["organization_id": 10, "record_time": .string(now)], "director_id"),
            (["organization_id": 10, "director_id": 2], "record_time"),
            (["organization_id": 10, "director_id": 2, "record_time": "yesterday"], "record_time"),
            (["organization_id": 10, "director_id": 2, "record_time": "2021-02-30"], "record_time"),
            (["organization_id": 12, "director_id": 2, "record_time": .string(now)], "organization_id 12"),
            (["organization_id": 10, "director_id": 5, "record_time": .string(now)], "director_id 5"),
        ] {
            assertRefused(await post("/api/record/potential", params), 400, naming: naming)
        }
        assertRefused(await post("/api/record/potential", ["potent_id": 999, "note": "x"]), 404, naming: "potent_id 999")
        let id = try await potential()
        assertRefused(await post("/api/record/potential", ["potent_id": .int(id), "record_time": ""]), 400, naming: "record_time")
    }

    func testWindowDefaultAndOrdering() async throws {
        let old = try await potential(time: ago(days: 8))
        let a = try await potential(time: ago(days: 2))
        let b = try await potential(time: ago(days: 2))
        let c = try await potential(time: ago(days: 1))
        do {
            let got = try await list("/api/record/potential").compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [c, b, a], "last week, recordTime newest first, then id")
        }
        do {
            let got = try await list("/api/record/potential", ["start_time": .string(String(ago(days: 9).prefix(10)))]).compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [c, b, a, old])
        }
        do {
            let got = try await list("/api/record/potential", ["end_time": .string(ago(days: 7))]).compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [old],
                       "the default start is a week before end_time")
        }
        let bad = await tester.call(path: "/api/record/potential", params: ["start_time": .string(now), "end_time": .string(ago(days: 1))], caller: admin)
        assertRefused(bad, 400, naming: "start_time")
        assertRefused(await tester.call(path: "/api/record/follow", params: ["end_time": "soon"], caller: admin), 400, naming: "end_time")
    }

    // MARK: Follow-up records

    func testFollowBelongsToItsPotentialsOrganizationAndKeepsListOrder() async throws {
        let p10 = try await potential(organization: 10)
        let p11 = try await potential(organization: 11)
        let f = try created(await post("/api/record/follow", ["protent_id": .int(p10), "follower_id": [4, 2, 3], "customers_id": "21,20",
                                                              "record_time": .string(now), "event": 2, "gain": "g", "event_attach": "http://a", "event_note": "n"], as: courier))
        let g = try created(await post("/api/record/follow", ["protent_id": .int(p11), "follower_id": 2, "record_time": .string(now)], as: employee))
        let row = try await first("/api/record/follow", ["organization_id": 10])
        XCTAssertEqual(row["id"]?.intValue, f)
        XCTAssertEqual(row["potential_id"]?.intValue, p10)
        XCTAssertEqual(row["organization_id"]?.intValue, 10)
        XCTAssertEqual(row["attach"]?.stringValue, "http://a")
        XCTAssertEqual(row["note"]?.stringValue, "n")
        XCTAssertEqual(row["event"]?.intValue, 2)
        XCTAssertEqual(row["operator_id"]?.intValue, courier.id)
        XCTAssertEqual(row["operator_name"]?.stringValue, "王五")
        XCTAssertEqual(row["follower_ids"], [4, 2, 3])
        XCTAssertEqual(row["follower_name"], ["王五", "张三", "李四nick"])
        XCTAssertEqual(row["customer_ids"], [21, 20])
        XCTAssertEqual(row["customer_name"], ["tom", "Jerry"])
        do {
            let got = try await list("/api/record/follow", ["protent_id": .int(p11)]).compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [g])
        }
        do {
            let got = try await list("/api/record/follow").compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [g, f])
        }

        // Moving the potential record moves its follow-up records.
        _ = try created(await post("/api/record/potential", ["potent_id": .int(p11), "organization_id": 10]))
        do {
            let got = try await list("/api/record/follow", ["organization_id": 10]).compactMap { $0["id"]?.intValue }
            XCTAssertEqual(got, [g, f])
        }
    }

    func testFollowValidation() async throws {
        let p = try await potential()
        let deletedPotential = try await potential()
        _ = try created(await post("/api/record/delpotent", ["potent_id": .int(deletedPotential), "status": -1]))
        let base: JSONObject = ["protent_id": .int(p), "follower_id": [2], "record_time": .string(now)]
        func without(_ key: String) -> JSONObject { JSONObject(base.filter { $0.key != key }.map { ($0.key, $0.value) }) }
        func with(_ key: String, _ value: JSON) -> JSONObject { var o = base; o[key] = value; return o }
        for (params, naming) in [
            (without("protent_id"), "protent_id"), (without("follower_id"), "follower_id"), (without("record_time"), "record_time"),
            (with("follower_id", []), "follower_id"), (with("event", 6), "event"), (with("protent_id", .int(deletedPotential)), "protent_id \(deletedPotential)"),
            (with("protent_id", 999), "protent_id 999"), (with("follower_id", [2, 5]), "follower_id 5"), (with("customers_id", [22]), "customers_id 22"),
            (with("follower_id", "x"), "follower_id"),
        ] {
            assertRefused(await post("/api/record/follow", params), 400, naming: naming)
        }
    }

    // MARK: Demand changes

    func testDemandFieldsAndValidation() async throws {
        let id = try created(await post("/api/record/demand", ["organization_id": 11, "follower_id": [3, 2], "customer_id": [20], "record_time": .string(now),
                                                               "content": "季报", "demand_attach": "u", "demand_note": "n"], as: courier))
        let row = try await first("/api/record/demand", ["organization_id": 11])
        XCTAssertEqual(row["id"]?.intValue, id)
        XCTAssertEqual(row["organization_name"]?.stringValue, "其他")
        XCTAssertEqual(row["content"]?.stringValue, "季报")
        XCTAssertEqual(row["attach"]?.stringValue, "u")
        XCTAssertEqual(row["note"]?.stringValue, "n")
        XCTAssertEqual(row["status"]?.intValue, 0)
        XCTAssertEqual(row["operator_name"]?.stringValue, "王五")
        XCTAssertEqual(row["follower_name"], ["李四nick", "张三"])
        XCTAssertEqual(row["customer_name"], ["Jerry"])
        do {
            let got = try await list("/api/record/demand", ["organization_id": 10]).count
            XCTAssertEqual(got, 0)
        }
        for (params, naming) in [
            (["follower_id": [2], "record_time": .string(now), "content": "c"] as JSONObject, "organization_id"),
            (["organization_id": 10, "record_time": .string(now), "content": "c"], "follower_id"),
            (["organization_id": 10, "follower_id": [2], "content": "c"], "record_time"),
            (["organization_id": 10, "follower_id": [2], "record_time": .string(now)], "content"),
            (["organization_id": 12, "follower_id": [2], "record_time": .string(now), "content": "c"], "organization_id 12"),
        ] {
            assertRefused(await post("/api/record/demand", params), 400, naming: naming)
        }
    }

    // MARK: Roles and the operator

    func testOperatorRules() async throws {
        assertRefused(await post("/api/record/potential", ["organization_id": 10, "director_id": 2, "record_time": .string(now)], as: courier), 403, naming: "role")
        let mine = try await potential(employee)
        assertRefused(await post("/api/record/potential", ["potent_id": .int(mine), "note": "x"], as: otherEmployee), 403, naming: "created")
        assertRefused(await post("/api/record/delpotent", ["potent_id": .int(mine), "status": -1], as: otherEmployee), 403, naming: "created")
        _ = try created(await post("/api/record/potential", ["potent_id": .int(mine), "note": "x"], as: employee))
        _ = try created(await post("/api/record/potential", ["potent_id": .int(mine), "note": "y"], as: admin))

        let follow = try created(await post("/api/record/follow", ["protent_id": .int(mine), "follower_id": [2], "record_time": .string(now)], as: courier))
        _ = try created(await post("/api/record/follow", ["follow_id": .int(follow), "gain": "more"], as: courier))
        assertRefused(await post("/api/record/follow", ["follow_id": .int(follow), "gain": "x"], as: employee), 403, naming: "created")
        assertRefused(await post("/api/record/delfollow", ["follow_id": .int(follow)], as: courier), 403, naming: "role")
        assertRefused(await post("/api/record/delfollow", ["follow_id": .int(follow)], as: employee), 403, naming: "created")
        // An operator given as a parameter is not taken: the operator is the caller.
        let demand = try created(await post("/api/record/demand", ["organization_id": 10, "follower_id": [2], "record_time": .string(now), "content": "c",
                                                                   "operator_id": 1], as: employee))
        do {
            let got = try await list("/api/record/demand").first { $0["id"]?.intValue == demand }?["operator_id"]?.intValue
            XCTAssertEqual(got, employee.id)
        }
        _ = try created(await post("/api/record/deldemand", ["demand_id": .int(demand)], as: employee))
        _ = try created(await post("/api/record/delfollow", ["follow_id": .int(follow)], as: admin))
        do {
            let got = try await list("/api/record/follow").count
            XCTAssertEqual(got, 0, "deleted rows are hidden")
        }
        do {
            let got = try await list("/api/record/demand").count
            XCTAssertEqual(got, 0)
        }
    }

    // MARK: Totals from the hourly counts

    func testWindowTotalsFromHourlyCountsEqualTheRowsInTheWindow() async throws {
        var ids: [String: Int64] = [:]
        for time in ["2021-03-01 10:10:00", "2021-03-01 10:20:00", "2021-03-01 10:59:59", "2021-03-01 11:00:00", "2021-03-02 00:00:00",
                     "2021-03-03 15:00:00", "2021-03-03 15:40:00", "2021-03-03 15:40:01", "2021-03-03 16:00:00"] {
            ids[time] = try await potential(time: time)
        }
        func total(_ params: JSONObject) async throws -> (total: Int64?, rows: Int) {
            var params = params
            params["count"] = 100
            let response = await tester.call(path: "/api/record/potential", params: params, caller: admin)
            XCTAssertEqual(response.status, 200, "\(response.body)")
            return (response.body["page_info"]?["total"]?.intValue, response.body["data"]?.arrayValue?.count ?? -1)
        }
        let window: JSONObject = ["start_time": "2021-03-01 10:20:00", "end_time": "2021-03-03 15:40:00"]
        var got = try await total(window)
        XCTAssertEqual(got.total, 6, "edge hours counted, whole hours from the counts")
        XCTAssertEqual(got.rows, 6)
        got = try await total(["start_time": "2021-03-01 10:05:00", "end_time": "2021-03-01 10:30:00"])
        XCTAssertEqual(got.total, 2, "a window inside one hour")

        _ = try created(await post("/api/record/delpotent", ["potent_id": .int(ids["2021-03-02 00:00:00"] ?? 0), "status": -1]))
        _ = try created(await post("/api/record/potential", ["potent_id": .int(ids["2021-03-01 11:00:00"] ?? 0), "record_time": "2021-03-04 11:00:00"]))
        _ = try created(await post("/api/record/delpotent", ["potent_id": .int(ids["2021-03-03 15:00:00"] ?? 0), "status": 3]))
        got = try await total(window)
        XCTAssertEqual(got.total, 4, "a deletion and a moved recordTime leave the counts")
        XCTAssertEqual(got.rows, 4)
        var all = window
        all["status"] = "all"
        got = try await total(all)
        XCTAssertEqual(got.total, 5)
        var deleted = window
        deleted["status"] = -1
        got = try await total(deleted)
        XCTAssertEqual(got.total, 1)
        var done = window
        done["status"] = 3
        got = try await total(done)
        XCTAssertEqual(got.total, 1)
    }
}
