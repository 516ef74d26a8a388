import ServiceKit
import WireProtocol

/// Menu items and employees' menus: `GET/POST /api/user/menu`, `GET/POST /api/user/usermenu`.
enum Menus {
    static let routes: [Route] = [
        .get("/api/user/menu", list),
        .post("/api/user/menu", save),
        .get("/api/user/usermenu", employeeMenus),
        .post("/api/user/usermenu", setEmployeeMenu),
    ]

    static func json(_ row: Row) -> JSON {
        .object(JSONObject(["id", "name", "content", "note"].map { ($0, row[$0].json) }))
    }

    /// Menu items not deleted, newest first, paged.
    static func list(_ ctx: RequestContext) async throws -> WireResponse {
        let paging = try ctx.params.paging()
        let (rows, total) = try await ctx.database.read { db in
            (try db.query("SELECT id, name, content, note FROM menus WHERE status <> -1 ORDER BY id DESC LIMIT ? OFFSET ?", [.int(paging.count), .int(paging.offset)]),
             try db.scalar("SELECT COUNT(*) FROM menus WHERE status <> -1"))
        }
        return Reply.ok(data: .array(rows.map { json($0) }), page: paging.info(total: total))
    }

    /// The seed's rule: no `menu_id` creates (`name` required); `menu_id` with `name` updates;
    /// `menu_id` without `name` deletes.
    static func save(_ ctx: RequestContext) async throws -> WireResponse {
        let menuID = try ctx.params.id("menu_id")
        let name = try ctx.params.string("name")
        let values = try ctx.params.values(for: [.text("content"), .longText("note")])
        return try await ctx.mutate { db in
            guard let menuID else {
                guard let name, !name.isEmpty else { throw APIError.badRequest("name is required") }
                let id = try db.insert("menus", [("name", .text(name))] + values)
                return Reply.mutation(id: id)
            }
            guard try db.queryOne("SELECT 1 FROM menus WHERE id = ? AND status <> -1", [.int(menuID)]) != nil else {
                throw APIError.notFound("menu_id \(menuID) does not exist")
            }
            if let name, !name.isEmpty {
                try db.update("menus", id: menuID, [("name", .text(name))] + values)
            } else {
                try db.run("UPDATE menus SET status = -1 WHERE id = ?", [.int(menuID)])
            }
            return Reply.mutation(id: menuID)
        }
    }

    static let employeeColumns = ["phoneNumber", "id", "realName", "number", "nickName", "headImageUrl", "sex", "birthday", "title",
                                  "address", "school", "education", "entryTime", "officialTime", "resignTime", "lastLoginTime", "status"]

    /// Employees (one with `user_id`, else all not deleted, newest first, paged), each with
    /// their menu items in the order set.
    static func employeeMenus(_ ctx: RequestContext) async throws -> WireResponse {
        let userID = try ctx.params.id("user_id")
        let paging = try ctx.params.paging()
        let select = employeeColumns.map { "\"\($0)\"" }.joined(separator: ", ")
        let (data, total) = try await ctx.database.read { db -> ([JSON], Int64) in
            let rows: [Row]
            let total: Int64
            if let userID {
                rows = try db.query("SELECT \(select) FROM employees WHERE id = ? AND status <> -1", [.int(userID)])
                guard !rows.isEmpty else { throw APIError.notFound("user_id \(userID) does not exist") }
                total = 1
            } else {
                total = try db.scalar("SELECT COUNT(*) FROM employees WHERE status <> -1")
                rows = try db.query("SELECT \(select) FROM employees WHERE status <> -1 ORDER BY id DESC LIMIT ? OFFSET ?", [.int(paging.count), .int(paging.offset)])
            }
            // Every listed employee's menu in one query, in the order set.
            let ids = rows.map { $0["id"] }
            var menus: [Int64: [JSON]] = [:]
            if !ids.isEmpty {
                for item in try db.query("""
                    SELECT em.employee_id, m.id, m.name, m.content, m.note FROM employee_menus em JOIN menus m ON m.id = em.menu_id
                    WHERE em.employee_id IN (\(SQLFilter.marks(ids.count))) AND m.status <> -1 ORDER BY em.employee_id, em.position
                    """, ids) {
                    menus[item.int("employee_id") ?? 0, default: []].append(json(item))
                }
            }
            var result: [JSON] = []
            for row in rows {
                var o = JSONObject()
                for column in employeeColumns { o.append(column == "id" ? "user_id" : column, row[column].json) }
                o.append("menu", .array(menus[row.int("id") ?? 0] ?? []))
                result.append(.object(o))
            }
            return (result, total)
        }
        return Reply.ok(data: .array(data), page: paging.info(total: total))
    }

    /// Sets an employee's menu: `menu` ids in the order given (an empty array clears it).
    static func setEmployeeMenu(_ ctx: RequestContext) async throws -> WireResponse {
        let userID = try ctx.params.requireID("user_id")
        let menu: [Int64]
        if case .array(let items)? = ctx.params.values["menu"], items.isEmpty {
            menu = []
        } else {
            guard let given = try ctx.params.idArray("menu") else { throw APIError.badRequest("menu is required (an array of menu ids)") }
            menu = given
        }
        return try await ctx.mutate { db in
            guard try db.queryOne("SELECT 1 FROM employees WHERE id = ? AND status <> -1", [.int(userID)]) != nil else {
                throw APIError.notFound("user_id \(userID) does not exist")
            }
            for id in menu where try db.queryOne("SELECT 1 FROM menus WHERE id = ? AND status <> -1", [.int(id)]) == nil {
                throw APIError.badRequest("menu id \(id) does not exist")
            }
            try db.run("DELETE FROM employee_menus WHERE employee_id = ?", [.int(userID)])
            for (position, id) in menu.enumerated() {
                try db.run("INSERT INTO employee_menus(employee_id, menu_id, position) VALUES (?,?,?)", [.int(userID), .int(id), .int(Int64(position))])
            }
            return Reply.ok("修改成功", data: .object(JSONObject([("id", .int(userID))])))
        }
    }

    /// The tables and indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE menus (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        content TEXT,
        note TEXT,
        status INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE employee_menus (
        employee_id INTEGER NOT NULL REFERENCES employees(id),
        menu_id INTEGER NOT NULL REFERENCES menus(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (employee_id, menu_id)
    ) WITHOUT ROWID;
    """
}
