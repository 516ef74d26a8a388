import ServiceKit
import WireProtocol

/// Employees: `GET/POST /api/user/user`, `POST /api/user/deluser`.
enum Employees {
    static let routes: [Route] = [
        .get("/api/user/user", list),
        .post("/api/user/user", save),
        .post("/api/user/deluser", setStatus),
    ]

    /// Columns in the seed's field order (`group` is computed after `number`).
    static let columns = ["id", "number", "nickName", "realName", "headImageUrl", "phoneNumber", "sex", "roleId", "openId",
                          "birthday", "title", "address", "school", "politicalAffiliation", "education", "rankId", "rankType",
                          "departmentId", "jobId", "info", "entryTime", "officialTime", "resignTime", "lastLoginTime", "isLogin",
                          "createTime", "updateTime", "status", "note"]
    static let selectList = columns.map { "e.\"\($0)\"" }.joined(separator: ", ")

    /// Fields an employee record takes on create and update (besides phone, role, groups, password).
    static let fields: [Field] = [
        Field("number", .scalar), .text("nickName"), .text("realName"), .text("headImageUrl"),
        Field("sex", .int(oneOf: [1, 2, 3]), cleared: 3), Field("openId", .scalar), Field("birthday", .time), Field("title", .scalar),
        .text("address"), .text("school"), .text("politicalAffiliation"), .text("education"),
        Field("rankId", .count, cleared: 0), Field("rankType", .count, cleared: 0), Field("departmentId", .count, cleared: 0),
        Field("jobId", .count, cleared: 0),
        .longText("info"), Field("entryTime", .time), Field("officialTime", .time), Field("resignTime", .time), .longText("note"),
    ]

    static let statusAliases: [String: [Int64]] = ["normal": [1, 0]]

    // MARK: Reading

    /// Groups of each employee, in the order they were given.
    static func groups(of ids: [Int64], _ db: SQLiteConnection) throws -> [Int64: [(id: Int64, name: JSON)]] {
        try db.links("""
            SELECT eg.employee_id, eg.group_id, g.groupName FROM employee_groups eg JOIN groups g ON g.id = eg.group_id
            WHERE eg.employee_id IN (%@) ORDER BY eg.employee_id, eg.position
            """, owners: ids)
    }

    /// One employee as the API shows it: the seed's fields, `group_name` and `group_ids`.
    static func json(_ row: Row, groups: [(id: Int64, name: JSON)]) -> JSON {
        var o = JSONObject()
        o.reserveCapacity(columns.count + 3)
        for (i, column) in columns.enumerated() {
            o.append(column, row[i].json)
            if i == 1 { o.append("group", groups.first.map { .int($0.id) } ?? .null) }
        }
        o.append("group_name", .array(groups.map(\.name)))
        o.append("group_ids", .array(groups.map { .int($0.id) }))
        return .object(o)
    }

    /// `status` (`all`, `normal`, 1 default, 0, -1), `type` (1 staff default, 2 courier, `all`),
    /// `group_ids`; newest first, paged.
    static func list(_ ctx: RequestContext) async throws -> WireResponse {
        let statuses = try ctx.params.statusFilter(allowed: [1, 0, -1], aliases: statusAliases, default: [1])
        let roles: [Int64]?
        switch try ctx.params.statusFilter("type", allowed: [1, 2], default: [1]) {
        case nil: roles = nil
        case let values?: roles = values == [2] ? [3] : [1, 2]
        }
        let groupIDs = try ctx.params.idArray("group_ids")
        let paging = try ctx.params.paging()
        var filter = SQLFilter()
        if let statuses { filter.in("e.status", statuses) }
        if let roles { filter.in("e.roleId", roles) }
        if let groupIDs, !groupIDs.isEmpty {
            filter.add("EXISTS (SELECT 1 FROM employee_groups eg WHERE eg.employee_id = e.id AND eg.group_id IN (\(SQLFilter.marks(groupIDs.count))))",
                       groupIDs.map { .int($0) })
        }
        let whereClause = filter.clause
        let binds = filter.binds
        let (rows, total) = try await ctx.database.read { db -> ([JSON], Int64) in
            let total = try db.scalar("SELECT COUNT(*) FROM employees e \(whereClause)", binds)
            let found = try db.query("SELECT \(selectList) FROM employees e \(whereClause) ORDER BY e.id DESC LIMIT ? OFFSET ?",
                                     binds + [.int(paging.count), .int(paging.offset)])
            let ids = found.compactMap { $0.int(0) }
            let memberships = try groups(of: ids, db)
            return (found.map { json($0, groups: memberships[$0.int(0) ?? 0] ?? []) }, total)
        }
        return Reply.ok(data: .array(rows), page: paging.info(total: total))
    }

    // MARK: Writing

    /// The employee's state for other services (events outbox).
    static func recordChange(_ db: SQLiteConnection, _ id: Int64) throws {
        guard let row = try db.queryOne("SELECT id, realName, nickName, roleId, status, phoneNumber, updateTime FROM employees WHERE id = ?", [.int(id)]) else { return }
        let state = JSONObject([("id", row[0].json), ("realName", row[1].json), ("nickName", row[2].json), ("roleId", row[3].json),
                                ("status", row[4].json), ("phoneNumber", row[5].json), ("updateTime", row[6].json)])
        try Outbox.append(db, type: "employee", entityID: id, state: state)
    }

