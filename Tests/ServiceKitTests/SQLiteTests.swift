#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import XCTest
@testable import ServiceKit
import WireProtocol

/// The SQLite layer on real files.
final class SQLiteTests: SQLiteFileTestCase {

    func testRowsAreReadByColumnName() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER); INSERT INTO t VALUES (7, 'seven', 49);")
        let row = try XCTUnwrap(try db.queryOne("SELECT t.n, t.name, t.id, 'x' AS label FROM t"))
        XCTAssertEqual(row.int("id"), 7, "a qualified column is named without its table")
        XCTAssertEqual(row.string("name"), "seven")
        XCTAssertEqual(row.int("n"), 49)
        XCTAssertEqual(row["label"], .text("x"), "an alias is the name")
        XCTAssertEqual(row["missing"], .null)
        XCTAssertNil(row.int("missing"))
        // Another statement's rows carry their own names.
        let other = try XCTUnwrap(try db.queryOne("SELECT name AS id FROM t"))
        XCTAssertEqual(other.string("id"), "seven")
        db.close()
    }

    func testForEachRowReadsIntegerColumnsRowByRowAndReportsErrors() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE t(a INTEGER, b INTEGER); INSERT INTO t VALUES (1, 10), (2, NULL), (3, 30);")
        var seen: [[Int64]] = []
        try db.forEachRow("SELECT a, b FROM t WHERE a >= ? ORDER BY a", [.int(2)]) { row in seen.append([row.int(0), row.int(1)]) }
        XCTAssertEqual(seen, [[2, 0], [3, 30]], "NULL reads as 0")
        // The statement is reset after use: it runs again from the start.
        var count = 0
        try db.forEachRow("SELECT a, b FROM t WHERE a >= ? ORDER BY a", [.int(1)]) { _ in count += 1 }
        XCTAssertEqual(count, 3)
        XCTAssertThrowsError(try db.forEachRow("SELECT nope FROM t") { _ in })
        db.close()
    }

    /// Text is bound with all its bytes from the string's own storage: empty text stays text
    /// (not NULL), and small, long, non-ASCII and NUL-holding strings come back as they went in.
    func testTextIsBoundWithAllItsBytesAndEmptyTextIsNotNull() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        let texts = ["", "a", "short ascii", String(repeating: "long text ", count: 40), "张三丰 / zhangsanfeng", "nul\u{0}inside", String("substring of this".dropFirst(3))]
        for (i, text) in texts.enumerated() { try db.run("INSERT INTO t(id, v) VALUES (?, ?)", [.int(Int64(i)), .text(text)]) }
        let rows = try db.query("SELECT typeof(v), length(CAST(v AS BLOB)), v FROM t ORDER BY id")
        XCTAssertEqual(rows.map { $0.string(0) }, Array(repeating: "text", count: texts.count), "empty text is not NULL")
        XCTAssertEqual(rows.map { $0.int(1) }, texts.map { Int64($0.utf8.count) }, "every byte, the NUL too")
        XCTAssertEqual(rows.map { $0.string(2) }, texts)
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM t WHERE v = ?", [.text("张三丰 / zhangsanfeng")]), 1, "a bound text compares equal")
        db.close()
    }

    func testCountersAddEveryKeyOnceInChunksAndInsertNamesItsColumns() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE counts(key TEXT PRIMARY KEY, n INTEGER NOT NULL); CREATE TABLE t(id INTEGER PRIMARY KEY, \"a b\" TEXT, n INTEGER);")
        // More keys than one statement takes, one of them twice in the same chunk.
        let keys = (0..<(Counters.keysPerStatement * 2 + 3)).map { "k\($0)" } + ["k1"]
        try Counters.add(db, table: "counts", keys: keys, delta: 1)
        try Counters.add(db, table: "counts", keys: ["k0", "k\(keys.count - 2)"], delta: -1)
        try Counters.add(db, table: "counts", keys: [], delta: 5)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM counts"), Int64(keys.count - 1))
        XCTAssertEqual(try Counters.get(db, table: "counts", key: "k0"), 0)
        XCTAssertEqual(try Counters.get(db, table: "counts", key: "k1"), 2, "a key listed twice counts twice")
        XCTAssertEqual(try Counters.get(db, table: "counts", key: "k\(Counters.keysPerStatement)"), 1, "the second chunk")
        XCTAssertEqual(try Counters.get(db, table: "counts", key: "k\(keys.count - 2)"), 0, "the last chunk")
        XCTAssertEqual(try db.scalar("SELECT sum(n) FROM counts"), Int64(keys.count - 2))

        let id = try db.insert("t", [("a b", .text("x")), ("n", .int(3))])
        let row = try XCTUnwrap(try db.queryOne("SELECT \"a b\", n FROM t WHERE id = ?", [.int(id)]))
        XCTAssertEqual(row.string("a b"), "x")
        XCTAssertEqual(row.int("n"), 3)
        db.close()
    }

    func testPragmasMigrationsAndUserVersion() throws {
        let migrations = [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT);"),
                          Migration(name: "a.n", sql: "ALTER TABLE a ADD COLUMN n INTEGER NOT NULL DEFAULT 0;")]
        do {
            let db = try SQLiteConnection(path: path)
            try db.migrate(Array(migrations.prefix(1)))
            XCTAssertEqual(db.userVersion, 1)
            XCTAssertEqual(try db.queryOne("PRAGMA journal_mode")?.string(0), "wal")
            XCTAssertEqual(try db.scalar("PRAGMA foreign_keys"), 1)
            XCTAssertEqual(try db.scalar("PRAGMA synchronous"), 1, "NORMAL")
        }
        let db = try SQLiteConnection(path: path)
        try db.migrate(migrations)
        XCTAssertEqual(db.userVersion, 2, "only the new migration ran")
        try db.run("INSERT INTO a(t) VALUES (?)", [.text("x")])
        XCTAssertEqual(try db.scalar("SELECT n FROM a"), 0)
    }

    func testTransactionsRollBackOnErrorAndKeepNothingPartial() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT NOT NULL UNIQUE)")
        XCTAssertThrowsError(try db.writeTransaction { db in
            try db.run("INSERT INTO a(t) VALUES ('one')")
            try db.run("INSERT INTO a(t) VALUES ('one')")
        }) { error in
            let sqlite = error as? SQLiteError
            XCTAssertTrue(sqlite?.isConstraint ?? false)
            XCTAssertEqual(sqlite?.sql, "INSERT INTO a(t) VALUES ('one')", "the error carries the SQL")
        }
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM a"), 0, "the first insert was rolled back")
    }

    func testTextRoundTripsExactlyAndValuesAreBoundNotSpliced() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT)")
        let texts = ["a\u{0}b", "' OR 1=1 --", "张三🙂", "%_\\"]
        for t in texts { try db.run("INSERT INTO a(t) VALUES (?)", [.text(t)]) }
        XCTAssertEqual(try db.query("SELECT t FROM a ORDER BY id").map { $0.string(0) }, texts)
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM a WHERE t = ?", [.text("' OR 1=1 --")]), 1)
    }

    func testErrorsCarryCodeAndSQLButNotValues() throws {
        let db = try SQLiteConnection(path: path)
        XCTAssertThrowsError(try db.query("SELECT * FROM missing WHERE x = ?", [.text("secret-value")])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("no such table"), text)
            XCTAssertTrue(text.contains("SELECT * FROM missing"), text)
            XCTAssertFalse(text.contains("secret-value"), text)
        }
    }

    func testDatabaseReadersSeeCommittedWrites() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT);")])
        let id = try await db.write { conn -> Int64 in
            try conn.run("INSERT INTO a(t) VALUES ('x')")
            return conn.lastInsertRowID
        }
        for _ in 0..<4 {
            let count = try await db.read { try $0.scalar("SELECT COUNT(*) FROM a WHERE id = ?", [.int(id)]) }
            XCTAssertEqual(count, 1)
        }
        do {
            _ = try await db.read { try $0.run("INSERT INTO a(t) VALUES ('y')") }
            XCTFail("readers are read-only")
        } catch {}
        db.close()
        do {
            _ = try await db.read { try $0.scalar("SELECT 1") }
            XCTFail("closed")
        } catch let error as APIError {
            XCTAssertEqual(error.status, 503)
        }
    }

    /// Reads that queued while the reader was busy run together in one read transaction: each
    /// still sees every write answered before it was sent, one read's SQLite error starts a new
    /// transaction for the reads after it, and every read gets its own answer.
    func testReadsQueuedTogetherShareATransaction() throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT);")], readerCount: 1)
        defer { db.close() }
        let release = Mutex(false)
        let blocked = Mutex(false)
        let answers = Mutex<[Int: (value: Int64?, error: String?, serial: UInt64)]>([:])
        let done = DispatchGroup()
        func enqueue(_ n: Int, _ body: @escaping @Sendable (SQLiteConnection) throws -> Int64) {
            done.enter()
            db.read({ connection in (try body(connection), connection.readSerial) }) { result in
                answers.withLock { answers in
                    switch result {
                    case .success(let (value, serial)): answers[n] = (value, nil, serial)
                    case .failure(let error): answers[n] = (nil, "\(type(of: error))", 0)
                    }
                }
                done.leave()
            }
        }
        // The only reader waits inside the first read while the others queue behind it.
        enqueue(0) { _ in
            blocked.withLock { $0 = true }
            let deadline = monotonicMillis() + 5_000
            while !release.withLock({ $0 }) && monotonicMillis() < deadline { usleep(1_000) }
            return 0
        }
        while !blocked.withLock({ $0 }) { usleep(1_000) }
        _ = try db.sync { try $0.run("INSERT INTO a(t) VALUES ('written before the reads were sent')") }
        let count: @Sendable (SQLiteConnection) throws -> Int64 = { try $0.scalar("SELECT COUNT(*) FROM a") }
        enqueue(1, count)
        enqueue(2, count)
        enqueue(3) { try $0.scalar("SELECT COUNT(*) FROM missing") }
        enqueue(4, count)
        enqueue(5) { _ in throw APIError.badRequest("not a database error") }
        enqueue(6, count)
        release.withLock { $0 = true }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let got = answers.withLock { $0 }
        for n in [1, 2, 4, 6] { XCTAssertEqual(got[n]?.value, 1, "read \(n) sees the write answered before it was sent") }
        XCTAssertEqual(got[3]?.error, "SQLiteError")
        XCTAssertEqual(got[5]?.error, "APIError")
        XCTAssertEqual(got[1]?.serial, got[2]?.serial, "queued together: one transaction")
        XCTAssertNotEqual(got[2]?.serial, got[4]?.serial, "after an SQLite error: a new transaction")
        XCTAssertEqual(got[4]?.serial, got[6]?.serial, "another error type keeps the transaction")
    }

    /// Two `Database`s on one file stand for two replicas: a commit through one wakes the
    /// other's commit signal (what its feed long polls and statistics cache go by), and its own
    /// commits are not counted twice by the watch.
    func testAnotherWritersCommitIsSignalled() async throws {
        let migrations = [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, t TEXT);")]
        let one = try Database(path: path, migrations: migrations)
        let other = try Database(path: path, migrations: migrations)
        defer { one.close(); other.close() }
        other.watchOtherWriters(intervalMillis: 10)
        let before = other.commitSignal.generation
        let waiter = Task { await other.commitSignal.wait(after: before, timeoutMillis: 5_000) }
        _ = try await one.write { try $0.run("INSERT INTO a(t) VALUES ('from the other replica')") }
        await waiter.value
        XCTAssertGreaterThan(other.commitSignal.generation, before, "woken by the commit, not by the timeout")
        // Quiet file: the watch signals nothing more.
        try await Task.sleep(nanoseconds: 100_000_000)
        let settled = other.commitSignal.generation
        try await Task.sleep(nanoseconds: 100_000_000)
        XCTAssertEqual(other.commitSignal.generation, settled)
    }

    /// No commit checkpoints inside the writer (SQLite's automatic checkpoint is off there):
    /// once the WAL holds `checkpointPages`, the checkpointer's own connection copies it into
    /// the database file, which grows in whole chunks (1 MiB while it is small).
    func testTheCheckpointerCopiesTheWALIntoTheFileInChunks() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, b BLOB);")])
        defer { db.close() }
        func fileSize() -> Int {
            var info = stat()
            return stat(path, &info) == 0 ? Int(info.st_size) : -1
        }
        let empty = fileSize()
        XCTAssertLessThan(empty, 1 << 20)
        // About 240 pages per commit (one 3,000-byte row per 4 KiB page): past the threshold in
        // the last round.
        let below = Int(Database.checkpointPages) / 240
        for round in 0..<below {
            _ = try await db.write { try $0.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 240) INSERT INTO a(b) SELECT randomblob(3000) FROM n") }
            db.waitForCheckpoint()
            XCTAssertEqual(fileSize(), empty, "round \(round): below the threshold the rows stay in the WAL")
        }
        _ = try await db.write { try $0.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 240) INSERT INTO a(b) SELECT randomblob(3000) FROM n") }
        db.waitForCheckpoint()
        let size = fileSize()
        XCTAssertGreaterThanOrEqual(size, (below + 1) * 240 * 3_000, "the checkpointer copied the rows into the file")
        XCTAssertEqual(size % (1 << 20), 0, "grown in whole chunks: \(size)")
        let rows = try await db.read { try $0.scalar("SELECT COUNT(*) FROM a") }
        XCTAssertEqual(rows, Int64((below + 1) * 240))
    }

    /// Past `checkpointPages` a commit queues a checkpoint at once when the spacing since the
    /// last one is over, else for when it will be (a steady stream of commits would otherwise
    /// queue one per group commit, and the end of a burst must not stay in the WAL); past
    /// `writerCheckpointPages` the writer checkpoints itself whatever the spacing.
    func testCheckpointsAreSpacedUntilTheWriterMustCheckpointItself() {
        let spacing = Database.checkpointSpacingMillis
        let threshold = Database.checkpointPages
        XCTAssertEqual(Database.checkpoint(walPages: threshold - 1, millisSinceQueued: .max), .none, "below the threshold")
        XCTAssertEqual(Database.checkpoint(walPages: threshold, millisSinceQueued: .max), .queued(afterMillis: 0), "the first past it")
        XCTAssertEqual(Database.checkpoint(walPages: threshold + 500, millisSinceQueued: spacing - 10), .queued(afterMillis: 10), "within the spacing: later")
        XCTAssertEqual(Database.checkpoint(walPages: threshold + 500, millisSinceQueued: spacing), .queued(afterMillis: 0), "once it is over")
        XCTAssertEqual(Database.checkpoint(walPages: threshold + 500, millisSinceQueued: -5), .queued(afterMillis: spacing + 5),
                       "one already due later: after it")
        XCTAssertEqual(Database.checkpoint(walPages: Database.unspacedCheckpointPages, millisSinceQueued: 0), .queued(afterMillis: 0),
                       "near the writer's mark: after every commit")
        XCTAssertLessThan(threshold, Database.unspacedCheckpointPages)
        XCTAssertEqual(Database.checkpoint(walPages: Database.writerCheckpointPages, millisSinceQueued: 0), .inWriter,
                       "the checkpointer is not keeping up")
        XCTAssertLessThan(threshold, Database.writerCheckpointPages)
    }

    func testConcurrentWritesCommitTogetherButFailAlone() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE);")])
        let outcomes = try await withThrowingTaskGroup(of: (Int64, Bool).self) { group in
            for n in Int64(0)..<200 {
                group.addTask {
                    do {
                        _ = try await db.write { conn -> Int64 in
                            try conn.run("INSERT INTO a(n) VALUES (?)", [.int(n)])
                            if n % 3 == 0 { throw APIError.badRequest("refused \(n)") }
                            if n % 5 == 0 { try conn.run("INSERT INTO a(n) VALUES (?)", [.int(n)]) } // unique violation
                            return conn.lastInsertRowID
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            var all: [(Int64, Bool)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        XCTAssertEqual(outcomes.count, 200)
        for (n, ok) in outcomes {
            XCTAssertEqual(ok, n % 3 != 0 && n % 5 != 0, "write \(n)")
        }
        let stored = try await db.read { try $0.queryIDs("SELECT n FROM a ORDER BY n") }
        XCTAssertEqual(stored, (Int64(0)..<200).filter { $0 % 3 != 0 && $0 % 5 != 0 }, "a failed write leaves nothing behind")
    }

    /// Writes `body` for 0..<count, queued while a first write holds the writer, so that they
    /// run as one batch; answers each one's result in order (nil: it failed).
    private func oneBatch(_ db: Database, of count: Int64,
                          _ body: @escaping @Sendable (Int64, SQLiteConnection) throws -> Int64) async throws -> [Int64?] {
        let writes = try await db.queuedAsOneBatch {
            (Int64(0)..<count).map { n in Task { () -> Int64? in try? await db.write { conn in try body(n, conn) } } }
        }
        var results: [Int64?] = []
        for write in writes { results.append(await write.value) }
        return results
    }

    /// Counter changes of a batch are gathered and written before its COMMIT: a job reads its
    /// own (and earlier jobs') changes, a job that fails takes back only its own, keys that sum
    /// to zero write no row, and after the batch the writer (and any plain connection) writes
    /// at once.
    func testABatchGathersItsCounterChangesAndAFailedWriteTakesBackOnlyItsOwn() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "counts", sql: Counters.schema("counts"))])
        let seen = try await oneBatch(db, of: 6) { n, conn in
            try Counters.add(conn, table: "counts", keys: ["all", "k\(n % 2)", "zero"], delta: 1)
            try Counters.add(conn, table: "counts", keys: ["zero"], delta: -1)
            if n == 3 { throw APIError.badRequest("refused \(n)") }
            return try Counters.get(conn, table: "counts", key: "all")
        }.compactMap { $0 }
        XCTAssertEqual(seen.count, 5, "only the failing write fails")
        XCTAssertEqual(seen.sorted(), [1, 2, 3, 4, 5], "each job read its own change and the ones before it: \(seen)")
        let counts = try await db.read { try $0.query("SELECT key, n FROM counts ORDER BY key").map { "\($0.string(0) ?? "")=\($0.int(1) ?? 0)" } }
        XCTAssertEqual(counts, ["all=5", "k0=3", "k1=2"], "the failed write's changes are gone; zero sums wrote no row")
        let afterwards = try db.sync { conn -> Int64 in
            try Counters.add(conn, table: "counts", keys: ["all"], delta: 1)
            return try conn.scalar("SELECT n FROM counts WHERE key = 'all'")
        }
        XCTAssertEqual(afterwards, 6, "the writer gathers no more once its batch is over")
        let plain = try SQLiteConnection(path: path)
        try Counters.add(plain, table: "counts", keys: ["all"], delta: 1)
        XCTAssertEqual(try plain.scalar("SELECT n FROM counts WHERE key = 'all'"), 7, "outside a batch: at once")
        plain.close()
        db.close()
    }

    /// Writes queued while the writer is busy commit in one transaction. One that throws after
    /// changing rows leaves none of its changes, the others are kept, and each of them is
    /// answered what was committed (the batch runs again, each write under a savepoint, after
    /// a run without them met the failure). A failing write alone leaves nothing either.
    func testABatchWithAFailingWriteKeepsTheOthersAndAnswersWhatWasCommitted() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);")])
        let results = try await oneBatch(db, of: 6) { n, conn in
            try conn.run("INSERT INTO a(n) VALUES (?)", [.int(n)])
            if n == 3 { throw APIError.badRequest("refused \(n)") }
            return conn.lastInsertRowID
        }
        var answered: [Int64: Int64] = [:]
        for (n, result) in results.enumerated() {
            if let id = result { answered[Int64(n)] = id }
        }
        XCTAssertEqual(answered.keys.sorted(), [0, 1, 2, 4, 5], "only the failing write fails")
        let stored = try await db.read { try $0.query("SELECT id, n FROM a ORDER BY n").map { [$0.int("id"), $0.int("n")] } }
        XCTAssertEqual(stored.map { $0[1] }, [0, 1, 2, 4, 5], "the failing write left nothing")
        for row in stored {
            XCTAssertEqual(answered[row[1] ?? -1], row[0], "write \(row[1] ?? -1) answered the id it was stored under")
        }

        do {
            _ = try await db.write { conn -> Int64 in
                try conn.run("INSERT INTO a(n) VALUES (99)")
                throw APIError.badRequest("refused alone")
            }
            XCTFail("a failing write alone must fail")
        } catch let error as APIError {
            XCTAssertEqual(error.message, "refused alone")
        }
        let after = try await db.write { conn -> Int64 in
            try conn.run("INSERT INTO a(n) VALUES (100)")
            return try conn.scalar("SELECT COUNT(*) FROM a WHERE n IN (99, 100)")
        }
        XCTAssertEqual(after, 1, "the failing write alone left nothing; the next one is kept")
    }

    func testPasswordHashing() async throws {
        let hash = try await PasswordHasher.shared.hash("correct horse")
        XCTAssertTrue(hash.hasPrefix("$y$"), hash)
        let again = try await PasswordHasher.shared.hash("correct horse")
        XCTAssertNotEqual(hash, again, "salted")
        let ok = try await PasswordHasher.shared.verify("correct horse", against: hash)
        let bad = try await PasswordHasher.shared.verify("wrong horse", against: hash)
        XCTAssertTrue(ok)
        XCTAssertFalse(bad)
        let garbage = try await PasswordHasher.shared.verify("x", against: "not a hash")
        XCTAssertFalse(garbage)
    }

    func testSessionTokensAndDigests() throws {
        let a = try SessionToken.generate(), b = try SessionToken.generate()
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.count, 43, "32 bytes in unpadded base64url")
        XCTAssertTrue(a.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        XCTAssertEqual(SessionToken.hex(SessionToken.sha256(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SessionToken.hex(SessionToken.sha256([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SessionToken.digest(a).count, 32)
    }

    /// The snapshot version remembered totals and rows are keyed on changes with every change
    /// a connection can see: another connection's commit, its own rows, and its own schema change
    /// (no row changed, and `data_version` ignores the connection's own commits).
    func testTheSnapshotVersionSeesEveryKindOfChange() throws {
        let db = try SQLiteConnection(path: path)
        let other = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE a(x INTEGER)")
        func version() throws -> SnapshotCounts.Version? {
            try db.run("BEGIN")
            defer { _ = try? db.run("COMMIT") }
            return try SnapshotCounts.version(db)
        }
        let first = try XCTUnwrap(try version())
        XCTAssertEqual(try version(), first, "nothing changed")
        try db.execute("CREATE TABLE b(y INTEGER)")
        let afterSchema = try XCTUnwrap(try version())
        XCTAssertNotEqual(afterSchema, first, "the connection's own schema change")
        try db.run("INSERT INTO a(x) VALUES (1)")
        let afterRow = try XCTUnwrap(try version())
        XCTAssertNotEqual(afterRow, afterSchema, "the connection's own row")
        try other.run("INSERT INTO a(x) VALUES (2)")
        let afterOther = try XCTUnwrap(try version())
        XCTAssertNotEqual(afterOther, afterRow, "another connection's commit")
        try other.execute("CREATE INDEX a_x ON a(x)")
        XCTAssertNotEqual(try version(), afterOther, "another connection's schema change")
        XCTAssertNil(try SnapshotCounts.version(db), "outside a transaction: nothing may be kept")
    }
}
