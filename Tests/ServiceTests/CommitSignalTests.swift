import Foundation
import XCTest
import ServiceKit

final class CommitSignalTests: XCTestCase {
    /// A database with one table `t` on a temporary file, deleted when the test ends.
    private func temporaryDatabase() throws -> Database {
        let path = "/tmp/crm-signal-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        addTeardownBlock { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        return try Database(path: path, migrations: [Migration(name: "t", sql: "CREATE TABLE t(x);")])
    }

    func testASignalWakesEveryWaiterAndAMovedGenerationDoesNotWait() async throws {
        let signal = CommitSignal()
        let generation = signal.generation
        let waiters = (0..<3).map { _ in Task { await signal.wait(after: generation, timeoutMillis: 30_000) } }
        let deadline = Date().addingTimeInterval(5)
        while signal.waiterCount < 3 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        XCTAssertEqual(signal.waiterCount, 3)
        let started = Date()
        signal.signal()
        for waiter in waiters { await waiter.value }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(signal.waiterCount, 0)
        // A commit between reading the generation and waiting is not missed.
        await signal.wait(after: generation, timeoutMillis: 30_000)
        XCTAssertEqual(signal.waiterCount, 0)
    }

    /// A waiter that names topics is woken by a signal of one of them or of all, not by one of
    /// other topics — though that moves the generation, so a wait after it returns at once.
    func testAWaiterForTopicsSleepsThroughSignalsOfOthers() async throws {
        let signal = CommitSignal()
        let generation = signal.generation
        let organizations = Task { await signal.wait(after: generation, timeoutMillis: 30_000, topics: ["organization"]) }
        let customers = Task { await signal.wait(after: generation, timeoutMillis: 30_000, topics: ["customer", "x"]) }
        let any = Task { await signal.wait(after: generation, timeoutMillis: 30_000) }
        let deadline = Date().addingTimeInterval(5)
        while signal.waiterCount < 3 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        XCTAssertEqual(signal.waiterCount, 3)
        signal.signal(topics: ["customer"])
        await customers.value
        await any.value
        XCTAssertEqual(signal.waiterCount, 1, "the organization waiter still waits")
        await signal.wait(after: generation, timeoutMillis: 30_000, topics: ["organization"])  // the generation moved
        signal.signal(topics: ["organization", "customer"])
        await organizations.value
        XCTAssertEqual(signal.waiterCount, 0)

        let named = Task { await signal.wait(after: signal.generation, timeoutMillis: 30_000, topics: ["organization"]) }
        while signal.waiterCount < 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        signal.signal()
        await named.value
        XCTAssertEqual(signal.waiterCount, 0, "a signal of every topic wakes it")
    }

    func testAWaitEndsAtItsTimeoutOrWhenCancelled() async throws {
        let signal = CommitSignal()
        let started = Date()
        await signal.wait(after: signal.generation, timeoutMillis: 100)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.09)
        XCTAssertEqual(signal.waiterCount, 0)

        let waiter = Task { await signal.wait(after: signal.generation, timeoutMillis: 30_000) }
        waiter.cancel()
        await waiter.value
        XCTAssertEqual(signal.waiterCount, 0, "a cancelled wait leaves nothing behind")
    }

    func testTheDatabaseSignalsEachCommitAndTheStartOfClosing() async throws {
        let database = try temporaryDatabase()
        let signal = database.commitSignal
        let generation = signal.generation
        let waiter = Task { await signal.wait(after: generation, timeoutMillis: 30_000) }
        _ = try await database.write { try $0.run("INSERT INTO t VALUES (1)") }
        await waiter.value
        XCTAssertEqual(signal.generation, generation + 1, "one signal per committed batch")
        _ = try await database.read { try $0.scalar("SELECT COUNT(*) FROM t") }
        XCTAssertEqual(signal.generation, generation + 1, "a read is not a commit")
        database.beginClosing()
        XCTAssertEqual(signal.generation, generation + 2, "closing wakes the waiting polls")
        database.close()
    }

    /// The event feed's signal moves only with commits that append an event (and closing): a
    /// commit of other rows (copies, say) wakes no follower.
    func testTheOutboxSignalMovesOnlyWithEvents() async throws {
        let database = try temporaryDatabase()
        let outbox = database.outboxSignal
        let start = outbox.generation
        let commits = database.commitSignal.generation
        _ = try await database.write { try $0.run("INSERT INTO t VALUES (1)") }
        XCTAssertEqual(database.commitSignal.generation, commits + 1)
        XCTAssertEqual(outbox.generation, start, "no event, no wake-up")
        let waiter = Task { await outbox.wait(after: start, timeoutMillis: 30_000) }
        _ = try await database.write { db in
            try db.run("INSERT INTO t VALUES (2)")
            try Outbox.append(db, type: "t", entityID: 2, state: JSONObject([("x", .int(2))]))
        }
        await waiter.value
        XCTAssertEqual(outbox.generation, start + 1, "an event wakes the feed")
        // A feed waiting for other types sleeps through it; one waiting for its type does not.
        let other = Task { await outbox.wait(after: start + 1, timeoutMillis: 30_000, topics: ["u"]) }
        let same = Task { await outbox.wait(after: start + 1, timeoutMillis: 30_000, topics: ["t"]) }
        let deadline = Date().addingTimeInterval(5)
        while outbox.waiterCount < 2 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        _ = try await database.write { db in try Outbox.append(db, type: "t", entityID: 3, state: JSONObject([("x", .int(3))])) }
        await same.value
        XCTAssertEqual(outbox.waiterCount, 1, "the feed of type u still waits")
        XCTAssertEqual(outbox.generation, start + 2)
        database.beginClosing()
        await other.value
        XCTAssertEqual(outbox.generation, start + 3, "closing wakes the waiting polls, whatever their types")
        database.close()
    }
}
