#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import XCTest
@testable import ServiceKit
import WireProtocol

/// The SQLite layer on real files.
final class SQLiteTests: XCTestCase {
    var path: String!

    override func setUp() {
        path = "/tmp/crm-sqlite-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
    }

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

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

    /// Writes queued while the writer is busy commit in one transaction. One that throws after
    /// changing rows leaves none of its changes, the others are kept, and each of them is
    /// answered what was committed (the batch runs again, each write under a savepoint, after
    /// a run without them met the failure). A failing write alone leaves nothing either.
    func testABatchWithAFailingWriteKeepsTheOthersAndAnswersWhatWasCommitted() async throws {
        let db = try Database(path: path, migrations: [Migration(name: "a", sql: "CREATE TABLE a(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);")])
        let gate = DispatchSemaphore(value: 0)
        let holding = Atomic<Bool>(false)
        let holder = Task { try await db.write { _ in holding.store(true, ordering: .releasing); gate.wait() } }
        let deadline = monotonicMillis() + 10_000
        while !holding.load(ordering: .acquiring) {
            guard monotonicMillis() < deadline else { gate.signal(); return XCTFail("the writer never ran the first write") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        let writes = (Int64(0)..<6).map { n in
            Task { () -> Int64? in
                try? await db.write { conn -> Int64 in
                    try conn.run("INSERT INTO a(n) VALUES (?)", [.int(n)])
                    if n == 3 { throw APIError.badRequest("refused \(n)") }
                    return conn.lastInsertRowID
                }
            }
        }
        while db.queuedWrites < writes.count {
            guard monotonicMillis() < deadline else { gate.signal(); return XCTFail("the writes never queued") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        gate.signal()
        try await holder.value
        var answered: [Int64: Int64] = [:]
        for (n, write) in writes.enumerated() {
            if let id = await write.value { answered[Int64(n)] = id }
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
        XCTAssertEqual(SessionToken.digest(a).count, 32)
    }

    /// The postings of a row: each run of one to four characters (not bytes or scalars: "é"
    /// written as e + combining accent is one), folded, never across two texts, each distinct
    /// byte sequence once and in order of first appearance. Distinct as bytes, as SQLite
    /// compares them: "é" precomposed and decomposed are two grams (Swift's `==` calls them
    /// equal, and keeping one lost the other's postings: a query typed in that form found
    /// nothing).
    func testGramsAreDistinctRunsOfOneToFourCharacters() throws {
        let array = try XCTUnwrap(NgramIndex.gramArray(["Ab\u{E9}AB", "e\u{301}x", "xab"]))
        let grams = try XCTUnwrap(JSONParser.parse(array).arrayValue).compactMap(\.stringValue).map { Array($0.utf8) }
        let expected = ["a", "ab", "ab\u{E9}", "ab\u{E9}a", "b", "b\u{E9}", "b\u{E9}a", "b\u{E9}ab", "\u{E9}", "\u{E9}a", "\u{E9}ab",
                        "e\u{301}", "e\u{301}x", "x", "xa", "xab"].map { Array($0.utf8) }
        XCTAssertEqual(grams, expected)
        XCTAssertNil(NgramIndex.gramArray(["", ""]), "no text, no postings")
        XCTAssertEqual(NgramIndex.gramArray(["\"a\\"]), #"["\"","\"a","\"a\\","a","a\\","\\"]"#, "escaped as JSON")
    }

    func testNgramSearchIndex() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE names(id INTEGER PRIMARY KEY, fold TEXT);" + NgramIndex.schema("g"))
        let names = ["张三丰", "Li Si", "50%_off", "王五"]
        for (i, name) in names.enumerated() {
            try db.run("INSERT INTO names(id, fold) VALUES (?, ?)", [.int(Int64(i + 1)), .text(NgramIndex.fold(name))])
            try NgramIndex.insert(db, table: "g", id: Int64(i + 1), status: 1, gramArray: NgramIndex.gramArray([name]))
        }
        func search(_ q: String) throws -> [Int64] {
            let folded = NgramIndex.fold(q)
            let c = try NgramIndex.condition(db, table: "g", idColumn: "id", foldColumn: "fold", folded: folded)
            let viaCondition = try db.queryIDs("SELECT id FROM names WHERE \(c.sql) ORDER BY id DESC", c.binds)
            let page = try NgramIndex.searchPage(db, table: "g", from: "names n", idColumn: "n.id", foldColumn: "n.fold", folded: folded,
                                                 statuses: [1], filter: SQLFilter(), paging: Paging(page: 1, count: 100))
            XCTAssertEqual(page.ids, viaCondition, "both ways agree")
            XCTAssertEqual(page.total, Int64(viaCondition.count))
            return viaCondition.reversed()
        }
        XCTAssertEqual(try search("三"), [1])
        XCTAssertEqual(try search("张三"), [1])
        XCTAssertEqual(try search("三丰"), [1])
        XCTAssertEqual(try search("张丰"), [], "not a substring")
        XCTAssertEqual(try search("LI S"), [2])
        XCTAssertEqual(try search("%_"), [3])
        XCTAssertEqual(try search("5_"), [], "'_' is not a wildcard (it would match \"50\")")
        XCTAssertEqual(try search("5%"), [], "'%' is not a wildcard")
        XCTAssertEqual(try search("i"), [2])
    }

    /// Without an index on `entity_id`, a rename and a status change find an entity's postings
    /// by the grams of its texts before: afterwards the table holds exactly the postings of the
    /// current texts and statuses, and each statement reads postings by their key, not the table.
    func testRenamesAndStatusChangesMoveExactlyTheEntitysPostings() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute(NgramIndex.schema("g"))
        var current: [Int64: (name: String, status: Int64)] = [:]
        for id in Int64(1)...6 {
            current[id] = ("张三\(id) Zhong", 1)
            try NgramIndex.insert(db, table: "g", id: id, status: 1, gramArray: NgramIndex.gramArray([current[id]?.name ?? ""]))
        }
        func rename(_ id: Int64, _ name: String) throws {
            guard let before = current[id] else { return XCTFail("no \(id)") }
            try NgramIndex.update(db, table: "g", id: id, status: before.status, old: NgramIndex.gramArray([before.name]), new: NgramIndex.gramArray([name]))
            current[id] = (name, before.status)
        }
        func setStatus(_ id: Int64, _ status: Int64) throws {
            guard let before = current[id] else { return XCTFail("no \(id)") }
            try NgramIndex.setStatus(db, table: "g", id: id, grams: NgramIndex.gramArray([before.name]), from: before.status, to: status)
            current[id] = (before.name, status)
        }
        try rename(2, "李四")
        try setStatus(3, -1)
        try rename(3, "王五 zhong")
        try setStatus(2, -1)
        try setStatus(2, 1)
        try rename(4, "")
        try rename(4, "赵六")
        try setStatus(5, 1)
        var expected: [[String]] = []
        for (id, entity) in current {
            for gram in (try JSONParser.parse(Array((NgramIndex.gramArray([entity.name]) ?? "[]").utf8))).arrayValue ?? [] {
                expected.append([gram.stringValue ?? "", String(entity.status), String(id)])
            }
        }
        let stored = try db.query("SELECT gram, status, entity_id FROM g").map { [$0.string(0) ?? "", String($0.int(1) ?? 0), String($0.int(2) ?? 0)] }
        XCTAssertEqual(stored.sorted { $0.joined(separator: "|") < $1.joined(separator: "|") }, expected.sorted { $0.joined(separator: "|") < $1.joined(separator: "|") })
        for sql in ["DELETE FROM g WHERE gram IN (SELECT value FROM json_each(?)) AND status = ? AND entity_id = ?",
                    "UPDATE g SET status = ? WHERE gram IN (SELECT value FROM json_each(?)) AND status = ? AND entity_id = ?"] {
            let plan = try db.query("EXPLAIN QUERY PLAN " + sql, [.text("[]"), .int(1), .int(1)] + (sql.hasPrefix("UPDATE") ? [.int(1)] : []))
                .map { $0.string(3) ?? "" }.joined(separator: "; ")
            XCTAssertTrue(plan.contains("USING PRIMARY KEY (gram=? AND status=? AND entity_id=?)"), plan)
            XCTAssertFalse(plan.contains("SCAN g"), plan)
        }
    }

    /// A query of at most four characters without other filters is answered from the posting
    /// list alone (a count and a page read from its newest end): every page, past the end, and
    /// every status filter agree with a plain scan of the names.
    func testShortSearchPagesAndCountsFromThePostingList() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE names(id INTEGER PRIMARY KEY, status INTEGER, fold TEXT);" + NgramIndex.schema("g"))
        var rows: [(id: Int64, status: Int64, fold: String)] = []
        for i in 1...90 {
            let name = ["Zhong \(i)", "zhongHua", "张三\(i % 7)", "li \(i)", "ZHO"][i % 5] + (i % 3 == 0 ? " 张三丰" : "")
            let status: Int64 = i % 4 == 0 ? -1 : 1
            rows.append((Int64(i), status, NgramIndex.fold(name)))
            try db.run("INSERT INTO names(id, status, fold) VALUES (?, ?, ?)", [.int(Int64(i)), .int(status), .text(NgramIndex.fold(name))])
            try NgramIndex.insert(db, table: "g", id: Int64(i), status: status, gramArray: NgramIndex.gramArray([name]))
        }
        for query in ["zhon", "zho", "z", "张三", "张三丰", "三丰", "li 1", "nope"] {
            for statuses in [[1], [-1], [1, -1], nil] as [[Int64]?] {
                let expected = rows.filter { $0.fold.contains(query) && (statuses?.contains($0.status) ?? true) }.map(\.id).reversed()
                for (page, count) in [(1, 7), (2, 7), (3, 7), (1, 100), (13, 7), (99, 7), (2, 1)] as [(Int64, Int64)] {
                    let result = try NgramIndex.searchPage(db, table: "g", from: "names n", idColumn: "n.id", foldColumn: "n.fold", folded: query,
                                                           statuses: statuses, filter: SQLFilter(), paging: Paging(page: page, count: count))
                    let label = "\(query) \(statuses ?? []) page \(page) count \(count)"
                    XCTAssertEqual(result.total, Int64(expected.count), label)
                    XCTAssertEqual(result.ids, Array(expected.dropFirst(Int((page - 1) * count)).prefix(Int(count))), label)
                }
            }
        }
    }

    /// "é" precomposed and "e\u{301}" are equal Swift strings but different postings: within one
    /// snapshot, where totals are remembered, each query gets its own total and rows.
    func testCanonicallyEquivalentQueriesKeepTheirOwnTotals() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE names(id INTEGER PRIMARY KEY, fold TEXT);" + NgramIndex.schema("g"))
        let names: [Int64: String] = [1: "caf\u{E9} one", 2: "cafe\u{301} two", 3: "cafe\u{301} three"]
        for (id, name) in names {
            try db.run("INSERT INTO names(id, fold) VALUES (?, ?)", [.int(id), .text(NgramIndex.fold(name))])
            try NgramIndex.insert(db, table: "g", id: id, status: 1, gramArray: NgramIndex.gramArray([name]))
        }
        try db.run("BEGIN")
        defer { _ = try? db.run("COMMIT") }
        for (query, expected) in [("caf\u{E9}", [Int64(1)]), ("cafe\u{301}", [3, 2]), ("\u{E9}", [1]), ("e\u{301}", [3, 2])] {
            let page = try NgramIndex.searchPage(db, table: "g", from: "names n", idColumn: "n.id", foldColumn: "n.fold", folded: query,
                                                 statuses: [1], filter: SQLFilter(), paging: Paging(page: 1, count: 20))
            XCTAssertEqual(page.ids, expected, Array(query.utf8).description)
            XCTAssertEqual(page.total, Int64(expected.count), Array(query.utf8).description)
        }
    }

    /// A search's total is remembered per connection only while that connection sees the same
    /// data (`SnapshotCounts`): a commit by another connection, the connection's own write, a
    /// status change and a rolled-back write all give the current total at once; inside one
    /// read transaction the total stays that of its snapshot, like its rows.
    func testRememberedSearchTotalsFollowEveryChange() throws {
        let writer = try SQLiteConnection(path: path)
        let reader = try SQLiteConnection(path: path)
        try writer.execute("CREATE TABLE names(id INTEGER PRIMARY KEY, fold TEXT);" + NgramIndex.schema("g"))
        func add(_ db: SQLiteConnection, _ id: Int64) throws {
            try db.run("INSERT INTO names(id, fold) VALUES (?, ?)", [.int(id), .text("zhong \(id)")])
            try NgramIndex.insert(db, table: "g", id: id, status: 1, gramArray: NgramIndex.gramArray(["Zhong \(id)"]))
        }
        func page(_ db: SQLiteConnection) throws -> (ids: [Int64], total: Int64) {
            try NgramIndex.searchPage(db, table: "g", from: "names n", idColumn: "n.id", foldColumn: "n.fold", folded: "zhon",
                                      statuses: [1], filter: SQLFilter(), paging: Paging(page: 1, count: 20))
        }
        func total(_ db: SQLiteConnection) throws -> Int64 {
            try db.run("BEGIN")
            defer { _ = try? db.run("COMMIT") }
            return try page(db).total
        }
        for id in 1...5 { try add(writer, Int64(id)) }
        XCTAssertEqual(try total(reader), 5)
        XCTAssertEqual(try total(reader), 5, "unchanged data: the same total")
        try add(writer, 6)
        XCTAssertEqual(try total(reader), 6, "another connection committed")
        try add(reader, 7)
        XCTAssertEqual(try total(reader), 7, "the connection's own write")
        try NgramIndex.setStatus(writer, table: "g", id: 7, grams: NgramIndex.gramArray(["Zhong 7"]), from: 1, to: -1)
        XCTAssertEqual(try total(reader), 6, "a status change")

        try reader.run("BEGIN")
        XCTAssertEqual(try page(reader).total, 6)
        try add(writer, 8)
        let snapshot = try page(reader)
        XCTAssertEqual(snapshot.total, 6, "inside one read transaction: its snapshot")
        XCTAssertEqual(snapshot.ids, [6, 5, 4, 3, 2, 1])
        try reader.run("COMMIT")
        XCTAssertEqual(try total(reader), 7)

        try reader.run("BEGIN IMMEDIATE")
        try add(reader, 9)
        XCTAssertEqual(try page(reader).total, 8, "inside a write transaction: its own uncommitted row")
        try reader.run("ROLLBACK")
        XCTAssertEqual(try total(reader), 7, "the rolled-back row is not counted")
        XCTAssertEqual(try page(reader).total, 7, "outside a transaction")
        XCTAssertEqual(try total(writer), 7)
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

    func testSearchIndexIsRebuiltWhenItsVersionChanges() throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE names(id INTEGER PRIMARY KEY, a TEXT, b TEXT);" + NgramIndex.migrationSchema("g"))
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name = 'g_entity'"), 1, "as migrations made it")
        try db.run("INSERT INTO names(id, a, b) VALUES (1, 'Zhong Hua', '中华'), (2, 'Li', NULL)")
        try db.run("INSERT INTO g(gram, status, entity_id) VALUES ('stale', 1, 1)")
        try NgramIndex.rebuildIfNeeded(db, table: "g", source: "SELECT id, 1, a, b FROM names")
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM g WHERE gram = 'stale'"), 0)
        XCTAssertEqual(try db.queryIDs("SELECT entity_id FROM g WHERE gram = 'zhon'"), [1])
        XCTAssertEqual(try db.queryIDs("SELECT entity_id FROM g WHERE gram = '中华'"), [1])
        XCTAssertEqual(try db.queryIDs("SELECT entity_id FROM g WHERE gram = 'li'"), [2])
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'g' AND sql IS NOT NULL"), 0,
                       "rebuilt as `schema` says: no entity_id index")
        // Same version again: nothing is rebuilt.
        try db.run("INSERT INTO g(gram, status, entity_id) VALUES ('marker', 1, 9)")
        try NgramIndex.rebuildIfNeeded(db, table: "g", source: "SELECT id, 1, a, b FROM names")
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM g WHERE gram = 'marker'"), 1)
    }
}
