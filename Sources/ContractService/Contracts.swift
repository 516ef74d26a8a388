import ServiceKit
import WireProtocol

/// Contracts: `GET/POST /api/contract/contract`, `POST /api/contract/delcontract`.
enum Contracts {
    static let routes = resource.routes(list: "/api/contract/contract", save: "/api/contract/contract", setStatus: "/api/contract/delcontract",
                                        statusMessages: [-1: "删除成功"])

    /// `amount` and `remit_amount` are money (integer cents, answered "112.00"); `creator_id`
    /// defaults to the caller on create and `editor_id` to the caller on update (others only by
    /// an administrator), and only administrators and the creator change a row; `follower_id`
    /// lists employees (`follower` their names). Lists cover one year (365 days) of `sign_time`
    /// by default, newest first.
    static let resource = Resource(
        name: "contract", table: "contracts", idParam: "contract_id",
        columns: [
            .fixed("id", published: true), .field(Field("organization_id", .int(oneOf: nil)), published: true), .field(.text("name")),
            .field(.text("code")), .field(Field("amount", .money), published: true), .field(Field("sign_time", .time), published: true),
            .fixed("status", published: true), .field(Field("aging_start_time", .time)), .field(Field("aging_end_time", .time)),
            .field(Field("remit_amount", .money), published: true), .field(Field("remit_time", .time)), .fixed("creator_id", published: true),
            .fixed("editor_id"), .fixed("createTime"), .fixed("updateTime", published: true), .field(.longText("note")),
        ],
        status: StatusRule(values: [0, -1], defaultFilter: [0], initial: 0, changeDefault: -1),
        creator: "creator_id",
        links: [
            Link(param: "follower_id", table: "contract_followers", ownerColumn: "contract_id", targetColumn: "employee_id",
                 target: "employee_copies", targetName: "realName", namesKey: "follower", idsKey: "follower_ids",
                 nameSQL: Copies.employeeName, targetIsCopy: true),
        ],
        filters: [.id("organization_id", column: "organization_id")],
        required: ["organization_id", "name", "sign_time"],
        event: "contract",
        ordering: "t.sign_time DESC, t.id DESC",
        window: Window(column: "sign_time", spanSeconds: 365 * 86_400, dayCounts: "contract_days"),
        references: [
            Reference(column: "organization_id", target: "organization_copies", nameSQL: Copies.organizationName, nameKey: "organization_name"),
        ],
        catchUpMillis: 2000,
        editor: "editor_id",
        updatesByCreator: true)
}
