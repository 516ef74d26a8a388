#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import XCTest
import ServiceKit
import WireProtocol

/// Outbox → pull → apply between two real service runtimes over real sockets and files.
final class EventFeedTests: EventTestCase {
    func testEventsAreCopiedOnceAndCaughtUpAfterDowntime() async throws {
        let (source, client, loop) = try startProducer()
        let consumer = consumer([copying(["item"], into: "copies")])
        var sink: ServiceRuntime? = try start(consumer)
        let started = Date()
        try await save(client, "一")
        try await save(client, "二")
        var rows = try await waitForRows("copies") { $0.count == 2 }
        XCTAssertEqual(rows.map(\.name), ["一", "二"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a long poll answers as soon as an event is written")

        // The consumer is down while more happens; a new one catches up from its stored cursor.
        if let running = sink { shutdown(running) }
        sink = nil
        for i in 3...5 { try await save(client, "item-\(i)") }
        sink = try start(consumer)
        rows = try await waitForRows("copies") { $0.count == 5 }
        XCTAssertEqual(rows.map(\.name), ["一", "二", "item-3", "item-4", "item-5"])
        XCTAssertEqual(rows.map(\.applied), [1, 1, 1, 1, 1], "each event applied once")
        if let running = sink { shutdown(running) }
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testFeedAnswersEventsAfterACursorAndWaitsWhenThereAreNone() async throws {
        let (source, client, loop) = try startProducer()
        for name in ["a", "b", "c"] { try await save(client, name) }
        let all = try await feed(client, ["after": 0])
        XCTAssertEqual(all["data"]?["events"]?.arrayValue?.compactMap { $0["state"]?["name"]?.stringValue }, ["a", "b", "c"])
        XCTAssertEqual(all["data"]?["last"]?.intValue, 3)
        let page = try await feed(client, ["after": 1, "limit": 1])
        XCTAssertEqual(page["data"]?["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [2])
        XCTAssertEqual(page["data"]?["last"]?.intValue, 2)
        let started = Date()
        let none = try await feed(client, ["after": 3, "wait_ms": 300])
        XCTAssertEqual(none["data"]?["events"]?.arrayValue?.count, 0)
        XCTAssertEqual(none["data"]?["last"]?.intValue, 3)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.29, "waited for the timeout")
        let tail = try await feed(client, ["after": -1])
        XCTAssertEqual(tail["data"]?["events"]?.arrayValue?.count, 0, "the tail: no history")
        XCTAssertEqual(tail["data"]?["last"]?.intValue, 3)
        let refused = try await feed(client, ["after": -2])
        XCTAssertEqual(refused["status"]?.intValue, 1)
        XCTAssertEqual(source.database.outboxSignal.waiterCount, 0, "no wait is left registered")
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testTypesAnswerOnlyThoseTypesAndLastMovesPastTheOthers() async throws {
        let (source, client, loop) = try startProducer()
        try await save(client, "a")
        try await save(client, "x", type: "tag")
        try await save(client, "b")
        try await save(client, "c")
        let tags = try await feed(client, ["after": 0, "types": "tag"])
        XCTAssertEqual(tags["data"]?["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue }, ["tag"])
        XCTAssertEqual(tags["data"]?["last"]?.intValue, 4, "the items after the tag were looked at: continue after them")
        let both = try await feed(client, ["after": 0, "types": .array(["item", "tag"])])
        XCTAssertEqual(both["data"]?["events"]?.arrayValue?.count, 4)
        let limited = try await feed(client, ["after": 0, "types": "item", "limit": 2])
        XCTAssertEqual(limited["data"]?["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [1, 3])
        XCTAssertEqual(limited["data"]?["last"]?.intValue, 3, "a full page continues after its last event")
        let none = try await feed(client, ["after": 0, "types": "session"])
        XCTAssertEqual(none["data"]?["events"]?.arrayValue?.count, 0)
        XCTAssertEqual(none["data"]?["last"]?.intValue, 4)
        let refused = try await feed(client, ["after": 0, "types": .object(JSONObject())])
        XCTAssertEqual(refused["status"]?.intValue, 1)
        shutdown(source)
        client.stop()
        loop.stop()
    }

    /// Polls until the producer has `count` waiting polls suspended on its outbox signal.
    func waitForWaiters(_ runtime: ServiceRuntime, _ count: Int) async throws {
        let deadline = Date().addingTimeInterval(5)
        while runtime.database.outboxSignal.waiterCount != count && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        XCTAssertEqual(runtime.database.outboxSignal.waiterCount, count)
    }

    func testAWaitingPollSleepsOnTheCommitSignalAndWakesForItsTypesOnly() async throws {
        let (source, client, loop) = try startProducer()
        let answered = Atomic<Bool>(false)
        let poll = Task {
            let body = try await eventFeed(client, ["after": 0, "types": "tag", "wait_ms": 10_000])
            answered.store(true, ordering: .releasing)
            return body
        }
        try await waitForWaiters(source, 1)
        try await save(client, "not a tag")
        // The commit woke the poll; it found no tag and went back to sleep.
        try await waitForWaiters(source, 1)
        XCTAssertFalse(answered.load(ordering: .acquiring), "an event of another type does not answer the poll")
        let started = Date()
        try await save(client, "x", type: "tag")
        let body = try await poll.value
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertEqual(body["data"]?["events"]?.arrayValue?.compactMap { $0["state"]?["name"]?.stringValue }, ["x"])
        XCTAssertEqual(body["data"]?["last"]?.intValue, 2)
        shutdown(source)
        client.stop()
        loop.stop()
    }

    /// A waiting poll looks only past what it already looked at: each commit of another type
    /// moves its start on, and the event it waits for, committed after several of them, is
    /// still answered — nothing between is skipped — with `last` at that event.
    func testAWaitingPollMovesOnPastOtherTypesWithoutSkippingItsOwn() async throws {
        let (source, client, loop) = try startProducer()
        try await save(client, "before the poll")
        let poll = Task { try await eventFeed(client, ["after": 0, "types": "tag", "wait_ms": 10_000]) }
        try await waitForWaiters(source, 1)
        for i in 1...5 {
            try await save(client, "item \(i)")
            try await waitForWaiters(source, 1)
        }
        try await save(client, "x", type: "tag")
        try await save(client, "after the tag")
        let body = try await poll.value
        XCTAssertEqual(body["data"]?["events"]?.arrayValue?.compactMap { $0["state"]?["name"]?.stringValue }, ["x"])
        XCTAssertEqual(body["data"]?["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [7])
        let last = body["data"]?["last"]?.intValue ?? 0
        XCTAssertTrue(last == 7 || last == 8, "continues after the tag (or the item written after it): \(last)")
        let again = try await feed(client, ["after": 0, "types": "tag"])
        XCTAssertEqual(again["data"]?["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [7], "a new poll starts at its cursor again")
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testAWriteByAnotherReplicaIsSeenByTheRecheck() async throws {
        let (source, client, loop) = try startProducer()
        let poll = Task { try await eventFeed(client, ["after": 0, "wait_ms": 10_000]) }
        try await waitForWaiters(source, 1)
        // Another process writing the same file: no signal reaches this one.
        let other = try SQLiteConnection(path: "\(dir!)/producer.sqlite")
        try other.writeTransaction { db in try Outbox.append(db, type: "item", entityID: 7, state: JSONObject([("name", "elsewhere")])) }
        let started = Date()
        let body = try await poll.value
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "seen within the 200 ms recheck")
        XCTAssertEqual(body["data"]?["events"]?.arrayValue?.compactMap { $0["entity_id"]?.intValue }, [7])
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testAWaitingPollIsAnsweredAtOnceWhenTheServiceBeginsClosing() async throws {
        let (source, client, loop) = try startProducer()
        try await save(client, "a")
        let poll = Task { try await eventFeed(client, ["after": 1, "wait_ms": 10_000]) }
        try await waitForWaiters(source, 1)
        let started = Date()
        let stopped = Task.detached { stopRuntime(source) }
        let body = try await poll.value
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a draining service does not hold its followers")
        XCTAssertEqual(body["data"]?["events"]?.arrayValue?.count, 0)
        XCTAssertEqual(body["data"]?["last"]?.intValue, 1)
        await stopped.value
        client.stop()
        loop.stop()
    }
}
