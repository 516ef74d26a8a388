#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
@testable import ServiceKit
@testable import UserService
import WireProtocol

/// The hourly session purge on a real users database.
final class SessionPurgeTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = "/tmp/crm-session-purge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func testHourlyPurgePublishesOneSessionEventPerEmployee() throws {
        let database = try Database(path: dir + "/users.sqlite", migrations: UserSchema.migrations)
        defer { database.close() }
        let old = Sessions.unixNow() - Sessions.idleSeconds - 10
        let now = Sessions.unixNow()
        try database.sync { db in
            try db.writeTransaction { db in
                for id in 1...3 {
                    try db.run("INSERT INTO employees(id, phoneNumber, createTime, updateTime, password_hash, isLogin) VALUES (?, ?, '', '', '', 1)",
                               [.int(Int64(id)), .text("p\(id)")])
                }
                // Employee 1: two idle sessions; 2: one idle, one in use; 3: in use.
                for (n, (employee, lastSeen)) in [(1, old), (1, old), (2, old), (2, now), (3, now)].enumerated() {
                    try db.run("INSERT INTO sessions(token_hash, employee_id, created_at, last_seen) VALUES (?, ?, ?, ?)",
                               [.blob([UInt8(n)]), .int(Int64(employee)), .int(lastSeen), .int(lastSeen)])
                }
                try Sessions.forgetExpired(db)
            }
        }
        let (events, sessions, loggedIn) = try database.sync { db in
            (try db.query("SELECT entity_id, state FROM events WHERE type = 'session' ORDER BY seq"),
             try db.query("SELECT employee_id FROM sessions ORDER BY employee_id").compactMap { $0.int(0) },
             try db.query("SELECT id FROM employees WHERE isLogin = 1 ORDER BY id").compactMap { $0.int(0) })
        }
        XCTAssertEqual(events.compactMap { $0.int(0) }, [1, 2])
        XCTAssertEqual(events.compactMap { try? JSONParser.parse($0.string(1) ?? "") }.map { $0["reason"]?.stringValue }, ["expired", "expired"])
        XCTAssertEqual(sessions, [2, 3])
        XCTAssertEqual(loggedIn, [2, 3], "isLogin cleared for the employee with no session left")
    }
}
