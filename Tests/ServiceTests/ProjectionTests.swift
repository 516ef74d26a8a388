#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// Projections (own cursor, own event types, versioned tables) and outbox compaction, between
/// real service runtimes over real sockets and SQLite files.
final class ProjectionTests: EventTestCase {
    func testTwoProjectionsOfOneSourceEachGetTheirTypesAndKeepTheirOwnCursor() async throws {
        let (source, client, loop) = try startProducer()
        for i in 1...3 { try await save(client, "item-\(i)") }
        try await save(client, "tag-1", type: "tag")
        let consumer = consumer([copying(["item"], into: "item_copy", name: "items"), copying(["tag"], into: "tag_copy", name: "tags")])
        var sink: ServiceRuntime? = try start(consumer)
        var items = try await waitForRows("item_copy") { $0.count == 3 }
        var tags = try await waitForRows("tag_copy") { $0.count == 1 }
        XCTAssertEqual(items.map(\.type), ["item", "item", "item"], "only the declared type")
        XCTAssertEqual(tags.map(\.name), ["tag-1"])

        if let running = sink { shutdown(running) }
        sink = nil
        try await save(client, "tag-2", type: "tag")
        try await save(client, "item-4")
        sink = try start(consumer)
        items = try await waitForRows("item_copy") { $0.count == 4 }
        tags = try await waitForRows("tag_copy") { $0.count == 2 }
        XCTAssertEqual(items.map(\.name), ["item-1", "item-2", "item-3", "item-4"])
        XCTAssertEqual(tags.map(\.name), ["tag-1", "tag-2"])
        XCTAssertEqual((items + tags).map(\.applied), Array(repeating: 1, count: 6), "each event applied once by its own projection")
        let db = try SQLiteConnection(path: "\(dir!)/consumer.sqlite")
        let cursors = try db.query("SELECT name, seq FROM projections ORDER BY name").map { "\($0.string(0) ?? "")=\($0.int(1) ?? 0)" }
        XCTAssertEqual(cursors, ["items=6", "tags=6"], "each cursor moved past the other's events too")
        if let running = sink { shutdown(running) }
        shutdown(source)
        client.stop()
        loop.stop()
    }

