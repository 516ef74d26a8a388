#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import XCTest
@testable import ServiceKit
import WireProtocol

/// Stored answers by request id: a resend gets the first answer and changes nothing; the same
/// id with other parameters or from another caller is refused; secrets are served for a while only.
final class IdempotencyStoreTests: XCTestCase {
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(NotesService.definition)
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    func notes() throws -> Int64? { try tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM notes") } }
    func stored() throws -> Int64? { try tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM applied_requests") } }

    func create(_ params: JSONObject, rid: String, caller: Caller = Callers.employee) async -> WireResponse {
        await tester.call(method: "POST", path: "/notes", params: params, caller: caller, requestID: rid)
    }

    func testSameRequestIDReplaysTheStoredAnswer() async throws {
        let first = await create(["text": "once"], rid: "r-1")
        XCTAssertEqual(first.status, 200)
        let again = await create(["text": "once"], rid: "r-1")
        XCTAssertEqual(again.status, 200, "not the 409 a second insert would get: \(again.body)")
        XCTAssertEqual(again.body.jsonString, first.body.jsonString)
        XCTAssertEqual(try notes(), 1)
        XCTAssertEqual(try stored(), 1)
    }

    func testAThrownErrorStoresNothing() async throws {
        let first = await create(["text": "taken"], rid: "r-a")
        XCTAssertEqual(first.status, 200)
        // The body's constraint error aborts the mutation: nothing is stored, a resend tries again.
        let duplicate = await create(["text": "taken"], rid: "r-b")
        XCTAssertEqual(duplicate.status, 409)
        XCTAssertEqual(try stored(), 1, "a thrown error is not an answer to keep")
    }

    func testSameRequestIDWithOtherParametersOrCallerIs422() async throws {
        let first = await create(["text": "one"], rid: "r-2")
        XCTAssertEqual(first.status, 200)
        let otherParams = await create(["text": "two"], rid: "r-2")
        XCTAssertEqual(otherParams.status, 422)
        XCTAssertEqual(otherParams.body["msg"]?.stringValue, "Idempotency-Key was already used with different parameters")
        let otherCaller = await create(["text": "one"], rid: "r-2", caller: Callers.otherEmployee)
        XCTAssertEqual(otherCaller.status, 422, "ids are scoped to the caller")
        let otherPath = await tester.call(method: "POST", path: "/notez", params: ["text": "one"], caller: Callers.employee, requestID: "r-2")
        XCTAssertEqual(otherPath.status, 404, "routing comes first")
        XCTAssertEqual(try notes(), 1)
    }

    func testPasswordFieldsAreLeftOutOfTheFingerprint() {
        let a = IdempotencyStore.fingerprint(method: "POST", path: "/p", params: ["phone": "1", "password": "a", "new_Password": "b"])
        let b = IdempotencyStore.fingerprint(method: "POST", path: "/p", params: ["phone": "1", "password": "c", "new_Password": "d"])
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, IdempotencyStore.fingerprint(method: "POST", path: "/p", params: ["phone": "2", "password": "a"]))
        XCTAssertNotEqual(a, IdempotencyStore.fingerprint(method: "PUT", path: "/p", params: ["phone": "1", "password": "a", "new_Password": "b"]))
        XCTAssertNotEqual(IdempotencyStore.fingerprint(method: "POST", path: "/p", params: ["a": "1"]),
                          IdempotencyStore.fingerprint(method: "POST", path: "/p", params: ["a": 1]), "types count")
        for key in ["password", "PASSWORD", "new_PassWord", "passwordOld", "x-password-y"] {
            XCTAssertTrue(IdempotencyStore.names(key, "password"), key)
        }
        for key in ["", "pass", "passwor", "pass_word", "passwörd", "phone", "pässword"] {
            XCTAssertFalse(IdempotencyStore.names(key, "password"), key)
        }
    }

    func testWithoutRequestIDNothingIsStored() async throws {
        let a = await create(["text": "a"], rid: "")
        XCTAssertEqual(a.status, 200)
        let b = await create(["text": "b"], rid: "")
        XCTAssertEqual(b.status, 200)
        XCTAssertEqual(try notes(), 2)
        XCTAssertEqual(try stored(), 0)
    }

    func testReplayIsReported() async throws {
        func context(_ rid: String) -> RequestContext {
            RequestContext(method: "POST", path: "/x", params: Params(["k": "v"]), caller: Callers.admin, requestID: rid, session: nil,
                           database: tester.database)
        }
        let runs = Counter()
        let body: @Sendable (SQLiteConnection) throws -> WireResponse = { _ in runs.increment(); return Reply.ok() }
        let first = try await context("key:7:r-3").mutateReportingReplay(body)
        let second = try await context("key:7:r-3").mutateReportingReplay(body)
        XCTAssertFalse(first.replayed)
        XCTAssertTrue(second.replayed)
        XCTAssertEqual(runs.value, 1, "a client's key is looked up before the body runs")
        let third = try await context("gw-1-ta1").mutateReportingReplay(body)
        let fourth = try await context("gw-1-ta1").mutateReportingReplay(body)
        XCTAssertFalse(third.replayed)
        XCTAssertTrue(fourth.replayed, "the gateway's own id is looked up once the record refuses it")
    }

    /// A gateway id is not looked up before the body runs: a resend whose body succeeds again
    /// is rolled back (the record's primary key refuses the id) and answered the stored answer;
    /// one whose body now fails its own checks likewise; other parameters still get 422.
    func testAResentGatewayIDChangesNothingWhateverItsBodyDoes() async throws {
        func context(_ rid: String, _ params: JSONObject = ["k": "v"]) -> RequestContext {
            RequestContext(method: "POST", path: "/notes", params: Params(params), caller: Callers.employee, requestID: rid, session: nil,
                           database: tester.database)
        }
        let runs = Counter()
        let insertsAgain: @Sendable (SQLiteConnection) throws -> WireResponse = { db in
            runs.increment()
            try db.run("INSERT INTO notes(text, created_by) VALUES (?, 1)", [.text("run \(runs.value)")])
            try Outbox.append(db, type: "note", entityID: db.lastInsertRowID, state: [:])
            return Reply.mutation(id: db.lastInsertRowID)
        }
        let first = try await context("gw-2-ta1").mutateReportingReplay(insertsAgain)
        let again = try await context("gw-2-ta1").mutateReportingReplay(insertsAgain)
        XCTAssertTrue(again.replayed)
        XCTAssertEqual(again.response.body.jsonString, first.response.body.jsonString)
        XCTAssertEqual(try notes(), 1, "the second run's insert was rolled back")
        XCTAssertEqual(try tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM events") }, 1, "and its event")
        XCTAssertEqual(runs.value, 2)

        let failsNow: @Sendable (SQLiteConnection) throws -> WireResponse = { _ in throw APIError.conflict("taken") }
        let failing = try await context("gw-2-ta1").mutateReportingReplay(failsNow)
        XCTAssertTrue(failing.replayed, "the stored answer, not the body's 409")
        XCTAssertEqual(failing.response.body.jsonString, first.response.body.jsonString)

        do {
            _ = try await context("gw-2-ta1", ["k": "other"]).mutateReportingReplay(insertsAgain)
            XCTFail("other parameters under a stored id")
        } catch let error as APIError {
            XCTAssertEqual(error.status, 422)
        }
        XCTAssertEqual(try notes(), 1)

        // A body that fails under an id never stored is answered its own error.
        do {
            _ = try await context("gw-2-ta2").mutateReportingReplay(failsNow)
            XCTFail("the body's error")
        } catch let error as APIError {
            XCTAssertEqual(error.status, 409)
        }
        XCTAssertEqual(try stored(), 1)
    }

    /// Two writes with one gateway id in one group commit: one applies, the other is answered
    /// its stored answer (the batch runs again with a savepoint per job).
    func testOneGatewayIDTwiceInOneBatchAppliesOnce() async throws {
        let context = RequestContext(method: "POST", path: "/notes", params: Params(["k": "v"]), caller: Callers.employee,
                                     requestID: "gw-3-ta1", session: nil, database: tester.database)
        let serial = Counter()
        let body: @Sendable (SQLiteConnection) throws -> WireResponse = { db in
            serial.increment()
            try db.run("INSERT INTO notes(text, created_by) VALUES (?, 1)", [.text("batch \(serial.value)")])
            return Reply.mutation(id: db.lastInsertRowID)
        }
        // Both queue while a first write holds the writer, so they run as one batch.
        let writes = try await tester.database.queuedAsOneBatch { (0..<2).map { _ in Task { try await context.mutateReportingReplay(body) } } }
        let a = try await writes[0].value, b = try await writes[1].value
        XCTAssertNotEqual(a.replayed, b.replayed)
        XCTAssertEqual(a.response.body.jsonString, b.response.body.jsonString)
        XCTAssertEqual(try notes(), 1)
        XCTAssertEqual(try stored(), 1)
    }

    // MARK: Expiry

    func key(_ rid: String) -> IdempotencyStore.Key {
        IdempotencyStore.Key(requestID: rid, callerID: 7, fingerprint: "f")
    }

    /// Stores an answer holding a secret, then moves its expiry `secondsAgo` into the past.
    func storeSecret(_ rid: String, expiredSecondsAgo secondsAgo: Int64?) throws {
        _ = try tester.database.sync { db in
            try db.writeTransaction { db in
                try IdempotencyStore.record(db, key(rid), Reply.ok(data: "secret-token"), keepSeconds: 300)
                if let secondsAgo {
                    try db.run("UPDATE applied_requests SET expires_at = ? WHERE request_id = ?", [.int(Int64(time(nil)) - secondsAgo), .text(rid)])
                }
            }
        }
    }

    func lookup(_ rid: String) throws -> WireResponse? {
        try tester.database.sync { try IdempotencyStore.lookup($0, key(rid)) }
    }

    func testASecretIsServedUntilItsExpiryThen409() throws {
        try storeSecret("fresh", expiredSecondsAgo: nil)
        try storeSecret("old", expiredSecondsAgo: 1)
        XCTAssertEqual(try lookup("fresh")?.body["data"]?.stringValue, "secret-token")
        XCTAssertThrowsError(try lookup("old")) { error in
            XCTAssertEqual((error as? APIError)?.status, 409)
        }
        let expiry = try tester.database.sync { try $0.scalar("SELECT expires_at - created_at FROM applied_requests WHERE request_id = 'fresh'") }
        XCTAssertEqual(expiry, 300)
    }

    func testTheSweepBlanksExpiredSecretsAndKeepsRefusingThem() throws {
        try storeSecret("fresh", expiredSecondsAgo: nil)
        try storeSecret("old", expiredSecondsAgo: 1)
        try tester.database.sync { try $0.writeTransaction(IdempotencyStore.forgetExpiredSecrets) }
        let rows = try tester.database.sync { db in
            try db.query("SELECT request_id, body, expires_at FROM applied_requests ORDER BY request_id").map { ($0.string(0), $0.string(1), $0.int(2)) }
        }
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0].0, "fresh")
        XCTAssertTrue(rows[0].1?.contains("secret-token") ?? false, "not expired: kept")
        XCTAssertEqual(rows[1].0, "old")
        XCTAssertEqual(rows[1].1, "null", "the secret is gone from the file")
        XCTAssertEqual(rows[1].2, 0)
        XCTAssertThrowsError(try lookup("old")) { XCTAssertEqual(($0 as? APIError)?.status, 409) }
    }

