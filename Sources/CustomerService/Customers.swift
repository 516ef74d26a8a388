import ServiceKit
import WireProtocol

/// Customers (contacts): `GET/POST /api/customers/customers`, `POST /api/customers/delcustomer`.
enum Customers {
    static let routes: [Route] = [
        .get("/api/customers/customers", list),
        .post("/api/customers/customers", save),
        .post("/api/customers/delcustomer", setStatus),
    ]

    static let columns = ["id", "type", "nickName", "realName", "avatar", "phoneNumber", "job", "sex", "cid", "openId", "level", "isVip",
                          "isSenior", "vipDueTime", "navigationDueTime", "createTime", "updateTime", "status", "note", "legal_person",
                          "register_capital", "registerDate", "website", "creator_id"]
    static let selectList = columns.map { "c.\"\($0)\"" }.joined(separator: ", ")
    static let statuses: [Int64] = [-1, 1]

    static let fields: [Field] = [
        Field("type", .scalar), .text("nickName"), .text("avatar"), .text("phoneNumber"), Field("job", .scalar),
        Field("sex", .int(oneOf: [1, 2, 3]), cleared: 3), .text("cid"), .text("openId"), Field("level", .scalar, cleared: 0),
        Field("isVip", .int(oneOf: [0, 1]), cleared: 0), Field("isSenior", .int(oneOf: [0, 1]), cleared: 0), Field("vipDueTime", .time),
        Field("navigationDueTime", .time), .longText("note"), .text("legal_person"), .text("register_capital"),
        Field("registerDate", .date), .text("website"),
    ]

    /// Separates the folded names in `name_fold`, so a match never spans two fields.
    static let nameSeparator = "\u{1F}"

    static func nameFold(realName: String?, nickName: String?) -> String {
        NgramIndex.fold(realName ?? "") + nameSeparator + NgramIndex.fold(nickName ?? "")
    }

    static func counterKeys(status: Int64, creator: Int64?, organizations: [Int64]) -> [String] {
        ["s:\(status)"] + (creator.map { ["sc:\(status):\($0)"] } ?? []) + organizations.map { "so:\(status):\($0)" }
    }

    // MARK: Reading

    /// Each customer's organizations in the order given.
    static func organizations(of ids: [Int64], _ db: SQLiteConnection) throws -> [Int64: [(id: Int64, name: JSON)]] {
        try db.links("""
            SELECT co.customer_id, co.organization_id, o.groupName FROM customer_organizations co
            JOIN organizations o ON o.id = co.organization_id
            WHERE co.customer_id IN (%@) ORDER BY co.customer_id, co.position
            """, owners: ids)
    }

    static func json(_ row: Row, organizations: [(id: Int64, name: JSON)]) -> JSON {
        var o = JSONObject()
        o.reserveCapacity(columns.count + 2)
        for (i, column) in columns.enumerated() { o.append(column, row[i].json) }
        o.append("organization_name", .array(organizations.map(\.name)))
        o.append("organization_ids", .array(organizations.map { .int($0.id) }))
        return .object(o)
    }

