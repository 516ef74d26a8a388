import ServiceKit
import WireProtocol

/// Employee groups: `GET/POST /api/user/group`, `POST /api/user/delgroup`.
enum Groups {
    static let routes = resource.routes(list: "/api/user/group", save: "/api/user/group", setStatus: "/api/user/delgroup", hooks: uniqueNames)

    /// `name` (→ `groupName`, required on create and rename) and `content` (→ `groupDetail`);
    /// listed whole, newest first; `status` 1 (default), -1 or `all`; a status change without
    /// `status` deletes.
    static let resource = Resource(
        name: "group", table: "groups", idParam: "group_id",
        columns: [
            .fixed("id"), .field(.text("name", column: "groupName")), .field(.longText("content", column: "groupDetail")),
            .fixed("createTime"), .fixed("updateTime"), .fixed("status"),
        ],
        status: StatusRule(values: [1, -1]),
        alwaysRequired: ["name"],
        paged: false)

    /// Names are unique among groups not deleted (409), on create, rename and restore.
    static let uniqueNames = ResourceHooks(
        beforeWrite: { db, current, write in
            guard case .text(let name)? = write.value("groupName") else { return }
            try checkUnique(name, except: current?.id ?? 0, db)
        },
        beforeStatus: { db, current, status in
            guard status != -1, let name = current.string("groupName") else { return }
            try checkUnique(name, except: current.id, db)
        })

    static func checkUnique(_ name: String, except id: Int64, _ db: SQLiteConnection) throws {
        if try db.queryOne("SELECT id FROM groups WHERE groupName = ? AND status <> -1 AND id <> ?", [.text(name), .int(id)]) != nil {
            throw APIError.conflict("a group named '\(name)' already exists")
        }
    }

    /// The tables and indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        groupName TEXT NOT NULL,
        groupDetail TEXT,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX groups_status ON groups(status, id);
    """
}
