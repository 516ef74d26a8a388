#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// A producer and consumers as real service runtimes on real sockets and SQLite files in a
/// temporary folder (EventFeedTests, ProjectionTests).
class EventTestCase: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = "/tmp/crm-events-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A producer with `POST /items` (`name`; `type`, default `item`; `id` to update one)
    /// writing an event of that type with the item's new state in the same transaction.
    func producer() -> ServiceDefinition {
        ServiceDefinition(name: "producer", declaring: [APIRoute("POST", "/items", nil, .public, "Create or rename an item", answer: .mutation)],
                          migrations: [Migration(name: "items", sql: "CREATE TABLE items(id INTEGER PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL);")], routes: [
            .post("/items") { ctx in
                let name = try ctx.params.requireString("name")
                let type = try ctx.params.string("type") ?? "item"
                let given = try ctx.params.id("id")
                return try await ctx.mutate { db in
                    let id: Int64
                    if let given {
                        try db.run("UPDATE items SET name = ? WHERE id = ?", [.text(name), .int(given)])
                        id = given
                    } else {
                        try db.run("INSERT INTO items(type, name) VALUES (?, ?)", [.text(type), .text(name)])
                        id = db.lastInsertRowID
                    }
                    try Outbox.append(db, type: type, entityID: id, state: JSONObject([("id", .int(id)), ("name", .string(name))]))
                    return Reply.mutation(id: id)
                }
            },
        ])
    }

    /// Copies events of `types` into `table` (an idempotent upsert), counting applications.
    func copying(_ types: [String], into table: String, name: String = "items", version: Int64 = 1, extraSchema: String = "") -> Projection {
        Projection(name: name, version: version, source: "producer", eventTypes: types,
                   schema: "CREATE TABLE \(table)(id INTEGER PRIMARY KEY, type TEXT, name TEXT, applied INTEGER NOT NULL DEFAULT 1);" + extraSchema) { db, event in
            try db.run("INSERT INTO \(table)(id, type, name) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, applied = applied + 1",
                       [.int(event.entityID), .text(event.type), event.state["name"].map { SQLValue($0.stringValue) } ?? .null])
        }
    }

    func consumer(_ projections: [Projection]) -> ServiceDefinition {
        ServiceDefinition(name: "consumer", declaring: [], migrations: [], routes: [], projections: projections)
    }

    func configuration(_ name: String) -> ServiceConfiguration {
        ServiceConfiguration(endpoint: .unix(path: "\(dir!)/\(name).sock"), databasePath: "\(dir!)/\(name).sqlite", replica: "1",
                             sources: ["producer": .unix(path: "\(dir!)/producer.sock")])
    }

    func start(_ definition: ServiceDefinition) throws -> ServiceRuntime {
        let runtime = try ServiceRuntime(definition: definition, configuration: configuration(definition.name))
        try runtime.start()
        return runtime
    }

    func shutdown(_ runtime: ServiceRuntime) { stopRuntime(runtime) }

    /// The producer running, and a client connected to it.
    func startProducer() throws -> (runtime: ServiceRuntime, client: WireClient, loop: EventLoop) {
        let runtime = try start(producer())
        let loop = try EventLoop.start(name: "test")
        let client = WireClient(loop: loop, endpoint: .unix(path: "\(dir!)/producer.sock"), serviceName: "producer", hello: Hello(peer: "test", replica: "1"))
        client.start()
        return (runtime, client, loop)
    }

    /// Creates (or, with `id`, renames) an item; answers its id.
    @discardableResult
    func save(_ client: WireClient, _ name: String, type: String = "item", id: Int64? = nil) async throws -> Int64 {
        var params = JSONObject([("name", .string(name)), ("type", .string(type))])
        if let id { params.append("id", .int(id)) }
        let answer = try await client.send(WireRequest(method: "POST", path: "/items", params: params,
                                                       caller: nil, requestID: UUID().uuidString, deadline: 0)).get()
        XCTAssertEqual(answer.status, 200)
        return answer.body["data"]?["id"]?.intValue ?? 0
    }

    func feed(_ client: WireClient, _ params: JSONObject) async throws -> JSON { try await eventFeed(client, params) }

    /// Rows of `table` in the consumer's file: (id, type, name, applied).
    func rows(_ table: String, file: String = "consumer") throws -> [(id: Int64, type: String, name: String, applied: Int64)] {
        let db = try SQLiteConnection(path: "\(dir!)/\(file).sqlite")
        return try db.query("SELECT id, type, name, applied FROM \(table) ORDER BY id").map { ($0.int(0) ?? 0, $0.string(1) ?? "", $0.string(2) ?? "", $0.int(3) ?? 0) }
    }

    /// Polls `table` until `done` holds or `seconds` pass; answers the last rows read.
    func waitForRows(_ table: String, seconds: Double = 5, until done: ([(id: Int64, type: String, name: String, applied: Int64)]) -> Bool) async throws -> [(id: Int64, type: String, name: String, applied: Int64)] {
        let deadline = Date().addingTimeInterval(seconds)
        var found = try rows(table)
        while !done(found) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
            found = try rows(table)
        }
        return found
    }
}

/// One `GET /internal/events` with `params`; answers the body.
func eventFeed(_ client: WireClient, _ params: JSONObject) async throws -> JSON {
    try await client.send(WireRequest(method: "GET", path: "/internal/events", params: params, caller: nil, requestID: "", deadline: 0)).get().body
}

/// Shuts `runtime` down and waits until it is closed.
func stopRuntime(_ runtime: ServiceRuntime) {
    let done = DispatchSemaphore(value: 0)
    runtime.shutdown(timeoutSeconds: 5) { done.signal() }
    done.wait()
}
