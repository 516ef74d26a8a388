import Foundation
import XCTest
import APICatalog
import WireProtocol

/// The role table of API.md §1, restated here route by route and checked against the catalog
/// and the running system: every endpoint called with no session, as an administrator, as an
/// employee (on a row they created and on another's), and as a courier. A route added to the
/// catalog without a row here fails the test.
final class AuthorizationMatrixTests: SystemTestCase {
    /// Who may call a route at all (nil: no session needed).
    enum Who: Sendable { case publicRoute, anyone, staff, admins }

    /// How a route acts on one row: made by `create` (path and body), named by `idParam`,
    /// plus `extra` parameters; `othersMay` tells whether an employee may do it to a row another
    /// employee created.
    /// How to create a row: the path and the body (which may name the context's rows).
    struct Maker: Sendable {
        var path: String
        var body: @Sendable (Context) -> JSONObject
        init(_ path: String, _ body: @escaping @Sendable (Context) -> JSONObject) {
            self.path = path
            self.body = body
        }
    }

    struct Fixture: Sendable {
        var create: Maker
        var idParam: String
        var extra: JSONObject = JSONObject()
        var othersMay: Bool
    }

    struct Context: Sendable {
        var organization: Int64
        var potential: Int64
        var now: String
    }

    struct Rule: Sendable {
        var who: Who
        var fixture: Fixture?
    }

    static let now = Timestamp.now()

    static let organization = Maker("/api/customers/organization", { _ in ["groupName": .string("m-\(UInt32.random(in: 0...UInt32.max))")] })
    static let customer = Maker("/api/customers/customers", { _ in ["realName": "matrix"] })
    static let potential = Maker("/api/record/potential", { c in ["organization_id": .int(c.organization), "director_id": 1, "record_time": .string(c.now)] })
    static let follow = Maker("/api/record/follow", { c in ["protent_id": .int(c.potential), "follower_id": [1], "record_time": .string(c.now)] })
    static let demand = Maker("/api/record/demand", { c in ["organization_id": .int(c.organization), "follower_id": [1], "record_time": .string(c.now), "content": "c"] })
    static let satisfy = Maker("/api/feedback/satisfy", { c in ["organization_id": .int(c.organization), "record_time": .string(c.now), "value": 1] })
    static let contract = Maker("/api/contract/contract", { c in ["organization_id": .int(c.organization), "name": "n", "sign_time": .string(c.now)] })

    /// API.md §1: read anything — everyone; groups, employees, menus — administrators (an
    /// employee edits their own record); organizations, customers, potential records and
    /// contracts — staff; follow-up, demand and satisfaction records — every role; status
    /// changes and deletes — staff, employees only on rows they created.
    static let table: [String: Rule] = [
        "GET /api/user/group": Rule(who: .anyone), "POST /api/user/group": Rule(who: .admins), "POST /api/user/delgroup": Rule(who: .admins),
        "GET /api/user/user": Rule(who: .anyone), "POST /api/user/user": Rule(who: .anyone), "POST /api/user/deluser": Rule(who: .admins),
        "POST /api/user/login": Rule(who: .publicRoute), "POST /api/user/logout": Rule(who: .publicRoute), "POST /api/user/password": Rule(who: .publicRoute),
        "GET /api/user/menu": Rule(who: .anyone), "POST /api/user/menu": Rule(who: .admins),
        "GET /api/user/usermenu": Rule(who: .anyone), "POST /api/user/usermenu": Rule(who: .admins),
        "GET /api/customers/organization": Rule(who: .anyone),
        "POST /api/customers/organization": Rule(who: .staff, fixture: Fixture(create: organization, idParam: "organization_id", extra: ["note": "x"], othersMay: true)),
        "POST /api/customers/delorganization": Rule(who: .staff, fixture: Fixture(create: organization, idParam: "organization_id", extra: ["status": 0], othersMay: false)),
        "GET /api/customers/customers": Rule(who: .anyone),
        "POST /api/customers/customers": Rule(who: .staff, fixture: Fixture(create: customer, idParam: "customer_id", extra: ["note": "x"], othersMay: true)),
        "POST /api/customers/delcustomer": Rule(who: .staff, fixture: Fixture(create: customer, idParam: "customer_id", othersMay: false)),
        "GET /api/record/potential": Rule(who: .anyone),
        "POST /api/record/potential": Rule(who: .staff, fixture: Fixture(create: potential, idParam: "potent_id", extra: ["note": "x"], othersMay: false)),
        "POST /api/record/delpotent": Rule(who: .staff, fixture: Fixture(create: potential, idParam: "potent_id", extra: ["status": -1], othersMay: false)),
        "GET /api/record/follow": Rule(who: .anyone),
        "POST /api/record/follow": Rule(who: .anyone, fixture: Fixture(create: follow, idParam: "follow_id", extra: ["event_note": "x"], othersMay: false)),
        "POST /api/record/delfollow": Rule(who: .staff, fixture: Fixture(create: follow, idParam: "follow_id", othersMay: false)),
        "GET /api/record/demand": Rule(who: .anyone),
        "POST /api/record/demand": Rule(who: .anyone, fixture: Fixture(create: demand, idParam: "demand_id", extra: ["demand_note": "x"], othersMay: false)),
        "POST /api/record/deldemand": Rule(who: .staff, fixture: Fixture(create: demand, idParam: "demand_id", othersMay: false)),
        "GET /api/feedback/satisfy": Rule(who: .anyone),
        "POST /api/feedback/satisfy": Rule(who: .anyone, fixture: Fixture(create: satisfy, idParam: "satisfy_id", extra: ["note": "x"], othersMay: false)),
        "POST /api/feedback/delsatisfy": Rule(who: .staff, fixture: Fixture(create: satisfy, idParam: "satisfy_id", othersMay: false)),
        "GET /api/contract/contract": Rule(who: .anyone),
        "POST /api/contract/contract": Rule(who: .staff, fixture: Fixture(create: contract, idParam: "contract_id", extra: ["note": "x"], othersMay: false)),
        "POST /api/contract/delcontract": Rule(who: .staff, fixture: Fixture(create: contract, idParam: "contract_id", othersMay: false)),
        "GET /api/stats/sign": Rule(who: .anyone), "GET /api/stats/demand": Rule(who: .anyone), "GET /api/stats/follow": Rule(who: .anyone),
    ]

