import ServiceKit
import WireProtocol

/// Employees: `GET/POST /api/user/user`, `POST /api/user/deluser`.
enum Employees {
    static let routes: [Route] = [
        .read("/api/user/user") { try resource.list($0, $1) },
        .post("/api/user/user", save),
        .post("/api/user/deluser", setStatus),
    ]

    /// Employees in the seed's field order (`group`, the first group id, after `number`), with
    /// `group_name` and `group_ids`; never a password hash. `status` `normal` means 1 and 0;
    /// `type` 1 (default) is staff (roles 1, 2), 2 couriers (role 3), `all` both.
    static let resource = Resource(
        name: "employee", table: "employees", idParam: "user_id",
        columns: [
            .fixed("id", published: true), .field(Field("number", .scalar)), .field(.text("nickName"), published: true),
            .field(.text("realName"), published: true), .field(.text("headImageUrl")), .fixed("phoneNumber", published: true),
            .field(Field("sex", .int(oneOf: [1, 2, 3]), cleared: 3)), .fixed("roleId", published: true), .field(Field("openId", .scalar)),
            .field(Field("birthday", .time)), .field(Field("title", .scalar)), .field(.text("address")), .field(.text("school")),
            .field(.text("politicalAffiliation")), .field(.text("education")), .field(Field("rankId", .count, cleared: 0)),
            .field(Field("rankType", .count, cleared: 0)), .field(Field("departmentId", .count, cleared: 0)), .field(Field("jobId", .count, cleared: 0)),
            .field(.longText("info")), .field(Field("entryTime", .time)), .field(Field("officialTime", .time)), .field(Field("resignTime", .time)),
            .fixed("lastLoginTime"), .fixed("isLogin"), .fixed("createTime"), .fixed("updateTime", published: true),
            .fixed("status", published: true), .field(.longText("note")),
        ],
        status: StatusRule(values: [1, 0, -1], aliases: ["normal": [1, 0]]),
        links: [
            Link(param: "group_id", filter: .any("group_ids"), table: "employee_groups", ownerColumn: "employee_id", targetColumn: "group_id",
                 target: "groups", targetName: "groupName", namesKey: "group_name", idsKey: "group_ids",
                 firstIDKey: (key: "group", after: "number"), nonEmpty: true),
        ],
        filters: [.custom(type)],
        event: "employee")

    /// `type`: 1 staff (default), 2 couriers, `all`.
    static func type(_ params: Params, _ db: SQLiteConnection) throws -> (sql: String, binds: [SQLValue])? {
        guard let types = try params.statusFilter("type", allowed: [1, 2], default: [1]) else { return nil }
        let roles: [Int64] = types == [2] ? [3] : [1, 2]
        return ("t.roleId IN (\(SQLFilter.marks(roles.count)))", roles.map { .int($0) })
    }

    static func phoneTaken(_ phone: String, except id: Int64, _ db: SQLiteConnection) throws -> Bool {
        try db.queryOne("SELECT 1 FROM employees WHERE phoneNumber = ? AND status <> -1 AND id <> ?", [.text(phone), .int(id)]) != nil
    }

