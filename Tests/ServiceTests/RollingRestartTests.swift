#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// `kill -HUP <crm>` restarts every process in turn; clients see no error meanwhile.
final class RollingRestartTests: XCTestCase {
    func testEveryProcessRestartsWithoutAFailedRequest() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let token = try system.login()
        let names = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]
        let before = Dictionary(uniqueKeysWithValues: names.compactMap { name in system.childPID(name).map { (name, $0) } })
        XCTAssertEqual(before.count, 6)

        let stop = StopFlag()
        let outcomes = LockedList<String>()
        let workers = DispatchGroup()
        for worker in 0..<4 {
            DispatchQueue.global().async(group: workers) {
                var i = 0
                while !stop.isSet {
                    i += 1
                    do {
                        // A new connection for every request: the listener hand-over is exercised too.
                        let client = try system.client()
                        let response: HTTPTestResponse
                        if i % 2 == 0 {
                            response = try client.request("GET", "/api/user/group", token: token)
                        } else {
                            let body: JSON = ["realName": .string("rolling-\(worker)-\(i)")]
                            response = try client.request("POST", "/api/customers/customers", body: body.serialized(), contentType: "application/json", token: token)
                        }
                        outcomes.append(response.status == 200 ? "200" : "\(response.status) \(response.text)")
                    } catch {
                        outcomes.append("error \(error)")
                    }
                }
            }
        }
        usleep(300_000)
        system.signalLauncher(SIGHUP)
        let deadline = Date().addingTimeInterval(60)
        while !system.log.contains("crm: restart done") && Date() < deadline { usleep(50_000) }
        usleep(300_000)
        stop.set()
        XCTAssertEqual(workers.wait(timeout: .now() + 30), .success)

        XCTAssertTrue(system.log.contains("crm: restart done"), system.log)
        for (name, pid) in before {
            let now = system.childPID(name)
            XCTAssertNotNil(now, name)
            XCTAssertNotEqual(now, pid, "\(name) was replaced")
        }
        let all = outcomes.values
        XCTAssertGreaterThan(all.count, 100)
        let failures = all.filter { $0 != "200" }
        XCTAssertEqual(failures, [], "\(failures.count) of \(all.count) requests failed")
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

