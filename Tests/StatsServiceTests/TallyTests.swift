import Synchronization
import XCTest
import ServiceKit
@testable import StatsService
import WireProtocol

/// The statistics' read model in process: day numbers and block covers, the blocks kept by
/// events (creates, updates moving rows between organizations and days, deletions, restores)
/// checked against a count of the raw rows for many windows, and the routes' shapes and
/// parameters (`ServiceTester`; the projections' tables filled the way their events fill them).
final class TallyTests: XCTestCase {
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(ServiceDefinition.stats)
        try tester.database.sync { db in
            for projection in tester.definition.projections { try db.execute(projection.schema) }
        }
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    // MARK: Days and blocks

    func testDayNumbersRoundTripAndFollowTheCalendar() {
        XCTAssertEqual(DayBlocks.day("1970-01-01 00:00:00"), 0)
        XCTAssertEqual(DayBlocks.day("1970-01-02"), 1)
        XCTAssertEqual(DayBlocks.day("1969-12-31 23:59:59"), -1)
        XCTAssertEqual(DayBlocks.day("2000-03-01"), DayBlocks.day("2000-02-29").map { $0 + 1 })
        XCTAssertEqual(DayBlocks.day("1900-03-01"), DayBlocks.day("1900-02-28").map { $0 + 1 }, "1900 is not a leap year")
        XCTAssertNil(DayBlocks.day("2020/01/01"))
        XCTAssertNil(DayBlocks.day("2020-13-01"))
        for number in Int64(-719_162)...Int64(-718_000) { XCTAssertEqual(DayBlocks.day(DayBlocks.date(number)), number) }
        for number in stride(from: Int64(-100_000), through: 100_000, by: 7) { XCTAssertEqual(DayBlocks.day(DayBlocks.date(number)), number) }
        XCTAssertEqual(DayBlocks.date(DayBlocks.day("2026-11-29") ?? 0), "2026-11-29")
        XCTAssertEqual(DayBlocks.date(-719_162), "0001-01-01")
        XCTAssertEqual(DayBlocks.stamp("2021-07-26 09:31:33"), 20_210_726_093_133)
        XCTAssertEqual(DayBlocks.time(20_210_726_093_133), "2021-07-26 09:31:33")
        XCTAssertEqual(DayBlocks.time(10_101_000_000), "0001-01-01 00:00:00")
        XCTAssertEqual(DayBlocks.stamp(day: DayBlocks.day("2021-07-26") ?? 0), 20_210_726_000_000)
        XCTAssertNil(DayBlocks.stamp("2021-07-26"))
    }

