#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
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

    /// The cache's direct-mapped front picks a slot by a text's length and a few of its bytes:
    /// texts that differ elsewhere share a slot, and each still runs its own statement, also
    /// after one was evicted.
    func testTextsSharingAFrontSlotRunTheirOwnStatements() throws {
        let db = try SQLiteConnection(path: path, statementCacheCapacity: 4)
        // Same length, same first, third, middle and last bytes: only the digits at 7 and 8 differ.
        let texts = (10...29).map { "SELECT \($0) + 0 AS v" }
        XCTAssertEqual(Set(texts.map(\.utf8.count)).count, 1)
        for round in 0..<3 {
            for (k, text) in texts.enumerated() {
                XCTAssertEqual(try db.scalar(text), Int64(10 + k), "round \(round): \(text)")
                XCTAssertEqual(try db.scalar(texts[0]), 10, "the first text after \(text)")
            }
        }
        XCTAssertLessThanOrEqual(db.liveStatementCount, 4, "the front holds no statement the cache evicted")
    }
}

/// Named migrations.
final class MigrationTests: XCTestCase {
    var path: String!

    override func setUp() {
        path = "/tmp/crm-migrations-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
    }

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    let first = [
        Migration(name: "001-a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT);"),
        Migration(name: "002-a-n", sql: "ALTER TABLE a ADD COLUMN n INTEGER NOT NULL DEFAULT 0;"),
    ]

    func recorded(_ db: SQLiteConnection) throws -> [String] {
        try db.query("SELECT name FROM schema_migrations ORDER BY name").compactMap { $0.string(0) }
    }

    func testAFreshFileRecordsEachMigrationByName() throws {
        let db = try SQLiteConnection(path: path)
        try db.migrate(first)
        XCTAssertEqual(try recorded(db), ["001-a", "002-a-n"])
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM schema_migrations WHERE adopted = 0 AND applied_at <> ''"), 2)
        try db.run("INSERT INTO a(t, n) VALUES ('x', 1)")
        // Again, and with one more inserted before the last: only the new one runs.
        let more = [first[0], Migration(name: "001b-b", sql: "CREATE TABLE b(id INTEGER PRIMARY KEY);"), first[1]]
        try db.migrate(more)
        XCTAssertEqual(try recorded(db), ["001-a", "001b-b", "002-a-n"])
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM a"), 1, "nothing ran twice")
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM b"), 0)
        XCTAssertEqual(db.userVersion, 3, "user_version follows, so an older binary skips them")
    }

    func testAFileOfTheOldSchemeIsAdoptedWithoutRerunning() throws {
        do {
            // As the positional scheme left it: the first migration applied, user_version = 1.
            let old = try SQLiteConnection(path: path)
            try old.execute("CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT); INSERT INTO a(t) VALUES ('kept'); PRAGMA user_version = 1;")
            old.close()
        }
        let db = try SQLiteConnection(path: path)
        try db.migrate(first)  // running "001-a" again would fail: table a exists
        XCTAssertEqual(try recorded(db), ["001-a", "002-a-n"])
        XCTAssertEqual(try db.scalar("SELECT adopted FROM schema_migrations WHERE name = '001-a'"), 1)
        XCTAssertEqual(try db.scalar("SELECT adopted FROM schema_migrations WHERE name = '002-a-n'"), 0)
        XCTAssertEqual(try db.query("SELECT t, n FROM a").map { $0.values }, [[.text("kept"), .int(0)]], "data kept, second migration ran")
        XCTAssertEqual(db.userVersion, 2)
        // Adoption happens once: a later user_version does not record more.
        try db.execute("PRAGMA user_version = 9")
        try db.migrate(first + [Migration(name: "003-c", sql: "CREATE TABLE c(id INTEGER PRIMARY KEY);")])
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM c"), 0, "003-c ran")
        XCTAssertEqual(try db.scalar("SELECT adopted FROM schema_migrations WHERE name = '003-c'"), 0)
    }

    func testAFailingMigrationLeavesNeitherItsChangesNorItsRecord() throws {
        let db = try SQLiteConnection(path: path)
        XCTAssertThrowsError(try db.migrate([first[0], Migration(name: "bad", sql: "CREATE TABLE z(id INTEGER); SELECT * FROM missing;")]))
        XCTAssertEqual(try recorded(db), ["001-a"])
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'z'"), 0)
    }

