import ServiceKit
import WireProtocol

/// Potential-customer records: `GET/POST /api/record/potential`, `POST /api/record/delpotent`.
enum Potentials {
    static let routes = Operator.routes(resource, list: "/api/record/potential", save: "/api/record/potential",
                                        setStatus: "/api/record/delpotent", beforeWrite: moveFollows)

    /// `potent_id` (or the seed's `protent_id`) names a record; `organization_id`,
    /// `director_id` and `record_time` are required on create. Lists: `status` default every
    /// status but deleted (`all` includes deleted), `potent_id`, `organization_id`,
    /// `director_id`, the week before `end_time`; a status change must name a status.
    static let resource = Resource(
        name: "potential record", table: "potentials", idParam: "potent_id",
        columns: [
            .fixed("id", published: true), .field(Field("organization_id", .int(oneOf: nil)), published: true),
            .field(Field("director_id", .int(oneOf: nil)), published: true),
            .field(Field("record_time", column: "recordTime", .time), published: true),
            .fixed("createTime"), .fixed("updateTime", published: true), .fixed("status", published: true), .field(.longText("note")),
            .fixed(Operator.column, published: true),
        ],
        status: StatusRule(values: [-1, 0, 1, 2, 3], defaultFilter: [0, 1, 2, 3], initial: 0, changeDefault: nil),
        filters: [.id("potent_id", column: "id"), .id("organization_id", column: "organization_id"), .id("director_id", column: "director_id")],
        required: ["organization_id", "director_id", "record_time"],
        event: "potential",
        ordering: Operator.ordering,
        window: Operator.window(counts: "potential_counts"),
        references: [
            Operator.organizationName,
            Reference(column: "director_id", target: "employee_copies", nameSQL: Copies.employeeName, nameKey: "director"),
            Operator.name,
        ],
        catchUpMillis: Operator.catchUpMillis,
        idAlias: "protent_id")

    /// A follow-up record belongs to its potential record's organization: moving the potential
    /// record to another organization moves its follow-up records too (and republishes them).
    @Sendable static func moveFollows(_ db: SQLiteConnection, _ current: Record?, _ write: Write) throws {
        guard let current, case .int(let organization)? = write.value("organization_id"), organization != current.int("organization_id") else { return }
        let moved = try db.query("SELECT id FROM follows WHERE potential_id = ?", [.int(current.id)]).compactMap { $0.int("id") }
        try db.run("UPDATE follows SET organization_id = ?, updateTime = ? WHERE potential_id = ?", [.int(organization), .text(Timestamp.now()), .int(current.id)])
        for id in moved { try Follows.resource.publish(db, id) }
    }

    /// The table and its indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE potentials (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        organization_id INTEGER NOT NULL,
        director_id INTEGER NOT NULL,
        recordTime TEXT NOT NULL,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        operator_id INTEGER NOT NULL
    );
    CREATE INDEX potentials_time ON potentials(recordTime, id, status);
    CREATE INDEX potentials_organization ON potentials(organization_id, recordTime);
    CREATE INDEX potentials_director ON potentials(director_id, recordTime);

    """
}