    /// `organization_name` (fuzzy, on the customer's organizations), `organization_id`, `name`
    /// (fuzzy on realName or nickName), `status` (`all`, -1, 1; default 1), `phoneNumber`
    /// (exact), `creator_id`; newest first.
    static func list(_ ctx: RequestContext) async throws -> WireResponse {
        let params = ctx.params
        let orgName = try params.string("organization_name")
        let orgID = try params.id("organization_id")
        let name = try params.string("name")
        let status = try params.statusFilter(allowed: statuses, default: [1])
        let phone = try params.string("phoneNumber")
        let creator = try params.id("creator_id")
        let paging = try params.paging()

        var filter = SQLFilter()
        if let creator { filter.add("c.creator_id = ?", [.int(creator)]) }
        if let phone, !phone.isEmpty { filter.add("c.phoneNumber = ?", [.text(phone)]) }
        if let orgID { filter.add("c.id IN (SELECT customer_id FROM customer_organizations WHERE organization_id = ?)", [.int(orgID)]) }
        let nameFolded = name.flatMap { $0.isEmpty ? nil : NgramIndex.fold($0) }
        let orgNameFolded = orgName.flatMap { $0.isEmpty ? nil : NgramIndex.fold($0) }
        // The total comes from the counters when only status plus one of creator/organization filter.
        // Keys are `<prefix><status><suffix>`, as `counterKeys` writes them.
        let counterKey: (prefix: String, suffix: String)?
        if (name ?? "").isEmpty && (orgName ?? "").isEmpty && (phone ?? "").isEmpty {
            switch (creator, orgID) {
            case (nil, nil): counterKey = ("s:", "")
            case (let c?, nil): counterKey = ("sc:", ":\(c)")
            case (nil, let o?): counterKey = ("so:", ":\(o)")
            default: counterKey = nil
            }
        } else {
            counterKey = nil
        }
        let baseFilter = filter
        let (rows, total) = try await ctx.database.read { db -> ([JSON], Int64) in
            var filter = baseFilter
            if let orgNameFolded {
                let match = try NgramIndex.condition(db, table: "organization_grams", idColumn: "o.id", foldColumn: "o.name_fold", folded: orgNameFolded)
                filter.add("""
                    c.id IN (SELECT co.customer_id FROM customer_organizations co WHERE co.organization_id IN
                        (SELECT o.id FROM organizations o WHERE \(match.sql)))
                    """, match.binds)
            }
            let found: [Row]
            let total: Int64
            if let nameFolded {
                let page = try NgramIndex.searchPage(db, table: "customer_grams", from: "customers c", idColumn: "c.id", foldColumn: "c.name_fold",
                                                     folded: nameFolded, statuses: status, filter: filter, paging: paging)
                total = page.total
                found = page.ids.isEmpty ? [] : try db.query("SELECT \(selectList) FROM customers c WHERE c.id IN (\(SQLFilter.marks(page.ids.count))) ORDER BY c.id DESC",
                                                              page.ids.map { .int($0) })
            } else {
                if let status { filter.in("c.status", status) }
                if let counterKey {
                    total = try (status ?? statuses).reduce(0) { $0 + (try Counters.get(db, table: "customer_counts", key: counterKey.prefix + "\($1)" + counterKey.suffix)) }
                } else {
                    total = try db.scalar("SELECT COUNT(*) FROM customers c \(filter.clause)", filter.binds)
                }
                found = try db.query("SELECT \(selectList) FROM customers c \(filter.clause) ORDER BY c.id DESC LIMIT ? OFFSET ?",
                                     filter.binds + [.int(paging.count), .int(paging.offset)])
            }
            let links = try organizations(of: found.compactMap { $0.int(0) }, db)
            return (found.map { json($0, organizations: links[$0.int(0) ?? 0] ?? []) }, total)
        }
        return Reply.ok(data: .array(rows), page: paging.info(total: total))
    }

    // MARK: Writing

    static func recordChange(_ db: SQLiteConnection, _ id: Int64) throws {
        guard let row = try db.queryOne("SELECT id, realName, nickName, status, creator_id, updateTime FROM customers WHERE id = ?", [.int(id)]) else { return }
        try Outbox.append(db, type: "customer", entityID: id, state: JSONObject([
            ("id", row[0].json), ("realName", row[1].json), ("nickName", row[2].json), ("status", row[3].json),
            ("creator_id", row[4].json), ("updateTime", row[5].json)]))
    }

    /// The nickName this request sets: nil when not sent, `.some(nil)` when cleared.
    static func sentNickName(_ values: [(column: String, value: SQLValue)]) -> String?? {
        guard let sent = values.first(where: { $0.column == "nickName" }) else { return nil }
        if case .text(let text) = sent.value { return .some(text) }
        return .some(nil)
    }

    static func checkOrganizations(_ ids: [Int64], _ db: SQLiteConnection) throws {
        for id in ids where try db.queryOne("SELECT 1 FROM organizations WHERE id = ? AND status <> -1", [.int(id)]) == nil {
            throw APIError.badRequest("organization_id \(id) does not exist")
        }
    }

    static func linkedOrganizations(_ id: Int64, _ db: SQLiteConnection) throws -> [Int64] {
        try db.query("SELECT organization_id FROM customer_organizations WHERE customer_id = ? ORDER BY position", [.int(id)]).compactMap { $0.int(0) }
    }

    static func link(_ id: Int64, _ organizations: [Int64], _ db: SQLiteConnection) throws {
        try db.run("DELETE FROM customer_organizations WHERE customer_id = ?", [.int(id)])
        for (position, org) in organizations.enumerated() {
            try db.run("INSERT INTO customer_organizations(customer_id, organization_id, position) VALUES (?,?,?)", [.int(id), .int(org), .int(Int64(position))])
        }
    }

