#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// CustomerService through the gateway: organizations, customers, search, paging, permissions.
final class CustomerTests: SystemTestCase {

    static func unique(_ prefix: String) -> String { "\(prefix)\(UInt32.random(in: 0...UInt32.max))" }

    func createOrganization(_ token: String, _ body: JSON) throws -> Int64 {
        let response = try system.post("/api/customers/organization", json: body, token: token)
        guard response.status == 200, let id = response.json["data"]?["id"]?.intValue else { throw HarnessError("organization: \(response.text)") }
        return id
    }

    func createCustomer(_ token: String, _ body: JSON) throws -> Int64 {
        let response = try system.post("/api/customers/customers", json: body, token: token)
        guard response.status == 200, let id = response.json["data"]?["id"]?.intValue else { throw HarnessError("customer: \(response.text)") }
        return id
    }

    func list(_ path: String, _ token: String) throws -> (ids: [Int64], rows: [JSON], total: Int64?) {
        let response = try system.get(path, token: token)
        XCTAssertEqual(response.status, 200, "\(path): \(response.text)")
        let rows = response.json["data"]?.arrayValue ?? []
        return (rows.compactMap { $0["id"]?.intValue }, rows, response.json["page_info"]?["total"]?.intValue)
    }

    /// An employee (role 2) or courier (role 3) with a session.
    func login(role: Int64) throws -> (id: Int64, token: String) {
        let admin = try system.login()
        let phone = "136\(UInt32.random(in: 10_000_000...99_999_999))"
        let created = try system.post("/api/user/user", json: ["phoneNumber": .string(phone), "group_id": [1], "role_id": .int(role), "password": "password-123"], token: admin)
        guard let id = created.json["data"]?["id"]?.intValue else { throw HarnessError("employee: \(created.text)") }
        return (id, try system.login(phone, "password-123"))
    }

    // MARK: Organizations

