#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ServiceKit
import WireProtocol

/// The outbox read by the event feed, on a real file.
final class OutboxTests: SQLiteFileTestCase {
    override class var filePrefix: String { "outbox" }
    var connection: SQLiteConnection?

    override func tearDown() {
        connection?.close()
        super.tearDown()
    }

    /// A connection on this test's file with the outbox's tables (closed and deleted after it).
    private func openOutbox() throws -> SQLiteConnection {
        let db = try SQLiteConnection(path: path)
        connection = db
        try db.execute(Outbox.schema)
        return db
    }

    func testATypedReadWalksFromTheCursorNotThroughEveryEventOfTheType() throws {
        let db = try openOutbox()
        try db.writeTransaction { db in
            for i in 1...300 { try Outbox.append(db, type: i % 3 == 0 ? "demand" : "follow", entityID: Int64(i), state: JSONObject([("n", .int(Int64(i)))])) }
        }
        let page = try Outbox.read(db, after: 290, limit: 5, types: ["demand"])
        XCTAssertEqual(try seqs(page), [291, 294, 297, 300])
        XCTAssertEqual(page.last, 300)
        let full = try Outbox.read(db, after: 0, limit: 2, types: ["follow", "demand"])
        XCTAssertEqual(try seqs(full), [1, 2])
        XCTAssertEqual(full.last, 2, "a full page continues after its last event")
        let two = try Outbox.read(db, after: 295, limit: 10, types: ["demand", "follow"])
        XCTAssertEqual(try seqs(two), [296, 297, 298, 299, 300])
        // The plans: the primary key from the cursor, no sort of every event of the types.
        let three = try Outbox.read(db, after: 297, limit: 10, types: ["demand", "follow", "contract"])
        XCTAssertEqual(try seqs(three), [298, 299, 300])
        // The plans: the primary key from the cursor, no sort of every event of the types; for
        // one or two types no table built for the `IN` either.
        let plans: [(sql: String, binds: [SQLValue], ephemeral: Bool)] = [
            (Outbox.typedReadSQL, [.int(290), .text("[\"demand\"]"), .int(5)], true),
            (Outbox.oneTypeReadSQL, [.int(290), .text("demand"), .int(5)], false),
            (Outbox.twoTypesReadSQL, [.int(290), .text("demand"), .text("follow"), .int(5)], false),
        ]
        for (sql, binds, ephemeral) in plans {
            let plan = try db.query("EXPLAIN QUERY PLAN " + sql, binds).compactMap { $0.string(3) }.joined(separator: "; ")
            XCTAssertTrue(plan.contains("PRIMARY KEY"), plan)
            XCTAssertFalse(plan.contains("events_by_entity"), plan)
            XCTAssertFalse(plan.contains("TEMP B-TREE"), plan)
            let opcodes = try db.query("EXPLAIN " + sql, binds).compactMap { $0.string(1) }
            XCTAssertEqual(opcodes.contains("OpenEphemeral"), ephemeral, sql)
        }
    }

    /// The page is written as text: each state as it was stored, the other columns escaped; a
    /// stored state that is not JSON reads as `null` instead of breaking the whole page.
    func testAPageIsTheStoredStatesAsJSONAndABrokenStateReadsAsNull() throws {
        let db = try openOutbox()
        let state = JSONObject([("realName", .string("王\"芳\\\n")), ("tags", .array([.int(1), .null, .bool(true)])), ("o", .object(JSONObject([("x", .double(1.5))])))])
        try Outbox.append(db, type: "customer", entityID: 7, state: state)
        try db.run("INSERT INTO events(type, entity_id, state, time) VALUES ('cust\"omer', 8, '{\"broken\":', '2026-11-29 00:00:00')")
        try db.run("INSERT INTO events(type, entity_id, state, time) VALUES ('customer', 9, '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '2026-11-29 00:00:00')")
        let page = try Outbox.read(db, after: 0, limit: 10)
        XCTAssertEqual(page.count, 3)
        XCTAssertEqual(page.last, 3)
        let events = try XCTUnwrap(try JSONParser.parse(page.events).arrayValue)
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(events[0]["state"], .object(state), "passed through unchanged")
        XCTAssertEqual(events[0]["type"]?.stringValue, "customer")
        XCTAssertEqual(events[0]["entity_id"]?.intValue, 7)
        XCTAssertEqual(events[0]["seq"]?.intValue, 1)
        XCTAssertNotNil(events[0]["time"]?.stringValue)
        XCTAssertEqual(events[1]["type"]?.stringValue, "cust\"omer")
        XCTAssertEqual(events[1]["state"], .null, "a broken state is null, the page stays valid")
        XCTAssertEqual(events[2]["state"], .null, "nested deeper than the envelope leaves room for")
        let empty = try Outbox.read(db, after: 3, limit: 10)
        XCTAssertEqual(empty.count, 0)
        XCTAssertEqual(try JSONParser.parse(empty.events), .array([]))
        XCTAssertEqual(empty.last, 3)
    }

    private func seqs(_ page: Outbox.Page) throws -> [Int64] {
        try XCTUnwrap(try JSONParser.parse(page.events).arrayValue).compactMap { $0["seq"]?.intValue }
    }

    /// A consumer polls again at once after a single event (a source written now and then is
    /// followed live) and after a full page (it is behind), and gathers for `gatherMillis`
    /// after a batch of several events (its source is busy: fewer, larger batches).
    func testAConsumerGathersOnlyAfterABatchThatShowsItsSourceBusy() {
        let limit = EventConsumer.batch
        XCTAssertEqual(EventConsumer.gatherPause(afterBatchOf: 0, limit: limit), 0, "a poll that timed out")
        XCTAssertEqual(EventConsumer.gatherPause(afterBatchOf: 1, limit: limit), 0, "one event")
        XCTAssertEqual(EventConsumer.gatherPause(afterBatchOf: 2, limit: limit), EventConsumer.gatherMillis)
        XCTAssertEqual(EventConsumer.gatherPause(afterBatchOf: Int(limit) - 1, limit: limit), EventConsumer.gatherMillis)
        XCTAssertEqual(EventConsumer.gatherPause(afterBatchOf: Int(limit), limit: limit), 0, "a full page: read on")
        XCTAssertGreaterThan(EventConsumer.gatherMillis, 0)
        XCTAssertLessThan(EventConsumer.gatherMillis, EventConsumer.waitMillis, "a gather is shorter than a long poll")
    }
}
