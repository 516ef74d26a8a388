import ServiceKit
import WireProtocol

/// Customer organizations: `GET/POST /api/customers/organization`, `POST /api/customers/delorganization`.
enum Organizations {
    static let routes = resource.routes(list: "/api/customers/organization", save: "/api/customers/organization", setStatus: "/api/customers/delorganization")

    /// `organization_name` searches `groupName`; `status` -1 deletes, 0…3 are follow-up states
    /// (list default 1; a status change must name one); employees change only their own rows.
    static let resource = Resource(
        name: "organization", table: "organizations", idParam: "organization_id",
        columns: [
            .fixed("id", published: true), .field(.text("groupName"), published: true), .field(.text("groupDetail")), .field(Field("type", .scalar)),
            .field(.text("provience")), .field(.text("city")), .field(.text("county")), .field(.text("address")), .field(.text("legal_person")),
            .field(.text("register_capital")), .field(Field("registerDate", .date)), .field(.text("website")), .fixed("creator_id", published: true),
            .fixed("createTime"), .fixed("updateTime", published: true), .fixed("status", published: true), .field(.longText("note")),
        ],
        status: StatusRule(values: [-1, 0, 1, 2, 3], changeDefault: nil),
        creator: "creator_id",
        search: Search(param: "organization_name", grams: "organization_grams", texts: ["groupName"]),
        counters: "organization_counts",
        required: ["groupName"],
        event: "organization")

    /// The table and its indexes (shipped in migration 001: never edit, add a migration).
    static let table = """
    CREATE TABLE organizations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        groupName TEXT NOT NULL,
        groupDetail TEXT,
        type,
        provience TEXT,
        city TEXT,
        county TEXT,
        address TEXT,
        legal_person TEXT,
        register_capital TEXT,
        registerDate TEXT,
        website TEXT,
        creator_id INTEGER,
        createTime TEXT NOT NULL,
        updateTime TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 1,
        note TEXT,
        name_fold TEXT NOT NULL
    );
    CREATE INDEX organizations_status ON organizations(status, id);
    CREATE INDEX organizations_creator ON organizations(creator_id, status, id);
    """
}
