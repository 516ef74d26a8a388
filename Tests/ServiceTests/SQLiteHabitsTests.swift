#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import XCTest
@testable import ServiceKit
import WireProtocol

/// Issue 8 item 5: a bounded statement cache, named migrations, nested calls refused.
final class SQLiteHabitsTests: XCTestCase {
    var path: String!

    override func setUp() {
        path = "/tmp/crm-sqlite-habits-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
    }

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    // MARK: Statement cache

    func testGeneratedStatementsDoNotPileUp() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE a(id INTEGER PRIMARY KEY)")
        for id in Int64(1)...10 { try db.run("INSERT INTO a(id) VALUES (?)", [.int(id)]) }
        // 1,000 distinct texts, as `IN (?, …)` lists of every length produce them.
        var peak = 0
        for n in 1...1000 {
            let marks = Array(repeating: "?", count: n).joined(separator: ", ")
            let ids = try db.queryIDs("SELECT id FROM a WHERE id IN (\(marks)) ORDER BY id", (1...n).map { .int(Int64($0)) })
            XCTAssertEqual(ids.count, min(n, 10))
            peak = max(peak, db.liveStatementCount)
        }
        XCTAssertLessThanOrEqual(peak, SQLiteConnection.defaultStatementCacheCapacity, "live prepared statements stay bounded")
        XCTAssertLessThanOrEqual(db.liveStatementCount, SQLiteConnection.defaultStatementCacheCapacity)
        // A statement still works after its text was evicted: it is prepared again.
        XCTAssertEqual(try db.queryIDs("SELECT id FROM a WHERE id IN (?) ORDER BY id", [.int(3)]), [3])
    }

    func testHotFixedQueriesSurviveAStreamOfOneOffs() throws {
        let db = try SQLiteConnection(path: path, statementCacheCapacity: 8)
        try db.execute("CREATE TABLE a(id INTEGER PRIMARY KEY)")
        let hot = "SELECT COUNT(*) FROM a WHERE id > ?"
        for n in 0..<500 {
            if n % 5 == 0 { _ = try db.scalar(hot, [.int(0)]) }
            _ = try db.scalar("SELECT COUNT(*) FROM a WHERE id > \(n)")
            XCTAssertLessThanOrEqual(db.liveStatementCount, 8)
        }
        XCTAssertTrue(db.cache.contains(hot), "a reused statement is not pushed out by statements used once")
        XCTAssertEqual(db.cachedStatementCount, 8)
    }
}
