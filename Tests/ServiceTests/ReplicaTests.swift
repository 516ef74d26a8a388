#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// Several processes of one service on its one SQLite file (`crm up --replicas`), the gateway
/// finding them in the socket folder, and the operator commands (`crm status|restart|scale`).
final class ReplicaTests: XCTestCase {
    /// Write system calls a process has made (each answer it sends is at least one).
    static func writeCalls(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("syscw:") {
            return Int(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    func replicas(_ system: SystemHarness, _ service: String) -> (reachable: Int64?, known: Int64?) {
        let health = try? system.get("/healthz")
        let entry = health?.json["replicas"]?[service]
        return (entry?["reachable"]?.intValue, entry?["known"]?.intValue)
    }

    func testReplicasShareTheWritesAndTheEventLogStaysGapFreeInCommitOrder() async throws {
        let system = try SystemHarness(extraEnvironment: ["CRM_REPLICAS_CUSTOMERS": "3"])
        defer { system.stop() }
        XCTAssertTrue(eventually(timeout: 10) { replicas(system, "customers") == (3, 3) }, "\(replicas(system, "customers"))")
        let pids = system.childPIDs("CustomerService")
        XCTAssertEqual(pids.count, 3)
        let before = pids.map(ReplicaTests.writeCalls)
        let token = try system.login()

        // A follower of the customers' event log, reading while the replicas write: an event
        // that became visible after a later one would be skipped and show as a gap.
        let loop = try EventLoop.start(name: "replica-feed-test")
        let feed = ReplicaPool(loop: loop, endpoint: .unix(path: system.dataDir + "/run/customers/"), serviceName: "customers",
                               hello: Hello(peer: "test", replica: "feed"))
        feed.start()
        defer { feed.stop(); loop.stop() }
        let start = try await eventFeed(feed, ["after": -1])["data"]?["last"]?.intValue ?? -1
        XCTAssertGreaterThanOrEqual(start, 0)
        let writersDone = StopFlag()
        let follower = Task { () -> [(seq: Int64, type: String, id: Int64)] in
            var seen: [(seq: Int64, type: String, id: Int64)] = []
            var cursor = start
            var emptyAfterDone = 0
            while emptyAfterDone < 2 && !Task.isCancelled {
                let done = writersDone.isSet
                guard let data = try? await eventFeed(feed, ["after": .int(cursor), "limit": 1000, "wait_ms": 300])["data"],
                      let last = data["last"]?.intValue else { continue }
                let events = data["events"]?.arrayValue ?? []
                for event in events {
                    seen.append((event["seq"]?.intValue ?? -1, event["type"]?.stringValue ?? "", event["entity_id"]?.intValue ?? -1))
                }
                cursor = max(cursor, last)
                if events.isEmpty && done { emptyAfterDone += 1 }
            }
            return seen
        }

        let tag = "replica-\(UInt32.random(in: 0...UInt32.max))"
        let ids = LockedList<Int64>()
        let statuses = LockedList<Int>()
        let unfound = LockedList<Int64>()
        let firstName = LockedList<(id: Int64, name: String)>()
        // Blocking HTTP clients, off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                DispatchQueue.concurrentPerform(iterations: 12) { worker in
                    for i in 0..<40 {
                        let name = "\(tag)-\(worker)-\(i)"
                        let response = try? system.post("/api/customers/customers", json: ["realName": .string(name)], token: token)
                        statuses.append(response?.status ?? 0)
                        guard let id = response?.json["data"]?["id"]?.intValue else { continue }
                        ids.append(id)
                        if worker == 0 && i == 0 { firstName.append((id, name)) }
                        // Searched at once, most often on another replica: its in-memory index
                        // follows the other replicas' writes through the shared outbox.
                        let found = try? system.get("/api/customers/customers?name=\(name)", token: token).json["data"]?.arrayValue?.compactMap { $0["id"]?.intValue }
                        if found != [id] { unfound.append(id) }
                    }
                }
                done.resume()
            }
        }
        writersDone.set()
        let seen = await follower.value

        XCTAssertEqual(statuses.values.filter { $0 != 200 }, [], "every write acknowledged")
        XCTAssertEqual(Set(ids.values).count, 480)
        XCTAssertEqual(unfound.values, [], "every acknowledged create is found by the next search, whichever replica answers it")
        let seqs = seen.map(\.seq)
        XCTAssertEqual(seqs.first, start + 1, "the follower starts right after the tail it read")
        XCTAssertEqual(seqs, Array((start + 1)..<(start + 1 + Int64(seqs.count))), "sequence numbers arrive gap-free and in order")
        let created = seen.filter { $0.type == "customer" }.map(\.id)
        XCTAssertEqual(created.count, 480, "one event per acknowledged write")
        XCTAssertEqual(Set(created), Set(ids.values), "every write's event, each exactly once")
        let after = pids.map(ReplicaTests.writeCalls)
        for (i, pid) in pids.enumerated() {
            XCTAssertGreaterThan(after[i] - before[i], 40, "replica \(pid) took a share of the requests")
        }
        XCTAssertEqual(try system.get("/api/customers/customers?name=\(tag)&count=1", token: token).json["page_info"]?["total"]?.intValue, 480)
        // A rename through one replica: every replica's next search has the new name, not the old.
        let (renamed, oldName) = try XCTUnwrap(firstName.values.first)
        XCTAssertEqual(try system.post("/api/customers/customers", json: ["customer_id": .int(renamed), "realName": .string("\(tag)-renamed")], token: token).status, 200)
        for _ in 0..<9 {
            XCTAssertEqual(try system.get("/api/customers/customers?name=\(tag)-renamed", token: token).json["data"]?.arrayValue?.compactMap { $0["id"]?.intValue }, [renamed])
            XCTAssertEqual(try system.get("/api/customers/customers?name=\(oldName)", token: token).json["page_info"]?["total"]?.intValue, 0)
            XCTAssertEqual(try system.get("/api/customers/customers?name=\(tag)&count=1", token: token).json["page_info"]?["total"]?.intValue, 480)
        }
    }

