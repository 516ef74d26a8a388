#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import XCTest

/// What the clients of `GatewaySupervisorTests` saw.
private final class Tally: Sendable {
    struct Counts { var refused = 0, answered = 0, failed = 0, stop = false }
    let counts = Mutex(Counts())
    var answered: Int { counts.withLock { $0.answered } }
}

/// `crm gateway` (the gateway container's command): it holds the port, so a gateway that is
/// SIGKILLed or replaced on SIGHUP refuses no connection.
final class GatewaySupervisorTests: XCTestCase {
    /// Pids whose parent is `parent` and whose command is the Gateway executable.
    func gateways(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == parent,
                  let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmd.contains("/Gateway\u{0}") else { return nil }
            return pid
        }
    }

    func testKilledOrReplacedGatewayRefusesNoConnection() throws {
        let port = SystemHarness.freePort()
        let folder = "/tmp/crm-gs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = try? FileManager.default.removeItem(atPath: folder) }
        var environment = ProcessInfo.processInfo.environment
        environment["CRM_HOST"] = "127.0.0.1"
        environment["CRM_PORT"] = String(port)
        for service in ["users", "customers", "records", "contracts", "stats"] {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(service)", withIntermediateDirectories: true)
            environment["CRM_SERVICE_\(service.uppercased())"] = "unix:\(folder)/\(service)/"
        }
        let supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: SystemHarness.binDir + "/crm")
        supervisor.arguments = ["gateway"]
        supervisor.environment = environment
        supervisor.standardOutput = FileHandle.nullDevice
        supervisor.standardError = FileHandle.nullDevice
        try supervisor.run()
        defer { if supervisor.isRunning { kill(supervisor.processIdentifier, SIGKILL) } }

        @Sendable func livez() -> Int32? {
            guard let client = try? HTTPTestClient(port: port) else { return nil }   // nil: refused
            return (try? client.request("GET", "/livez")).map { Int32($0.status) } ?? 0
        }
        XCTAssertTrue(eventually(timeout: 30) { livez() == 200 }, "crm gateway answers /livez")
        let parent = supervisor.processIdentifier

        // Clients with a new connection per request throughout.
        let tally = Tally()
        let clients = (0..<4).map { _ in Thread {
            while !tally.counts.withLock({ $0.stop }) {
                let status = livez()
                tally.counts.withLock { counts in
                    if status == nil { counts.refused += 1 } else if status == 200 { counts.answered += 1 } else { counts.failed += 1 }
                }
            }
        } }
        clients.forEach { $0.start() }
        func answeredMore(than count: Int) -> Bool { eventually(timeout: 30) { tally.answered > count + 50 } }

        XCTAssertTrue(answeredMore(than: 0))
        let first = try XCTUnwrap(gateways(of: parent).first)
        kill(first, SIGKILL)
        var second: pid_t?
        XCTAssertTrue(eventually(timeout: 30) { second = gateways(of: parent).first { $0 != first }; return second != nil }, "restarted")
        XCTAssertTrue(answeredMore(than: tally.answered))
        kill(parent, SIGHUP)
        XCTAssertTrue(eventually(timeout: 30) { let now = gateways(of: parent); return now.count == 1 && now.first != second }, "replaced on SIGHUP")
        XCTAssertTrue(answeredMore(than: tally.answered))
        tally.counts.withLock { $0.stop = true }
        while clients.contains(where: { !$0.isFinished }) { usleep(10_000) }

        let counts = tally.counts.withLock { $0 }
        XCTAssertEqual(counts.refused, 0, "no connection refused while the gateway was killed and replaced (\(counts.answered) answered)")
        // A request in flight on the killed gateway's own connection may fail; four clients, one kill.
        XCTAssertLessThanOrEqual(counts.failed, 4, "only requests in flight on the killed gateway fail")
        kill(parent, SIGTERM)
        supervisor.waitUntilExit()
        XCTAssertEqual(supervisor.terminationStatus, 0)
        XCTAssertEqual(gateways(of: parent), [], "the gateway stops with it")
    }
}