    func testCoverIsExactAndShort() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let first = Int64.random(in: -5000...5000, using: &rng)
            let last = first + Int64.random(in: 0...4000, using: &rng)
            let runs = DayBlocks.cover(first, last)
            var next = first
            for run in runs {
                for block in run.from...run.to {
                    let days = DayBlocks.days(level: run.level, block: block)
                    XCTAssertEqual(days.first, next, "blocks are contiguous, in order")
                    next = days.last + 1
                }
            }
            XCTAssertEqual(next, last + 1, "the cover ends at the last day")
            XCTAssertLessThanOrEqual(runs.count, 2 * DayBlocks.maxLevel + 1)
        }
    }

    // MARK: The read model against the raw rows

    struct Model {
        var organization: Int64
        var time: String
        var cents: Int64
        var deleted: Bool
    }

    func state(_ m: Model, timeField: String = "sign_time") -> JSONObject {
        JSONObject([("organization_id", .int(m.organization)), (timeField, .string(m.time)), ("amount", .int(m.cents)), ("status", .int(m.deleted ? -1 : 0))])
    }

    func expected(_ models: [Int64: Model], start: String, end: String, organizations: [Int64]?) -> [Tally.Total] {
        var byOrganization: [Int64: Tally.Total] = [:]
        for m in models.values where !m.deleted && m.time >= start && m.time <= end && (organizations?.contains(m.organization) ?? true) {
            let stamp = DayBlocks.stamp(m.time) ?? 0
            var total = byOrganization[m.organization] ?? Tally.Total(organization: m.organization, count: 0, cents: 0, first: stamp)
            total.count += 1
            total.cents += m.cents
            total.first = min(total.first, stamp)
            byOrganization[m.organization] = total
        }
        return byOrganization.values.sorted { $0.first != $1.first ? $0.first > $1.first : $0.organization < $1.organization }
    }

    func testBlocksAgreeWithTheRowsThroughCreatesMovesDeletionsAndRestores() throws {
        let tally = Statistic.sign.tally
        var rng = SystemRandomNumberGenerator()
        let base = DayBlocks.day("2019-01-01") ?? 0
        func randomTime() -> String {
            let day = DayBlocks.date(base + Int64.random(in: 0...1500, using: &rng))
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return day + " 00:00:00"
            case 1: return day + " 23:59:59"
            default:
                let s = Int.random(in: 0..<86_400, using: &rng)
                func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
                return "\(day) \(two(s / 3600)):\(two(s / 60 % 60)):\(two(s % 60))"
            }
        }
        var models: [Int64: Model] = [:]
        for round in 0..<12 {
            let changes: [(Int64, Model)] = (0..<150).map { _ in
                let id = Int64.random(in: 1...400, using: &rng)
                var m = models[id] ?? Model(organization: Int64.random(in: 1...6, using: &rng), time: randomTime(), cents: Int64.random(in: 0...100_000, using: &rng), deleted: false)
                if models[id] != nil {
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: m.organization = Int64.random(in: 1...6, using: &rng)
                    case 1: m.time = randomTime()
                    case 2: m.deleted.toggle()
                    case 3: m.cents = Int64.random(in: 0...100_000, using: &rng)
                    default: break   // the same state again: changes nothing
                    }
                }
                return (id, m)
            }
            try tester.database.sync { db in
                try db.writeTransaction { db in
                    for (id, m) in changes { try tally.apply(db, id: id, state: state(m)) }
                }
            }
            for (id, m) in changes { models[id] = m }
            for window in 0..<40 {
                var start = randomTime(), end = randomTime()
                if start > end { swap(&start, &end) }
                if window % 8 == 0 { end = String(start.prefix(10)) + " 23:59:59" }   // one day
                if window % 8 == 1 { start = String(start.prefix(10)) + " 00:00:00" }  // whole first day
                let organizations: [Int64]? = window % 3 == 0 ? [2, 5] : nil
                let got = try tester.database.sync { db in try tally.totals(db, start: start, end: end, organizations: organizations, order: .firstDescending) }
                let want = expected(models, start: start, end: end, organizations: organizations)
                XCTAssertEqual(got.map(\.organization), want.map(\.organization), "round \(round) [\(start), \(end)] organizations")
                XCTAssertEqual(got.map(\.count), want.map(\.count), "round \(round) [\(start), \(end)] counts")
                XCTAssertEqual(got.map(\.cents), want.map(\.cents), "round \(round) [\(start), \(end)] sums")
                XCTAssertEqual(got.map(\.first), want.map(\.first), "round \(round) [\(start), \(end)] earliest times")
            }
        }
        // No block is left empty, and every earliest time is a row's.
        let leftovers = try tester.database.sync { db in
            try db.scalar("SELECT COUNT(*) FROM sign_blocks b WHERE n <= 0 OR NOT EXISTS (SELECT 1 FROM sign_rows r WHERE r.organization_id = b.organization_id AND r.t = b.min_t)")
        }
        XCTAssertEqual(leftovers, 0)
    }

    // MARK: Routes

    func apply(_ statistic: Statistic, _ id: Int64, organization: Int64, time: String, cents: Int64 = 0, deleted: Bool = false) async throws {
        let tally = statistic.tally
        let state = JSONObject([("organization_id", .int(organization)), (tally.timeField, .string(time)), ("amount", .int(cents)), ("status", .int(deleted ? -1 : 0))])
        try await tester.database.write { db in try tally.apply(db, id: id, state: state) }
    }

    func get(_ path: String, _ params: JSONObject) async -> WireResponse {
        await tester.call(path: path, params: params, caller: Caller(id: 1, role: 3))
    }

    func testShapesOrderingPagingAndOrganizationForms() async throws {
        try await apply(.sign, 1, organization: 7, time: "2021-07-21 00:00:00", cents: 120_000_000)
        try await apply(.sign, 2, organization: 8, time: "2021-07-26 09:28:31", cents: 10_000_000)
        try await apply(.sign, 3, organization: 9, time: "2021-07-26 09:31:33", cents: 10_000_050)
        try await apply(.sign, 4, organization: 9, time: "2021-07-27 10:00:00", cents: 5)
        let window: JSONObject = ["start_time": "2021-07-01", "end_time": "2021-08-01 00:00:00"]

        let sign = await get("/api/stats/sign", window)
        XCTAssertEqual(sign.status, 200, "\(sign.body)")
        XCTAssertEqual(sign.body["data"], [
            ["organization_id": 9, "sign_amount": "100000.55", "sign_count": 2, "min_sign_time": "2021-07-26 09:31:33"],
            ["organization_id": 8, "sign_amount": "100000.00", "sign_count": 1, "min_sign_time": "2021-07-26 09:28:31"],
            ["organization_id": 7, "sign_amount": "1200000.00", "sign_count": 1, "min_sign_time": "2021-07-21 00:00:00"],
        ])
        XCTAssertEqual(sign.body["page_info"], ["total": 3, "page": 1, "count": 20])

        var paged = window
        paged.append("page", "2")
        paged.append("count", .int(2))
        let second = await get("/api/stats/sign", paged)
        XCTAssertEqual(second.body["data"]?.arrayValue?.compactMap { $0["organization_id"]?.intValue }, [7])
        XCTAssertEqual(second.body["page_info"], ["total": 3, "page": 2, "count": 2])

        for form: JSON in [[7, 9], "7,9", "[7,9]", ["7", "9"], [" 9 ", "7"]] {
            var filtered = window
            filtered.append("organization_ids", form)
            let answer = await get("/api/stats/sign", filtered)
            XCTAssertEqual(answer.body["data"]?.arrayValue?.compactMap { $0["organization_id"]?.intValue }, [9, 7], "organization_ids \(form)")
        }
        var single = window
        single.append("organization_ids", .int(8))
        let one = await get("/api/stats/sign", single)
        XCTAssertEqual(one.body["data"]?.arrayValue?.compactMap { $0["organization_id"]?.intValue }, [8])

        for (id, organization, time) in [(1, 3, "2021-07-16 14:00:00"), (2, 3, "2021-07-17 14:00:00"), (3, 4, "2021-07-18 08:00:00"), (4, 3, "2021-07-20 14:00:00")] as [(Int64, Int64, String)] {
            try await apply(.demand, id, organization: organization, time: time)
            try await apply(.follow, id + 100, organization: organization == 3 ? 4 : 3, time: time)
        }
        let demand = await get("/api/stats/demand", window)
        XCTAssertEqual(demand.status, 200)
        XCTAssertEqual(demand.body["data"], [
            [["organization_id": 3, "demand_count": 3, "m_recordTime": "2021-07-16 14:00:00"], ["organization_id": 4, "demand_count": 1, "m_recordTime": "2021-07-18 08:00:00"]],
            ["total": 2, "page": 1, "count": 20],
        ])
        XCTAssertNil(demand.body["page_info"])
        let follow = await get("/api/stats/follow", window)
        XCTAssertEqual(follow.body["data"], [
            [["organization_id": 4, "follow_count": 3, "min_sign_time": "2021-07-16 14:00:00"], ["organization_id": 3, "follow_count": 1, "min_sign_time": "2021-07-18 08:00:00"]],
            ["total": 2, "page": 1, "count": 20],
        ])
        let empty = await get("/api/stats/follow", ["start_time": "2020-01-01", "end_time": "2020-01-02"])
        XCTAssertEqual(empty.body["data"], [[], ["total": 0, "page": 1, "count": 20]])
    }

    /// The rows of a nested answer (`[[rows], page]`).
    func rows(_ answer: WireResponse) -> [JSON]? { answer.body["data"]?.arrayValue?.first?.arrayValue }

    func testAChangeIsAnsweredAtOnceDespiteTheCache() async throws {
        let window: JSONObject = ["start_time": "2021-07-01", "end_time": "2021-08-01"]
        try await apply(.follow, 1, organization: 5, time: "2021-07-10 10:00:00")
        let before = await get("/api/stats/follow", window)
        XCTAssertEqual(rows(before)?.first?["follow_count"], 1)
        let v1 = await get("/api/stats/follow", window)
        XCTAssertEqual(v1.body["data"], before.body["data"], "asked again: the same answer")
        try await apply(.follow, 2, organization: 5, time: "2021-07-11 10:00:00")
        let v2 = await get("/api/stats/follow", window)
        XCTAssertEqual(rows(v2)?.first?["follow_count"], 2)
        try await apply(.follow, 1, organization: 6, time: "2021-07-10 10:00:00")
        let v3 = await get("/api/stats/follow", window)
        XCTAssertEqual(rows(v3), [
            ["organization_id": 5, "follow_count": 1, "min_sign_time": "2021-07-11 10:00:00"],
            ["organization_id": 6, "follow_count": 1, "min_sign_time": "2021-07-10 10:00:00"],
        ], "moved to another organization")
        try await apply(.follow, 2, organization: 5, time: "2021-07-11 10:00:00", deleted: true)
        let v4 = await get("/api/stats/follow", window)
        XCTAssertEqual(rows(v4)?.compactMap { $0["organization_id"]?.intValue }, [6], "deleted")
        try await apply(.follow, 1, organization: 6, time: "2021-09-10 10:00:00")
        let v5 = await get("/api/stats/follow", window)
        XCTAssertEqual(rows(v5), [], "moved out of the window")
    }

    func testBadParametersAreRefusedNamingThem() async throws {
        for (params, naming) in [
            ([("organization_ids", "x")], "organization_ids"), ([("organization_ids", "[1,-2]")], "organization_ids"),
            ([("start_time", "2021-02-30")], "start_time"), ([("end_time", "yesterday")], "end_time"),
            ([("start_time", "2021-02-02"), ("end_time", "2021-02-01")], "start_time"), ([("page", "0")], "page"), ([("count", "x")], "count"),
        ] as [([(String, JSON)], String)] {
            for path in ["/api/stats/sign", "/api/stats/demand", "/api/stats/follow"] {
                let answer = await get(path, JSONObject(params))
                XCTAssertEqual(answer.status, 400, "\(path) \(params): \(answer.body)")
                XCTAssertEqual(answer.body["status"]?.intValue, 1)
                XCTAssertTrue(answer.body["msg"]?.stringValue?.contains(naming) ?? false, "\(answer.body) names \(naming)")
            }
        }
    }

    func testTheCacheComputesOncePerGeneration() async throws {
        let cache = AnswerCache<Int>(capacity: 2)
        let calls = Counter()
        func ask(_ key: String, _ generation: UInt64) async throws -> Int {
            try await cache.value(key, generation: generation) { calls.next() }
        }
        let first = try await ask("a", 1)
        let v6 = try await ask("a", 1)
        XCTAssertEqual(v6, first, "cached")
        let v7 = try await ask("a", 2)
        XCTAssertNotEqual(v7, first, "a new generation computes again")
        _ = try await ask("b", 2)
        _ = try await ask("c", 2)
        XCTAssertEqual(cache.count, 2, "bounded")
        let before = calls.value
        _ = try await ask("a", 1)
        XCTAssertEqual(calls.value, before + 1, "an older generation computes for itself")
        XCTAssertEqual(cache.count, 2)
    }
}

final class Counter: Sendable {
    private let state = Mutex<Int>(0)
    func next() -> Int { state.withLock { $0 += 1; return $0 } }
    var value: Int { state.withLock { $0 } }
}
