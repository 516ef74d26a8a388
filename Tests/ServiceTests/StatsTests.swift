#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// StatsService through the gateway and the real processes: the three statistics' shapes,
/// windows, `organization_ids` forms and paging; creates, updates (another organization, out
/// of the window) and deletions reflected shortly after they are acknowledged; the same
/// answers rebuilt from the producers' event logs after `stats.sqlite` is deleted; answers
/// while ContractService and RecordService are stopped.
final class StatsTests: SystemTestCase {
    static func daysAgo(_ days: Int64, _ extraSeconds: Int64 = 0) -> String {
        Timestamp.shift(Timestamp.now(), seconds: -days * 86_400 + extraSeconds) ?? ""
    }

    /// A time for a query string.
    static func query(_ time: String) -> String { time.replacingOccurrences(of: " ", with: "%20") }

    func created(_ response: HTTPTestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> Int64 {
        guard response.status == 200, let id = response.json["data"]?["id"]?.intValue else {
            XCTFail("expected a created id: \(response.status) \(response.text)", file: file, line: line)
            throw HarnessError("create: \(response.text)")
        }
        return id
    }

    func ok(_ response: HTTPTestResponse, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, 200, response.text, file: file, line: line)
        XCTAssertEqual(response.json["status"]?.intValue, 0, response.text, file: file, line: line)
    }

    func organization(_ token: String) throws -> Int64 {
        try created(system.post("/api/customers/organization", json: ["groupName": .string("统计-\(UInt32.random(in: 0...UInt32.max))")], token: token))
    }

    func contract(_ token: String, organization: Int64, signed: String, amount: JSON) throws -> Int64 {
        try created(system.post("/api/contract/contract", json: ["organization_id": .int(organization), "name": "合同", "sign_time": .string(signed),
                                                                 "amount": amount], token: token))
    }

    func potential(_ token: String, organization: Int64) throws -> Int64 {
        try created(system.post("/api/record/potential", json: ["organization_id": .int(organization), "director_id": 1,
                                                                "record_time": .string(Timestamp.now())], token: token))
    }

    func follow(_ token: String, potential: Int64, at time: String) throws -> Int64 {
        try created(system.post("/api/record/follow", json: ["protent_id": .int(potential), "follower_id": [1], "record_time": .string(time)], token: token))
    }

    func demand(_ token: String, organization: Int64, at time: String) throws -> Int64 {
        try created(system.post("/api/record/demand", json: ["organization_id": .int(organization), "follower_id": [1], "record_time": .string(time),
                                                             "content": "需求"], token: token))
    }

    /// The rows of a statistic (either shape) and its page figures.
    func stats(_ target: String, _ token: String, file: StaticString = #filePath, line: UInt = #line) throws -> (rows: [JSON], page: JSON?) {
        let response = try system.get(target, token: token)
        ok(response, file: file, line: line)
        let data = response.json["data"]?.arrayValue ?? []
        if target.hasPrefix("/api/stats/sign") {
            return (data, response.json["page_info"])
        }
        XCTAssertEqual(data.count, 2, "nested [[rows], page]: \(response.text)", file: file, line: line)
        XCTAssertNil(response.json["page_info"], file: file, line: line)
        return (data.first?.arrayValue ?? [], data.last)
    }

    /// Waits (up to 5 s: statistics reflect a write within one second) until `target` answers `expected` rows.
    func expect(_ target: String, _ token: String, _ expected: [JSON], file: StaticString = #filePath, line: UInt = #line) throws {
        var last: [JSON] = []
        let reached = try eventually(timeout: 5) {
            last = try stats(target, token, file: file, line: line).rows
            return last == expected
        }
        XCTAssertTrue(reached, "\(target): \(last) is not \(expected)", file: file, line: line)
    }

    func sign(_ organization: Int64, _ amount: String, _ count: Int64, _ first: String) -> JSON {
        ["organization_id": .int(organization), "sign_amount": .string(amount), "sign_count": .int(count), "min_sign_time": .string(first)]
    }