    static func access(_ who: Who) -> Access {
        switch who {
        case .publicRoute: return .public
        case .anyone: return .anyone
        case .staff: return .staff
        case .admins: return .adminOnly
        }
    }

    func testTheCatalogAgreesWithTheRoleTable() {
        for route in Catalog.routes where !route.isInternal && route.service != nil {
            guard let rule = Self.table[route.key] else {
                XCTFail("\(route.key) has no row in the authorization table")
                continue
            }
            XCTAssertEqual(route.access, Self.access(rule.who), route.key)
        }
    }

    func testEveryEndpointAsEveryRole() throws {
        let system = try system
        let admin = try system.login()
        func employee(role: Int64) throws -> (id: Int64, token: String) {
            let phone = "137\(UInt32.random(in: 10_000_000...99_999_999))"
            let made = try system.post("/api/user/user", json: ["phoneNumber": .string(phone), "group_id": [1], "role_id": .int(role), "password": "matrix-password"], token: admin)
            let id = try XCTUnwrap(made.json["data"]?["id"]?.intValue, made.text)
            return (id, try system.login(phone, "matrix-password"))
        }
        let e1 = try employee(role: 2), e2 = try employee(role: 2), courier = try employee(role: 3)
        func id(_ answer: HTTPTestResponse) throws -> Int64 { try XCTUnwrap(answer.json["data"]?["id"]?.intValue, answer.text) }
        let organization = try id(try system.post("/api/customers/organization", json: ["groupName": "matrix"], token: admin))
        let now = Self.now
        let potential = try id(try system.post("/api/record/potential", json: ["organization_id": .int(organization), "director_id": 1, "record_time": .string(now)], token: admin))
        let context = Context(organization: organization, potential: potential, now: now)
        let denied: Set<Int> = [401, 403]

        for route in Catalog.routes where !route.isInternal && route.service != nil && route.access != .public {
            guard let rule = Self.table[route.key] else { continue }
            let call: (String?) throws -> HTTPTestResponse = { token in
                route.method == "GET" ? try system.get(route.path, token: token) : try system.post(route.path, json: .object(JSONObject()), token: token)
            }
            XCTAssertEqual(try call(nil).status, 401, "\(route.key) without a session")
            for (who, token, role) in [("admin", admin, Role.admin), ("employee", e1.token, .employee), ("courier", courier.token, .courier)] {
                let answer = try call(token)
                guard case .roles(let roles) = route.access else { continue }
                if roles.contains(role) {
                    // Creating an employee is the handler's to refuse (an employee may edit only
                    // their own record): checked on its own below.
                    if route.key == "POST /api/user/user" && role != .admin { continue }
                    XCTAssertFalse(denied.contains(answer.status), "\(route.key) as \(who): \(answer.status) \(answer.text)")
                } else {
                    XCTAssertEqual(answer.status, 403, "\(route.key) as \(who): \(answer.text)")
                }
            }
            guard let fixture = rule.fixture else { continue }
            // On a row each caller created, and on another employee's row.
            func row(by token: String) throws -> Int64 {
                try id(try system.post(fixture.create.path, json: .object(fixture.create.body(context)), token: token))
            }
            func act(_ token: String, on row: Int64) throws -> Int {
                var body = fixture.extra
                body[fixture.idParam] = .int(row)
                return try system.post(route.path, json: .object(body), token: token).status
            }
            let mayCreate: (Role) -> Bool = { role in
                guard case .roles(let roles)? = Catalog.route(method: "POST", path: fixture.create.path)?.access else { return false }
                return roles.contains(role)
            }
            let byAdmin = try row(by: admin)
            XCTAssertEqual(try act(admin, on: byAdmin), 200, "\(route.key): an administrator on any row")
            guard case .roles(let roles) = route.access else { continue }
            let own = try row(by: e1.token)
            let others = try row(by: e2.token)
            XCTAssertEqual(try act(e1.token, on: own), 200, "\(route.key): an employee on their own row")
            XCTAssertEqual(try act(e1.token, on: others), fixture.othersMay ? 200 : 403, "\(route.key): an employee on another's row")
            if roles.contains(.courier) && mayCreate(.courier) {
                let courierRow = try row(by: courier.token)
                XCTAssertEqual(try act(courier.token, on: courierRow), 200, "\(route.key): a courier on their own row")
                XCTAssertEqual(try act(courier.token, on: own), 403, "\(route.key): a courier on another's row")
            } else if !roles.contains(.courier) {
                XCTAssertEqual(try act(courier.token, on: own), 403, "\(route.key): a courier")
            }
        }

        // An employee edits their own record, never another's, and creates none.
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(e1.id), "nickName": "me"], token: e1.token).status, 200)
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(e2.id), "nickName": "you"], token: e1.token).status, 403)
        XCTAssertEqual(try system.post("/api/user/user", json: ["phoneNumber": "13000000000", "group_id": [1]], token: e1.token).status, 403)
        XCTAssertEqual(try system.post("/api/user/user", json: ["user_id": .int(courier.id), "nickName": "c"], token: courier.token).status, 200)
    }
}
