#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// RecordService through the gateway with the real processes: potential, follow-up and demand
/// records, names from RecordService's own copies, references to ids of other services,
/// independence from the producers, and the copies rebuilt from 0.
final class RecordTests: SystemTestCase {
    static func unique(_ prefix: String) -> String { "\(prefix)\(UInt32.random(in: 0...UInt32.max))" }

    var now: String { Timestamp.now() }
    func ago(days: Int64) -> String { Timestamp.shift(Timestamp.now(), seconds: -days * 86_400) ?? "" }

    func create(_ path: String, _ body: JSON, _ token: String) throws -> Int64 {
        let response = try system.post(path, json: body, token: token)
        guard response.status == 200, response.json["msg"]?.stringValue == "操作成功", let id = response.json["data"]?["id"]?.intValue else {
            throw HarnessError("\(path) \(body.jsonString): \(response.status) \(response.text)")
        }
        return id
    }

    func rows(_ path: String, _ token: String) throws -> [JSON] {
        let response = try system.get(path, token: token)
        XCTAssertEqual(response.status, 200, "\(path): \(response.text)")
        return response.json["data"]?.arrayValue ?? []
    }

    func ids(_ path: String, _ token: String) throws -> [Int64] { try rows(path, token).compactMap { $0["id"]?.intValue } }