    func testEveryStatisticReflectsCreatesUpdatesAndDeletions() throws {
        let admin = try system.login()
        let a = try organization(admin), b = try organization(admin)
        let ids = "organization_ids=\(a),\(b)"
        let t1 = Self.daysAgo(3), t2 = Self.daysAgo(2), t3 = Self.daysAgo(1), old = Self.daysAgo(10)

        // Contracts: amounts exact, a null amount counts as 0.00; ordered by earliest signing, newest first.
        let c1 = try contract(admin, organization: a, signed: t1, amount: "100.50")
        let c2 = try contract(admin, organization: a, signed: t2, amount: 200)
        let c3 = try contract(admin, organization: b, signed: t3, amount: .null)
        _ = try contract(admin, organization: a, signed: old, amount: "1")
        try expect("/api/stats/sign?\(ids)", admin, [sign(b, "0.00", 1, t3), sign(a, "300.50", 2, t1)])
        let page = try stats("/api/stats/sign?\(ids)&count=1&page=2", admin)
        XCTAssertEqual(page.rows, [sign(a, "300.50", 2, t1)])
        XCTAssertEqual(page.page, ["total": 2, "page": 2, "count": 1])
        // The window: the default week leaves the contract of ten days ago out, a wider one counts it.
        try expect("/api/stats/sign?\(ids)&start_time=\(Self.query(Self.daysAgo(11)))", admin, [sign(b, "0.00", 1, t3), sign(a, "301.50", 3, old)])
        try expect("/api/stats/sign?\(ids)&start_time=\(Self.query(t2))&end_time=\(Self.query(t3))", admin, [sign(b, "0.00", 1, t3), sign(a, "200.00", 1, t2)])
        // Strictly between t1 and t2 (from their own texts: "now" has moved on since they were made).
        let afterT1 = try XCTUnwrap(Timestamp.shift(t1, seconds: 1)), beforeT2 = try XCTUnwrap(Timestamp.shift(t2, seconds: -1))
        try expect("/api/stats/sign?\(ids)&start_time=\(Self.query(afterT1))&end_time=\(Self.query(beforeT2))", admin, [])

        // Every array form of organization_ids.
        for form in ["organization_ids=\(a)", "organization_ids=%5B\(a)%5D", "organization_ids=\(a)&organization_ids=\(a)", "organization_ids%5B%5D=\(a)"] {
            XCTAssertEqual(try stats("/api/stats/sign?\(form)", admin).rows, [sign(a, "300.50", 2, t1)], form)
        }
        XCTAssertEqual(try stats("/api/stats/sign?organization_ids=%5B\(a),\(b)%5D", admin).rows.count, 2)
        XCTAssertEqual(try stats("/api/stats/sign?organization_ids=\(a)&organization_ids%5B%5D=\(b)", admin).rows.count, 2)

        // Updates: to another organization, then out of the window; a deletion; a restore.
        ok(try system.post("/api/contract/contract", json: ["contract_id": .int(c1), "organization_id": .int(b)], token: admin))
        try expect("/api/stats/sign?\(ids)", admin, [sign(a, "200.00", 1, t2), sign(b, "100.50", 2, t1)])
        ok(try system.post("/api/contract/contract", json: ["contract_id": .int(c2), "sign_time": .string(Self.daysAgo(30))], token: admin))
        try expect("/api/stats/sign?\(ids)", admin, [sign(b, "100.50", 2, t1)])
        ok(try system.post("/api/contract/delcontract", json: ["contract_id": .int(c3)], token: admin))
        try expect("/api/stats/sign?\(ids)", admin, [sign(b, "100.50", 1, t1)])
        ok(try system.post("/api/contract/delcontract", json: ["contract_id": .int(c3), "status": 0], token: admin))
        try expect("/api/stats/sign?\(ids)", admin, [sign(b, "100.50", 2, t1)])

        // Follow-up records: the organization of their potential record; most first.
        let pa = try potential(admin, organization: a), pb = try potential(admin, organization: b)
        let f1 = try follow(admin, potential: pa, at: t2)
        _ = try follow(admin, potential: pa, at: t1)
        _ = try follow(admin, potential: pa, at: t3)
        let f4 = try follow(admin, potential: pb, at: t3)
        func followRow(_ organization: Int64, _ count: Int64, _ first: String) -> JSON {
            ["organization_id": .int(organization), "follow_count": .int(count), "min_sign_time": .string(first)]
        }
        try expect("/api/stats/follow?\(ids)", admin, [followRow(a, 3, t1), followRow(b, 1, t3)])
        let nested = try stats("/api/stats/follow?\(ids)", admin)
        XCTAssertEqual(nested.page, ["total": 2, "page": 1, "count": 20])
        ok(try system.post("/api/record/follow", json: ["follow_id": .int(f1), "protent_id": .int(pb)], token: admin))
        try expect("/api/stats/follow?\(ids)", admin, [followRow(a, 2, t1), followRow(b, 2, t2)])
        ok(try system.post("/api/record/delfollow", json: ["follow_id": .int(f4)], token: admin))
        try expect("/api/stats/follow?\(ids)", admin, [followRow(a, 2, t1), followRow(b, 1, t2)])
        // A potential record moving to another organization takes its follow-up records along.
        ok(try system.post("/api/record/potential", json: ["potent_id": .int(pa), "organization_id": .int(b)], token: admin))
        try expect("/api/stats/follow?\(ids)", admin, [followRow(b, 3, t1)])

        // Demand changes.
        let d1 = try demand(admin, organization: b, at: t1)
        _ = try demand(admin, organization: b, at: t2)
        _ = try demand(admin, organization: a, at: t3)
        func demandRow(_ organization: Int64, _ count: Int64, _ first: String) -> JSON {
            ["organization_id": .int(organization), "demand_count": .int(count), "m_recordTime": .string(first)]
        }
        try expect("/api/stats/demand?\(ids)", admin, [demandRow(b, 2, t1), demandRow(a, 1, t3)])
        ok(try system.post("/api/record/deldemand", json: ["demand_id": .int(d1)], token: admin))
        try expect("/api/stats/demand?\(ids)", admin, [demandRow(a, 1, t3), demandRow(b, 1, t2)])
        ok(try system.post("/api/record/demand", json: ["demand_id": .int(d1 + 1), "record_time": .string(old)], token: admin))
        try expect("/api/stats/demand?\(ids)", admin, [demandRow(a, 1, t3)])

        // Bad parameters name themselves; a courier may read statistics.
        for target in ["/api/stats/sign?organization_ids=x", "/api/stats/demand?start_time=2021-02-30", "/api/stats/follow?start_time=2021-02-02&end_time=2021-02-01"] {
            let refused = try system.get(target, token: admin)
            XCTAssertEqual(refused.status, 400, "\(target): \(refused.text)")
            XCTAssertEqual(refused.json["status"]?.intValue, 1)
        }
    }