    func testDuplicateNamesAreRefusedBeforeAnythingRuns() throws {
        let db = try SQLiteConnection(path: path)
        let twice = [first[0], Migration(name: "001-a", sql: "CREATE TABLE other(id INTEGER PRIMARY KEY);")]
        XCTAssertThrowsError(try db.migrate(twice)) { error in
            XCTAssertTrue("\(error)".contains("\"001-a\" is given to two migrations"), "\(error)")
        }
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a', 'other', 'schema_migrations')"), 0)
        XCTAssertThrowsError(try Database(path: path, migrations: twice), "the service refuses to start")
    }
}

/// A `Database` call from inside one of its own bodies fails at once instead of deadlocking.
final class NestedDatabaseCallTests: XCTestCase {
    var path: String!
    var database: Database!

    override func setUp() {
        path = "/tmp/crm-nested-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        database = try? Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY);")])
    }

    override func tearDown() {
        database?.close()
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    /// Runs `body` and answers its outcome, or nil when it has not finished within 5 s (a
    /// deadlock then fails the test instead of hanging it; the stuck task is left behind).
    func outcome(of body: @escaping @Sendable () async throws -> Void) async -> Result<Void, Error>? {
        let box = Mutex<Result<Void, Error>?>(nil)
        let finished = expectation(description: "the nested call returned")
        Task {
            let result: Result<Void, Error>
            do { try await body(); result = .success(()) } catch { result = .failure(error) }
            box.withLock { $0 = result }
            finished.fulfill()
        }
        await fulfillment(of: [finished], timeout: 5)
        return box.withLock { $0 }
    }

    func assertRefused(_ result: Result<Void, Error>?, _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        guard let result else { return XCTFail("the nested call blocked", file: file, line: line) }
        guard case .failure(let error) = result else { return XCTFail("the nested call was not refused", file: file, line: line) }
        XCTAssertTrue(error is DatabaseMisuse, "\(error)", file: file, line: line)
        for word in words { XCTAssertTrue("\(error)".contains(word), "\(error)", file: file, line: line) }
    }

    func testSyncInsideAWriteThrows() async throws {
        let db = try XCTUnwrap(database)
        let result = await outcome {
            _ = try await db.write { conn -> Int64 in
                try conn.run("INSERT INTO a(id) VALUES (1)")
                return try db.sync { inner -> Int64 in try inner.scalar("SELECT COUNT(*) FROM a") }
            }
        }
        assertRefused(result, ["Database.sync", "inside a write"])
        // The writer is not stuck, and the failed body's insert was rolled back.
        let count = try await db.write { try $0.scalar("SELECT COUNT(*) FROM a") }
        XCTAssertEqual(count, 0)
    }

    func testSyncInsideSyncAndInsideAReadThrow() async throws {
        let db = try XCTUnwrap(database)
        assertRefused(await outcome { _ = try db.sync { _ in try db.sync { _ in 1 } } }, ["Database.sync", "inside a write"])
        assertRefused(await outcome { _ = try await db.read { _ in try db.sync { _ in 1 } } }, ["Database.sync", "inside a read"])
    }

    func testCloseInsideAWriteDoesNotBlockAndClosesNothing() async throws {
        let db = try XCTUnwrap(database)
        let result = await outcome { _ = try await db.write { _ in db.close() } }
        guard case .success? = result else { return XCTFail("close from inside a write blocked or failed: \(String(describing: result))") }
        let one = try await db.read { try $0.scalar("SELECT 1") }
        XCTAssertEqual(one, 1, "still open")
    }

    func testAnotherDatabaseMayBeUsedFromInsideAWrite() async throws {
        let db = try XCTUnwrap(database)
        let otherPath = path + "-other"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(otherPath + suffix) } }
        let other = try Database(path: otherPath, migrations: [])
        defer { other.close() }
        let result = await outcome { _ = try await db.write { _ -> Int64 in try other.sync { conn -> Int64 in try conn.scalar("SELECT 1") } } }
        guard case .success? = result else { return XCTFail("\(String(describing: result))") }
    }
}
