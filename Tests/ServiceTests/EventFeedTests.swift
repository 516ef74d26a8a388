#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// Outbox → pull → apply between two real service runtimes over real sockets and files.
final class EventFeedTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = "/tmp/crm-events-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A producer with `POST /items` (name) writing an `item` event in the same transaction.
    func producer() -> ServiceDefinition {
        ServiceDefinition(name: "producer", declaring: [APIRoute("POST", "/items", nil, .public, "Create an item", answer: .mutation)],
                          migrations: [Migration(name: "items", sql: "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);")], routes: [
            .post("/items") { ctx in
                let name = try ctx.params.requireString("name")
                return try await ctx.mutate { db in
                    try db.run("INSERT INTO items(name) VALUES (?)", [.text(name)])
                    let id = db.lastInsertRowID
                    try Outbox.append(db, type: "item", entityID: id, state: JSONObject([("id", .int(id)), ("name", .string(name))]))
                    return Reply.mutation(id: id)
                }
            },
        ])
    }

    /// A consumer copying items into `copies` (an idempotent upsert), counting applications.
    func consumer() -> ServiceDefinition {
        ServiceDefinition(name: "consumer", declaring: [], migrations: [Migration(name: "copies", sql: "CREATE TABLE copies(id INTEGER PRIMARY KEY, name TEXT, applied INTEGER NOT NULL DEFAULT 1);")],
                          routes: [], subscriptions: [
            EventSubscription(source: "producer") { db, event in
                guard event.type == "item" else { return }
                try db.run("INSERT INTO copies(id, name) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, applied = applied + 1",
                           [.int(event.entityID), event.state["name"].map { SQLValue($0.stringValue) } ?? .null])
            },
        ])
    }

    func configuration(_ name: String) -> ServiceConfiguration {
        ServiceConfiguration(endpoint: .unix(path: "\(dir!)/\(name).sock"), databasePath: "\(dir!)/\(name).sqlite", replica: "1",
                             sources: ["producer": .unix(path: "\(dir!)/producer.sock")])
    }

    func shutdown(_ runtime: ServiceRuntime) {
        let done = DispatchSemaphore(value: 0)
        runtime.shutdown(timeoutSeconds: 5) { done.signal() }
        done.wait()
    }

    /// The producer running, and a client connected to it.
    func startProducer() throws -> (runtime: ServiceRuntime, client: WireClient, loop: EventLoop) {
        let runtime = try ServiceRuntime(definition: producer(), configuration: configuration("producer"))
        try runtime.start()
        let loop = try EventLoop.start(name: "test")
        let client = WireClient(loop: loop, endpoint: .unix(path: "\(dir!)/producer.sock"), serviceName: "producer", hello: Hello(peer: "test", replica: "1"))
        client.start()
        return (runtime, client, loop)
    }

    func copies() throws -> [(Int64, String, Int64)] {
        let db = try SQLiteConnection(path: "\(dir!)/consumer.sqlite")
        return try db.query("SELECT id, name, applied FROM copies ORDER BY id").map { ($0.int(0) ?? 0, $0.string(1) ?? "", $0.int(2) ?? 0) }
    }

    func waitForCopies(_ count: Int, seconds: Double = 5) throws -> [(Int64, String, Int64)] {
        let deadline = Date().addingTimeInterval(seconds)
        var rows = try copies()
        while rows.count < count && Date() < deadline {
            usleep(20_000)
            rows = try copies()
        }
        return rows
    }

    func testEventsAreCopiedOnceAndCaughtUpAfterDowntime() async throws {
        let (source, client, loop) = try startProducer()
        func create(_ name: String) async throws {
            let answer = try await client.send(WireRequest(method: "POST", path: "/items", params: JSONObject([("name", .string(name))]),
                                                           caller: nil, requestID: UUID().uuidString, deadline: 0)).get()
            XCTAssertEqual(answer.status, 200)
        }

        var sink: ServiceRuntime? = try ServiceRuntime(definition: consumer(), configuration: configuration("consumer"))
        try sink?.start()
        let started = Date()
        try await create("一")
        try await create("二")
        var rows = try waitForCopies(2)
        XCTAssertEqual(rows.map(\.1), ["一", "二"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a long poll answers as soon as an event is written")

        // The consumer is down while more happens; a new one catches up from its stored cursor.
        if let running = sink { shutdown(running) }
        sink = nil
        for i in 3...5 { try await create("item-\(i)") }
        sink = try ServiceRuntime(definition: consumer(), configuration: configuration("consumer"))
        try sink?.start()
        rows = try waitForCopies(5)
        XCTAssertEqual(rows.map(\.1), ["一", "二", "item-3", "item-4", "item-5"])
        XCTAssertEqual(rows.map(\.2), [1, 1, 1, 1, 1], "each event applied once")
        if let running = sink { shutdown(running) }
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testFeedAnswersEventsAfterACursorAndWaitsWhenThereAreNone() async throws {
        let (source, client, loop) = try startProducer()
        for name in ["a", "b", "c"] {
            _ = try await client.send(WireRequest(method: "POST", path: "/items", params: JSONObject([("name", .string(name))]), caller: nil, requestID: name, deadline: 0)).get()
        }
        func feed(_ params: JSONObject) async throws -> JSON {
            try await client.send(WireRequest(method: "GET", path: "/internal/events", params: params, caller: nil, requestID: "", deadline: 0)).get().body
        }
        let all = try await feed(["after": 0])
        XCTAssertEqual(all["data"]?["events"]?.arrayValue?.compactMap { $0["state"]?["name"]?.stringValue }, ["a", "b", "c"])
        XCTAssertEqual(all["data"]?["last"]?.intValue, 3)
        let page = try await feed(["after": 1, "limit": 1])
        XCTAssertEqual(page["data"]?["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [2])
        let started = Date()
        let none = try await feed(["after": 3, "wait_ms": 300])
        XCTAssertEqual(none["data"]?["events"]?.arrayValue?.count, 0)
        XCTAssertEqual(none["data"]?["last"]?.intValue, 3)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.29, "waited for the timeout")
        let tail = try await feed(["after": -1])
        XCTAssertEqual(tail["data"]?["events"]?.arrayValue?.count, 0, "the tail: no history")
        XCTAssertEqual(tail["data"]?["last"]?.intValue, 3)
        let refused = try await feed(["after": -2])
        XCTAssertEqual(refused["status"]?.intValue, 1)
        shutdown(source)
        client.stop()
        loop.stop()
    }
}
