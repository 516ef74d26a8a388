#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import XCTest
@testable import WireProtocol

/// A pool over a folder of replica sockets: discovery, balancing, a replica leaving under load,
/// no replica at all. Real Unix sockets, servers in process.
final class ReplicaPoolTests: XCTestCase {
    var loop: EventLoop!
    var folder: String!

    override func setUpWithError() throws {
        loop = try EventLoop.start(name: "pool-test")
        folder = "/tmp/crm-pool-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        loop.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A replica that answers with its name, after `delayMillis`.
    func startReplica(_ name: String, delayMillis: Int = 0) throws -> WireServer {
        let server = WireServer(loop: loop, endpoint: .unix(path: "\(folder!)/\(name).sock"), hello: Hello(peer: "test", replica: name)) { _, responder in
            let answer = WireResponse(status: 200, body: .object(JSONObject([("replica", .string(name))])))
            if delayMillis == 0 {
                responder.respond(answer)
            } else {
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delayMillis)) { responder.respond(answer) }
            }
        }
        try server.start()
        return server
    }

    func makePool(holdMillis: Int64 = 5000) -> ReplicaPool {
        var config = WireClientConfiguration()
        config.holdMillis = holdMillis
        let pool = ReplicaPool(loop: loop, endpoint: .unix(path: folder + "/"), serviceName: "test", hello: Hello(peer: "client", replica: "1"), configuration: config)
        pool.start()
        return pool
    }

    func counts(_ pool: ReplicaPool) -> (ready: Int, known: Int) {
        let box = ResultBox<(Int, Int)>()
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            box.value = (pool.readyCount, pool.replicaCount)
            done.signal()
        }
        done.wait()
        return box.value ?? (-1, -1)
    }

    func probe(_ pool: ReplicaPool) -> (reachable: Int, known: Int) {
        let box = ResultBox<(Int, Int)>()
        let done = DispatchSemaphore(value: 0)
        pool.probe(timeoutMillis: 1000) { reachable, known in
            box.value = (reachable, known)
            done.signal()
        }
        done.wait()
        return box.value ?? (-1, -1)
    }

    /// Sends `count` requests at once and answers the replica names of the answers (nil: failed).
    static func send(_ pool: ReplicaPool, count: Int) -> [String?] {
        let answers = ResultBox<[String?]>()
        answers.value = []
        let lock = NSLock()
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            pool.send(WireRequest(method: "GET", path: "/x", params: JSONObject([("n", .int(Int64(i)))]), caller: nil, requestID: "r\(i)", deadline: 0)) { result in
                let name: String?
                if case .success(let answer) = result { name = answer.body["replica"]?.stringValue } else { name = nil }
                lock.withLock { answers.value?.append(name) }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        return lock.withLock { answers.value ?? [] }
    }

    func waitFor(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    func testReplicasAppearingInTheFolderShareTheRequests() throws {
        let a = try startReplica("a", delayMillis: 300)
        let pool = makePool()
        defer { pool.stop(); a.drain {} }
        XCTAssertTrue(waitFor { counts(pool) == (1, 1) })
        let b = try startReplica("b", delayMillis: 300)
        defer { b.drain {} }
        XCTAssertTrue(waitFor { counts(pool) == (2, 2) }, "the new socket is found: \(counts(pool))")
        let answers = ReplicaPoolTests.send(pool, count: 40)
        XCTAssertEqual(answers.filter { $0 == nil }.count, 0)
        let byReplica = Dictionary(grouping: answers.compactMap { $0 }, by: { $0 }).mapValues(\.count)
        // Least outstanding: what is sent at once (answers take 300 ms) is split about evenly.
        XCTAssertGreaterThanOrEqual(byReplica["a"] ?? 0, 15, "\(byReplica)")
        XCTAssertGreaterThanOrEqual(byReplica["b"] ?? 0, 15, "\(byReplica)")
        XCTAssertTrue(probe(pool) == (2, 2))
    }

    func testALeavingReplicaLosesNoRequest() throws {
        let a = try startReplica("a", delayMillis: 100)
        let b = try startReplica("b", delayMillis: 100)
        let pool = makePool()
        defer { pool.stop(); b.drain {} }
        XCTAssertTrue(waitFor { counts(pool) == (2, 2) })
        let answers = ResultBox<[String?]>()
        let sent = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            answers.value = ReplicaPoolTests.send(pool, count: 30)
            sent.signal()
        }
        usleep(30_000)
        // Replica a stops while it holds requests: it answers what it took, its socket goes,
        // and whatever it did not take goes to b.
        a.drain {}
        XCTAssertEqual(sent.wait(timeout: .now() + 20), .success)
        XCTAssertEqual((answers.value ?? []).filter { $0 == nil }.count, 0, "every request answered")
        XCTAssertTrue(waitFor { counts(pool) == (1, 1) }, "the removed socket is dropped: \(counts(pool))")
        XCTAssertEqual(Set(ReplicaPoolTests.send(pool, count: 5).compactMap { $0 }), ["b"])
        XCTAssertTrue(probe(pool) == (1, 1))
    }

    func testWithoutReplicasHealthSaysSoAtOnceAndRequestsWaitForOne() throws {
        let pool = makePool()
        defer { pool.stop() }
        XCTAssertTrue(probe(pool) == (0, 0), "no replica: nothing to wait for")
        let answers = ResultBox<[String?]>()
        let sent = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            answers.value = ReplicaPoolTests.send(pool, count: 3)
            sent.signal()
        }
        usleep(200_000)
        let c = try startReplica("c")
        defer { c.drain {} }
        XCTAssertEqual(sent.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(answers.value ?? [], ["c", "c", "c"], "held until a replica appeared")
    }

    func testHeldRequestsFailAfterTheHoldTime() throws {
        let pool = makePool(holdMillis: 300)
        defer { pool.stop() }
        XCTAssertEqual(ReplicaPoolTests.send(pool, count: 2), [nil, nil])
    }
}
