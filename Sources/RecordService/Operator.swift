import ServiceKit
import WireProtocol

/// The rules records share: the operator is the caller (set on create, never from a
/// parameter), administrators change any record, everyone else only records they created
/// (the route's access already keeps couriers off potential records and off every `del*`).
enum Operator {
    static let column = "operator_id"

    /// The operator's name from the employee copies, after `operator_id`.
    static let name = Reference(column: column, target: "employee_copies", nameSQL: Copies.employeeName, nameKey: "operator_name")

    /// Hooks for one request by `caller`; `derive` adds the record's own derived columns.
    static func hooks(_ caller: Caller,
                      derive: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> [(column: String, value: SQLValue)] = { _, _, _ in [] },
                      beforeWrite: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> Void = { _, _, _ in }) -> ResourceHooks {
        ResourceHooks(
            beforeWrite: { db, current, write in
                if let current, !caller.isAdmin, current.int(column) != caller.id {
                    throw APIError.forbidden("you may change only records you created")
                }
                try beforeWrite(db, current, write)
            },
            beforeStatus: { _, current, _ in try caller.requireMayChangeRow(createdBy: current.int(column)) },
            derive: { db, current, write in
                try (current == nil ? [(column, .int(caller.id))] : []) + derive(db, current, write)
            })
    }

    /// List, save and status change of a record resource, with the operator rules.
    static func routes(_ resource: Resource, list: String, save: String, setStatus: String,
                       derive: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> [(column: String, value: SQLValue)] = { _, _, _ in [] },
                       beforeWrite: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> Void = { _, _, _ in }) -> [Route] {
        [
            .read(list) { try resource.list($0, $1) },
            .direct("POST", save) { ctx, done in
                do { resource.save(ctx, hooks: hooks(try ctx.requireCaller(), derive: derive, beforeWrite: beforeWrite), then: done) } catch { done(.failure(error)) }
            },
            .direct("POST", setStatus) { ctx, done in
                do { resource.setStatus(ctx, hooks: hooks(try ctx.requireCaller()), then: done) } catch { done(.failure(error)) }
            },
        ]
    }

    /// The organization's name from the organization copies, after `organization_id`.
    static let organizationName = Reference(column: "organization_id", target: "organization_copies", nameSQL: Copies.organizationName,
                                            nameKey: "organization_name")

    /// The ordered employees (`follower_id`, at least one) of a record in `table`.
    static func followers(_ table: String, owner: String) -> Link {
        Link(param: "follower_id", table: table, ownerColumn: owner, targetColumn: "employee_id", target: "employee_copies", targetName: "realName",
             namesKey: "follower_name", idsKey: "follower_ids", nonEmpty: true, nameSQL: Copies.employeeName)
    }

    /// The ordered customers (`param`: `customers_id` or `customer_id`) of a record in `table`.
    static func customers(_ param: String, _ table: String, owner: String) -> Link {
        Link(param: param, table: table, ownerColumn: owner, targetColumn: "customer_id", target: "customer_copies", targetName: "realName",
             namesKey: "customer_name", idsKey: "customer_ids", nameSQL: Copies.customerName)
    }

    /// How long a write waits for an id another service created a moment ago to reach the copies.
    static let catchUpMillis: Int64 = 2000

    /// The time window of record lists: the last week over `recordTime`, with hourly counts in
    /// `counts` for the totals of lists filtered by status and window alone.
    static func window(counts: String) -> Window { Window(column: "recordTime", dayCounts: counts) }
    static let ordering = "t.recordTime DESC, t.id DESC"
}