    /// Creates a customer (`realName` required), or updates the fields sent when `customer_id`
    /// is given. `organization_id` ids must exist and not be deleted.
    static func save(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let customerID = try ctx.params.id("customer_id")
        let realName = try ctx.params.string("realName")
        let organizationIDs = try ctx.params.idArray("organization_id")
        let values = try ctx.params.values(for: fields)
        let creatorID = try Organizations.creator(ctx, caller)
        if ctx.params.isCleared("realName") || (customerID == nil && realName == nil) { throw APIError.badRequest("realName is required") }
        return try await ctx.mutate { db in
            if let organizationIDs { try checkOrganizations(organizationIDs, db) }
            let now = Timestamp.now()
            guard let customerID else {
                let creatorValue = creatorID ?? caller.id
                let nick = sentNickName(values) ?? nil
                let id = try db.insert("customers", values + [
                    ("realName", SQLValue(realName)), ("name_fold", .text(nameFold(realName: realName, nickName: nick))),
                    ("creator_id", .int(creatorValue)), ("createTime", .text(now)), ("updateTime", .text(now)), ("status", .int(1))])
                try link(id, organizationIDs ?? [], db)
                try NgramIndex.update(db, table: "customer_grams", id: id, status: 1, texts: [realName ?? "", nick ?? ""])
                try Counters.add(db, table: "customer_counts", keys: counterKeys(status: 1, creator: creatorValue, organizations: organizationIDs ?? []), delta: 1)
                try recordChange(db, id)
                return Reply.mutation(id: id)
            }
            guard let current = try db.queryOne("SELECT status, creator_id, realName, nickName FROM customers WHERE id = ?", [.int(customerID)]),
                  let status = current.int(0) else {
                throw APIError.notFound("customer_id \(customerID) does not exist")
            }
            let oldOrganizations = try linkedOrganizations(customerID, db)
            var changes = values
            if let realName { changes.append(("realName", .text(realName))) }
            if let creatorID { changes.append(("creator_id", .int(creatorID))) }
            // The names after this update decide the search form; the index changes only with them.
            let newReal = realName ?? current.string(2)
            let newNick = sentNickName(values) ?? current.string(3)
            if newReal != current.string(2) || newNick != current.string(3) {
                changes.append(("name_fold", .text(nameFold(realName: newReal, nickName: newNick))))
                try NgramIndex.update(db, table: "customer_grams", id: customerID, status: status, texts: [newReal ?? "", newNick ?? ""])
            }
            changes.append(("updateTime", .text(now)))
            try db.update("customers", id: customerID, changes)
            let newOrganizations = organizationIDs ?? oldOrganizations
            if organizationIDs != nil { try link(customerID, newOrganizations, db) }
            try Counters.move(db, table: "customer_counts",
                              from: counterKeys(status: status, creator: current.int(1), organizations: oldOrganizations),
                              to: counterKeys(status: status, creator: creatorID ?? current.int(1), organizations: newOrganizations))
            try recordChange(db, customerID)
            return Reply.mutation(id: customerID)
        }
    }

    /// Deletes a customer (status -1); `status=1` restores. Employees may change only
    /// customers they created.
    static func setStatus(_ ctx: RequestContext) async throws -> WireResponse {
        let caller = try ctx.requireCaller()
        let customerID = try ctx.params.requireID("customer_id")
        let status = try ctx.params.int("status", oneOf: statuses) ?? -1
        return try await ctx.mutate { db in
            guard let current = try db.queryOne("SELECT status, creator_id FROM customers WHERE id = ?", [.int(customerID)]),
                  let old = current.int(0) else {
                throw APIError.notFound("customer_id \(customerID) does not exist")
            }
            try caller.requireMayChangeRow(createdBy: current.int(1))
            let organizations = try linkedOrganizations(customerID, db)
            try db.run("UPDATE customers SET status = ?, updateTime = ? WHERE id = ?", [.int(status), .text(Timestamp.now()), .int(customerID)])
            try NgramIndex.setStatus(db, table: "customer_grams", id: customerID, status: status)
            try Counters.move(db, table: "customer_counts",
                              from: counterKeys(status: old, creator: current.int(1), organizations: organizations),
                              to: counterKeys(status: status, creator: current.int(1), organizations: organizations))
            try recordChange(db, customerID)
            return Reply.mutation(id: customerID)
        }
    }
}