    func testAnswersArePurgedAfterTheRetentionTime() async throws {
        let recent = await create(["text": "recent"], rid: "recent")
        XCTAssertEqual(recent.status, 200)
        let ancient = await create(["text": "ancient"], rid: "ancient")
        XCTAssertEqual(ancient.status, 200)
        _ = try tester.database.sync { db in
            try db.run("UPDATE applied_requests SET created_at = created_at - ? WHERE request_id = 'ancient'", [.int(IdempotencyStore.retentionSeconds + 1)])
        }
        try tester.runMaintenance()
        XCTAssertEqual(try tester.database.sync { try $0.query("SELECT request_id FROM applied_requests").compactMap { $0.string(0) } }, ["recent"])
        // Forgotten: the same id is a new request now (and meets the row it made).
        let resent = await create(["text": "ancient"], rid: "ancient")
        XCTAssertEqual(resent.status, 409)
    }

    /// Stores an answer under each id, `created_at` `age` seconds ago (0: now).
    func storeAnswers(_ ids: [(String, age: Int64)]) throws {
        let now = Int64(time(nil))
        try tester.database.sync { db in
            for (id, age) in ids {
                try db.run("INSERT INTO applied_requests(request_id, caller_id, fingerprint, status, body, created_at) VALUES (?, 0, 'f', 200, '{}', ?)",
                           [.text(id), .int(now - age)])
            }
        }
    }

