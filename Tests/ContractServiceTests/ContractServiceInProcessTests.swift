import XCTest
@testable import ServiceKit
@testable import ContractService
import WireProtocol

/// ContractService's rules in process (`ServiceTester`): the copies are filled directly, as
/// the projections would fill them.
final class ContractServiceInProcessTests: XCTestCase {
    let admin = Caller(id: 1, role: Role.admin.rawValue)
    let employee = Caller(id: 2, role: Role.employee.rawValue)
    let courier = Caller(id: 3, role: Role.courier.rawValue)
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(ServiceDefinition.contracts)
        try tester.database.sync { db in
            for projection in ServiceDefinition.contracts.projections { try db.execute(projection.schema) }
            try db.execute("""
                INSERT INTO employee_copies(id, realName, nickName, roleId, status) VALUES (1, 'admin', NULL, 1, 1), (2, 'tom ai', 'tom', 2, 1),
                    (3, '', 'courier', 3, 1), (4, 'gone', NULL, 2, -1);
                INSERT INTO organization_copies(id, groupName, status) VALUES (1, '国务院', 1), (2, '工信部', 0), (3, 'deleted', -1);
                INSERT INTO customer_copies(id, realName, nickName, status) VALUES (1, 'Jerry', NULL, 1), (2, 'tom', NULL, 1), (3, 'x', NULL, -1);
                """)
        }
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    func post(_ path: String, _ params: JSONObject, _ caller: Caller) async -> WireResponse {
        await tester.call(method: "POST", path: path, params: params, caller: caller)
    }

    func testFeedbackRulesValueRangeAndOwnRows() async throws {
        let created = await post("/api/feedback/satisfy", ["organization_id": 1, "record_time": "2021-07-15 01:02:30", "value": 4,
                                                           "customers_id": [2, 1], "follower_id": "[3,2]"], courier)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        XCTAssertEqual(created.body["msg"]?.stringValue, "录入成功")
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)
        for value: JSON in [11, -11, "3.5", "x"] {
            let refused = await post("/api/feedback/satisfy", ["organization_id": 1, "record_time": "2021-07-15", "value": value], admin)
            XCTAssertEqual(refused.status, 400, "\(value)")
            XCTAssertTrue(refused.body["msg"]?.stringValue?.hasPrefix("value") ?? false, "\(refused.body)")
        }
        for value: JSON in [10, -10, 0, "-3"] {
            let accepted = await post("/api/feedback/satisfy", ["organization_id": 1, "record_time": "2021-07-15", "value": value], admin)
            XCTAssertEqual(accepted.status, 200, "\(value): \(accepted.body)")
        }
        // Only the operator (or an administrator) changes it.
        let byOther = await post("/api/feedback/satisfy", ["satisfy_id": .int(id), "value": 1], employee)
        XCTAssertEqual(byOther.status, 403, "\(byOther.body)")
        let byOwner = await post("/api/feedback/satisfy", ["satisfy_id": .int(id), "value": -2], courier)
        XCTAssertEqual(byOwner.status, 200, "\(byOwner.body)")
        let byAdmin = await post("/api/feedback/satisfy", ["satisfy_id": .int(id), "note": "checked"], admin)
        XCTAssertEqual(byAdmin.status, 200, "\(byAdmin.body)")

