#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// Operating a running system: the administrator's password from a file (a Docker secret),
/// `crm backup` and `<Service> backup` while it serves.
final class BackupSystemTests: SystemTestCase {
    static let passwordFile = "/tmp/crm-admin-secret-\(getpid())"
    static let filePassword = "from-the-secret-file-1"

    override class var environment: [String: String] {
        // The file wins over the variable (which the harness also sets).
        ["CRM_ADMIN_PASSWORD_FILE": passwordFile, "CRM_ADMIN_PASSWORD": "from-the-variable-1"]
    }

    override class func setUp() {
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data((filePassword + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        super.setUp()
    }

    override class func tearDown() {
        super.tearDown()
        unlink(passwordFile)
    }

    func testAdministratorPasswordComesFromTheFile() throws {
        let system = try system
        XCTAssertEqual(try system.postForm("/api/user/login", "phoneNumber=admin&password=from-the-variable-1").status, 401)
        XCTAssertNoThrow(try system.login("admin", Self.filePassword))
        XCTAssertTrue(system.log.contains("CRM_ADMIN_PASSWORD_FILE"), system.log)
    }

    func testBackupsWhileTheSystemServes() throws {
        let system = try system
        let token = try system.login("admin", Self.filePassword)
        let tag = "备份\(UInt32.random(in: 0...UInt32.max))"
        var created: [Int64] = []
        for i in 0..<20 {
            let response = try system.post("/api/customers/organization", json: ["groupName": .string("\(tag)-\(i)")], token: token)
            XCTAssertEqual(response.status, 200, response.text)
            if let id = response.json["data"]?["id"]?.intValue { created.append(id) }
        }
        XCTAssertEqual(created.count, 20)
        // Writes go on while the copies are taken.
        let writer = Thread {
            for i in 0..<30 { _ = try? system.post("/api/customers/organization", json: ["groupName": .string("\(tag)-w\(i)")], token: token) }
        }
        writer.start()
        let folder = "/tmp/crm-backup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = try? FileManager.default.removeItem(atPath: folder) }
        let (status, output) = try SystemHarness.run("crm", ["backup", folder], environment: ["CRM_DATA_DIR": system.dataDir])
        XCTAssertEqual(status, 0, output)
        // Consumers before producers, so no cursor in the set is past the log it follows.
        XCTAssertEqual(output.split(separator: "\n").map { $0.prefix { $0 != ":" } }, ["stats", "records", "contracts", "customers", "users"], output)
        let single = folder + "-customers.sqlite"
        defer { unlink(single) }
        let (serviceStatus, serviceErrors) = try SystemHarness.run("CustomerService", ["backup", "--db", system.dataDir + "/customers.sqlite"], environment: [:], stdout: single)
        XCTAssertEqual(serviceStatus, 0, serviceErrors)
        while !writer.isFinished { usleep(10_000) }

        for name in ["users", "customers", "records", "contracts", "stats"] {
            var info = stat()
            XCTAssertEqual(stat("\(folder)/\(name).sqlite", &info), 0, "\(name): \(output)")
            XCTAssertEqual(info.st_mode & 0o777, 0o600, "\(name): a copy holds hashes too: owner only")
        }
        for path in [folder + "/customers.sqlite", single] {
            let copy = try SQLiteConnection(path: path)
            XCTAssertEqual(try copy.queryOne("PRAGMA quick_check")?.string("quick_check"), "ok", path)
            let ids = created.map(String.init).joined(separator: ",")
            XCTAssertEqual(try copy.scalar("SELECT COUNT(*) FROM organizations WHERE id IN (\(ids))"), 20, "every acknowledged write before the backup is in \(path)")
            copy.close()
        }
        let users = try SQLiteConnection(path: folder + "/users.sqlite")
        XCTAssertEqual(try users.scalar("SELECT COUNT(*) FROM employees WHERE phoneNumber = 'admin'"), 1)
        users.close()

        // Clear refusals: the same folder again (no overwrite), no data folder, a terminal-less misuse.
        let (again, againOutput) = try SystemHarness.run("crm", ["backup", folder], environment: ["CRM_DATA_DIR": system.dataDir])
        XCTAssertEqual(again, 1)
        XCTAssertTrue(againOutput.contains("never overwrites"), againOutput)
        let (none, noneOutput) = try SystemHarness.run("crm", ["backup", folder + "-x"], environment: ["CRM_DATA_DIR": "/tmp/crm-no-such-folder-\(getpid())"])
        XCTAssertEqual(none, 1)
        XCTAssertTrue(noneOutput.contains("no database"), noneOutput)
        let (usage, usageOutput) = try SystemHarness.run("crm", ["backup"], environment: [:])
        XCTAssertEqual(usage, 2)
        XCTAssertTrue(usageOutput.contains("usage: crm backup DIR"), usageOutput)
    }
}