    func testScaleRestartAndStatusUnderLoadFailNoRequest() throws {
        let system = try SystemHarness(extraEnvironment: ["CRM_REPLICAS_CUSTOMERS": "3"])
        defer { system.stop() }
        XCTAssertTrue(eventually(timeout: 10) { replicas(system, "customers") == (3, 3) })
        let load = try LoadRun(system: system, workers: 6)
        load.start()
        XCTAssertTrue(eventually(timeout: 30) { load.requests > 100 })

        let down = try system.crm(["scale", "customers=1"])
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertTrue(eventually(timeout: 10) { replicas(system, "customers") == (1, 1) }, "health counts what is left: \(replicas(system, "customers"))")
        XCTAssertEqual(system.childPIDs("CustomerService").count, 1)
        let restart = try system.crm(["restart", "customers"])
        XCTAssertEqual(restart.status, 0, restart.output)
        XCTAssertTrue(restart.output.contains("restarted customers#1"), restart.output)
        let up = try system.crm(["scale", "customers=2"])
        XCTAssertEqual(up.status, 0, up.output)
        XCTAssertTrue(eventually(timeout: 10) { replicas(system, "customers") == (2, 2) })
        let requestsBefore = load.requests
        XCTAssertTrue(eventually(timeout: 30) { load.requests > requestsBefore + 100 })
        load.stop()

        XCTAssertEqual(load.errors, [], load.summary)
        XCTAssertEqual(load.refused, 0, load.summary)
        XCTAssertEqual(load.lostInFlight, 0, load.summary)
        try load.assertWritesExactlyOnce()

        let status = try system.crm(["status"])
        XCTAssertEqual(status.status, 0, status.output)
        let rows = status.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(rows.first?.prefix(6), ["SERVICE", "REPLICA", "PID", "UPTIME", "RESTARTS", "STATE"])
        let customers = rows.filter { $0.first == "customers" }
        XCTAssertEqual(customers.map { $0[1] }, ["1", "2"])
        XCTAssertEqual(Set(customers.compactMap { Int32($0[2]) }), Set(system.childPIDs("CustomerService")))
        XCTAssertTrue(customers.allSatisfy { $0.last == "running" }, status.output)
        XCTAssertEqual(rows.filter { $0.first == "gateway" }.first?[2], system.childPID("Gateway").map(String.init))

        let unknown = try system.crm(["scale", "nosuch=2"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.output.contains("no service nosuch"), unknown.output)
        let tooMany = try system.crm(["scale", "customers=99"])
        XCTAssertEqual(tooMany.status, 1)
        XCTAssertTrue(tooMany.output.contains("1 to 16"), tooMany.output)
    }

    func testControlCommandsWithoutALauncherSaySo() throws {
        let dir = "/tmp/crm-nolauncher-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, output) = try SystemHarness.run("crm", ["status"], environment: ["CRM_DATA_DIR": dir])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("no launcher runs on \(dir)"), output)
    }

    /// Runs `CustomerService ARGUMENTS` to its end; answers its exit status and output.
    static func customerService(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try SystemHarness.run("CustomerService", arguments)
    }

    /// `--ping` (the containers' health check) tells a serving replica from a missing one; a
    /// second process taking the default replica id (the host name) of a live one is refused
    /// instead of taking its socket.
    func testPingAndADuplicateDefaultReplicaIsRefused() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let folder = system.dataDir + "/run/customers"
        let up = try ReplicaTests.customerService(["--ping", "--socket-dir", folder, "--replica", "1"])
        XCTAssertEqual(up.status, 0, up.output)
        XCTAssertTrue(up.output.contains("up"), up.output)
        let missing = try ReplicaTests.customerService(["--ping", "--socket-dir", folder, "--replica", "7"])
        XCTAssertEqual(missing.status, 1, missing.output)

        let dir = "/tmp/crm-dup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let arguments = ["--socket-dir", dir + "/sockets", "--db", dir + "/c.sqlite"]
        let first = Process()
        first.executableURL = URL(fileURLWithPath: SystemHarness.binDir + "/CustomerService")
        first.arguments = arguments
        first.standardError = FileHandle.nullDevice
        first.standardOutput = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        XCTAssertTrue(try eventually(timeout: 20, interval: 0.1) { try ReplicaTests.customerService(["--ping"] + arguments).status == 0 })
        let second = try ReplicaTests.customerService(arguments)
        XCTAssertEqual(second.status, ConfigurationError.exitStatus, "a setting to change, not a failure to retry: " + second.output)
        XCTAssertTrue(second.output.contains("another replica answers"), second.output)
        XCTAssertTrue(first.isRunning, "the first one keeps its socket")
        XCTAssertEqual(try ReplicaTests.customerService(["--ping"] + arguments).status, 0)
    }

