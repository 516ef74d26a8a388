#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// UserService through the gateway: employees, passwords, sessions, menus and the role rules.
final class EmployeeTests: SystemTestCase {

    static func uniquePhone() -> String { "139\(UInt32.random(in: 10_000_000...99_999_999))" }

    /// Creates a group and answers its id.
    func makeGroup(_ token: String, _ name: String = "g-\(UInt32.random(in: 0...UInt32.max))") throws -> Int64 {
        let response = try system.post("/api/user/group", json: ["name": .string(name)], token: token)
        guard let id = response.json["data"]?["id"]?.intValue else { throw HarnessError("group: \(response.text)") }
        return id
    }

    /// Creates an employee; answers id, phone and password.
    func makeEmployee(_ token: String, role: Int64 = 2, groups: [Int64]? = nil, extra: JSONObject = JSONObject()) throws -> (id: Int64, phone: String, password: String) {
        let phone = Self.uniquePhone()
        var body = extra
        body["phoneNumber"] = .string(phone)
        body["group_id"] = .array((groups ?? [1]).map { .int($0) })
        body["role_id"] = .int(role)
        body["password"] = .string("password-\(phone)")
        let response = try system.post("/api/user/user", json: .object(body), token: token)
        guard response.status == 200, let id = response.json["data"]?["id"]?.intValue else { throw HarnessError("employee: \(response.text)") }
        return (id, phone, "password-\(phone)")
    }

    func employees(_ query: String, _ token: String) throws -> [JSON] {
        let response = try system.get("/api/user/user\(query)", token: token)
        XCTAssertEqual(response.status, 200, response.text)
        return response.json["data"]?.arrayValue ?? []
    }

    func ids(_ rows: [JSON]) -> [Int64] { rows.compactMap { $0["id"]?.intValue } }

    // MARK: Create and read

    func testCreateWithEveryFieldAndReadItBack() throws {
        let admin = try system.login()
        let g1 = try makeGroup(admin, "一组-\(UInt32.random(in: 0...UInt32.max))")
        let g2 = try makeGroup(admin)
        let phone = Self.uniquePhone()
        let created = try system.post("/api/user/user", json: [
            "phoneNumber": .string(phone), "group_id": .string("[\(g2),\(g1)]"), "number": 10000, "nickName": "小耳尖",
            "realName": "耳尖", "headImageUrl": "http://example.com/a.png", "sex": "2", "openId": "wx-1", "birthday": "2020-09-01",
            "title": "经理", "address": "云南", "school": "xx", "politicalAffiliation": "群众", "education": "本科", "info": "info",
            "note": "备注", "entryTime": "2020-09-01 00:00:00", "officialTime": "2020-09-02 08:30:00", "resignTime": "2021-01-01 00:00:00",
            "role_id": 2,
        ], token: admin)
        XCTAssertEqual(created.status, 200, created.text)
        let id = try XCTUnwrap(created.json["data"]?["id"]?.intValue)
        let initial = try XCTUnwrap(created.json["data"]?["initial_password"]?.stringValue, "no password given: one is generated")
        XCTAssertGreaterThanOrEqual(initial.count, 8)

        let row = try XCTUnwrap(employees("?status=all&count=100", admin).first { $0["id"]?.intValue == id })
        let expectedKeys = ["id", "number", "group", "nickName", "realName", "headImageUrl", "phoneNumber", "sex", "roleId", "openId",
                            "birthday", "title", "address", "school", "politicalAffiliation", "education", "rankId", "rankType",
                            "departmentId", "jobId", "info", "entryTime", "officialTime", "resignTime", "lastLoginTime", "isLogin",
                            "createTime", "updateTime", "status", "note", "group_name", "group_ids"]
        XCTAssertEqual(row.objectValue?.keys, expectedKeys)
        XCTAssertEqual(row["number"]?.intValue, 10000)
        XCTAssertEqual(row["group"]?.intValue, g2, "group is the first group id given")
        XCTAssertEqual(row["group_ids"], .array([.int(g2), .int(g1)]))
        XCTAssertEqual(row["group_name"]?.arrayValue?.count, 2)
        XCTAssertEqual(row["group_name"]?.arrayValue?.last?.stringValue?.hasPrefix("一组-"), true)
        XCTAssertEqual(row["sex"]?.intValue, 2)
        XCTAssertEqual(row["roleId"]?.intValue, 2)
        XCTAssertEqual(row["birthday"]?.stringValue, "2020-09-01 00:00:00")
        XCTAssertEqual(row["officialTime"]?.stringValue, "2020-09-02 08:30:00")
        XCTAssertEqual(row["realName"]?.stringValue, "耳尖")
        XCTAssertEqual(row["isLogin"]?.intValue, 0)
        XCTAssertEqual(row["status"]?.intValue, 1)
        XCTAssertEqual(row["lastLoginTime"], .null)

        // The generated password works once given to the employee.
        let token = try system.login(phone, initial)
        let after = try XCTUnwrap(employees("?status=all&count=100", token).first { $0["id"]?.intValue == id })
        XCTAssertEqual(after["isLogin"]?.intValue, 1)
        XCTAssertNotNil(after["lastLoginTime"]?.stringValue)

        // Never a password or hash in any answer.
        let text = try system.get("/api/user/user?status=all&type=all&count=100", token: admin).text
        XCTAssertFalse(text.contains("password"), "no password field")
        XCTAssertFalse(text.contains("$y$"), "no yescrypt hash")
    }

