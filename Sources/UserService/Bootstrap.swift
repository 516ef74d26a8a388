#if canImport(Glibc)
import Glibc
#endif
import ServiceKit
import WireProtocol

/// The first administrator, created only when there is no employee yet.
enum Bootstrap {
    static func run(_ database: Database) throws {
        try database.sync { db in
            guard try db.scalar("SELECT COUNT(*) FROM employees") == 0 else { return }
            let phone = env("CRM_ADMIN_PHONE") ?? "admin"
            let given = try givenPassword()
            // Start-up only: without secure randomness the service refuses to start (onStart throws).
            let password = try given ?? SessionToken.randomPassword()
            guard let hash = PasswordHasher.hashNow(password) else { throw APIError.internal("cannot hash the bootstrap password") }
            let now = Timestamp.now()
            try db.writeTransaction { db in
                var groupID = try db.queryOne("SELECT id FROM groups WHERE status = 1 ORDER BY id LIMIT 1")?.int(0)
                if groupID == nil {
                    try db.run("INSERT INTO groups(groupName, groupDetail, createTime, updateTime, status) VALUES ('管理员', '管理员组', ?, ?, 1)", [.text(now), .text(now)])
                    groupID = db.lastInsertRowID
                }
                try db.run("""
                    INSERT INTO employees(phoneNumber, nickName, realName, roleId, createTime, updateTime, status, password_hash)
                    VALUES (?, 'admin', '管理员', 1, ?, ?, 1, ?)
                    """, [.text(phone), .text(now), .text(now), .text(hash)])
                let id = db.lastInsertRowID
                try Employees.resource.replaceLinks(db, id, Write(links: ["group_id": groupID.map { [$0] } ?? []]))
                // Other services copy employees from events: the first one is published too.
                try Employees.resource.publish(db, id)
            }
            if given == nil {
                StdIO.out("Bootstrap administrator created: phoneNumber '\(phone)', password '\(password)' (shown once; change it with POST /api/user/password)")
            } else {
                StdIO.out("Bootstrap administrator created: phoneNumber '\(phone)' with the password from \(env("CRM_ADMIN_PASSWORD_FILE") == nil ? "CRM_ADMIN_PASSWORD" : "CRM_ADMIN_PASSWORD_FILE")")
            }
        }
    }

    /// The administrator's password as configured: the first line of the file named by
    /// `CRM_ADMIN_PASSWORD_FILE` (a Docker secret: it stays out of `docker inspect` and changing
    /// it does not recreate the container), else `CRM_ADMIN_PASSWORD`, else nil (a random one).
    /// A file that is named but unreadable or empty stops the start-up with the reason.
    static func givenPassword() throws -> String? {
        guard let path = env("CRM_ADMIN_PASSWORD_FILE") else { return env("CRM_ADMIN_PASSWORD") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw APIError.internal("CRM_ADMIN_PASSWORD_FILE \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw APIError.internal("CRM_ADMIN_PASSWORD_FILE \(path): \(String(cString: strerror(errno)))") }
        let line = bytes.prefix(n).prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard !line.isEmpty else { throw APIError.internal("CRM_ADMIN_PASSWORD_FILE \(path) holds no password on its first line") }
        return String(decoding: line, as: UTF8.self)
    }

    static func env(_ key: String) -> String? {
        guard let value = getenv(key) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
