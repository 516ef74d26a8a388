#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ServiceKit
import WireProtocol

/// The outbox read by the event feed, on a real file.
final class OutboxTests: XCTestCase {
    func testATypedReadWalksFromTheCursorNotThroughEveryEventOfTheType() throws {
        let path = "/tmp/crm-outbox-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let db = try SQLiteConnection(path: path)
        defer { db.close() }
        try db.execute(Outbox.schema)
        try db.writeTransaction { db in
            for i in 1...300 { try Outbox.append(db, type: i % 3 == 0 ? "demand" : "follow", entityID: Int64(i), state: JSONObject([("n", .int(Int64(i)))])) }
        }
        let page = try Outbox.read(db, after: 290, limit: 5, types: ["demand"])
        XCTAssertEqual(page.events.compactMap { $0["seq"]?.intValue }, [291, 294, 297, 300])
        XCTAssertEqual(page.last, 300)
        let full = try Outbox.read(db, after: 0, limit: 2, types: ["follow", "demand"])
        XCTAssertEqual(full.events.compactMap { $0["seq"]?.intValue }, [1, 2])
        XCTAssertEqual(full.last, 2, "a full page continues after its last event")
        // The plan: the primary key from the cursor, no sort of every event of the types.
        let plan = try db.query("EXPLAIN QUERY PLAN " + Outbox.typedReadSQL, [.int(290), .text("[\"demand\"]"), .int(5)])
            .compactMap { $0.string(3) }.joined(separator: "; ")
        XCTAssertTrue(plan.contains("PRIMARY KEY"), plan)
        XCTAssertFalse(plan.contains("events_by_entity"), plan)
        XCTAssertFalse(plan.contains("TEMP B-TREE"), plan)
    }
}
