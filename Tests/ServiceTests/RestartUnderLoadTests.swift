#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// Real processes under load (`crm up`, customers scaled to 2): every service in turn is
/// stopped (SIGTERM) and killed (SIGKILL), one replica of the scaled one included, then the
/// gateway is told to restart (SIGHUP) and killed. Clients create and list customers,
/// potential records and contracts throughout, a new connection per request. Afterwards: no
/// client error but requests in flight on a killed gateway (counted), every acknowledged write
/// stored exactly once, every process back. `CRM_CHAOS_ROUNDS=N` repeats the sequence (the
/// longer run whose figures docs/ARCHITECTURE.md reports).
final class RestartUnderLoadTests: XCTestCase {
    static let expected = ["Gateway": 1, "UserService": 1, "CustomerService": 2, "RecordService": 1, "ContractService": 1, "StatsService": 1]

    func testEveryProcessStoppedAndKilledUnderLoad() throws {
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["CRM_CHAOS_ROUNDS"] ?? "") ?? 1)
        let system = try SystemHarness(extraEnvironment: ["CRM_REPLICAS_CUSTOMERS": "2"])
        defer { system.stop() }
        XCTAssertTrue(eventually(timeout: 10) { system.childPIDs("CustomerService").count == 2 })
        let load = try LoadRun(system: system, workers: 8)
        load.start()
        var gatewayKills = 0

        /// Lets the clients make progress, then signals one process of `name` and waits until
        /// the launcher has brought the count back.
        func hit(_ name: String, _ signal: Int32) {
            let requests = load.requests
            XCTAssertTrue(eventually(timeout: 30) { load.requests > requests + 30 }, "the clients keep going before \(name) gets \(signal)")
            guard let victim = system.childPIDs(name).last else { return XCTFail("no \(name) running") }
            kill(victim, signal)
            let back = eventually(timeout: 30) {
                let now = system.childPIDs(name)
                return !now.contains(victim) && now.count == RestartUnderLoadTests.expected[name]
            }
            XCTAssertTrue(back, "\(name) is back after signal \(signal)")
        }

        for _ in 0..<rounds {
            for name in ["UserService", "CustomerService", "RecordService", "ContractService", "StatsService"] {
                hit(name, SIGTERM)
                hit(name, SIGKILL)
            }
            hit("Gateway", SIGHUP)
            hit("Gateway", SIGKILL)
            gatewayKills += 1
        }
        let requests = load.requests
        XCTAssertTrue(eventually(timeout: 30) { load.requests > requests + 30 })
        load.stop()
        print("restart under load, \(rounds) round(s), \(gatewayKills) gateway SIGKILL(s): \(load.summary)")

        XCTAssertEqual(load.errors, [], load.summary)
        XCTAssertEqual(load.refused, 0, "no connection refused: \(load.summary)")
        XCTAssertLessThanOrEqual(load.lostInFlight, gatewayKills * load.workers, "only requests in flight on a killed gateway fail: \(load.summary)")
        try load.assertWritesExactlyOnce()
        for (name, count) in RestartUnderLoadTests.expected {
            XCTAssertEqual(system.childPIDs(name).count, count, "\(name) is back")
        }
        XCTAssertTrue(eventually(timeout: 10) {
            let health = try? system.get("/healthz")
            return health?.status == 200 && health?.json["replicas"]?["customers"]?["reachable"]?.intValue == 2
        })
    }
}