    /// The launcher keeps the listening socket: while the gateway is dead, new connections wait
    /// in the kernel's queue for the next one. Only requests on the killed gateway's own
    /// connections can fail.
    func testKilledGatewayRefusesNoConnection() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let load = try LoadRun(system: system, workers: 8)
        load.start()
        var kills = 0
        for _ in 0..<3 {
            let requests = load.requests
            XCTAssertTrue(eventually(timeout: 30) { load.requests > requests + 50 })
            guard let gateway = system.childPID("Gateway") else { return XCTFail("no gateway") }
            kill(gateway, SIGKILL)
            kills += 1
            XCTAssertNotNil(system.waitForRestart("Gateway", old: gateway))
        }
        let requests = load.requests
        XCTAssertTrue(eventually(timeout: 30) { load.requests > requests + 50 })
        load.stop()
        print("gateway SIGKILL x\(kills): \(load.summary)")
        XCTAssertEqual(load.refused, 0, "no connection refused: \(load.summary)")
        XCTAssertEqual(load.errors, [], load.summary)
        XCTAssertLessThanOrEqual(load.lostInFlight, kills * load.workers, "only requests in flight on a killed gateway fail")
        try load.assertWritesExactlyOnce()
    }
}

/// One `GET /internal/events` through a pool of replicas; answers the body.
func eventFeed(_ pool: ReplicaPool, _ params: JSONObject) async throws -> JSON {
    try await pool.send(WireRequest(method: "GET", path: "/internal/events", params: params, caller: nil, requestID: "", deadline: 0)).get().body
}
