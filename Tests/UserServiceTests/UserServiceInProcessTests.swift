import XCTest
@testable import ServiceKit
@testable import UserService
import WireProtocol

/// UserService's routes run in process by `ServiceTester`: its schema, bootstrap and handlers,
/// no sockets.
final class UserServiceInProcessTests: XCTestCase {
    /// The definition `main.swift` runs.
    static let definition = ServiceDefinition.users

    /// The bootstrap administrator (the first employee).
    let admin = Caller(id: 1, role: Role.admin.rawValue)
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(Self.definition)
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    /// The employee list (the one resource whose link answers a first id, `group`) written as
    /// text is the tree answer serialized: first ids, names and ids of links with deleted and
    /// missing groups, empty lists, both from SQLite and from the rows kept for the snapshot.
    func testEmployeeListTextIsTheTreeAnswerSerialized() async throws {
        var groups: [Int64] = []
        for name in ["Sales \"1\"", "Support\n", "Gone"] {
            let created = await tester.call(method: "POST", path: "/api/user/group", params: ["name": .string(name)], caller: admin)
            groups.append(try XCTUnwrap(created.body["data"]?["id"]?.intValue, "\(created.body)"))
        }
        for (i, linked) in [[groups[1], groups[0]], [groups[2]], [groups[0], groups[2], groups[1]]].enumerated() {
            let created = await tester.call(method: "POST", path: "/api/user/user",
                                            params: ["phoneNumber": .string("1390000010\(i)"), "realName": .string("emp \(i)"),
                                                     "number": i == 1 ? .null : .string("n\(i)"), "roleId": 2,
                                                     "group_id": .array(linked.map { .int($0) })], caller: admin)
            XCTAssertEqual(created.status, 200, "\(created.body)")
        }
        let deleted = await tester.call(method: "POST", path: "/api/user/delgroup", params: ["group_id": .int(groups[2])], caller: admin)
        XCTAssertEqual(deleted.status, 200, "\(deleted.body)")
        let resource = Employees.resource
        let rows = try await tester.database.read { db in
            try resource.json(db.query("SELECT \(resource.selectList) FROM \(resource.table) t WHERE t.status IN (1, 0) AND t.roleId IN (1, 2) ORDER BY \(resource.ordering)"), db)
        }
        XCTAssertGreaterThanOrEqual(rows.count, 4)
        for round in 1...2 {
            let list = await tester.call(path: "/api/user/user", params: ["page": 1, "count": 10], caller: admin)
            XCTAssertEqual(list.status, 200, "\(list.body)")
            let total = try XCTUnwrap(list.body["page_info"]?["total"]?.intValue)
            let expected = Reply.ok(data: .array(rows), page: PageInfo(total: total, page: 1, count: 10))
            XCTAssertEqual(String(decoding: list.bodyBytes, as: UTF8.self), String(decoding: expected.bodyBytes, as: UTF8.self), "round \(round)")
        }
    }

    func testBootstrapMadeTheAdministrator() async throws {
        let list = await tester.call(path: "/api/user/user", caller: admin)
        XCTAssertEqual(list.status, 200, "\(list.body)")
        let employees = try XCTUnwrap(list.body["data"]?.arrayValue)
        XCTAssertEqual(employees.count, 1)
        XCTAssertEqual(employees.first?["id"]?.intValue, admin.id)
    }

    func testGroupsAreAdminsToChange() async throws {
        let created = await tester.call(method: "POST", path: "/api/user/group", params: ["name": "Sales"], caller: admin)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        let byCourier = await tester.call(method: "POST", path: "/api/user/group", params: ["name": "Couriers"], caller: Caller(id: 2, role: 3))
        XCTAssertEqual(byCourier.status, 403)
        let list = await tester.call(path: "/api/user/group", caller: admin)
        let names = (list.body["data"]?.arrayValue ?? []).compactMap { $0["groupName"]?.stringValue }
        XCTAssertTrue(names.contains("Sales"), "\(names)")
        XCTAssertFalse(names.contains("Couriers"))
    }