    func storedIDs() throws -> [String] {
        try tester.database.sync { try $0.query("SELECT request_id FROM applied_requests ORDER BY request_id").compactMap { $0.string(0) } }
    }

    func testAPurgeStepVisitsItsRowsInIDOrderAndForgetsOnlyTheOldOnes() throws {
        let old = IdempotencyStore.retentionSeconds + 1
        try storeAnswers([("a", 0), ("b", old), ("c", 0), ("d", old), ("e", IdempotencyStore.retentionSeconds - 60)])
        var visited: [String?] = []
        var after: String?
        try tester.database.sync { db in
            repeat {
                after = try IdempotencyStore.purgeStep(db, after: after, limit: 2)
                visited.append(after)
            } while after != nil
        }
        XCTAssertEqual(visited, ["b", "d", "e", nil], "two rows a step, in id order, then the end")
        XCTAssertEqual(try storedIDs(), ["a", "c", "e"], "only answers past the retention time are forgotten")
    }

    func testAnAnswerPurgeWalksTheTableInStepsOfWriteJobs() async throws {
        let old = IdempotencyStore.retentionSeconds + 1
        try storeAnswers((0..<23).map { (String(format: "gw-x-%03d", $0), age: $0 % 3 == 0 ? old : 0) })
        let purge = AnswerPurge(stepRows: 4)
        let database = tester.database
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in purge.start(database) { done.resume() } }
        let kept = try storedIDs()
        XCTAssertEqual(kept.count, 15, "the 8 old answers of 23 are forgotten: \(kept)")
        XCTAssertFalse(kept.contains("gw-x-021"))
        XCTAssertTrue(kept.contains("gw-x-022"), "the walk reached the last step")
        // Ended: another walk starts (and finds nothing more to forget).
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in purge.start(database) { done.resume() } }
        XCTAssertEqual(try storedIDs(), kept)
    }

    func testAnAnswerPurgeStartedDuringAWalkIsNotDoubled() async throws {
        try storeAnswers([("a", IdempotencyStore.retentionSeconds + 1), ("b", 0)])
        let purge = AnswerPurge(stepRows: 1)
        let database = tester.database
        let order = Lines()
        // Both starts while the writer is held: the first walk's step waits in the queue (the
        // one write `queuedAsOneBatch` waits for), so that walk is surely still running.
        _ = try await database.queuedAsOneBatch { () -> [Task<Void, Never>] in
            purge.start(database) { order.append("first walk ended") }
            purge.start(database) { order.append("second start answered") }
            return [Task {}]
        }
        let deadline = monotonicMillis() + 10_000
        while !order.lines.contains("first walk ended") && monotonicMillis() < deadline { try await Task.sleep(nanoseconds: 1_000_000) }
        XCTAssertEqual(order.lines, ["second start answered", "first walk ended"], "a start during a walk is answered at once, not walked again")
        XCTAssertEqual(try storedIDs(), ["b"])
    }

    /// Lines appended from any thread, in the order they came.
    final class Lines: Sendable {
        private let store = Mutex<[String]>([])
        func append(_ line: String) { store.withLock { $0.append(line) } }
        var lines: [String] { store.withLock { $0 } }
    }

    // MARK: Schema

    func testOlderStoredAnswerTableGetsTheExpiryColumnAndLosesItsIndexByAge() throws {
        let path = "/tmp/crm-old-answers-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let old = try SQLiteConnection(path: path)
        try old.execute("""
            CREATE TABLE applied_requests (request_id TEXT PRIMARY KEY, caller_id INTEGER NOT NULL, fingerprint TEXT NOT NULL,
                status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX applied_requests_created ON applied_requests(created_at);
            INSERT INTO applied_requests VALUES ('r1', 0, 'f', 200, '{}', 1);
            """)
        old.close()
        let database = try Database(path: path, migrations: [])
        let columns = try database.sync { db in try db.query("PRAGMA table_info(applied_requests)").compactMap { $0.string(1) } }
        XCTAssertTrue(columns.contains("expires_at"), "\(columns)")
        let indexes = try database.sync { db in try db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'applied_requests'").compactMap { $0.string(0) } }
        XCTAssertEqual(indexes, ["applied_requests_expiry"], "the index by age is dropped (the purge walks the table)")
        XCTAssertEqual(try database.sync { db in try db.scalar("SELECT COUNT(*) FROM applied_requests WHERE expires_at IS NULL") }, 1)
        database.close()
        // Opening again changes nothing.
        let again = try Database(path: path, migrations: [])
        again.close()
    }

    /// `event-seq` on a write's answer: the seq of the last event the write appended, read
    /// without a query; the newest event's when it appended none (not a mark left by the
    /// write before it).
    func testEventSeqIsTheWritesOwnLastEventElseTheNewest() async throws {
        func context(_ rid: String) -> RequestContext {
            RequestContext(method: "POST", path: "/notes", params: Params(JSONObject()), caller: Callers.employee, requestID: rid, session: nil, database: tester.database)
        }
        func seq(_ response: WireResponse) -> String? { response.headers.first { $0.name == "event-seq" }?.value }
        let two = try await context("e-1").mutate { db in
            try Outbox.append(db, type: "note", entityID: 1, state: ["n": 1])
            try Outbox.append(db, type: "note", entityID: 2, state: ["n": 2])
            return Reply.mutation(id: 2)
        }
        let newest = try tester.database.sync { try Outbox.newestSeq($0) }
        XCTAssertEqual(seq(two), String(newest), "its own last event")
        let none = try await context("e-2").mutate { _ in Reply.mutation(id: 0) }
        XCTAssertEqual(seq(none), String(newest), "none appended: the newest")
        let third = context("e-3"), fourth = context("e-4")
        async let first = third.mutate { db in
            try Outbox.append(db, type: "note", entityID: 3, state: [:])
            return Reply.mutation(id: 3)
        }
        async let second = fourth.mutate { _ in Reply.mutation(id: 0) }
        let (appended, quiet) = try await (first, second)
        let after = try tester.database.sync { db in try db.scalar("SELECT seq FROM events WHERE entity_id = 3") }
        XCTAssertEqual(seq(appended), String(after))
        XCTAssertTrue(seq(quiet) == String(newest) || seq(quiet) == String(after), "the newest when it ran: \(seq(quiet) ?? "none")")
    }
}

/// A count several tasks bump.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