    func assertRefused(_ response: HTTPTestResponse, _ status: Int, naming: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.json["status"]?.intValue, 1, response.text, file: file, line: line)
        XCTAssertTrue(response.json["msg"]?.stringValue?.contains(naming) ?? false, "\(response.text) should name \(naming)", file: file, line: line)
    }

    /// An employee (role 2) or courier (role 3) with a session.
    func employee(role: Int64, realName: String) throws -> (id: Int64, token: String) {
        let admin = try system.login()
        let phone = "137\(UInt32.random(in: 10_000_000...99_999_999))"
        let id = try create("/api/user/user", ["phoneNumber": .string(phone), "group_id": [1], "role_id": .int(role), "realName": .string(realName),
                                               "password": "password-123"], admin)
        return (id, try system.login(phone, "password-123"))
    }

    func organization(_ name: String, _ token: String) throws -> Int64 {
        try create("/api/customers/organization", ["groupName": .string(name)], token)
    }

    func customer(_ name: String, _ token: String) throws -> Int64 {
        try create("/api/customers/customers", ["realName": .string(name)], token)
    }

    // MARK: Endpoints

    func testEveryEndpointWithIdsCreatedAMomentAgoInOtherServices() throws {
        let admin = try system.login()
        // Created in UserService and CustomerService just now: RecordService waits for its copies.
        let director = try employee(role: 2, realName: Self.unique("director-"))
        let orgName = Self.unique("org-")
        let org = try organization(orgName, admin)
        let jerry = try customer("Jerry", admin)
        let tom = try customer("tom", admin)

        let potential = try create("/api/record/potential", ["organization_id": .int(org), "director_id": .int(director.id), "record_time": .string(now), "note": "n"], admin)
        let row = try XCTUnwrap(rows("/api/record/potential?potent_id=\(potential)", admin).first)
        XCTAssertEqual(row.objectValue?.keys, ["id", "organization_id", "organization_name", "director_id", "director", "recordTime", "createTime",
                                               "updateTime", "status", "note", "operator_id", "operator_name"])
        XCTAssertEqual(row["organization_name"]?.stringValue, orgName)
        XCTAssertEqual(row["status"]?.intValue, 0)
        XCTAssertEqual(try create("/api/record/potential", ["protent_id": .int(potential), "note": "m"], admin), potential)
        XCTAssertEqual(try create("/api/record/delpotent", ["potent_id": .int(potential), "status": 1], admin), potential)
        XCTAssertEqual(try rows("/api/record/potential?organization_id=\(org)&director_id=\(director.id)&status=1", admin).first?["note"]?.stringValue, "m")

        // Form-encoded, with the seed's array forms.
        let form = try system.postForm("/api/record/follow", "protent_id=\(potential)&follower_id[]=\(director.id)&follower_id[]=1&customers_id=\(tom),\(jerry)&record_time=\(now.replacingOccurrences(of: " ", with: "+"))&event=3&event_note=called", token: admin)
        XCTAssertEqual(form.status, 200, form.text)
        let follow = try XCTUnwrap(form.json["data"]?["id"]?.intValue)
        let followRow = try XCTUnwrap(rows("/api/record/follow?organization_id=\(org)", admin).first)
        XCTAssertEqual(followRow["id"]?.intValue, follow)
        XCTAssertEqual(followRow["potential_id"]?.intValue, potential)
        XCTAssertEqual(followRow["organization_id"]?.intValue, org)
        XCTAssertEqual(followRow["note"]?.stringValue, "called")
        XCTAssertEqual(followRow["follower_ids"], [.int(director.id), 1])
        XCTAssertEqual(followRow["customer_ids"], [.int(tom), .int(jerry)])
        XCTAssertEqual(followRow["customer_name"], ["tom", "Jerry"])
        XCTAssertEqual(try ids("/api/record/follow?protent_id=\(potential)", admin), [follow])
        XCTAssertEqual(try create("/api/record/follow", ["follow_id": .int(follow), "gain": "signed"], admin), follow)
        XCTAssertEqual(try create("/api/record/delfollow", ["follow_id": .int(follow)], admin), follow)
        XCTAssertEqual(try ids("/api/record/follow?protent_id=\(potential)", admin), [])

        let demand = try create("/api/record/demand", ["organization_id": .int(org), "follower_id": [.int(director.id)], "customer_id": .int(jerry),
                                                       "record_time": .string(now), "content": "季报", "demand_note": "q"], admin)
        let demandRow = try XCTUnwrap(rows("/api/record/demand?organization_id=\(org)", admin).first)
        XCTAssertEqual(demandRow["organization_name"]?.stringValue, orgName)
        XCTAssertEqual(demandRow["content"]?.stringValue, "季报")
        XCTAssertEqual(demandRow["customer_name"], ["Jerry"])
        XCTAssertEqual(try create("/api/record/demand", ["demand_id": .int(demand), "content": "年报"], admin), demand)
        XCTAssertEqual(try rows("/api/record/demand?organization_id=\(org)", admin).first?["content"]?.stringValue, "年报")
        XCTAssertEqual(try create("/api/record/deldemand", ["demand_id": .int(demand)], admin), demand)
        XCTAssertEqual(try ids("/api/record/demand?organization_id=\(org)", admin), [])
    }

    func testWindowsFiltersAndPaging() throws {
        let admin = try system.login()
        let org = try organization(Self.unique("window-"), admin)
        let old = try create("/api/record/potential", ["organization_id": .int(org), "director_id": 1, "record_time": .string(ago(days: 10))], admin)
        let recent = try (0..<3).map { _ in try create("/api/record/potential", ["organization_id": .int(org), "director_id": 1, "record_time": .string(ago(days: 1))], admin) }
        XCTAssertEqual(try ids("/api/record/potential?organization_id=\(org)", admin), recent.reversed(), "last week; same recordTime: newest id first")
        XCTAssertEqual(try ids("/api/record/potential?organization_id=\(org)&start_time=\(String(ago(days: 11).prefix(10)))", admin), recent.reversed() + [old])
        let page = try system.get("/api/record/potential?organization_id=\(org)&count=2&page=2", token: admin)
        XCTAssertEqual(page.json["page_info"]?["total"]?.intValue, 3)
        XCTAssertEqual(page.json["data"]?.arrayValue?.compactMap { $0["id"]?.intValue }, [recent[0]])
        for path in ["/api/record/potential", "/api/record/follow", "/api/record/demand"] {
            assertRefused(try system.get("\(path)?start_time=2021-01-02&end_time=2021-01-01", token: admin), 400, naming: "start_time")
            assertRefused(try system.get("\(path)?end_time=tomorrow", token: admin), 400, naming: "end_time")
        }
        assertRefused(try system.get("/api/record/potential?status=7", token: admin), 400, naming: "status")
    }

    func testMissingFieldsUnknownAndDeletedIds() throws {
        let admin = try system.login()
        let org = try organization(Self.unique("gone-"), admin)
        let potential = try create("/api/record/potential", ["organization_id": .int(org), "director_id": 1, "record_time": .string(now)], admin)
        XCTAssertEqual(try create("/api/customers/delorganization", ["organization_id": .int(org), "status": -1], admin), org)
        let gone = try customer("gone", admin)
        _ = try create("/api/customers/delcustomer", ["customer_id": .int(gone)], admin)
        // A deletion reaches the copies within a second; until then an id may still be known.
        XCTAssertTrue(eventually(timeout: 2) {
            (try? system.post("/api/record/demand", json: ["organization_id": .int(org), "follower_id": [1], "record_time": .string(now), "content": "c"], token: admin).status) == 400
        })
        for (path, body, naming) in [
            ("/api/record/potential", ["director_id": 1, "record_time": .string(now)] as JSON, "organization_id"),
            ("/api/record/potential", ["organization_id": .int(org), "director_id": 1, "record_time": .string(now)], "organization_id \(org)"),
            ("/api/record/potential", ["organization_id": 99_999_999, "director_id": 1, "record_time": .string(now)], "organization_id 99999999"),
            ("/api/record/potential", ["organization_id": 1, "director_id": 99_999_999, "record_time": .string(now)], "director_id 99999999"),
            ("/api/record/follow", ["follower_id": [1], "record_time": .string(now)], "protent_id"),
            ("/api/record/follow", ["protent_id": .int(potential), "record_time": .string(now)], "follower_id"),
            ("/api/record/follow", ["protent_id": .int(potential), "follower_id": [1]], "record_time"),
            ("/api/record/follow", ["protent_id": 99_999_999, "follower_id": [1], "record_time": .string(now)], "protent_id 99999999"),
            ("/api/record/follow", ["protent_id": .int(potential), "follower_id": [1], "customers_id": [.int(gone)], "record_time": .string(now)], "customers_id \(gone)"),
            ("/api/record/demand", ["organization_id": 1, "follower_id": [1], "record_time": .string(now)], "content"),
            ("/api/record/demand", ["organization_id": 1, "follower_id": [1, 99_999_999], "record_time": .string(now), "content": "c"], "follower_id 99999999"),
            ("/api/record/delfollow", [:], "follow_id"),
            ("/api/record/deldemand", [:], "demand_id"),
            ("/api/record/delpotent", ["status": -1], "potent_id"),
        ] as [(String, JSON, String)] {
            assertRefused(try system.post(path, json: body, token: admin), 400, naming: naming)
        }
        assertRefused(try system.post("/api/record/delfollow", json: ["follow_id": 99_999_999], token: admin), 404, naming: "follow_id 99999999")
    }

    func testRoles() throws {
        let admin = try system.login()
        let worker = try employee(role: 2, realName: "worker")
        let other = try employee(role: 2, realName: "other")
        let courier = try employee(role: 3, realName: "courier")
        let org = try organization(Self.unique("roles-"), admin)
        let body: JSON = ["organization_id": .int(org), "director_id": .int(worker.id), "record_time": .string(now)]
        assertRefused(try system.post("/api/record/potential", json: body, token: courier.token), 403, naming: "role")
        let potential = try create("/api/record/potential", body, worker.token)
        assertRefused(try system.post("/api/record/potential", json: ["potent_id": .int(potential), "note": "x"], token: other.token), 403, naming: "created")
        assertRefused(try system.post("/api/record/delpotent", json: ["potent_id": .int(potential), "status": -1], token: other.token), 403, naming: "created")
        let follow = try create("/api/record/follow", ["protent_id": .int(potential), "follower_id": [.int(courier.id)], "record_time": .string(now)], courier.token)
        XCTAssertEqual(try rows("/api/record/follow?protent_id=\(potential)", admin).first?["operator_name"]?.stringValue, "courier")
        XCTAssertEqual(try create("/api/record/follow", ["follow_id": .int(follow), "gain": "g"], courier.token), follow)
        assertRefused(try system.post("/api/record/delfollow", json: ["follow_id": .int(follow)], token: courier.token), 403, naming: "role")
        assertRefused(try system.post("/api/record/delfollow", json: ["follow_id": .int(follow)], token: worker.token), 403, naming: "created")
        let demand = try create("/api/record/demand", ["organization_id": .int(org), "follower_id": [.int(worker.id)], "record_time": .string(now), "content": "c"], courier.token)
        assertRefused(try system.post("/api/record/deldemand", json: ["demand_id": .int(demand)], token: courier.token), 403, naming: "role")
        XCTAssertEqual(try create("/api/record/deldemand", ["demand_id": .int(demand)], admin), demand)
        XCTAssertEqual(try create("/api/record/delpotent", ["potent_id": .int(potential), "status": 3], worker.token), potential)
    }

    // MARK: Names from RecordService's own copies

    /// A follow-up record whose follower, customer and organization were all just created.
    func followWithNames(_ admin: String) throws -> (follow: Int64, org: Int64, follower: Int64, customer: Int64) {
        let follower = try employee(role: 2, realName: Self.unique("before-"))
        let org = try organization(Self.unique("org-"), admin)
        let customer = try customer(Self.unique("cust-"), admin)
        let potential = try create("/api/record/potential", ["organization_id": .int(org), "director_id": .int(follower.id), "record_time": .string(now)], admin)
        let follow = try create("/api/record/follow", ["protent_id": .int(potential), "follower_id": [.int(follower.id)], "customers_id": [.int(customer)],
                                                       "record_time": .string(now)], admin)
        return (follow, org, follower.id, customer)
    }

    func testRenamesReachRecordsWithinASecond() throws {
        let admin = try system.login()
        let made = try followWithNames(admin)
        let employeeName = Self.unique("renamed-"), orgName = Self.unique("org-renamed-"), customerName = Self.unique("cust-renamed-")
        _ = try create("/api/user/user", ["user_id": .int(made.follower), "realName": .string(employeeName)], admin)
        _ = try create("/api/customers/organization", ["organization_id": .int(made.org), "groupName": .string(orgName)], admin)
        _ = try create("/api/customers/customers", ["customer_id": .int(made.customer), "realName": .string(customerName)], admin)
        let acknowledged = Date()
        XCTAssertTrue(try eventually(timeout: 1) {
            let follow = try rows("/api/record/follow?organization_id=\(made.org)", admin).first
            let potential = try rows("/api/record/potential?organization_id=\(made.org)", admin).first
            return follow?["follower_name"] == [.string(employeeName)] && follow?["customer_name"] == [.string(customerName)]
                && potential?["organization_name"]?.stringValue == orgName && potential?["director"]?.stringValue == employeeName
        }, "renames show in records within a second (took \(Date().timeIntervalSince(acknowledged)) s)")
    }

    func testProducerRestartAndOutages() throws {
        let admin = try system.login()
        let made = try followWithNames(admin)
        // CustomerService killed: the launcher restarts it; what it creates and renames afterwards still arrives.
        let customers = try XCTUnwrap(system.childPID("CustomerService"))
        kill(customers, SIGKILL)
        _ = try XCTUnwrap(system.waitForRestart("CustomerService", old: customers))
        let org = try organization(Self.unique("after-restart-"), admin)
        let potential = try create("/api/record/potential", ["organization_id": .int(org), "director_id": 1, "record_time": .string(now)], admin)
        let newName = Self.unique("renamed-after-restart-")
        _ = try create("/api/customers/organization", ["organization_id": .int(made.org), "groupName": .string(newName)], admin)
        XCTAssertTrue(try eventually(timeout: 2) { try rows("/api/record/potential?organization_id=\(made.org)", admin).first?["organization_name"]?.stringValue == newName })

        // CustomerService stopped: reads and writes naming known ids go on.
        let stopped = try XCTUnwrap(system.childPID("CustomerService"))
        kill(stopped, SIGSTOP)
        defer { kill(stopped, SIGCONT) }
        XCTAssertTrue(SystemHarness.waitForState(stopped, "T"))
        XCTAssertEqual(try ids("/api/record/follow?organization_id=\(made.org)", admin), [made.follow])
        let during = try create("/api/record/follow", ["protent_id": .int(potential), "follower_id": [1], "customers_id": [.int(made.customer)], "record_time": .string(now)], admin)
        XCTAssertEqual(try ids("/api/record/follow?protent_id=\(potential)", admin), [during])
        kill(stopped, SIGCONT)

        // UserService stopped: reads go on, and writes naming ids the copies know (the gateway
        // accepts a recently validated session while the revocation feed was current).
        let users = try XCTUnwrap(system.childPID("UserService"))
        kill(users, SIGSTOP)
        defer { kill(users, SIGCONT) }
        XCTAssertTrue(SystemHarness.waitForState(users, "T"))
        // Past the gateway's 1 s session cache too: then it waits for UserService, gives up and
        // accepts the recently validated session for reads.
        let stoppedAt = Date()
        repeat {
            XCTAssertEqual(try ids("/api/record/follow?protent_id=\(potential)", admin), [during])
            XCTAssertEqual(try rows("/api/record/follow?organization_id=\(made.org)", admin).first?["follower_ids"], [.int(made.follower)])
        } while Date().timeIntervalSince(stoppedAt) < 1.5
        let written = try create("/api/record/follow", ["protent_id": .int(potential), "follower_id": [1], "record_time": .string(now)], admin)
        XCTAssertEqual(try ids("/api/record/follow?protent_id=\(potential)", admin), [written, during])
        kill(users, SIGCONT)
    }

    /// The copies dropped and replayed from 0 (a new projection version) end equal to the live ones.
    func testCopiesRebuiltFromZeroEqualTheLiveOnes() throws {
        let admin = try system.login()
        let made = try followWithNames(admin)
        _ = try create("/api/user/user", ["user_id": .int(made.follower), "realName": .string(Self.unique("rebuilt-"))], admin)
        _ = try create("/api/customers/delcustomer", ["customer_id": .int(made.customer)], admin)
        let path = try system.dataDir + "/records.sqlite"
        func snapshot() throws -> [String] {
            let db = try SQLiteConnection(path: path)
            return try ["employee_copies", "organization_copies", "customer_copies"].flatMap { table in
                try db.query("SELECT * FROM \(table) ORDER BY id").map { row in "\(table) " + row.values.map { $0.json.jsonString }.joined(separator: "|") }
            }
        }
        // Live: wait until the copies hold the last change.
        XCTAssertTrue(try eventually(timeout: 2) { try snapshot().contains { $0.hasPrefix("customer_copies \(made.customer)|") && $0.hasSuffix("|-1") } })
        let live = try snapshot()
        let before = try rows("/api/record/follow?organization_id=\(made.org)", admin)

        let records = try XCTUnwrap(system.childPID("RecordService"))
        kill(records, SIGSTOP)
        try SQLiteConnection(path: path).run("UPDATE projections SET version = 0")
        kill(records, SIGKILL)
        kill(records, SIGCONT)
        _ = try XCTUnwrap(system.waitForRestart("RecordService", old: records))
        XCTAssertTrue(try eventually(timeout: 10) {
            try SQLiteConnection(path: path).scalar("SELECT COUNT(*) FROM projections WHERE version = 1") == 3 && (try snapshot()) == live
        }, "rebuilt: \((try? snapshot()) ?? []) live: \(live)")
        XCTAssertTrue(try system.log.contains("projection employees: rebuilding"), "the restarted RecordService replayed its copies from 0")
        XCTAssertTrue(eventually(timeout: 10) { (try? rows("/api/record/follow?organization_id=\(made.org)", admin)) == before })
    }
}