    func testOrganizationFieldsDefaultsAndUpdates() throws {
        let admin = try system.login()
        let name = Self.unique("国务院-")
        let id = try createOrganization(admin, [
            "groupName": .string(name), "groupDetail": "中南海", "type": 2, "provience": "北京市", "city": "北京市", "county": "房山区",
            "address": "x路1号", "note": "备注", "legal_person": "张三", "register_capital": "100万", "registerDate": "2020-12-12",
            "website": "https://example.com",
        ])
        let row = try XCTUnwrap(list("/api/customers/organization?organization_name=\(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")", admin).rows.first)
        XCTAssertEqual(row.objectValue?.keys, ["id", "groupName", "groupDetail", "type", "provience", "city", "county", "address", "legal_person",
                                               "register_capital", "registerDate", "website", "creator_id", "createTime", "updateTime", "status", "note"])
        XCTAssertEqual(row["id"]?.intValue, id)
        XCTAssertEqual(row["groupName"]?.stringValue, name)
        XCTAssertEqual(row["type"]?.intValue, 2)
        XCTAssertEqual(row["registerDate"]?.stringValue, "2020-12-12")
        XCTAssertEqual(row["creator_id"]?.intValue, 1, "defaults to the caller")
        XCTAssertEqual(row["status"]?.intValue, 1, "new organizations start as following (1)")

        // Updates change only what is sent.
        XCTAssertEqual(try system.post("/api/customers/organization", json: ["organization_id": .int(id), "city": "天津市"], token: admin).status, 200)
        let updated = try XCTUnwrap(list("/api/customers/organization?status=all&count=100", admin).rows.first { $0["id"]?.intValue == id })
        XCTAssertEqual(updated["city"]?.stringValue, "天津市")
        XCTAssertEqual(updated["groupName"]?.stringValue, name)
        XCTAssertEqual(updated["legal_person"]?.stringValue, "张三")

        for (body, field, status) in [
            (["groupDetail": "x"] as JSON, "groupName", 400),
            (["groupName": "x", "registerDate": "2020-02-30"], "registerDate", 400),
            (["organization_id": 999_999, "city": "x"], "organization_id", 404),
            (["organization_id": .int(id), "groupName": ""], "groupName", 400),
        ] as [(JSON, String, Int)] {
            let response = try system.post("/api/customers/organization", json: body, token: admin)
            XCTAssertEqual(response.status, status, "\(body.jsonString): \(response.text)")
            XCTAssertTrue(response.json["msg"]?.stringValue?.contains(field) ?? false, response.text)
        }
    }

    /// Length limits count Unicode scalars over HTTP too: combining marks count, emoji count once.
    func testTextLimitsCountUnicodeScalars() throws {
        let token = try system.login()
        let stacked = "a" + String(repeating: "\u{0301}", count: 1000)
        let refused = try system.post("/api/customers/customers", json: ["realName": .string(CustomerTests.unique("marks")), "nickName": .string(stacked)], token: token)
        XCTAssertEqual(refused.status, 400, refused.text)
        XCTAssertEqual(refused.json["msg"]?.stringValue, "nickName is longer than 1000 characters")

        let name = CustomerTests.unique("emoji")
        let emoji = String(repeating: "\u{1F600}", count: 1000)
        _ = try createCustomer(token, ["realName": .string(name), "nickName": .string(emoji)])
        let rows = try list("/api/customers/customers?name=\(name)", token).rows
        XCTAssertEqual(rows.first?["nickName"]?.stringValue, emoji, "1000 four-byte scalars are stored whole")
    }

    func testOrganizationStatusFilterAndCreatorFilter() throws {
        let admin = try system.login()
        let employee = try login(role: 2)
        let tag = Self.unique("状态")
        var ids: [Int64: Int64] = [:]
        for status in [Int64(-1), 0, 1, 2, 3] {
            let id = try createOrganization(employee.token, ["groupName": .string("\(tag)-\(status)")])
            ids[status] = id
            if status != 1 {
                let changed = try system.post("/api/customers/delorganization", json: ["organization_id": .int(id), "status": .int(status)], token: employee.token)
                XCTAssertEqual(changed.status, 200, changed.text)
            }
        }
        let query = "/api/customers/organization?organization_name=\(tag.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
        XCTAssertEqual(try list(query, admin).ids, [ids[1]!], "default: following (1)")
        for status in [Int64(-1), 0, 2, 3] {
            XCTAssertEqual(try list(query + "&status=\(status)", admin).ids, [ids[status]!])
        }
        let all = try list(query + "&status=all", admin)
        XCTAssertEqual(all.ids, [ids[3]!, ids[2]!, ids[1]!, ids[0]!, ids[-1]!], "newest first")
        XCTAssertEqual(all.total, 5)
        XCTAssertEqual(try system.get(query + "&status=4", token: admin).status, 400)
        // creator_id, with counted totals matching the rows.
        let byCreator = try list("/api/customers/organization?creator_id=\(employee.id)&status=all&count=100", admin)
        XCTAssertEqual(Set(byCreator.ids), Set(ids.values))
        XCTAssertEqual(byCreator.total, 5)
        let byCreatorFollowing = try list("/api/customers/organization?creator_id=\(employee.id)", admin)
        XCTAssertEqual(byCreatorFollowing.total, 1)
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["organization_id": .int(ids[1]!)], token: admin).status, 400, "status is required")
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["status": -1], token: admin).status, 400, "organization_id is required")
    }

    // MARK: Customers

    func testCustomerFieldsOrganizationsAndFilters() throws {
        let admin = try system.login()
        let orgA = try createOrganization(admin, ["groupName": .string(Self.unique("工信部-"))])
        let orgB = try createOrganization(admin, ["groupName": .string(Self.unique("发改委-"))])
        let phone = Self.unique("1")
        let id = try createCustomer(admin, [
            "realName": "Jerry", "nickName": "小杰", "avatar": "www.baidu.com", "phoneNumber": .string(phone), "job": 3, "sex": 1,
            "cid": "c1", "openId": "o1", "level": 2, "isVip": 1, "isSenior": 0, "vipDueTime": "2030-01-01 00:00:00",
            "navigationDueTime": "2030-01-02", "note": "n", "legal_person": "lp", "register_capital": "10", "registerDate": "2021-01-01",
            "website": "w", "organization_id": .string("[\(orgB),\(orgA)]"), "type": "vip",
        ])
        let row = try XCTUnwrap(list("/api/customers/customers?phoneNumber=\(phone)", admin).rows.first)
        XCTAssertEqual(row.objectValue?.keys, ["id", "type", "nickName", "realName", "avatar", "phoneNumber", "job", "sex", "cid", "openId", "level",
                                               "isVip", "isSenior", "vipDueTime", "navigationDueTime", "createTime", "updateTime", "status", "note",
                                               "legal_person", "register_capital", "registerDate", "website", "creator_id", "organization_name",
                                               "organization_ids"])
        XCTAssertEqual(row["id"]?.intValue, id)
        XCTAssertEqual(row["organization_ids"], .array([.int(orgB), .int(orgA)]), "in the order given")
        XCTAssertEqual(row["organization_name"]?.arrayValue?.count, 2)
        XCTAssertEqual(row["navigationDueTime"]?.stringValue, "2030-01-02 00:00:00")
        XCTAssertEqual(row["creator_id"]?.intValue, 1)
        XCTAssertNil(row["password"])
        XCTAssertNil(row["session"])

        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)", admin).ids, [id])
        let count = try list("/api/customers/customers?organization_id=\(orgA)", admin).total
        XCTAssertEqual(count, 1)
        // Deleted customers are hidden unless asked for, and counts follow.
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(id)], token: admin).status, 200)
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)", admin).ids, [])
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)", admin).total, 0)
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)&status=-1", admin).ids, [id])
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)&status=all", admin).total, 1)
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(id), "status": 1], token: admin).status, 200)
        // Moving the customer to another organization moves the count too.
        XCTAssertEqual(try system.post("/api/customers/customers", json: ["customer_id": .int(id), "organization_id": .int(orgB)], token: admin).status, 200)
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgA)", admin).total, 0)
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgB)", admin).total, 1)
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(orgB)", admin).rows.first?["realName"]?.stringValue, "Jerry")
        // Clearing fields: NULL, or the default for fields that always have a value.
        let cleared = try system.post("/api/customers/customers", json: ["customer_id": .int(id), "note": nil, "sex": "", "isVip": nil, "level": ""], token: admin)
        XCTAssertEqual(cleared.status, 200, cleared.text)
        let after = try XCTUnwrap(list("/api/customers/customers?organization_id=\(orgB)", admin).rows.first)
        XCTAssertEqual(after["note"], .null)
        XCTAssertEqual(after["sex"]?.intValue, 3)
        XCTAssertEqual(after["isVip"]?.intValue, 0)
        XCTAssertEqual(after["level"]?.intValue, 0)
        XCTAssertEqual(after["phoneNumber"]?.stringValue, phone, "fields not sent stay")

        for (body, field, status) in [
            (["nickName": "x"] as JSON, "realName", 400),
            (["realName": "x", "organization_id": [999_999]], "999999", 400),
            (["realName": "x", "sex": 5], "sex", 400),
            (["realName": "x", "vipDueTime": "2030-01-01 25:00:00"], "vipDueTime", 400),
            (["customer_id": 999_999, "note": "x"], "customer_id", 404),
        ] as [(JSON, String, Int)] {
            let response = try system.post("/api/customers/customers", json: body, token: admin)
            XCTAssertEqual(response.status, status, "\(body.jsonString): \(response.text)")
            XCTAssertTrue(response.json["msg"]?.stringValue?.contains(field) ?? false, response.text)
        }
        // A deleted organization cannot be linked.
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["organization_id": .int(orgA), "status": -1], token: admin).status, 200)
        let linkDeleted = try system.post("/api/customers/customers", json: ["realName": "y", "organization_id": .int(orgA)], token: admin)
        XCTAssertEqual(linkDeleted.status, 400)
    }

    func testFuzzySearchMatchesExactlyAsTyped() throws {
        let admin = try system.login()
        let tag = Self.unique("t")
        let org = try createOrganization(admin, ["groupName": .string("\(tag) 100%_Org' OR 1=1 --")])
        let other = try createOrganization(admin, ["groupName": .string("\(tag) 1000 Org")])
        let percent = try createCustomer(admin, ["realName": .string("\(tag)-50%_off"), "organization_id": .int(org)])
        let plain = try createCustomer(admin, ["realName": .string("\(tag)-50x off"), "nickName": "MiXeD", "organization_id": .int(other)])
        let chinese = try createCustomer(admin, ["realName": .string("\(tag)-张三丰"), "nickName": "张三"])
        let quote = try createCustomer(admin, ["realName": .string("\(tag)-' OR 1=1 --")])

        func search(_ key: String, _ text: String) throws -> [Int64] {
            let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            return try list("/api/customers/customers?\(key)=\(encoded)&count=100", admin).ids
        }
        XCTAssertEqual(try search("name", "\(tag)-50%_"), [percent], "% and _ match themselves")
        XCTAssertEqual(try search("name", "\(tag)-50%"), [percent])
        XCTAssertEqual(try search("name", "\(tag)-50_"), [], "_ is not a wildcard")
        XCTAssertEqual(try search("name", "\(tag)-50"), [plain, percent])
        XCTAssertEqual(try search("name", "\(tag)-' OR 1=1 --"), [quote], "quotes are just text")
        XCTAssertEqual(try search("name", "mixed"), [plain], "case-insensitive, on nickName too")
        XCTAssertEqual(try search("name", "MIXED"), [plain])
        XCTAssertEqual(try search("name", "\(tag)-张三"), [chinese])
        XCTAssertTrue(try search("name", "张三").contains(chinese), "two Chinese characters")
        XCTAssertTrue(try search("name", "丰").contains(chinese), "one character")
        XCTAssertEqual(try search("name", "\(tag)-张三丰x"), [])
        XCTAssertEqual(try search("organization_name", "\(tag) 100%_"), [percent])
        XCTAssertEqual(try search("organization_name", "\(tag) 100"), [plain, percent])
        XCTAssertEqual(try search("organization_name", "\(tag) 100_"), [])
        XCTAssertEqual(try search("organization_name", "' or 1=1"), [percent], "case-insensitive, quotes literal")
        let orgs = try list("/api/customers/organization?organization_name=\("\(tag) 100%".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")", admin)
        XCTAssertEqual(orgs.ids, [org])
        XCTAssertEqual(orgs.total, 1)
        // Renaming updates the search.
        XCTAssertEqual(try system.post("/api/customers/customers", json: ["customer_id": .int(chinese), "realName": .string("\(tag)-李四")], token: admin).status, 200)
        XCTAssertEqual(try search("name", "\(tag)-张三"), [])
        XCTAssertEqual(try search("name", "\(tag)-李四"), [chinese])
        XCTAssertTrue(try search("name", "张三").contains(chinese), "still found by nickName")
        XCTAssertEqual(try system.post("/api/customers/customers", json: ["customer_id": .int(chinese), "nickName": ""], token: admin).status, 200)
        XCTAssertFalse(try search("name", "张三").contains(chinese), "a cleared nickName is no longer searched")
        XCTAssertEqual(try search("name", "\(tag)-李四"), [chinese])
    }

    func testSearchFollowsStatusOnEveryPath() throws {
        let admin = try system.login()
        // Four random CJK characters: a query this short is answered from the index alone.
        let word = String((0..<4).map { _ in Character(Unicode.Scalar(UInt32.random(in: 0x4E00...0x9FA5))!) })
        let kept = try createCustomer(admin, ["realName": .string(word + "甲")])
        let deleted = try createCustomer(admin, ["realName": .string("乙" + word)])
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(deleted)], token: admin).status, 200)
        func search(_ query: String, _ extra: String = "") throws -> [Int64] {
            try list("/api/customers/customers?name=\(query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")\(extra)&count=100", admin).ids
        }
        for query in [word, String(word.prefix(2)), word + "甲", "乙" + word] {
            let expectedLive = query.hasPrefix("乙") ? [] : [kept]
            let expectedDeleted = query.hasSuffix("甲") ? [] : [deleted]
            XCTAssertEqual(try search(query), expectedLive, query)
            XCTAssertEqual(try search(query, "&status=-1"), expectedDeleted, query)
            XCTAssertEqual(try search(query, "&status=all"), (expectedDeleted + expectedLive).sorted(by: >), query)
            // With another filter the rows are joined: same answers.
            XCTAssertEqual(try search(query, "&creator_id=1"), expectedLive, query)
            XCTAssertEqual(try search(query, "&creator_id=1&status=all"), (expectedDeleted + expectedLive).sorted(by: >), query)
        }
        // Rows a page showed are kept while the data is unchanged; the restore changes them.
        let everyStatus = "/api/customers/customers?name=\(word.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&status=all"
        let before = try list(everyStatus, admin).rows
        XCTAssertEqual(try list(everyStatus, admin).rows, before)
        XCTAssertEqual(before.first { $0["id"]?.intValue == deleted }?["status"], -1)
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(deleted), "status": 1], token: admin).status, 200)
        XCTAssertEqual(try search(word), [deleted, kept], "restored rows are found again")
        XCTAssertEqual(try list(everyStatus, admin).rows.first { $0["id"]?.intValue == deleted }?["status"], 1)
    }

    func testPagingNewestFirstWithTotals() throws {
        let admin = try system.login()
        let org = try createOrganization(admin, ["groupName": .string(Self.unique("分页-"))])
        var created: [Int64] = []
        let tag = Self.unique("pg")
        for i in 0..<25 { created.append(try createCustomer(admin, ["realName": .string("\(tag)-\(i)"), "organization_id": .int(org)])) }
        // A search pages the same way, with its own total.
        let searched = try list("/api/customers/customers?name=\(tag)&page=3&count=10", admin)
        XCTAssertEqual(searched.ids, Array(created.reversed().suffix(5)))
        XCTAssertEqual(searched.total, 25)
        let searchedOrgs = try list("/api/customers/customers?name=\(tag)&organization_id=\(org)&page=1&count=10", admin)
        XCTAssertEqual(searchedOrgs.ids, Array(created.reversed().prefix(10)))
        XCTAssertEqual(searchedOrgs.total, 25)
        let first = try list("/api/customers/customers?organization_id=\(org)&page=1&count=10", admin)
        XCTAssertEqual(first.ids, Array(created.reversed().prefix(10)))
        XCTAssertEqual(first.total, 25)
        let third = try list("/api/customers/customers?organization_id=\(org)&page=3&count=10", admin)
        XCTAssertEqual(third.ids, Array(created.reversed().suffix(5)))
        XCTAssertEqual(try list("/api/customers/customers?organization_id=\(org)&page=4&count=10", admin).ids, [])
        let clamped = try system.get("/api/customers/customers?count=1000", token: admin)
        XCTAssertEqual(clamped.json["page_info"]?["count"]?.intValue, 100)
        let all = try list("/api/customers/customers?count=100", admin)
        XCTAssertGreaterThanOrEqual(all.total ?? 0, 25)
    }

    // MARK: Permissions

    func testEmployeesChangeOnlyTheirOwnRowsAndCouriersOnlyRead() throws {
        let admin = try system.login()
        let alice = try login(role: 2)
        let bob = try login(role: 2)
        let courier = try login(role: 3)
        let aliceOrg = try createOrganization(alice.token, ["groupName": .string(Self.unique("alice-"))])
        let aliceCustomer = try createCustomer(alice.token, ["realName": "alice's"])
        // Creator defaults to the caller; another employee cannot change its status.
        XCTAssertEqual(try list("/api/customers/organization?creator_id=\(alice.id)", admin).ids.first, aliceOrg)
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["organization_id": .int(aliceOrg), "status": -1], token: bob.token).status, 403)
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(aliceCustomer)], token: bob.token).status, 403)
        XCTAssertEqual(try system.post("/api/customers/organization", json: ["groupName": "x", "creator_id": .int(alice.id)], token: bob.token).status, 403)
        // The creator and an administrator can.
        XCTAssertEqual(try system.post("/api/customers/delorganization", json: ["organization_id": .int(aliceOrg), "status": 3], token: alice.token).status, 200)
        XCTAssertEqual(try system.post("/api/customers/delcustomer", json: ["customer_id": .int(aliceCustomer)], token: admin).status, 200)
        // Couriers read only.
        XCTAssertEqual(try system.get("/api/customers/customers", token: courier.token).status, 200)
        XCTAssertEqual(try system.get("/api/customers/organization", token: courier.token).status, 200)
        for (path, body) in [("/api/customers/organization", ["groupName": "c"] as JSON), ("/api/customers/customers", ["realName": "c"]),
                             ("/api/customers/delorganization", ["organization_id": .int(aliceOrg), "status": 1]),
                             ("/api/customers/delcustomer", ["customer_id": .int(aliceCustomer)])] {
            XCTAssertEqual(try system.post(path, json: body, token: courier.token).status, 403, path)
        }
        // Nothing changed by the refused requests.
        XCTAssertEqual(try list("/api/customers/organization?status=3&creator_id=\(alice.id)", admin).ids, [aliceOrg])
    }

    func testChangesAreRecordedForOtherServices() throws {
        let admin = try system.login()
        let org = try createOrganization(admin, ["groupName": "事件单位"])
        _ = try system.post("/api/customers/delorganization", json: ["organization_id": .int(org), "status": 2], token: admin)
        let customer = try createCustomer(admin, ["realName": "事件客户", "organization_id": .int(org)])
        let db = try SQLiteConnection(path: try system.dataDir + "/customers.sqlite")
        let orgEvents = try db.query("SELECT state FROM events WHERE type = 'organization' AND entity_id = ? ORDER BY seq", [.int(org)])
            .compactMap { try? JSONParser.parse($0.string(0) ?? "") }
        XCTAssertEqual(orgEvents.map { $0["status"]?.intValue }, [1, 2])
        XCTAssertEqual(orgEvents.first?["groupName"]?.stringValue, "事件单位")
        let customerEvents = try db.query("SELECT state FROM events WHERE type = 'customer' AND entity_id = ?", [.int(customer)])
            .compactMap { try? JSONParser.parse($0.string(0) ?? "") }
        XCTAssertEqual(customerEvents.first?["realName"]?.stringValue, "事件客户")
    }
}
