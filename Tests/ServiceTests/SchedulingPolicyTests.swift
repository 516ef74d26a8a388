#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// The scheduling policy of every thread of a running process: field 41 of
/// `/proc/PID/task/TID/stat` (0 SCHED_OTHER, 3 SCHED_BATCH).
func schedulingPolicies(_ pid: pid_t) throws -> [Int] {
    let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
    return tasks.compactMap { tid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 38 ? Int(fields[38]) : nil   // the fields after `comm` start at field 3
    }
}

let serviceExecutables = ["UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]

/// `CRM_SCHED_BATCH=1`: every thread of every service runs under SCHED_BATCH, also the threads
/// started for a write's work (the writer's, the tasks'), since threads inherit the policy;
/// the gateway keeps the default policy.
final class BatchSchedulingTests: SystemTestCase {
    override class var environment: [String: String] { ["CRM_SCHED_BATCH": "1"] }

    func testServicesRunUnderBatchSchedulingAndTheGatewayDoesNot() throws {
        let system = try self.system
        let token = try system.login()
        XCTAssertEqual(try system.post("/api/customers/organization", json: ["groupName": "batch org"], token: token).status, 200)
        for name in serviceExecutables {
            let seen = try schedulingPolicies(try XCTUnwrap(system.childPID(name), name))
            XCTAssertGreaterThan(seen.count, 2, name)
            XCTAssertEqual(Set(seen), [3], "\(name): \(seen)")
        }
        XCTAssertEqual(Set(try schedulingPolicies(try XCTUnwrap(system.childPID("Gateway")))), [0])
    }
}

/// By default every process keeps the default policy.
final class DefaultSchedulingTests: SystemTestCase {
    func testEveryProcessKeepsTheDefaultPolicy() throws {
        let system = try self.system
        let token = try system.login()
        XCTAssertEqual(try system.post("/api/customers/organization", json: ["groupName": "plain org"], token: token).status, 200)
        for name in serviceExecutables + ["Gateway"] {
            let seen = try schedulingPolicies(try XCTUnwrap(system.childPID(name), name))
            XCTAssertEqual(Set(seen), [0], "\(name): \(seen)")
        }
    }
}