        let list = await tester.call(path: "/api/feedback/satisfy", params: ["start_time": "2021-07-01", "end_time": "2021-08-01", "customers_id": "1"], caller: admin)
        let row = try XCTUnwrap(list.body["data"]?.arrayValue?.first)
        XCTAssertEqual(list.body["data"]?.arrayValue?.count, 1)
        XCTAssertEqual(row["value"]?.intValue, -2)
        XCTAssertEqual(row["note"]?.stringValue, "checked")
        XCTAssertEqual(row["operator_id"]?.intValue, 3)
        XCTAssertEqual(row["operator_name"]?.stringValue, "courier", "realName empty: nickName")
        XCTAssertEqual(row["organization_name"]?.stringValue, "国务院")
        XCTAssertEqual(row["customers_name"], ["tom", "Jerry"])
        XCTAssertEqual(row["follower_name"], ["courier", "tom ai"])
        XCTAssertEqual(list.body["page_info"]?["total"]?.intValue, 1)
    }

    func testReferencesMustNameRowsNotDeleted() async throws {
        for (params, name): (JSONObject, String) in [
            (["organization_id": 3, "record_time": "2021-07-15", "value": 1], "organization_id 3"),
            (["organization_id": 99, "record_time": "2021-07-15", "value": 1], "organization_id 99"),
            (["organization_id": 1, "record_time": "2021-07-15", "value": 1, "customers_id": [1, 3]], "customers_id 3"),
            (["organization_id": 1, "record_time": "2021-07-15", "value": 1, "follower_id": [4]], "follower_id 4"),
        ] {
            let refused = await post("/api/feedback/satisfy", params, admin)
            XCTAssertEqual(refused.status, 400)
            XCTAssertEqual(refused.body["msg"]?.stringValue, "\(name) does not exist")
        }
        let archived = await post("/api/contract/contract", ["organization_id": 2, "name": "c", "sign_time": "2021-01-01"], admin)
        XCTAssertEqual(archived.status, 200, "an organization with status 0 is not deleted: \(archived.body)")
    }

    /// A write naming a customer its copies do not know yet is rolled back and written again
    /// once the copy arrives (within the catch-up time): one row, answered 200; no read before
    /// the first attempt is needed for it.
    func testAWriteWaitsForACopyThatArrivesAndIsWrittenOnce() async throws {
        let tester: ServiceTester = try XCTUnwrap(self.tester)
        let admin = self.admin
        let pending = Task {
            await tester.call(method: "POST", path: "/api/feedback/satisfy", params: ["organization_id": 1, "record_time": "2021-07-15 01:02:30",
                                                                                      "value": 3, "customers_id": [2, 50]], caller: admin)
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        _ = try await tester.database.write { db in try db.execute("INSERT INTO customer_copies(id, realName, nickName, status) VALUES (50, 'late', NULL, 1)") }
        let answered = await pending.value
        XCTAssertEqual(answered.status, 200, "\(answered.body)")
        let rows = try await tester.database.read { db in
            try db.scalar("SELECT COUNT(*) FROM satisfactions WHERE id IN (SELECT satisfaction_id FROM satisfaction_customers WHERE customer_id = 50)")
        }
        XCTAssertEqual(rows, 1, "written once")
    }

    /// List pages are written as JSON text (`Resource.writeRows`), not built as a tree: the
    /// bytes must be exactly what serializing the tree (`Resource.json`) in `Reply.ok`'s
    /// envelope gives — money, references, ordered links (empty ones too), escapes, nulls.
    func testListTextIsTheTreeAnswerSerialized() async throws {
        let now = Timestamp.now()
        for (i, organization) in [1, 2, 3, 1].enumerated() {
            try await tester.database.write { db in
                try db.execute("INSERT INTO organization_copies(id, groupName, status) VALUES (\(10 + i), 'org \"\\ \(i)', 1)")
            }
            let created = await post("/api/contract/contract", ["organization_id": .int(Int64(organization == 3 ? 10 + i : organization)),
                                                                "name": .string("合同 \"\(i)\"\n\\"), "sign_time": .string(now),
                                                                "amount": i == 1 ? .null : .string("\(i * 1000).0\(i)"), "remit_amount": "0.5",
                                                                "follower_id": JSON.array(i == 2 ? [] : [JSON.int(2), .int(1), .int(3)].prefix(i + 1).map { $0 }),
                                                                "note": i == 0 ? .null : "a\u{1}b\u{7f}é"], admin)
            XCTAssertEqual(created.status, 200, "\(created.body)")
        }
        let feedback = await post("/api/feedback/satisfy", ["organization_id": 1, "record_time": .string(now), "value": -3,
                                                            "customers_id": [2, 1], "follower_id": [1]], admin)
        XCTAssertEqual(feedback.status, 200, "\(feedback.body)")
        // Values the API never writes but a file may hold: read from SQLite straight into the
        // text, they must come out as the tree has them (blobs and invalid UTF-8 as repaired
        // strings, reals as reals, money too, a real id reference as its integer).
        try await tester.database.write { db in
            try db.execute("""
                UPDATE contracts SET name = X'6162ff63', code = CAST(X'e6b7b1c3' AS TEXT), amount = 12.5, remit_amount = 7.0,
                    note = CAST(X'eda080' AS TEXT), aging_start_time = X'' WHERE id = (SELECT MIN(id) FROM contracts);
                UPDATE contracts SET organization_id = 1.5, note = X'f48fbfbf' WHERE id = (SELECT MAX(id) FROM contracts);
                UPDATE organization_copies SET groupName = CAST(X'c0af' AS TEXT) WHERE id = 10;
                UPDATE employee_copies SET realName = '', nickName = X'e282' WHERE id = 3;
                """)
        }
        for (path, resource) in [("/api/contract/contract", Contracts.resource), ("/api/feedback/satisfy", Feedback.resource)] {
            let rows = try await tester.database.read { db in
                try resource.json(db.query("SELECT \(resource.selectList) FROM \(resource.table) t WHERE t.status = 0 ORDER BY \(resource.ordering)"), db)
            }
            XCTAssertGreaterThan(rows.count, 0)
            // Twice: read from SQLite, then from the rows kept for the snapshot (`SnapshotRows`).
            for round in 1...2 {
                let list = await tester.call(method: "GET", path: path, params: ["page": 1, "count": 10], caller: admin)
                XCTAssertEqual(list.status, 200, "\(list.body)")
                let total = try XCTUnwrap(list.body["page_info"]?["total"]?.intValue)
                let expected = Reply.ok(data: .array(rows), page: PageInfo(total: total, page: 1, count: 10))
                XCTAssertEqual(String(decoding: list.bodyBytes, as: UTF8.self), String(decoding: expected.bodyBytes, as: UTF8.self), "\(path), round \(round)")
            }
        }
    }

    /// A page's rows are kept while the reader sees the same data (`SnapshotRows`): the same
    /// answer again without reading them; any commit, of this process or another, shows at once.
    func testKeptListRowsFollowEveryCommit() async throws {
        var created: [Int64] = []
        for i in 0..<3 {
            let answer = await post("/api/contract/contract", ["organization_id": 1, "name": .string("c\(i)"), "sign_time": .string(Timestamp.now()),
                                                               "follower_id": [2]], admin)
            created.append(try XCTUnwrap(answer.body["data"]?["id"]?.intValue))
        }
        let ids = created
        let params: JSONObject = ["page": 1, "count": 2]
        func page() async throws -> (bytes: [UInt8], rows: [JSON]) {
            let list = await tester.call(method: "GET", path: "/api/contract/contract", params: params, caller: admin)
            XCTAssertEqual(list.status, 200, "\(list.body)")
            return (list.bodyBytes, try XCTUnwrap(list.body["data"]?.arrayValue))
        }
        let first = try await page()
        XCTAssertEqual(first.rows.compactMap { $0["id"]?.intValue }, [ids[2], ids[1]])
        let again = try await page()
        XCTAssertEqual(again.bytes, first.bytes)
        XCTAssertGreaterThanOrEqual(tester.database.keptRowCount(), 2, "the page's rows are kept (by whichever reader read them)")

        // A column changed by this process's writer.
        try await tester.database.write { db in try db.execute("UPDATE contracts SET name = 'renamed' WHERE id = \(ids[1])") }
        var shown = try await page()
        XCTAssertEqual(shown.rows.map { $0["name"] }, ["c2", "renamed"])
        // Links changed through the API, and a row that leaves the page.
        _ = await post("/api/contract/contract", ["contract_id": .int(ids[2]), "follower_id": [1, 3]], admin)
        shown = try await page()
        XCTAssertEqual(shown.rows.first?["follower_ids"], [1, 3])
        _ = await post("/api/contract/delcontract", ["contract_id": .int(ids[2])], admin)
        shown = try await page()
        XCTAssertEqual(shown.rows.compactMap { $0["id"]?.intValue }, [ids[1], ids[0]])
        // Another process commits to the file: the next page sees it (no watch interval).
        let other = try SQLiteConnection(path: tester.database.path)
        try other.execute("UPDATE contracts SET name = 'elsewhere' WHERE id = \(ids[0])")
        other.close()
        shown = try await page()
        XCTAssertEqual(shown.rows.map { $0["name"] }, ["renamed", "elsewhere"])
    }

    /// Names a page showed are kept between requests (`ReadCache`); a change to them, to the
    /// links or by another process on the file shows on the next page.
    func testListNamesFollowChangesAfterTheyWereKept() async throws {
        let created = await post("/api/contract/contract", ["organization_id": 1, "name": "c", "sign_time": .string(Timestamp.now()),
                                                            "follower_id": [2, 1]], admin)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)
        func row() async throws -> JSON {
            let list = await tester.call(method: "GET", path: "/api/contract/contract", params: [:], caller: admin)
            XCTAssertEqual(list.status, 200, "\(list.body)")
            return try XCTUnwrap(list.body["data"]?.arrayValue?.first { $0["id"]?.intValue == id })
        }
        var shown = try await row()
        XCTAssertEqual(shown["organization_name"], "国务院")
        XCTAssertEqual(shown["follower"], ["tom ai", "admin"])
        XCTAssertEqual(shown["follower_ids"], [2, 1])
        XCTAssertGreaterThan(tester.database.readCache.count, 0, "the names are kept")

        // A copy changed by this process's writer (as a projection applies an event).
        try await tester.database.write { db in try db.execute("UPDATE employee_copies SET realName = 'Tom Ai' WHERE id = 2") }
        shown = try await row()
        XCTAssertEqual(shown["follower"], ["Tom Ai", "admin"], "a commit to a named table starts a new generation")
        // Writes elsewhere keep the names.
        let kept = tester.database.readCache.count
        _ = await post("/api/contract/contract", ["organization_id": 2, "name": "d", "sign_time": .string(Timestamp.now())], admin)
        XCTAssertEqual(tester.database.readCache.count, kept, "a new contract changes totals, not names")

        // The links changed: the row's list column with them.
        let updated = await post("/api/contract/contract", ["contract_id": .int(id), "follower_id": [1, 3]], admin)
        XCTAssertEqual(updated.status, 200, "\(updated.body)")
        shown = try await row()
        XCTAssertEqual(shown["follower"], ["admin", "courier"])
        XCTAssertEqual(shown["follower_ids"], [1, 3])

        // Another process commits to the file: seen within the watch interval.
        tester.database.watchOtherWriters(intervalMillis: 10)
        let other = try SQLiteConnection(path: tester.database.path)
        try other.execute("UPDATE organization_copies SET groupName = '国务院办公厅' WHERE id = 1")
        other.close()
        for _ in 0..<500 {
            shown = try await row()
            if shown["organization_name"] == "国务院办公厅" { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertEqual(shown["organization_name"], "国务院办公厅")
    }

    /// A windowed or counted total is remembered between requests (`SnapshotCounts`): a create,
    /// a status change, a change to `sign_time` or to the organization show on the next page.
    func testKeptWindowTotalFollowsWrites() async throws {
        let window: JSONObject = ["start_time": "2021-01-01 00:00:00", "end_time": "2021-12-31 23:59:59", "page": 1, "count": 5]
        func total(_ params: JSONObject? = nil) async throws -> Int64 {
            let list = await tester.call(method: "GET", path: "/api/contract/contract", params: params ?? window, caller: admin)
            XCTAssertEqual(list.status, 200, "\(list.body)")
            return try XCTUnwrap(list.body["page_info"]?["total"]?.intValue)
        }
        var seen = try await total()
        XCTAssertEqual(seen, 0)
        let created = await post("/api/contract/contract", ["organization_id": 1, "name": "c", "sign_time": "2021-06-01 12:00:00"], admin)
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)
        seen = try await total()
        XCTAssertEqual(seen, 1)
        seen = try await total()
        XCTAssertEqual(seen, 1)
        _ = await post("/api/contract/contract", ["contract_id": .int(id), "sign_time": "2022-06-01 12:00:00"], admin)
        seen = try await total()
        XCTAssertEqual(seen, 0, "moved out of the window")
        _ = await post("/api/contract/contract", ["contract_id": .int(id), "sign_time": "2021-02-01 12:00:00"], admin)
        seen = try await total()
        XCTAssertEqual(seen, 1)
        _ = await post("/api/contract/delcontract", ["contract_id": .int(id)], admin)
        seen = try await total()
        XCTAssertEqual(seen, 0, "deleted")

        // Filtered by organization: a counted total (COUNT(*)), kept and forgotten the same way.
        var filtered = window
        filtered["organization_id"] = 2
        seen = try await total(filtered)
        XCTAssertEqual(seen, 0)
        let other = await post("/api/contract/contract", ["organization_id": 2, "name": "e", "sign_time": "2021-03-01 12:00:00"], admin)
        let otherID = try XCTUnwrap(other.body["data"]?["id"]?.intValue)
        seen = try await total(filtered)
        XCTAssertEqual(seen, 1)
        seen = try await total(filtered)
        XCTAssertEqual(seen, 1)
        _ = await post("/api/contract/contract", ["contract_id": .int(otherID), "organization_id": 1], admin)
        seen = try await total(filtered)
        XCTAssertEqual(seen, 0, "moved to another organization")
    }

    /// The published state (the `satisfaction` event): the published columns with their values
    /// and types, and each published link's ids in the order sent — again after an update
    /// reorders them; unpublished columns (`note`, `attach`) stay out.
    func testThePublishedStateCarriesColumnsAndLinkIDsInOrder() async throws {
        let created = await post("/api/feedback/satisfy", ["organization_id": 1, "record_time": "2021-07-15 01:02:30", "value": -4, "note": "secret",
                                                           "customers_id": [2, 1], "follower_id": [3, 2]], admin)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)
        func lastState() async throws -> JSONObject {
            let feed = await tester.call(path: "/internal/events", params: ["after": 0, "limit": 1000])
            XCTAssertEqual(feed.status, 200, "\(feed.body)")
            let events = try XCTUnwrap(feed.body["data"]?["events"]?.arrayValue)
            let last = try XCTUnwrap(events.last { $0["type"]?.stringValue == "satisfaction" && $0["entity_id"]?.intValue == id })
            return try XCTUnwrap(last["state"]?.objectValue)
        }
        var state = try await lastState()
        XCTAssertEqual(state.keys, ["id", "value", "recordTime", "operator_id", "organization_id", "updateTime", "status", "customer_ids", "follower_ids"])
        XCTAssertEqual(state["id"], .int(id))
        XCTAssertEqual(state["value"], .int(-4))
        XCTAssertEqual(state["recordTime"], .string("2021-07-15 01:02:30"))
        XCTAssertEqual(state["operator_id"], .int(1))
        XCTAssertEqual(state["status"], .int(0))
        XCTAssertEqual(state["customer_ids"], .array([.int(2), .int(1)]))
        XCTAssertEqual(state["follower_ids"], .array([.int(3), .int(2)]))
        let updated = await post("/api/feedback/satisfy", ["satisfy_id": .int(id), "customers_id": [1, 2], "follower_id": []], admin)
        XCTAssertEqual(updated.status, 200, "\(updated.body)")
        state = try await lastState()
        XCTAssertEqual(state["customer_ids"], .array([.int(1), .int(2)]))
        XCTAssertEqual(state["follower_ids"], .array([]))
    }

    /// The link-lists migration fills each row's list column from the link table, in `position`
    /// order (not the table's key order), and `[]` for a row without links.
    func testLinkListsMigrationFillsTheColumnInPositionOrder() throws {
        let path = tester.directory + "/migrated.sqlite"
        let old = try SQLiteConnection(path: path)
        try old.migrate(Array(ContractSchema.migrations.prefix(1)))
        try old.execute("""
            INSERT INTO contracts(id, organization_id, name, sign_time, createTime, updateTime) VALUES
                (1, 1, 'a', '2021-01-01', '2021-01-01', '2021-01-01'), (2, 1, 'b', '2021-01-01', '2021-01-01', '2021-01-01');
            INSERT INTO contract_followers(contract_id, employee_id, position) VALUES (1, 7, 2), (1, 9, 0), (1, 3, 1);
            """)
        try old.migrate(ContractSchema.migrations)
        let lists = try old.query("SELECT id, contract_followers_ids FROM contracts ORDER BY id").map { $0.string(1) }
        XCTAssertEqual(lists, ["[9,3,7]", "[]"])
        old.close()
    }

    func testContractCreatorEditorAndMoney() async throws {
        let created = await post("/api/contract/contract", ["organization_id": 1, "name": "天下第一合同", "sign_time": "2021-11-11 14:49:08",
                                                            "amount": "112", "follower_id": [2, 1]], employee)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        XCTAssertEqual(created.body["msg"]?.stringValue, "操作成功")
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)
        let forCourier = await post("/api/contract/contract", ["organization_id": 1, "name": "x", "sign_time": "2021-11-11"], courier)
        XCTAssertEqual(forCourier.status, 403)
        let otherCreator = await post("/api/contract/contract", ["organization_id": 1, "name": "x", "sign_time": "2021-11-11", "creator_id": 1], employee)
        XCTAssertEqual(otherCreator.status, 403)
        let otherEditor = await post("/api/contract/contract", ["contract_id": .int(id), "editor_id": 1], employee)
        XCTAssertEqual(otherEditor.status, 403)
        let notTheirs = await post("/api/contract/contract", ["organization_id": 1, "name": "y", "sign_time": "2021-11-11", "creator_id": 4], admin)
        XCTAssertEqual(notTheirs.status, 200, "administrators name any creator")
        let notTheirsID = try XCTUnwrap(notTheirs.body["data"]?["id"]?.intValue)
        let foreign = await post("/api/contract/contract", ["contract_id": .int(notTheirsID), "note": "mine now"], employee)
        XCTAssertEqual(foreign.status, 403, "employees change only contracts they created")
        let deleteForeign = await post("/api/contract/delcontract", ["contract_id": .int(notTheirsID)], employee)
        XCTAssertEqual(deleteForeign.status, 403)

        func row() async throws -> JSON {
            let list = await tester.call(path: "/api/contract/contract", params: ["start_time": "2021-01-01", "end_time": "2022-01-01", "status": "all"], caller: admin)
            return try XCTUnwrap(list.body["data"]?.arrayValue?.first { $0["id"]?.intValue == id })
        }
        var current = try await row()
        XCTAssertEqual(current["amount"]?.stringValue, "112.00")
        XCTAssertEqual(current["remit_amount"], .null)
        XCTAssertEqual(current["creator_id"]?.intValue, 2)
        XCTAssertEqual(current["editor_id"], .null, "nobody edited it yet")
        XCTAssertEqual(current["follower"], ["tom ai", "admin"])
        XCTAssertEqual(current["follower_ids"], [2, 1])

        let updated = await post("/api/contract/contract", ["contract_id": .int(id), "remit_amount": 0.1], employee)
        XCTAssertEqual(updated.status, 200, "\(updated.body)")
        current = try await row()
        XCTAssertEqual(current["editor_id"]?.intValue, 2, "the caller by default")
        XCTAssertEqual(current["remit_amount"]?.stringValue, "0.10")
        XCTAssertEqual(current["amount"]?.stringValue, "112.00", "not sent: kept")
        _ = await post("/api/contract/contract", ["contract_id": .int(id), "amount": "", "editor_id": 4], admin)
        current = try await row()
        XCTAssertEqual(current["amount"], .null, "an empty value clears")
        XCTAssertEqual(current["editor_id"]?.intValue, 4, "administrators name the editor")

        let deleted = await post("/api/contract/delcontract", ["contract_id": .int(id)], employee)
        XCTAssertEqual(deleted.body["msg"]?.stringValue, "删除成功")
        current = try await row()
        XCTAssertEqual(current["status"]?.intValue, -1)
    }

    func testWindowTotalsFromDayCountsMatchRowCounts() async throws {
        // Contracts over three days and both statuses; totals over windows with and without edges.
        var ids: [Int64] = []
        for (i, time) in ["2021-03-01 00:00:00", "2021-03-01 12:00:00", "2021-03-02 08:00:00", "2021-03-02 23:59:59", "2021-03-03 00:00:00",
                          "2021-03-03 18:00:00", "2021-03-04 09:00:00"].enumerated() {
            let created = await post("/api/contract/contract", ["organization_id": 1, "name": .string("c\(i)"), "sign_time": .string(time)], admin)
            ids.append(try XCTUnwrap(created.body["data"]?["id"]?.intValue))
        }
        _ = await post("/api/contract/delcontract", ["contract_id": .int(ids[2])], admin)
        _ = await post("/api/contract/contract", ["contract_id": .int(ids[6]), "sign_time": "2021-03-02 10:00:00"], admin)
        for (start, end, status, expected) in [
            ("2021-03-01", "2021-03-05", "0", 6), ("2021-03-01", "2021-03-05", "all", 7), ("2021-03-01", "2021-03-05", "-1", 1),
            ("2021-03-01 12:00:00", "2021-03-03 00:00:00", "0", 4), ("2021-03-01 12:00:01", "2021-03-02 23:59:58", "0", 1),
            ("2021-03-02", "2021-03-02 23:59:59", "all", 3), ("2021-03-03 00:00:01", "2021-03-10", "0", 1),
        ] as [(String, String, String, Int64)] {
            let list = await tester.call(path: "/api/contract/contract", params: ["start_time": .string(start), "end_time": .string(end), "status": .string(status)], caller: admin)
            XCTAssertEqual(list.body["page_info"]?["total"]?.intValue, expected, "\(start)…\(end) status \(status)")
            XCTAssertEqual(Int64(list.body["data"]?.arrayValue?.count ?? -1), expected)
        }
    }

    /// Unit counts against the rows themselves, for random windows (a minute to four months)
    /// over half a year.
    func testWindowTotalsAcrossMonthsMatchTheRows() async throws {
        var generator = SystemRandomNumberGenerator()
        var signed: [(id: Int64, time: String, status: Int64)] = []
        let base = "2021-01-01 00:00:00"
        // Some rows crowd into a few minutes, so windows also cut through busy minutes and hours.
        let busy = (0..<4).map { _ in Int64.random(in: 0..<(181 * 86_400), using: &generator) }
        for i in 0..<160 {
            let offset = i % 3 == 0 ? busy[i % 4] + Int64.random(in: 0..<90, using: &generator) : Int64.random(in: 0..<(181 * 86_400), using: &generator)
            let time = Timestamp.shift(base, seconds: offset) ?? base
            let created = await post("/api/contract/contract", ["organization_id": 1, "name": .string("c\(i)"), "sign_time": .string(time)], admin)
            signed.append((try XCTUnwrap(created.body["data"]?["id"]?.intValue), time, 0))
        }
        for i in stride(from: 0, to: signed.count, by: 7) {
            _ = await post("/api/contract/delcontract", ["contract_id": .int(signed[i].id)], admin)
            signed[i].status = -1
        }
        for i in stride(from: 3, to: signed.count, by: 11) {
            let moved = Timestamp.shift(base, seconds: Int64.random(in: 0..<(181 * 86_400), using: &generator)) ?? base
            _ = await post("/api/contract/contract", ["contract_id": .int(signed[i].id), "sign_time": .string(moved)], admin)
            signed[i].time = moved
        }
        for round in 0..<80 {
            let near: Int64 = round % 2 == 0 ? busy[(round / 2) % 4] + Int64.random(in: -4000..<4000, using: &generator)
                : Int64.random(in: -86_400..<(183 * 86_400), using: &generator)
            let a = Timestamp.shift(base, seconds: near) ?? base
            let spans: [Int64] = [60, 3_600, 86_400, 40 * 86_400, 120 * 86_400]
            let span = spans[round % 5]
            let b = Timestamp.shift(a, seconds: Int64.random(in: 0..<span, using: &generator)) ?? a
            for (status, statuses) in [("0", [Int64(0)]), ("-1", [-1]), ("all", [0, -1])] {
                let expected = signed.filter { $0.time >= a && $0.time <= b && statuses.contains($0.status) }.count
                let list = await tester.call(path: "/api/contract/contract", params: ["start_time": .string(a), "end_time": .string(b), "status": .string(status), "count": 1],
                                             caller: admin)
                XCTAssertEqual(list.body["page_info"]?["total"]?.intValue, Int64(expected), "\(a)…\(b) status \(status)")
            }
        }
    }
}
