import ServiceKit
import WireProtocol

/// Employee groups: `GET/POST /api/user/group`, `POST /api/user/delgroup`.
enum Groups {
    static let routes: [Route] = [
        .get("/api/user/group", list),
        .post("/api/user/group", save),
        .post("/api/user/delgroup", setStatus),
    ]

    static let columns = "id, groupName, groupDetail, createTime, updateTime, status"

    static func json(_ row: Row) -> JSON {
        var o = JSONObject()
        o.append("id", row[0].json)
        o.append("groupName", row[1].json)
        o.append("groupDetail", row[2].json)
        o.append("createTime", row[3].json)
        o.append("updateTime", row[4].json)
        o.append("status", row[5].json)
        return .object(o)
    }

    /// `status`: `all`, 1 (default) or -1. Newest first, no paging.
    static func list(_ ctx: RequestContext) async throws -> WireResponse {
        let statuses = try ctx.params.statusFilter(allowed: [1, -1], default: [1])
        let rows = try await ctx.database.read { db in
            if let statuses {
                return try db.query("SELECT \(columns) FROM groups WHERE status = ? ORDER BY id DESC", [.int(statuses[0])])
            }
            return try db.query("SELECT \(columns) FROM groups ORDER BY id DESC")
        }
        return Reply.ok(data: .array(rows.map(json)))
    }

    /// Creates a group, or renames one when `group_id` is given. Names are unique among groups
    /// not deleted (409).
    static func save(_ ctx: RequestContext) async throws -> WireResponse {
        let groupID = try ctx.params.id("group_id")
        let name = try ctx.params.requireString("name")
        let content = try ctx.params.string("content", maxLength: Params.maxLongTextLength)
        let hasContent = ctx.params.values["content"] != nil
        return try await ctx.mutate { db in
            let now = Timestamp.now()
            let clash = try db.queryOne("SELECT id FROM groups WHERE groupName = ? AND status <> -1 AND id <> ?", [.text(name), .int(groupID ?? 0)])
            if clash != nil { throw APIError.conflict("a group named '\(name)' already exists") }
            if let groupID {
                guard try db.queryOne("SELECT id FROM groups WHERE id = ?", [.int(groupID)]) != nil else {
                    throw APIError.notFound("group_id \(groupID) does not exist")
                }
                if hasContent {
                    try db.run("UPDATE groups SET groupName = ?, groupDetail = ?, updateTime = ? WHERE id = ?", [.text(name), SQLValue(content), .text(now), .int(groupID)])
                } else {
                    try db.run("UPDATE groups SET groupName = ?, updateTime = ? WHERE id = ?", [.text(name), .text(now), .int(groupID)])
                }
                return Reply.mutation(id: groupID)
            }
            try db.run("INSERT INTO groups(groupName, groupDetail, createTime, updateTime, status) VALUES (?,?,?,?,1)", [.text(name), SQLValue(content), .text(now), .text(now)])
            return Reply.mutation(id: db.lastInsertRowID)
        }
    }

    /// Deletes a group (status -1); `status=1` restores it.
    static func setStatus(_ ctx: RequestContext) async throws -> WireResponse {
        let groupID = try ctx.params.requireID("group_id")
        let status = try ctx.params.int("status", oneOf: [-1, 1]) ?? -1
        return try await ctx.mutate { db in
            guard let row = try db.queryOne("SELECT groupName FROM groups WHERE id = ?", [.int(groupID)]) else {
                throw APIError.notFound("group_id \(groupID) does not exist")
            }
            if status == 1, let name = row.string(0),
               try db.queryOne("SELECT id FROM groups WHERE groupName = ? AND status <> -1 AND id <> ?", [.text(name), .int(groupID)]) != nil {
                throw APIError.conflict("a group named '\(name)' already exists")
            }
            try db.run("UPDATE groups SET status = ?, updateTime = ? WHERE id = ?", [.int(status), .text(Timestamp.now()), .int(groupID)])
            return Reply.mutation(id: groupID)
        }
    }
}
