import Foundation
import XCTest
import WireProtocol

/// What the launcher's environment changes.
final class ConfigurationTests: XCTestCase {
    func testTimesFollowCRM_TZAndTheAdminPhoneIsConfigurable() throws {
        let system = try SystemHarness(extraEnvironment: ["CRM_TZ": "Asia/Shanghai", "CRM_ADMIN_PHONE": "13800138000"])
        defer { system.stop() }
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": "admin", "password": .string(system.adminPassword)]).status, 401)
        let token = try system.login("13800138000")
        let created = try system.post("/api/user/group", json: ["name": "时区"], token: token)
        XCTAssertEqual(created.status, 200, created.text)
        let row = try XCTUnwrap(system.get("/api/user/group", token: token).json["data"]?.arrayValue?.first { $0["groupName"]?.stringValue == "时区" })
        let text = try XCTUnwrap(row["createTime"]?.stringValue)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "Asia/Shanghai")
        let stamped = try XCTUnwrap(formatter.date(from: text))
        XCTAssertLessThan(abs(stamped.timeIntervalSinceNow), 120, "\(text) is Shanghai time now (UTC+8)")
    }
}
