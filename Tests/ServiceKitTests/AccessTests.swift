import XCTest
import ServiceKit
import WireProtocol

/// The role table: which callers a route's `Access` lets through (checked by the dispatch
/// before the handler runs), and who may change a business row.
final class AccessTests: XCTestCase {
    func testEachAccessLetsThroughExactlyItsRoles() async throws {
        let answered: RouteHandler = { _ in Reply.ok() }
        let access: [(String, Access)] = [("/public", .public), ("/anyone", .anyone), ("/staff", .staff), ("/admin", .adminOnly)]
        let tester = try ServiceTester(ServiceDefinition(
            name: "access", declaring: access.map { APIRoute("GET", $0.0, nil, $0.1, $0.0, answer: .none) }, migrations: [],
            routes: access.map { .get($0.0, answered) }))
        defer { tester.close() }
        let callers: [(String, Caller?)] = [("nobody", nil), ("admin", Callers.admin), ("employee", Callers.employee),
                                            ("courier", Callers.courier), ("unknown role", Caller(id: 5, role: 0))]
        // Expected status per caller, in the order above.
        let expected: [(String, [Int])] = [
            ("/public", [200, 200, 200, 200, 200]),
            ("/anyone", [401, 200, 200, 200, 403]),
            ("/staff", [401, 200, 200, 403, 403]),
            ("/admin", [401, 200, 403, 403, 403]),
        ]
        for (path, statuses) in expected {
            for ((who, caller), status) in zip(callers, statuses) {
                let answer = await tester.call(path: path, caller: caller)
                XCTAssertEqual(answer.status, status, "\(who) on \(path): \(answer.body)")
            }
        }
    }

    func testWhoMayChangeARow() {
        XCTAssertTrue(Callers.admin.mayChangeRow(createdBy: Callers.employee.id))
        XCTAssertTrue(Callers.admin.mayChangeRow(createdBy: nil), "admins change rows of no known creator too")
        XCTAssertTrue(Callers.employee.mayChangeRow(createdBy: Callers.employee.id))
        XCTAssertFalse(Callers.employee.mayChangeRow(createdBy: Callers.otherEmployee.id))
        XCTAssertFalse(Callers.employee.mayChangeRow(createdBy: nil))
        XCTAssertFalse(Callers.courier.mayChangeRow(createdBy: Callers.courier.id), "couriers never, not even their own")
        XCTAssertFalse(Caller(id: 5, role: 0).mayChangeRow(createdBy: 5))
    }

    func testRefusalSaysWhy() {
        XCTAssertNoThrow(try Callers.employee.requireMayChangeRow(createdBy: Callers.employee.id))
        XCTAssertThrowsError(try Callers.employee.requireMayChangeRow(createdBy: Callers.otherEmployee.id)) { error in
            XCTAssertEqual(error as? APIError, .forbidden("employees may change only rows they created"))
        }
        XCTAssertThrowsError(try Callers.courier.requireMayChangeRow(createdBy: Callers.courier.id)) { error in
            XCTAssertEqual(error as? APIError, .forbidden("your role may not change this row"))
        }
    }

    func testRoleValues() {
        XCTAssertEqual(Callers.admin.roleValue, .admin)
        XCTAssertTrue(Callers.admin.isAdmin)
        XCTAssertFalse(Callers.employee.isAdmin)
        XCTAssertNil(Caller(id: 1, role: 4).roleValue)
    }
}
