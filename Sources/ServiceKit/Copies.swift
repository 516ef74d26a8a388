import WireProtocol

/// The copies of other services' entities that several services keep (projections of
/// UserService's employees and CustomerService's organizations and customers), declared once:
/// RecordService and ContractService answer names from them and check references against
/// them, never asking the producer (docs/EVENTS.md).
public enum Copies {
    /// `employee_copies(id, realName, nickName, roleId, status)` from `employee` events.
    public static let employees = Projection(
        name: "employees", version: 1, source: ServiceName.users.rawValue, eventTypes: ["employee"],
        schema: "CREATE TABLE employee_copies(id INTEGER PRIMARY KEY, realName TEXT, nickName TEXT, roleId INTEGER, status INTEGER NOT NULL);"
    ) { db, event in
        try upsert(db, "employee_copies", event, ["realName", "nickName", "roleId"])
    }

    /// `organization_copies(id, groupName, status)` from `organization` events.
    public static let organizations = Projection(
        name: "organizations", version: 1, source: ServiceName.customers.rawValue, eventTypes: ["organization"],
        schema: "CREATE TABLE organization_copies(id INTEGER PRIMARY KEY, groupName TEXT, status INTEGER NOT NULL);"
    ) { db, event in
        try upsert(db, "organization_copies", event, ["groupName"])
    }

    /// `customer_copies(id, realName, nickName, status)` from `customer` events.
    public static let customers = Projection(
        name: "customers", version: 1, source: ServiceName.customers.rawValue, eventTypes: ["customer"],
        schema: "CREATE TABLE customer_copies(id INTEGER PRIMARY KEY, realName TEXT, nickName TEXT, status INTEGER NOT NULL);"
    ) { db, event in
        try upsert(db, "customer_copies", event, ["realName", "nickName"])
    }

    /// An employee's name as records show it: `realName`, else `nickName` (over alias `x`).
    public static let employeeName = "COALESCE(NULLIF(x.realName, ''), x.nickName)"
    /// A customer's name: `realName`, else `nickName`.
    public static let customerName = "COALESCE(NULLIF(x.realName, ''), x.nickName)"
    /// An organization's name.
    public static let organizationName = "x.groupName"

    /// Writes the entity's copied fields and status (an event holds the full new state, so the
    /// latest event alone gives the current copy: applying one twice changes nothing).
    static func upsert(_ db: SQLiteConnection, _ table: String, _ event: Event, _ fields: [String]) throws {
        let columns = ["id"] + fields + ["status"]
        let values: [SQLValue] = [.int(event.entityID)] + fields.map { field in
            switch event.state[field] {
            case .int(let v)?: return .int(v)
            case .string(let v)?: return .text(v)
            default: return .null
            }
        } + [.int(event.state["status"]?.intValue ?? 1)]
        let updates = (fields + ["status"]).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        try db.run("INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES (\(SQLFilter.marks(columns.count))) ON CONFLICT(id) DO UPDATE SET \(updates)",
                   values)
    }
}

extension Resource {
    /// Waits (up to `catchUpMillis`) for ids the request names that the local copies do not
    /// know yet: an entity created a moment ago in another service reaches the copy within
    /// milliseconds, since projections follow their producers live and each applied batch
    /// signals the database's commit (a batch another replica applied is seen within
    /// `EventFeed.recheckMillis`). Returns when all are known or the time is up; the write
    /// transaction then decides (400 naming the first still missing).
    public func awaitReferences(_ ctx: RequestContext, _ write: Write) async throws {
        guard catchUpMillis > 0, !references.isEmpty || !links.isEmpty else { return }
        let deadline = monotonicMillis() + catchUpMillis
        let signal = ctx.database.commitSignal
        while true {
            let generation = signal.generation
            let missing = try await ctx.database.read { db in try missingReferences(db, write) }
            let left = deadline - monotonicMillis()
            if missing.isEmpty || left <= 0 { return }
            // Another replica of this service may apply the copy: its commit signals only its
            // own process, so look again at least every `recheckMillis`.
            await signal.wait(after: generation, timeoutMillis: min(left, EventFeed.recheckMillis))
        }
    }
}
