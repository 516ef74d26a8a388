import WireProtocol

/// The copies of other services' entities that several services keep (projections of
/// UserService's employees and CustomerService's organizations and customers), declared once:
/// RecordService and ContractService answer names from them and check references against
/// them, never asking the producer (docs/EVENTS.md).
public enum Copies {
    /// `employee_copies(id, realName, nickName, roleId, status)` from `employee` events.
    public static let employees = Projection(
        name: "employees", version: 1, source: ServiceName.users.rawValue, eventTypes: ["employee"],
        schema: "CREATE TABLE employee_copies(id INTEGER PRIMARY KEY, realName TEXT, nickName TEXT, roleId INTEGER, status INTEGER NOT NULL);",
        apply: CopyUpsert(table: "employee_copies", fields: ["realName", "nickName", "roleId"]).apply)

    /// `organization_copies(id, groupName, status)` from `organization` events.
    public static let organizations = Projection(
        name: "organizations", version: 1, source: ServiceName.customers.rawValue, eventTypes: ["organization"],
        schema: "CREATE TABLE organization_copies(id INTEGER PRIMARY KEY, groupName TEXT, status INTEGER NOT NULL);",
        apply: CopyUpsert(table: "organization_copies", fields: ["groupName"]).apply)

    /// `customer_copies(id, realName, nickName, status)` from `customer` events.
    public static let customers = Projection(
        name: "customers", version: 1, source: ServiceName.customers.rawValue, eventTypes: ["customer"],
        schema: "CREATE TABLE customer_copies(id INTEGER PRIMARY KEY, realName TEXT, nickName TEXT, status INTEGER NOT NULL);",
        apply: CopyUpsert(table: "customer_copies", fields: ["realName", "nickName"]).apply)

    /// An employee's name as records show it: `realName`, else `nickName` (over alias `x`).
    public static let employeeName = "COALESCE(NULLIF(x.realName, ''), x.nickName)"
    /// A customer's name: `realName`, else `nickName`.
    public static let customerName = "COALESCE(NULLIF(x.realName, ''), x.nickName)"
    /// An organization's name.
    public static let organizationName = "x.groupName"
}

extension Resource {
    /// Writes with `mutation` (a transaction that checks the ids the request names with
    /// `checkReferences`): when one of them is not in the local copies yet and the catch-up time
    /// (`catchUpMillis`) is not over, waits for it and writes again. An entity created a moment
    /// ago in another service reaches the copy within milliseconds, since projections follow
    /// their producers live and each applied batch signals the database's commit (a batch
    /// another replica applied is seen within `EventFeed.recheckMillis`). Optimistic: the
    /// common write, whose ids are all known, costs no read before its transaction, and `done`
    /// gets its answer on the writer's queue (from a task when the write had to wait).
    func writeAwaitingReferences(_ ctx: RequestContext, _ write: Write, then done: @escaping @Sendable (Result<WireResponse, Error>) -> Void,
                                 _ mutation: @escaping @Sendable (_ mayWait: Bool) -> @Sendable (SQLiteConnection) throws -> WireResponse) {
        let deadline = monotonicMillis() + catchUpMillis
        ctx.mutate(mutation(catchUpMillis > 0)) { [self] result in
            guard case .failure(let error) = result, error is ReferencesNotCopiedYet else { return done(result) }
            Task {
                do {
                    while true {
                        try await awaitReferences(ctx, write, deadline: deadline)
                        do {
                            return done(.success(try await ctx.mutate(mutation(monotonicMillis() < deadline))))
                        } catch is ReferencesNotCopiedYet {
                            continue
                        }
                    }
                } catch {
                    done(.failure(error))
                }
            }
        }
    }

    /// Inside the write transaction: every referenced and linked id must name a row that is not
    /// deleted — 400 naming the first that does not, or, while `mayWait`,
    /// `ReferencesNotCopiedYet` (nothing is written; `writeAwaitingReferences` waits and writes
    /// again).
    func checkReferences(_ db: SQLiteConnection, _ write: Write, mayWait: Bool) throws {
        guard let first = try missingReferences(db, write).first else { return }
        if mayWait { throw ReferencesNotCopiedYet() }
        throw APIError.badRequest("\(first.param) \(first.id) does not exist")
    }

    /// Waits until the ids the request names are all in the copies, or `deadline` passes.
    private func awaitReferences(_ ctx: RequestContext, _ write: Write, deadline: Int64) async throws {
        let signal = ctx.database.commitSignal
        while true {
            let generation = signal.generation
            let missing = try await ctx.database.read { [self] db in try missingReferences(db, write) }
            let left = deadline - monotonicMillis()
            if missing.isEmpty || left <= 0 { return }
            // Another replica of this service may apply the copy: its commit signals only its
            // own process, so look again at least every `recheckMillis`.
            await signal.wait(after: generation, timeoutMillis: min(left, EventFeed.recheckMillis))
        }
    }
}

/// A write named an id its service's copies do not know yet, within the catch-up time: rolled
/// back, to be written again once the copy arrives (never answered).
struct ReferencesNotCopiedYet: Error {}
