import ServiceKit
import WireProtocol

/// Satisfaction feedback: `GET/POST /api/feedback/satisfy`, `POST /api/feedback/delsatisfy`.
enum Feedback {
    static let routes = resource.routes(list: "/api/feedback/satisfy", save: "/api/feedback/satisfy", setStatus: "/api/feedback/delsatisfy",
                                        saveMessage: "录入成功", statusMessages: [-1: "删除成功"])

    /// `value` −10…10; the operator is the caller (`operator_id`, the creator rule: only
    /// administrators and the operator change a row); `customers_id` lists the customers and
    /// filters lists by any of them; `follower_id` the employees praised or criticized. Lists
    /// cover the last week of `recordTime` by default, newest first. Names come from the copies.
    static let resource = Resource(
        name: "feedback", table: "satisfactions", idParam: "satisfy_id",
        columns: [
            .fixed("id", published: true), .field(Field("value", .int(oneOf: Array(Int64(-10)...10))), published: true), .field(.text("attach")),
            .field(Field("record_time", column: "recordTime", .time), published: true), .fixed("operator_id", published: true),
            .field(Field("organization_id", .int(oneOf: nil)), published: true), .fixed("createTime"), .fixed("updateTime", published: true),
            .field(.longText("note")), .fixed("status", published: true),
        ],
        status: StatusRule(values: [0, -1], defaultFilter: [0], initial: 0, changeDefault: -1),
        creator: "operator_id",
        links: [
            Link(param: "customers_id", filter: .any("customers_id"), table: "satisfaction_customers", ownerColumn: "satisfaction_id",
                 targetColumn: "customer_id", target: "customer_copies", targetName: "realName", namesKey: "customers_name", idsKey: "customer_ids",
                 nameSQL: Copies.customerName, published: true, targetIsCopy: true),
            Link(param: "follower_id", table: "satisfaction_followers", ownerColumn: "satisfaction_id", targetColumn: "employee_id",
                 target: "employee_copies", targetName: "realName", namesKey: "follower_name", idsKey: "follower_ids",
                 nameSQL: Copies.employeeName, published: true, targetIsCopy: true),
        ],
        filters: [.id("organization_id", column: "organization_id")],
        required: ["organization_id", "record_time", "value"],
        event: "satisfaction",
        ordering: "t.recordTime DESC, t.id DESC",
        window: Window(column: "recordTime", dayCounts: "satisfaction_days"),
        references: [
            Reference(column: "operator_id", target: "employee_copies", nameSQL: Copies.employeeName, nameKey: "operator_name"),
            Reference(column: "organization_id", target: "organization_copies", nameSQL: Copies.organizationName, nameKey: "organization_name"),
        ],
        catchUpMillis: 2000,
        updatesByCreator: true)
}