    /// Every statistic over every organization and a wide window, as answered now.
    func everything(_ token: String) throws -> [JSON] {
        try ["sign", "demand", "follow"].map { name in
            let response = try system.get("/api/stats/\(name)?start_time=2000-01-01&end_time=2100-01-01&count=100", token: token)
            ok(response)
            return response.json
        }
    }

    /// Some history: creates, an update to another organization, a deletion.
    func writeHistory(_ admin: String) throws {
        let a = try organization(admin), b = try organization(admin)
        let c = try contract(admin, organization: a, signed: Self.daysAgo(400), amount: "12.34")
        _ = try contract(admin, organization: b, signed: Self.daysAgo(1), amount: 5)
        ok(try system.post("/api/contract/contract", json: ["contract_id": .int(c), "organization_id": .int(b)], token: admin))
        let p = try potential(admin, organization: a)
        let f = try follow(admin, potential: p, at: Self.daysAgo(5))
        _ = try follow(admin, potential: p, at: Self.daysAgo(70))
        ok(try system.post("/api/record/delfollow", json: ["follow_id": .int(f)], token: admin))
        _ = try demand(admin, organization: b, at: Self.daysAgo(2))
    }

    func testDeletingTheDatabaseRebuildsTheSameAnswersFromTheEventLogs() throws {
        let admin = try system.login()
        try writeHistory(admin)
        // Settled: two reads a moment apart agree, and the history shows.
        var before: [JSON] = []
        XCTAssertTrue(try eventually(timeout: 5, interval: 0.2) {
            let now = try everything(admin)
            defer { before = now }
            return now == before && (now[0]["page_info"]?["total"]?.intValue ?? 0) > 0
        })
        let launcher = try XCTUnwrap(launcherPID())
        let old = try XCTUnwrap(system.childPID("StatsService"))
        // The launcher is stopped so that it restarts StatsService only once the file is gone.
        kill(launcher, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(launcher, SIGCONT) } }
        kill(old, SIGKILL)
        XCTAssertTrue(SystemHarness.waitForState(old, "Z"), "StatsService died")
        let path = "\(try system.dataDir)/stats.sqlite"
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        kill(launcher, SIGCONT)
        resumed = true
        XCTAssertNotNil(try system.waitForRestart("StatsService", old: old))
        var after: [JSON] = []
        XCTAssertTrue(try eventually(timeout: 20, interval: 0.1) {
            after = try everything(admin)
            return after == before
        }, "rebuilt: \(after) is not \(before)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "a new stats.sqlite")
    }

    func testStatisticsAnswerWhileTheProducersAreStopped() throws {
        let admin = try system.login()
        try writeHistory(admin)
        var before: [JSON] = []
        XCTAssertTrue(try eventually(timeout: 5, interval: 0.2) {
            let now = try everything(admin)
            defer { before = now }
            return now == before && (now[2]["data"]?.arrayValue?.first?.arrayValue?.count ?? 0) > 0
        })
        let producers = try ["ContractService", "RecordService"].map { try XCTUnwrap(system.childPID($0)) }
        for pid in producers { kill(pid, SIGSTOP) }
        defer { for pid in producers { kill(pid, SIGCONT) } }
        XCTAssertEqual(try everything(admin), before)
    }

    /// The launcher: the parent of the gateway.
    func launcherPID() throws -> pid_t? {
        guard let gateway = try system.childPID("Gateway"),
              let stat = try? String(contentsOfFile: "/proc/\(gateway)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }
}
