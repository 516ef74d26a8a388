import ServiceKit
import WireProtocol

/// Customers (contacts): `GET/POST /api/customers/customers`, `POST /api/customers/delcustomer`.
enum Customers {
    static let routes = resource.routes(list: "/api/customers/customers", save: "/api/customers/customers", setStatus: "/api/customers/delcustomer")

    /// `name` searches realName and nickName; `organization_name` searches the customer's
    /// organizations; `organization_id`, `phoneNumber` (exact) and `creator_id` filter.
    /// A status change without `status` deletes; `status=1` restores.
    static let resource = Resource(
        name: "customer", table: "customers", idParam: "customer_id",
        columns: [
            .fixed("id", published: true), .field(Field("type", .scalar)), .field(.text("nickName"), published: true),
            .field(.text("realName"), published: true), .field(.text("avatar")), .field(.text("phoneNumber")), .field(Field("job", .scalar)),
            .field(Field("sex", .int(oneOf: [1, 2, 3]), cleared: 3)), .field(.text("cid")), .field(.text("openId")),
            .field(Field("level", .scalar, cleared: 0)), .field(Field("isVip", .int(oneOf: [0, 1]), cleared: 0)),
            .field(Field("isSenior", .int(oneOf: [0, 1]), cleared: 0)), .field(Field("vipDueTime", .time)), .field(Field("navigationDueTime", .time)),
            .fixed("createTime"), .fixed("updateTime", published: true), .fixed("status", published: true), .field(.longText("note")),
            .field(.text("legal_person")), .field(.text("register_capital")), .field(Field("registerDate", .date)), .field(.text("website")),
            .fixed("creator_id", published: true),
        ],
        status: StatusRule(values: [-1, 1]),
        creator: "creator_id",
        search: Search(param: "name", grams: "customer_grams", texts: ["realName", "nickName"]),
        counters: "customer_counts",
        links: [
            Link(param: "organization_id", filter: .one("organization_id"), table: "customer_organizations", ownerColumn: "customer_id",
                 targetColumn: "organization_id", target: "organizations", targetName: "groupName",
                 namesKey: "organization_name", idsKey: "organization_ids", counterPrefix: "so"),
        ],
        filters: [.text("phoneNumber", column: "phoneNumber"), .custom(organizationName)],
        required: ["realName"],
        event: "customer")

    /// `organization_name`: customers linked to an organization whose name contains it.
    static func organizationName(_ params: Params, _ db: SQLiteConnection) throws -> (sql: String, binds: [SQLValue])? {
        guard let name = try params.string("organization_name"), !name.isEmpty else { return nil }
        let match = try Organizations.resource.searchIndex(db).condition(db, idColumn: "o.id", folded: NgramIndex.fold(name))
        return ("""
            t.id IN (SELECT co.customer_id FROM customer_organizations co WHERE co.organization_id IN
                (SELECT o.id FROM organizations o WHERE \(match.sql)))
            """, match.binds)
    }

    /// The table and its indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE customers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type,
        nickName TEXT,
        realName TEXT NOT NULL,
        avatar TEXT,
        phoneNumber TEXT,
        job,
        sex INTEGER NOT NULL DEFAULT 3,
        cid TEXT,
        openId TEXT,
        level NOT NULL DEFAULT 0,
        isVip INTEGER NOT NULL DEFAULT 0,
        isSenior INTEGER NOT NULL DEFAULT 0,
        vipDueTime TEXT,
        navigationDueTime TEXT,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 1,
        note TEXT,
        legal_person TEXT,
        register_capital TEXT,
        registerDate TEXT,
        website TEXT,
        creator_id INTEGER,
        name_fold TEXT NOT NULL
    );
    CREATE INDEX customers_status ON customers(status, id);
    CREATE INDEX customers_creator ON customers(creator_id, status, id);
    CREATE INDEX customers_phone ON customers(phoneNumber, status, id);
    """
}