    /// Two replicas of a consumer on one file feed the same projection, each keeping its cursor
    /// between polls: whichever stores a batch first applies it, the other's batch of the same
    /// events changes nothing and answers it the later cursor — and a replica left alone goes
    /// on from where the other one stopped.
    func testTwoReplicasOfAConsumerApplyEachEventOnce() async throws {
        let (source, client, loop) = try startProducer()
        let definition = consumer([copying(["item"], into: "item_copy")])
        let first = try start(definition)
        var second = configuration("consumer")
        second.endpoint = .unix(path: "\(dir!)/consumer-2.sock")
        second.replica = "2"
        let other = try ServiceRuntime(definition: definition, configuration: second)
        try other.start()
        for i in 1...20 { try await save(client, "item-\(i)") }
        var items = try await waitForRows("item_copy") { $0.count == 20 }
        XCTAssertEqual(items.count, 20)
        shutdown(first)
        for i in 21...25 { try await save(client, "item-\(i)") }
        items = try await waitForRows("item_copy") { $0.count == 25 }
        XCTAssertEqual(items.map(\.name), (1...25).map { "item-\($0)" })
        XCTAssertEqual(items.map(\.applied), Array(repeating: 1, count: 25), "each event applied once, by one replica")
        let db = try SQLiteConnection(path: "\(dir!)/consumer.sqlite")
        XCTAssertEqual(try db.scalar("SELECT seq FROM projections WHERE name = 'items'"), 25)
        shutdown(other)
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testRaisingTheVersionDropsItsTablesAndReplaysFromZero() async throws {
        let (source, client, loop) = try startProducer()
        let first = try await save(client, "a")
        try await save(client, "b")
        let v1 = consumer([copying(["item"], into: "copies", extraSchema: "CREATE TABLE v1_only(x); CREATE INDEX copies_by_name ON copies(name);")])
        var sink: ServiceRuntime? = try start(v1)
        _ = try await waitForRows("copies") { $0.count == 2 }
        if let running = sink { shutdown(running) }

        // The same version again keeps the tables and the cursor: nothing is applied twice.
        try await save(client, "a2", id: first)
        sink = try start(v1)
        var rows = try await waitForRows("copies") { $0.first?.name == "a2" }
        XCTAssertEqual(rows.map(\.applied), [2, 1])
        if let running = sink { shutdown(running) }

        let v2 = consumer([copying(["item"], into: "copies", version: 2, extraSchema: "CREATE INDEX copies_by_name ON copies(name);")])
        sink = try start(v2)
        rows = try await waitForRows("copies") { $0.count == 2 && $0.allSatisfy { $0.applied > 0 } }
        XCTAssertEqual(rows.map(\.name), ["a2", "b"])
        XCTAssertEqual(rows.map(\.applied), [2, 1], "replayed from event 0 into new tables: a's two events and b's one")
        let db = try SQLiteConnection(path: "\(dir!)/consumer.sqlite")
        XCTAssertNil(try db.queryOne("SELECT 1 FROM sqlite_master WHERE name = 'v1_only'"), "what version 1 created is dropped")
        XCTAssertEqual(try db.scalar("SELECT version FROM projections WHERE name = 'items'"), 2)
        if let running = sink { shutdown(running) }
        shutdown(source)
        client.stop()
        loop.stop()
    }

    func testTwoProjectionsOfOneNameAreRefused() throws {
        XCTAssertThrowsError(try ServiceRuntime(definition: consumer([copying(["item"], into: "a"), copying(["tag"], into: "b")]),
                                                configuration: configuration("consumer")))
        XCTAssertThrowsError(try ServiceRuntime(definition: consumer([copying([], into: "a")]), configuration: configuration("consumer")),
                             "a projection declares its event types")
    }

    /// The events left in the producer's outbox: (seq, type, entity_id).
    func outbox() throws -> [(seq: Int64, type: String, entity: Int64)] {
        let db = try SQLiteConnection(path: "\(dir!)/producer.sqlite")
        return try db.query("SELECT seq, type, entity_id FROM events ORDER BY seq").map { ($0.int(0) ?? 0, $0.string(1) ?? "", $0.int(2) ?? 0) }
    }

    func testCompactionKeepsTheLatestEventPerEntityAndAReplayEndsInTheSameState() async throws {
        let (source, client, loop) = try startProducer()
        var ids: [Int64] = []
        for i in 1...5 { ids.append(try await save(client, "item-\(i)")) }
        let tag = try await save(client, "tag", type: "tag")
        for round in 1...3 {
            for id in ids where id % 2 == 1 { try await save(client, "item-\(id) r\(round)", id: id) }
        }
        try await save(client, "tag renamed", type: "tag", id: tag)
        let before = try outbox()
        XCTAssertEqual(before.count, 16)

        // Built from the full log.
        var sink: ServiceRuntime? = try start(consumer([copying(["item", "tag"], into: "copies")]))
        let full = try await waitForRows("copies") { $0.count == 6 && $0.first?.name == "item-1 r3" && $0.last?.name == "tag renamed" }
        if let running = sink { shutdown(running) }

        // Written just now: the default grace period spares them all.
        let spared = try await source.database.write { try Outbox.compact($0) }
        XCTAssertEqual(spared, 0)
        let deleted = try await source.database.write { try Outbox.compact($0, graceSeconds: 0) }
        XCTAssertEqual(deleted, 16 - 6)
        let after = try outbox()
        XCTAssertEqual(after.map(\.entity), [2, 4, 1, 3, 5, 6], "one event per (type, entity): its latest")
        XCTAssertEqual(after.last?.seq, before.last?.seq)

        // Rebuilt from event 0 of the compacted log: the same rows.
        sink = try start(consumer([copying(["item", "tag"], into: "copies", version: 2)]))
        let rebuilt = try await waitForRows("copies") { $0.count == 6 && $0.last?.name == "tag renamed" }
        XCTAssertEqual(rebuilt.map { "\($0.id) \($0.type) \($0.name)" }, full.map { "\($0.id) \($0.type) \($0.name)" })
        XCTAssertEqual(rebuilt.map(\.applied), [1, 1, 1, 1, 1, 1], "one event each after compaction")

        // Sequence numbers are never reused: the next event comes after everything ever written.
        try await save(client, "item-7")
        XCTAssertEqual(try outbox().last?.seq, (before.last?.seq ?? 0) + 1)
        if let running = sink { shutdown(running) }
        shutdown(source)
        client.stop()
        loop.stop()
    }
}