    func testGeneratedPasswordIsShownOnceAndNeverStored() throws {
        let admin = try system.login()
        let phone = Self.uniquePhone()
        let key = "create-\(phone)"
        let body: JSON = ["phoneNumber": .string(phone), "group_id": [1]]
        let first = try system.post("/api/user/user", json: body, token: admin, headers: [("Idempotency-Key", key)])
        XCTAssertEqual(first.status, 200, first.text)
        let initial = try XCTUnwrap(first.json["data"]?["initial_password"]?.stringValue)
        let retry = try system.post("/api/user/user", json: body, token: admin, headers: [("Idempotency-Key", key)])
        XCTAssertEqual(retry.status, 200)
        XCTAssertEqual(retry.json["data"]?["id"], first.json["data"]?["id"], "the retry gets the first answer")
        XCTAssertNil(retry.json["data"]?["initial_password"], "shown once")
        let db = try SQLiteConnection(path: try system.dataDir + "/users.sqlite")
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM applied_requests WHERE instr(body, ?) > 0", [.text(initial)]), 0, "not kept at rest")
        XCTAssertNoThrow(try system.login(phone, initial))
    }

    func testFiltersStatusTypeGroupsAndPaging() throws {
        let admin = try system.login()
        let group = try makeGroup(admin)
        let other = try makeGroup(admin)
        let staff = try makeEmployee(admin, role: 2, groups: [group])
        let courier = try makeEmployee(admin, role: 3, groups: [group])
        let disabled = try makeEmployee(admin, role: 2, groups: [group])
        let deleted = try makeEmployee(admin, role: 2, groups: [group, other])
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(disabled.id), "status": 0], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(deleted.id)], token: admin).status, 200)

        XCTAssertEqual(ids(try employees("?group_ids=\(group)", admin)), [staff.id], "default: enabled staff")
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&type=2", admin)), [courier.id])
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&type=all", admin)), [courier.id, staff.id])
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&status=0", admin)), [disabled.id])
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&status=-1", admin)), [deleted.id])
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&status=normal", admin)), [disabled.id, staff.id])
        XCTAssertEqual(ids(try employees("?group_ids=\(group)&status=all&type=all", admin)), [deleted.id, disabled.id, courier.id, staff.id])
        // Every array form.
        let forms = ["?group_ids=%5B\(other)%2C\(group)%5D", "?group_ids=\(other),\(group)", "?group_ids=\(other)&group_ids=\(group)",
                     "?group_ids%5B%5D=\(other)&group_ids%5B%5D=\(group)"]
        for form in forms {
            XCTAssertEqual(ids(try employees(form + "&status=all", admin)), [deleted.id, disabled.id, staff.id], form)
        }
        let viaJSON = try system.client().request("GET", "/api/user/user?status=-1", token: admin)
        XCTAssertTrue(ids(viaJSON.json["data"]?.arrayValue ?? []).contains(deleted.id))

        // Paging: total counts every match, count is clamped to 100.
        let page1 = try system.get("/api/user/user?group_ids=\(group)&status=all&type=all&page=1&count=3", token: admin)
        XCTAssertEqual(page1.json["page_info"]?["total"]?.intValue, 4)
        XCTAssertEqual(page1.json["page_info"]?["count"]?.intValue, 3)
        XCTAssertEqual(page1.json["data"]?.arrayValue?.count, 3)
        let page2 = try system.get("/api/user/user?group_ids=\(group)&status=all&type=all&page=2&count=3", token: admin)
        XCTAssertEqual(ids(page2.json["data"]?.arrayValue ?? []), [staff.id])
        XCTAssertEqual(try system.get("/api/user/user?count=500", token: admin).json["page_info"]?["count"]?.intValue, 100)
        XCTAssertEqual(try system.get("/api/user/user?page=0", token: admin).status, 400)
        XCTAssertEqual(try system.get("/api/user/user?count=abc", token: admin).status, 400)
        XCTAssertEqual(try system.get("/api/user/user?status=9", token: admin).status, 400)
        XCTAssertEqual(try system.get("/api/user/user?type=5", token: admin).status, 400)
        XCTAssertEqual(try system.get("/api/user/user?group_ids=a,b", token: admin).status, 400)
    }

    func testInvalidInputNamesTheField() throws {
        let admin = try system.login()
        func expect(_ body: JSON, _ status: Int, _ field: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let response = try system.post("/api/user/user", json: body, token: admin)
            XCTAssertEqual(response.status, status, response.text, file: file, line: line)
            XCTAssertEqual(response.json["status"]?.intValue, 1, file: file, line: line)
            XCTAssertTrue(response.json["msg"]?.stringValue?.contains(field) ?? false, "\(response.text) names \(field)", file: file, line: line)
        }
        let phone = Self.uniquePhone()
        try expect(["group_id": [1]], 400, "phoneNumber")
        try expect(["phoneNumber": .string(phone)], 400, "group_id")
        try expect(["phoneNumber": .string(phone), "group_id": [999_999]], 400, "999999")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "role_id": 7], 400, "role_id")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "sex": 9], 400, "sex")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "entryTime": "2020-13-01"], 400, "entryTime")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "entryTime": "yesterday"], 400, "entryTime")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "password": "short"], 400, "password")
        try expect(["phoneNumber": .string(phone), "group_id": [1], "realName": .string(String(repeating: "x", count: 1001))], 400, "realName")
        try expect(["user_id": 999_999, "realName": "x"], 404, "user_id")
        try expect(["user_id": "x1", "realName": "x"], 400, "user_id")
        // Duplicate phone among employees not deleted: 409; a deleted one's phone may be reused.
        let first = try makeEmployee(admin)
        try expect(["phoneNumber": .string(first.phone), "group_id": [1]], 409, "phoneNumber")
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(first.id)], token: admin).status, 200)
        let reused = try system.post("/api/user/user", json: ["phoneNumber": .string(first.phone), "group_id": [1], "password": "another-pass"], token: admin)
        XCTAssertEqual(reused.status, 200, reused.text)
        // Restoring the deleted one now clashes.
        let restore = try system.post("/api/user/deluser", json: ["user_id": .int(first.id), "status": 1], token: admin)
        XCTAssertEqual(restore.status, 409, restore.text)
        // No partial write: nothing was created by the refused requests.
        let all = try employees("?status=all&type=all&count=100", admin)
        XCTAssertEqual(all.filter { $0["phoneNumber"]?.stringValue == phone }.count, 0)
    }

    func testUpdateChangesOnlyTheFieldsGiven() throws {
        let admin = try system.login()
        let g = try makeGroup(admin)
        let e = try makeEmployee(admin, groups: [g], extra: ["realName": "王五", "address": "北京", "note": "n"])
        let update = try system.postForm("/api/user/user", "user_id=\(e.id)&address=上海&note=&sex=&rankId=", token: admin)
        XCTAssertEqual(update.status, 200, update.text)
        let row = try XCTUnwrap(employees("?group_ids=\(g)", admin).first)
        XCTAssertEqual(row["realName"]?.stringValue, "王五")
        XCTAssertEqual(row["address"]?.stringValue, "上海")
        XCTAssertEqual(row["note"], .null, "an empty value clears the field")
        XCTAssertEqual(row["sex"]?.intValue, 3, "clearing a field with a default restores the default")
        XCTAssertEqual(row["rankId"]?.intValue, 0)
        XCTAssertEqual(row["phoneNumber"]?.stringValue, e.phone)
        XCTAssertEqual(row["group_ids"], .array([.int(g)]))
        // Groups are replaced when given.
        let g2 = try makeGroup(admin)
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(e.id), "group_id": .int(g2)], token: admin).status, 200)
        XCTAssertEqual(try employees("?group_ids=\(g2)", admin).first?["group_ids"], .array([.int(g2)]))
    }

    // MARK: Passwords and sessions

    func testPasswordChangeEndsOtherSessions() throws {
        let admin = try system.login()
        let e = try makeEmployee(admin)
        let keep = try system.login(e.phone, e.password)
        let other = try system.login(e.phone, e.password)
        let tooShort = try system.post("/api/user/password", json: ["phoneNumber": .string(e.phone), "old_password": .string(e.password), "new_password": "short"])
        XCTAssertEqual(tooShort.status, 400)
        XCTAssertTrue(tooShort.json["msg"]?.stringValue?.contains("new_password") ?? false)
        let wrongOld = try system.post("/api/user/password", json: ["phoneNumber": .string(e.phone), "old_password": "not-it-at-all", "new_password": "new-password-1"])
        XCTAssertEqual(wrongOld.status, 401)
        let changed = try system.post("/api/user/password", json: ["phoneNumber": .string(e.phone), "old_password": .string(e.password), "new_password": "new-password-1"], token: keep)
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.json["msg"]?.stringValue, "修改成功")
        XCTAssertTrue(eventually(timeout: 2) { (try? system.get("/api/user/group", token: other).status) == 401 }, "other sessions end within 2 s")
        XCTAssertEqual(try system.get("/api/user/group", token: keep).status, 200, "the session that changed it stays")
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(e.phone), "password": .string(e.password)]).status, 401)
        XCTAssertNoThrow(try system.login(e.phone, "new-password-1"))
    }

    func testDisableEndsSessionsAndEnableAllowsLoginAgain() throws {
        let admin = try system.login()
        let e = try makeEmployee(admin)
        let token = try system.login(e.phone, e.password)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(e.id), "status": 0], token: admin).status, 200)
        XCTAssertTrue(eventually(timeout: 2) { (try? system.get("/api/user/group", token: token).status) == 401 }, "the session ends within 2 s")
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(e.phone), "password": .string(e.password)]).status, 403)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(e.id), "status": 1], token: admin).status, 200)
        let again = try system.login(e.phone, e.password)
        XCTAssertEqual(try system.get("/api/user/group", token: again).status, 200)
        // Deleted: cannot log in; unknown and deleted look the same.
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(e.id)], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(e.phone), "password": .string(e.password)]).status, 401)
        // Administrators cannot lock themselves out.
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": 1, "status": 0], token: admin).status, 409)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": 999_999], token: admin).status, 404)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(e.id), "status": 5], token: admin).status, 400)
    }

    // MARK: Roles

    func testRoleRulesForEmployeesAndCouriers() throws {
        let admin = try system.login()
        let target = try makeEmployee(admin)
        for role in [Int64(2), 3] {
            let me = try makeEmployee(admin, role: role)
            let token = try system.login(me.phone, me.password)
            let forbidden: [(String, JSON)] = [
                ("/api/user/group", ["name": "nope"]),
                ("/api/user/delgroup", ["group_id": 1]),
                ("/api/user/user", ["phoneNumber": .string(Self.uniquePhone()), "group_id": [1]]),
                ("/api/user/user", ["user_id": .int(target.id), "realName": "hacked"]),
                ("/api/user/user", ["user_id": .int(me.id), "role_id": 1]),
                ("/api/user/user", ["user_id": .int(me.id), "group_id": [1]]),
                ("/api/user/deluser", ["user_id": .int(target.id)]),
                ("/api/user/menu", ["name": "nope"]),
                ("/api/user/usermenu", ["user_id": .int(me.id), "menu": []]),
            ]
            for (path, body) in forbidden {
                let response = try system.post(path, json: body, token: token)
                XCTAssertEqual(response.status, 403, "role \(role) \(path) \(body.jsonString): \(response.text)")
                XCTAssertEqual(response.json["status"]?.intValue, 1)
            }
            // Reading is allowed, and so is editing one's own record.
            XCTAssertEqual(try system.get("/api/user/user", token: token).status, 200)
            XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
            XCTAssertEqual(try system.get("/api/user/menu", token: token).status, 200)
            XCTAssertEqual(try system.get("/api/user/usermenu?user_id=\(me.id)", token: token).status, 200)
            let own = try system.post("/api/user/user", json: ["user_id": .int(me.id), "nickName": "自己", "role_id": .int(role)], token: token)
            XCTAssertEqual(own.status, 200, own.text)
        }
        // Nothing of the target changed.
        let row = try employees("?status=all&count=100", admin).first { $0["id"]?.intValue == target.id }
        XCTAssertEqual(row?["realName"], .null)
        XCTAssertEqual(row?["status"]?.intValue, 1)
    }

    // MARK: Menus

    func testMenusAndEmployeeMenus() throws {
        let admin = try system.login()
        let a = try XCTUnwrap(system.post("/api/user/menu", json: ["name": "客户管理", "content": "c", "note": "n"], token: admin).json["data"]?["id"]?.intValue)
        let b = try XCTUnwrap(system.post("/api/user/menu", json: ["name": "拜访记录"], token: admin).json["data"]?["id"]?.intValue)
        let c = try XCTUnwrap(system.post("/api/user/menu", json: ["name": "合同"], token: admin).json["data"]?["id"]?.intValue)
        XCTAssertEqual(try system.post("/api/user/menu", json: ["content": "x"], token: admin).status, 400, "create needs name")
        // Update with name; delete without.
        XCTAssertEqual(try system.post("/api/user/menu", json: ["menu_id": .int(b), "name": "拜访"], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/user/menu", json: ["menu_id": .int(c)], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/user/menu", json: ["menu_id": .int(c), "name": "x"], token: admin).status, 404, "deleted")
        let list = try system.get("/api/user/menu?count=100", token: admin)
        let menus = list.json["data"]?.arrayValue ?? []
        XCTAssertEqual(menus.first?.objectValue?.keys, ["id", "name", "content", "note"])
        XCTAssertFalse(menus.contains { $0["id"]?.intValue == c })
        XCTAssertEqual(menus.first { $0["id"]?.intValue == b }?["name"]?.stringValue, "拜访")
        XCTAssertEqual(list.json["page_info"]?["total"]?.intValue, Int64(menus.count))

        let e = try makeEmployee(admin)
        let set = try system.post("/api/user/usermenu", json: ["user_id": .int(e.id), "menu": .string("\(b),\(a)")], token: admin)
        XCTAssertEqual(set.status, 200, set.text)
        XCTAssertEqual(set.json["msg"]?.stringValue, "修改成功")
        let mine = try system.get("/api/user/usermenu?user_id=\(e.id)", token: try system.login(e.phone, e.password))
        let entry = try XCTUnwrap(mine.json["data"]?.arrayValue?.first)
        XCTAssertEqual(entry["user_id"]?.intValue, e.id)
        XCTAssertEqual(entry["phoneNumber"]?.stringValue, e.phone)
        XCTAssertEqual(entry["menu"]?.arrayValue?.compactMap { $0["id"]?.intValue }, [b, a], "in the order given")
        let unknown = try system.post("/api/user/usermenu", json: ["user_id": .int(e.id), "menu": [.int(a), 999_999]], token: admin)
        XCTAssertEqual(unknown.status, 400)
        XCTAssertTrue(unknown.json["msg"]?.stringValue?.contains("999999") ?? false)
        XCTAssertEqual(try system.post("/api/user/usermenu", json: ["user_id": .int(e.id)], token: admin).status, 400, "menu required")
        // Unchanged after the refused request; then cleared.
        XCTAssertEqual(try system.get("/api/user/usermenu?user_id=\(e.id)", token: admin).json["data"]?[0]?["menu"]?.arrayValue?.count, 2)
        XCTAssertEqual(try system.post("/api/user/usermenu", json: ["user_id": .int(e.id), "menu": []], token: admin).status, 200)
        XCTAssertEqual(try system.get("/api/user/usermenu?user_id=\(e.id)", token: admin).json["data"]?[0]?["menu"]?.arrayValue?.count, 0)
        let everyone = try system.get("/api/user/usermenu", token: admin)
        XCTAssertGreaterThanOrEqual(everyone.json["page_info"]?["total"]?.intValue ?? 0, 2)
    }

    // MARK: Events

    func testEveryEmployeeChangeIsRecordedForOtherServices() throws {
        let admin = try system.login()
        let e = try makeEmployee(admin, extra: ["realName": "赵六"])
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(e.id), "realName": "赵六六"], token: admin).status, 200)
        XCTAssertEqual(try system.post("/api/user/deluser", json: ["user_id": .int(e.id), "status": 0], token: admin).status, 200)
        let db = try SQLiteConnection(path: try system.dataDir + "/users.sqlite")
        let rows = try db.query("SELECT type, state FROM events WHERE entity_id = ? AND type = 'employee' ORDER BY seq", [.int(e.id)])
        XCTAssertEqual(rows.count, 3)
        let states = rows.compactMap { try? JSONParser.parse($0.string(1) ?? "") }
        XCTAssertEqual(states.map { $0["realName"]?.stringValue }, ["赵六", "赵六六", "赵六六"])
        XCTAssertEqual(states.map { $0["status"]?.intValue }, [1, 1, 0])
        XCTAssertEqual(states.last?["roleId"]?.intValue, 2)
        XCTAssertNotNil(states.last?["updateTime"]?.stringValue)
    }
}

extension JSON {
    subscript(index: Int) -> JSON? {
        guard case .array(let items) = self, index < items.count else { return nil }
        return items[index]
    }
}