    /// Every id must name a group that is not deleted (400 naming the first that does not).
    static func checkGroups(_ ids: [Int64], _ db: SQLiteConnection) throws {
        for id in ids where try db.queryOne("SELECT 1 FROM groups WHERE id = ? AND status <> -1", [.int(id)]) == nil {
            throw APIError.badRequest("group_id \(id) does not exist")
        }
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
        let groupIDs = try params.idArray("group_id")
        let password = try params.string("password", maxLength: 128)
        if let password, password.unicodeScalars.count < 8 { throw APIError.badRequest("password must be 8 to 128 characters") }
        let values = try params.values(for: fields)

        guard let userID else {
            guard caller.isAdmin else { throw APIError.forbidden("only administrators may create employees") }
            guard let phone, !phone.isEmpty else { throw APIError.badRequest("phoneNumber is required") }
            guard let groupIDs, !groupIDs.isEmpty else { throw APIError.badRequest("group_id is required (an array of group ids)") }
            let initial = password == nil ? try SessionToken.randomPassword(length: 12) : nil
            let hash = try await PasswordHasher.shared.hash(password ?? initial ?? "")
            let (response, replayed) = try await ctx.mutateReportingReplay { db in
                try checkGroups(groupIDs, db)
                if try phoneTaken(phone, except: 0, db) { throw APIError.conflict("phoneNumber \(phone) is already used by another employee") }
                let now = Timestamp.now()
                let id = try db.insert("employees", values + [("phoneNumber", .text(phone)), ("roleId", .int(role ?? 2)), ("password_hash", .text(hash)),
                                                             ("createTime", .text(now)), ("updateTime", .text(now)), ("status", .int(1))])
                for (position, group) in groupIDs.enumerated() {
                    try db.run("INSERT INTO employee_groups(employee_id, group_id, position) VALUES (?,?,?)", [.int(id), .int(group), .int(Int64(position))])
                }
                try recordChange(db, id)
                return Reply.mutation(id: id)
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
            if groupIDs != nil { throw APIError.forbidden("only administrators may change an employee's groups") }
            if password != nil { throw APIError.forbidden("change your password with /api/user/password") }
        }
        if params.isCleared("phoneNumber") { throw APIError.badRequest("phoneNumber cannot be empty") }
        if let groupIDs, groupIDs.isEmpty { throw APIError.badRequest("group_id must name at least one group") }
        let newHash: String? = if let password { try await PasswordHasher.shared.hash(password) } else { nil }
        return try await ctx.mutate { db in
            guard let current = try db.queryOne("SELECT status FROM employees WHERE id = ?", [.int(userID)]) else {
                throw APIError.notFound("user_id \(userID) does not exist")
            }
            if let phone, current.int(0) != -1, try phoneTaken(phone, except: userID, db) {
                throw APIError.conflict("phoneNumber \(phone) is already used by another employee")
            }
            if let groupIDs { try checkGroups(groupIDs, db) }
            var changes = values
            if let phone { changes.append(("phoneNumber", .text(phone))) }
            if let role { changes.append(("roleId", .int(role))) }
            if let newHash { changes.append(("password_hash", .text(newHash))) }
            changes.append(("updateTime", .text(Timestamp.now())))
            try db.update("employees", id: userID, changes)
            if let groupIDs {
                try db.run("DELETE FROM employee_groups WHERE employee_id = ?", [.int(userID)])
                for (position, group) in groupIDs.enumerated() {
                    try db.run("INSERT INTO employee_groups(employee_id, group_id, position) VALUES (?,?,?)", [.int(userID), .int(group), .int(Int64(position))])
                }
            }
            if newHash != nil {
                // A password set by an administrator ends the employee's sessions.
                try Sessions.endSessions(db, where: "employee_id = ?", [.int(userID)], reason: "password")
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(userID)])
            }
            try recordChange(db, userID)
            return Reply.mutation(id: userID)
        }
    }

    /// `status` -1 delete (default), 0 disable, 1 enable again. Disabling or deleting ends the
    /// employee's sessions. Administrators cannot disable or delete themselves.
    static func setStatus(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let userID = try ctx.params.requireID("user_id")
        let status = try ctx.params.int("status", oneOf: [-1, 0, 1]) ?? -1
        if userID == caller.id && status != 1 { throw APIError.conflict("you cannot disable or delete yourself") }
        return try await ctx.mutate { db in
            guard let row = try db.queryOne("SELECT status, phoneNumber FROM employees WHERE id = ?", [.int(userID)]) else {
                throw APIError.notFound("user_id \(userID) does not exist")
            }
            if status != -1, row.int(0) == -1, let phone = row.string(1), try phoneTaken(phone, except: userID, db) {
                throw APIError.conflict("phoneNumber \(phone) is now used by another employee")
            }
            try db.run("UPDATE employees SET status = ?, updateTime = ? WHERE id = ?", [.int(status), .text(Timestamp.now()), .int(userID)])
            if status != 1 {
                try Sessions.endSessions(db, where: "employee_id = ?", [.int(userID)], reason: "disabled")
                try db.run("UPDATE employees SET isLogin = 0 WHERE id = ?", [.int(userID)])
            }
            try recordChange(db, userID)
            return Reply.mutation(id: userID)
        }
    }
}