    /// Creates an employee (admin), or updates one when `user_id` is given. A non-admin may
    /// update only their own record and may not change their role or groups.
    static func save(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let params = ctx.params
        let userID = try params.id("user_id")
        let phone = try params.string("phoneNumber")
        let role = try params.int("role_id", oneOf: [1, 2, 3])
        let password = try params.string("password", maxLength: 128)
        if let password, password.unicodeScalars.count < 8 { throw APIError.badRequest("password must be 8 to 128 characters") }

        guard let userID else {
            guard caller.isAdmin else { throw APIError.forbidden("only administrators may create employees") }
            guard let phone, !phone.isEmpty else { throw APIError.badRequest("phoneNumber is required") }
            var write = try resource.write(from: params, create: true)
            let initial = password == nil ? try SessionToken.randomPassword(length: 12) : nil
            let hash = try await PasswordHasher.shared.hash(password ?? initial ?? "")
            write.values += [("phoneNumber", .text(phone)), ("roleId", .int(role ?? 2)), ("password_hash", .text(hash))]
            let created = write
            let (response, replayed) = try await ctx.mutateReportingReplay { db in
                try resource.checkLinks(db, created)
                if try phoneTaken(phone, except: 0, db) { throw APIError.conflict("phoneNumber \(phone) is already used by another employee") }
                return Reply.mutation(id: try resource.insert(db, created, creator: nil))
            }
            // The generated password is added to the live answer only: the stored answer of
            // this request (replayed to a retry) never holds it, so it is not kept at rest.
            guard let initial, !replayed, case .object(var body) = response.body, case .object(var data)? = body["data"] else { return response }
            data.append("initial_password", .string(initial))
            body["data"] = .object(data)
            return WireResponse(status: response.status, body: .object(body))
        }

        if !caller.isAdmin {
            guard userID == caller.id else { throw APIError.forbidden("employees may edit only their own record") }
            if let role, role != caller.role { throw APIError.forbidden("you cannot change your own role") }
            if params.has("group_id") { throw APIError.forbidden("only administrators may change an employee's groups") }
            if password != nil { throw APIError.forbidden("change your password with /api/user/password") }
        }
        if params.isCleared("phoneNumber") { throw APIError.badRequest("phoneNumber cannot be empty") }
        var write = try resource.write(from: params, create: false)
        let newHash: String? = if let password { try await PasswordHasher.shared.hash(password) } else { nil }
        if let phone { write.values.append(("phoneNumber", .text(phone))) }
        if let role { write.values.append(("roleId", .int(role))) }
        if let newHash { write.values.append(("password_hash", .text(newHash))) }
        let changes = write
        return try await ctx.mutate { db in
            let current = try resource.current(db, userID)
            if let phone, current.int("status") != -1, try phoneTaken(phone, except: userID, db) {
                throw APIError.conflict("phoneNumber \(phone) is already used by another employee")
            }
            try resource.checkLinks(db, changes)
            if newHash != nil {
                // A password set by an administrator ends the employee's sessions.
                try Sessions.endSessions(db, where: "employee_id = ?", [.int(userID)], reason: "password")
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(userID)])
            }
            try resource.update(db, current, changes)
            return Reply.mutation(id: userID)
        }
    }

    /// `status` -1 delete (default), 0 disable, 1 enable again. Disabling or deleting ends the
    /// employee's sessions. Administrators cannot disable or delete themselves.
    static func setStatus(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let userID = try ctx.params.requireID("user_id")
        let status = try ctx.params.int("status", oneOf: resource.status.values) ?? -1
        if userID == caller.id && status != 1 { throw APIError.conflict("you cannot disable or delete yourself") }
        return try await resource.setStatus(ctx, hooks: ResourceHooks(beforeStatus: { db, current, status in
            if status != -1, current.int("status") == -1, let phone = current.string("phoneNumber"), try phoneTaken(phone, except: userID, db) {
                throw APIError.conflict("phoneNumber \(phone) is now used by another employee")
            }
            if status != 1 {
                try Sessions.endSessions(db, where: "employee_id = ?", [.int(userID)], reason: "disabled")
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(userID)])
            }
        }))
    }

    /// The tables and indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE employees (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number,
        nickName TEXT,
        realName TEXT,
        headImageUrl TEXT,
        phoneNumber TEXT NOT NULL,
        sex INTEGER NOT NULL DEFAULT 3,
        roleId INTEGER NOT NULL DEFAULT 2,
        openId,
        birthday TEXT,
        title,
        address TEXT,
        school TEXT,
        politicalAffiliation TEXT,
        education TEXT,
        rankId INTEGER NOT NULL DEFAULT 0,
        rankType INTEGER NOT NULL DEFAULT 0,
        departmentId INTEGER NOT NULL DEFAULT 0,
        jobId INTEGER NOT NULL DEFAULT 0,
        info TEXT,
        entryTime TEXT,
        officialTime TEXT,
        resignTime TEXT,
        lastLoginTime TEXT,
        isLogin INTEGER NOT NULL DEFAULT 0,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 1,
        note TEXT,
        password_hash TEXT NOT NULL
    );
    CREATE UNIQUE INDEX employees_phone_live ON employees(phoneNumber) WHERE status <> -1;
    CREATE INDEX employees_status ON employees(status, id);
    """
}
