import ServiceKit
import WireProtocol

/// Customer organizations: `GET/POST /api/customers/organization`, `POST /api/customers/delorganization`.
enum Organizations {
    static let routes: [Route] = [
        .get("/api/customers/organization", list),
        .post("/api/customers/organization", save),
        .post("/api/customers/delorganization", setStatus),
    ]

    static let columns = ["id", "groupName", "groupDetail", "type", "provience", "city", "county", "address", "legal_person",
                          "register_capital", "registerDate", "website", "creator_id", "createTime", "updateTime", "status", "note"]
    static let selectList = columns.map { "o.\"\($0)\"" }.joined(separator: ", ")
    static let statuses: [Int64] = [-1, 0, 1, 2, 3]

    static let fields: [Field] = [
        .text("groupDetail"), Field("type", .scalar), .text("provience"), .text("city"), .text("county"), .text("address"),
        .longText("note"), .text("legal_person"), .text("register_capital"), Field("registerDate", .date), .text("website"),
    ]

    static func json(_ row: Row) -> JSON {
        var o = JSONObject()
        o.reserveCapacity(columns.count)
        for (i, column) in columns.enumerated() { o.append(column, row[i].json) }
        return .object(o)
    }

    /// Counter keys a row with this status and creator contributes to.
    static func counterKeys(status: Int64, creator: Int64?) -> [String] {
        ["s:\(status)"] + (creator.map { ["sc:\(status):\($0)"] } ?? [])
    }

    /// `organization_name` (fuzzy), `status` (`all`, -1…3; default 1), `creator_id`; newest first.
    static func list(_ ctx: RequestContext) async throws -> WireResponse {
        let name = try ctx.params.string("organization_name")
        let status = try ctx.params.statusFilter(allowed: statuses, default: [1])
        let creator = try ctx.params.id("creator_id")
        let paging = try ctx.params.paging()
        var filter = SQLFilter()
        if let creator { filter.add("o.creator_id = ?", [.int(creator)]) }
        let folded = name.flatMap { $0.isEmpty ? nil : NgramIndex.fold($0) }
        let filter0 = filter
        let (rows, total) = try await ctx.database.read { db -> ([JSON], Int64) in
            if let folded {
                let page = try NgramIndex.searchPage(db, table: "organization_grams", from: "organizations o", idColumn: "o.id", foldColumn: "o.name_fold",
                                                     folded: folded, statuses: status, filter: filter0, paging: paging)
                let rows = page.ids.isEmpty ? [] : try db.query("SELECT \(selectList) FROM organizations o WHERE o.id IN (\(SQLFilter.marks(page.ids.count))) ORDER BY o.id DESC",
                                                                 page.ids.map { .int($0) })
                return (rows.map(json), page.total)
            }
            var filter = filter0
            if let status { filter.in("o.status", status) }
            let keys = (status ?? statuses).map { s in creator.map { "sc:\(s):\($0)" } ?? "s:\(s)" }
            let total = try keys.reduce(0) { $0 + (try Counters.get(db, table: "organization_counts", key: $1)) }
            let rows = try db.query("SELECT \(selectList) FROM organizations o \(filter.clause) ORDER BY o.id DESC LIMIT ? OFFSET ?",
                                    filter.binds + [.int(paging.count), .int(paging.offset)])
            return (rows.map(json), total)
        }
        return Reply.ok(data: .array(rows), page: paging.info(total: total))
    }

    static func recordChange(_ db: SQLiteConnection, _ id: Int64) throws {
        guard let row = try db.queryOne("SELECT id, groupName, status, creator_id, updateTime FROM organizations WHERE id = ?", [.int(id)]) else { return }
        try Outbox.append(db, type: "organization", entityID: id, state: JSONObject([
            ("id", row[0].json), ("groupName", row[1].json), ("status", row[2].json), ("creator_id", row[3].json), ("updateTime", row[4].json)]))
    }

    /// The creator a write may set: the caller, or anyone when the caller is an administrator.
    static func creator(_ ctx: RequestContext, _ caller: Caller) throws -> Int64? {
        guard let given = try ctx.params.id("creator_id") else { return nil }
        if given != caller.id && !caller.isAdmin { throw APIError.forbidden("only administrators may set creator_id to another employee") }
        return given
    }

    /// Creates an organization (`groupName` required), or updates the fields sent when
    /// `organization_id` is given.
    static func save(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let orgID = try ctx.params.id("organization_id")
        let name = try ctx.params.string("groupName")
        let values = try ctx.params.values(for: fields)
        let creatorID = try creator(ctx, caller)
        if ctx.params.isCleared("groupName") || (orgID == nil && name == nil) { throw APIError.badRequest("groupName is required") }
        return try await ctx.mutate { db in
            let now = Timestamp.now()
            guard let orgID else {
                let creatorValue = creatorID ?? caller.id
                let id = try db.insert("organizations", values + [
                    ("groupName", SQLValue(name)), ("name_fold", .text(NgramIndex.fold(name ?? ""))), ("creator_id", .int(creatorValue)),
                    ("createTime", .text(now)), ("updateTime", .text(now)), ("status", .int(1))])
                try NgramIndex.update(db, table: "organization_grams", id: id, status: 1, texts: [name ?? ""])
                try Counters.add(db, table: "organization_counts", keys: counterKeys(status: 1, creator: creatorValue), delta: 1)
                try recordChange(db, id)
                return Reply.mutation(id: id)
            }
            guard let current = try db.queryOne("SELECT status, creator_id FROM organizations WHERE id = ?", [.int(orgID)]),
                  let status = current.int(0) else {
                throw APIError.notFound("organization_id \(orgID) does not exist")
            }
            var changes = values
            if let name {
                changes += [("groupName", .text(name)), ("name_fold", .text(NgramIndex.fold(name)))]
                try NgramIndex.update(db, table: "organization_grams", id: orgID, status: status, texts: [name])
            }
            if let creatorID, creatorID != current.int(1) {
                changes.append(("creator_id", .int(creatorID)))
                try Counters.move(db, table: "organization_counts", from: counterKeys(status: status, creator: current.int(1)),
                                  to: counterKeys(status: status, creator: creatorID))
            }
            changes.append(("updateTime", .text(now)))
            try db.update("organizations", id: orgID, changes)
            try recordChange(db, orgID)
            return Reply.mutation(id: orgID)
        }
    }

    /// `status` -1 deletes, 0…3 sets the follow-up state; both parameters required.
    /// Employees may change only organizations they created.
    static func setStatus(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let orgID = try ctx.params.requireID("organization_id")
        guard let status = try ctx.params.int("status", oneOf: statuses) else { throw APIError.badRequest("status is required") }
        return try await ctx.mutate { db in
            guard let current = try db.queryOne("SELECT status, creator_id FROM organizations WHERE id = ?", [.int(orgID)]),
                  let old = current.int(0) else {
                throw APIError.notFound("organization_id \(orgID) does not exist")
            }
            try caller.requireMayChangeRow(createdBy: current.int(1))
            try db.run("UPDATE organizations SET status = ?, updateTime = ? WHERE id = ?", [.int(status), .text(Timestamp.now()), .int(orgID)])
            try NgramIndex.setStatus(db, table: "organization_grams", id: orgID, status: status)
            try Counters.move(db, table: "organization_counts", from: counterKeys(status: old, creator: current.int(1)),
                              to: counterKeys(status: status, creator: current.int(1)))
            try recordChange(db, orgID)
            return Reply.mutation(id: orgID)
        }
    }
}