    func testLoginSessionCheckAndLogout() async throws {
        let password = "password-of-e1"
        let employee = await tester.call(method: "POST", path: "/api/user/user",
                                         params: ["phoneNumber": "13900000001", "group_id": [1], "role_id": 2, "password": .string(password)], caller: admin)
        XCTAssertEqual(employee.status, 200, "\(employee.body)")
        let id = try XCTUnwrap(employee.body["data"]?["id"]?.intValue)

        let wrong = await tester.call(method: "POST", path: "/api/user/login", params: ["phoneNumber": "13900000001", "password": "not-the-password"])
        XCTAssertEqual(wrong.status, 401)

        let login = await tester.call(method: "POST", path: "/api/user/login", params: ["phoneNumber": "13900000001", "password": .string(password)],
                                      requestID: "login-1")
        XCTAssertEqual(login.status, 200, "\(login.body)")
        let token = try XCTUnwrap(login.body["data"]?["token"]?.stringValue)
        let resent = await tester.call(method: "POST", path: "/api/user/login", params: ["phoneNumber": "13900000001", "password": .string(password)],
                                       requestID: "login-1")
        XCTAssertEqual(resent.body["data"]?["token"]?.stringValue, token, "a resend replays the same session")
        let sessions = try tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM sessions WHERE employee_id = ?", [.int(id)]) }
        XCTAssertEqual(sessions, 1)

        let check = await tester.call(method: "POST", path: "/internal/session", params: ["token": .string(token)])
        XCTAssertEqual(check.status, 200, "\(check.body)")
        XCTAssertEqual(check.body["data"]?["id"]?.intValue, id)
        XCTAssertEqual(check.body["data"]?["role"]?.intValue, Role.employee.rawValue)

        let logout = await tester.call(method: "POST", path: "/api/user/logout", caller: Caller(id: id, role: 2), session: token)
        XCTAssertEqual(logout.status, 200, "\(logout.body)")
        let after = await tester.call(method: "POST", path: "/internal/session", params: ["token": .string(token)])
        XCTAssertEqual(after.status, 401)
        let events = try tester.database.sync { db in
            try db.query("SELECT state FROM events WHERE type = 'session' AND entity_id = ?", [.int(id)]).compactMap { $0.string(0) }
        }
        XCTAssertEqual(events.count, 1, "the logout is published for the gateway's cache")
        XCTAssertTrue(events.first?.contains("\"logout\"") ?? false, "\(events)")
    }

    func testEmployeeMenusListEachEmployeesOwnMenuInOrder() async throws {
        var menus: [Int64] = []
        for name in ["a", "b", "c"] {
            let made = await tester.call(method: "POST", path: "/api/user/menu", params: ["name": .string(name)], caller: admin, requestID: "menu-\(name)")
            menus.append(try XCTUnwrap(made.body["data"]?["id"]?.intValue, "\(made.body)"))
        }
        var employees: [Int64] = []
        for phone in ["13900000011", "13900000012"] {
            let made = await tester.call(method: "POST", path: "/api/user/user", params: ["phoneNumber": .string(phone), "group_id": [1], "password": "password-1234"],
                                         caller: admin, requestID: "user-\(phone)")
            employees.append(try XCTUnwrap(made.body["data"]?["id"]?.intValue, "\(made.body)"))
        }
        let orders: [[Int64]] = [[menus[2], menus[0]], [menus[1], menus[2], menus[0]]]
        for (employee, order) in zip(employees, orders) {
            let set = await tester.call(method: "POST", path: "/api/user/usermenu", params: ["user_id": .int(employee), "menu": .array(order.map { .int($0) })],
                                        caller: admin, requestID: "set-\(employee)")
            XCTAssertEqual(set.status, 200, "\(set.body)")
        }
        let list = await tester.call(path: "/api/user/usermenu", caller: admin)
        let rows = try XCTUnwrap(list.body["data"]?.arrayValue)
        for (employee, order) in zip(employees, orders) {
            let row = try XCTUnwrap(rows.first { $0["user_id"]?.intValue == employee })
            XCTAssertEqual(row["menu"]?.arrayValue?.compactMap { $0["id"]?.intValue }, order, "employee \(employee)")
        }
        XCTAssertEqual(rows.first { $0["user_id"]?.intValue == admin.id }?["menu"]?.arrayValue?.count, 0)
    }
}
