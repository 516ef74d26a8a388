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
        links: [
            Link(param: "follower_id", table: "demand_followers", ownerColumn: "demand_id", targetColumn: "employee_id",
                 target: "employee_copies", targetName: "realName", namesKey: "follower_name", idsKey: "follower_ids",
                 nonEmpty: true, nameSQL: Copies.employeeName),
            Link(param: "customer_id", table: "demand_customers", ownerColumn: "demand_id", targetColumn: "customer_id",
                 target: "customer_copies", targetName: "realName", namesKey: "customer_name", idsKey: "customer_ids",
                 nameSQL: Copies.customerName),
        ],
        filters: [.id("organization_id", column: "organization_id")],
        required: ["organization_id", "record_time", "content"],
        event: "demand",
        ordering: Operator.ordering,
        window: Operator.window,
        references: [
            Reference(column: "organization_id", target: "organization_copies", nameSQL: Copies.organizationName, nameKey: "organization_name"),
            Operator.name,
        ],
        catchUpMillis: Operator.catchUpMillis)
}
