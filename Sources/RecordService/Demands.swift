import ServiceKit
import WireProtocol

/// Demand changes: `GET/POST /api/record/demand`, `POST /api/record/deldemand`.
enum Demands {
    static let routes = Operator.routes(resource, list: "/api/record/demand", save: "/api/record/demand", setStatus: "/api/record/deldemand")

    /// `demand_id` names a record; `organization_id`, `follower_id` (at least one),
    /// `record_time` and `content` are required on create; `customer_id`, `demand_attach` (→
    /// `attach`), `demand_note` (→ `note`). Lists: `organization_id`, the week before
    /// `end_time`, not deleted.
    static let resource = Resource(
        name: "demand change", table: "demands", idParam: "demand_id",
        columns: [
            .fixed("id", published: true), .field(Field("organization_id", .int(oneOf: nil)), published: true),
            .field(.longText("content")), .field(.text("demand_attach", column: "attach")),
            .field(Field("record_time", column: "recordTime", .time), published: true),
            .fixed("createTime"), .fixed("updateTime", published: true), .fixed("status", published: true),
            .field(.longText("demand_note", column: "note")), .fixed(Operator.column, published: true),
        ],
        status: StatusRule(values: [0, -1], defaultFilter: [0], initial: 0),
        links: [Operator.followers("demand_followers", owner: "demand_id"), Operator.customers("customer_id", "demand_customers", owner: "demand_id")],
        filters: [.id("organization_id", column: "organization_id")],
        required: ["organization_id", "record_time", "content"],
        event: "demand",
        ordering: Operator.ordering,
        window: Operator.window(counts: "demand_counts"),
        references: [
            Operator.organizationName,
            Operator.name,
        ],
        catchUpMillis: Operator.catchUpMillis)

    /// The table and its indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE demands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        organization_id INTEGER NOT NULL,
        content TEXT NOT NULL,
        attach TEXT,
        recordTime TEXT NOT NULL,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        operator_id INTEGER NOT NULL
    );
    CREATE INDEX demands_organization ON demands(organization_id, status, recordTime);
    CREATE INDEX demands_status_time ON demands(status, recordTime);
    """
}
