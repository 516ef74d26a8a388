import ServiceKit
import WireProtocol

/// Follow-up records: `GET/POST /api/record/follow`, `POST /api/record/delfollow`.
enum Follows {
    static let routes = Operator.routes(resource, list: "/api/record/follow", save: "/api/record/follow",
                                        setStatus: "/api/record/delfollow", derive: organizationOfPotential)

    /// `follow_id` names a record; `protent_id`, `follower_id` (at least one) and `record_time`
    /// are required on create; `customers_id`, `event` (1…5), `gain`, `event_attach` (→
    /// `attach`), `event_note` (→ `note`). The organization is the potential record's. Lists:
    /// `protent_id`, `organization_id`, the week before `end_time`, not deleted.
    static let resource = Resource(
        name: "follow-up record", table: "follows", idParam: "follow_id",
        columns: [
            .fixed("id", published: true), .field(Field("protent_id", column: "potential_id", .int(oneOf: nil)), published: true),
            .fixed("organization_id", published: true), .field(Field("event", .int(oneOf: [1, 2, 3, 4, 5]))),
            .field(.text("event_attach", column: "attach")), .field(.longText("gain")),
            .field(Field("record_time", column: "recordTime", .time), published: true),
            .fixed("createTime"), .fixed("updateTime", published: true), .fixed("status", published: true),
            .field(.longText("event_note", column: "note")), .fixed(Operator.column, published: true),
        ],
        status: StatusRule(values: [0, -1], defaultFilter: [0], initial: 0),
        links: [Operator.followers("follow_followers", owner: "follow_id"), Operator.customers("customers_id", "follow_customers", owner: "follow_id")],
        filters: [.id("protent_id", column: "potential_id"), .id("organization_id", column: "organization_id")],
        required: ["protent_id", "record_time"],
        event: "follow",
        ordering: Operator.ordering,
        window: Operator.window(counts: "follow_counts"),
        references: [Operator.name],
        catchUpMillis: Operator.catchUpMillis)

    /// The organization of the potential record named (which must exist and not be deleted).
    @Sendable static func organizationOfPotential(_ db: SQLiteConnection, _ current: Record?, _ write: Write) throws -> [(column: String, value: SQLValue)] {
        guard case .int(let potential)? = write.value("potential_id") else { return [] }
        guard let organization = try db.queryOne("SELECT organization_id FROM potentials WHERE id = ? AND status <> -1", [.int(potential)])?.int("organization_id") else {
            throw APIError.badRequest("protent_id \(potential) does not exist")
        }
        return [("organization_id", .int(organization))]
    }

    /// The table and its indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE follows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        potential_id INTEGER NOT NULL REFERENCES potentials(id),
        organization_id INTEGER NOT NULL,
        event INTEGER,
        attach TEXT,
        gain TEXT,
        recordTime TEXT NOT NULL,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        operator_id INTEGER NOT NULL
    );
    CREATE INDEX follows_organization ON follows(organization_id, status, recordTime);
    CREATE INDEX follows_potential ON follows(potential_id, status, recordTime);
    CREATE INDEX follows_status_time ON follows(status, recordTime);

    """
}
