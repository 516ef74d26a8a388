// Every route of docs/API.md by service. Parameter lists follow the contract's tables; the
// seed's spellings (`protent_id`, `customers_id`, `provience`, …) are kept.

private func p(_ name: String, _ type: ParamType = .string, required: Bool = false, allowed: [String] = []) -> APIParameter {
    APIParameter(name, type, required: required, allowed: allowed)
}

private let paging = [p("page", .integer), p("count", .integer)]
private let window = [p("start_time", .time), p("end_time", .time)]

/// Reading: anyone with a session (API.md §1: "read anything").
private func get(_ path: String, _ service: ServiceName, _ summary: String, _ parameters: [APIParameter] = [], answer: AnswerShape = .list) -> APIRoute {
    APIRoute("GET", path, service, .anyone, summary, parameters, answer: answer)
}

private func post(_ path: String, _ service: ServiceName, _ access: Access, _ summary: String, _ parameters: [APIParameter] = [], answer: AnswerShape = .mutation) -> APIRoute {
    APIRoute("POST", path, service, access, summary, parameters, answer: answer)
}

extension Catalog {
    static let users: [APIRoute] = [
        get("/api/user/group", .users, "Employee groups", [p("status", allowed: ["all", "1", "-1"])]),
        post("/api/user/group", .users, .adminOnly, "Create or rename a group", [p("group_id", .integer), p("name", required: true), p("content")]),
        post("/api/user/delgroup", .users, .adminOnly, "Delete (or restore) a group", [p("group_id", .integer, required: true), p("status", .integer, allowed: ["-1", "1"])]),
        get("/api/user/user", .users, "Employees", paging + [
            p("status", allowed: ["all", "normal", "1", "0", "-1"]), p("type", allowed: ["all", "1", "2"]), p("group_ids", .idArray),
        ]),
        post("/api/user/user", .users, .anyone, "Create or update an employee", [
            p("user_id", .integer), p("phoneNumber"), p("group_id", .idArray), p("number"), p("nickName"), p("realName"), p("headImageUrl"),
            p("sex", .integer, allowed: ["1", "2", "3"]), p("openId"), p("birthday", .time), p("title"), p("address"), p("school"),
            p("politicalAffiliation"), p("education"), p("rankId", .integer), p("rankType", .integer), p("departmentId", .integer),
            p("jobId", .integer), p("info"), p("note"), p("entryTime", .time), p("officialTime", .time), p("resignTime", .time),
            p("role_id", .integer, allowed: ["1", "2", "3"]), p("password"),
        ]),
        post("/api/user/deluser", .users, .adminOnly, "Delete, disable or enable an employee", [p("user_id", .integer, required: true), p("status", .integer, allowed: ["-1", "0", "1"])]),
        post("/api/user/login", .users, .public, "Log in", [p("phoneNumber", required: true), p("password", required: true)], answer: .object),
        post("/api/user/logout", .users, .public, "Log out", [p("phoneNumber"), p("password")], answer: .none),
        post("/api/user/password", .users, .public, "Change password", [p("phoneNumber", required: true), p("old_password", required: true), p("new_password", required: true)], answer: .object),
        get("/api/user/menu", .users, "Menu items", paging),
        post("/api/user/menu", .users, .adminOnly, "Create, update or delete a menu item", [p("menu_id", .integer), p("name"), p("content"), p("note")]),
        get("/api/user/usermenu", .users, "Employees' menus", [p("user_id", .integer)] + paging),
        post("/api/user/usermenu", .users, .adminOnly, "Set an employee's menu", [p("user_id", .integer, required: true), p("menu", .idArray, required: true)]),
    ]

    static let customers: [APIRoute] = [
        get("/api/customers/organization", .customers, "Customer organizations", [
            p("organization_name"), p("status", allowed: ["all", "-1", "0", "1", "2", "3"]), p("creator_id", .integer),
        ] + paging),
        post("/api/customers/organization", .customers, .staff, "Create or update an organization", [
            p("organization_id", .integer), p("groupName"), p("groupDetail"), p("type"), p("provience"), p("city"), p("county"), p("address"),
            p("note"), p("legal_person"), p("register_capital"), p("registerDate", .date), p("website"), p("creator_id", .integer),
        ]),
        post("/api/customers/delorganization", .customers, .staff, "Set an organization's status", [
            p("organization_id", .integer, required: true), p("status", .integer, required: true, allowed: ["-1", "0", "1", "2", "3"]),
        ]),
        get("/api/customers/customers", .customers, "Customers", [
            p("organization_name"), p("organization_id", .integer), p("name"), p("status", allowed: ["all", "-1", "1"]), p("phoneNumber"), p("creator_id", .integer),
        ] + paging),
        post("/api/customers/customers", .customers, .staff, "Create or update a customer", [
            p("customer_id", .integer), p("realName"), p("organization_id", .idArray), p("type"), p("nickName"), p("avatar"), p("phoneNumber"), p("job"),
            p("sex", .integer, allowed: ["1", "2", "3"]), p("cid"), p("openId"), p("level"), p("isVip", .integer, allowed: ["0", "1"]),
            p("isSenior", .integer, allowed: ["0", "1"]), p("vipDueTime", .time), p("navigationDueTime", .time), p("note"), p("legal_person"),
            p("register_capital"), p("registerDate", .date), p("website"), p("creator_id", .integer),
        ]),
        post("/api/customers/delcustomer", .customers, .staff, "Delete (or restore) a customer", [p("customer_id", .integer, required: true), p("status", .integer, allowed: ["-1", "1"])]),
    ]

    static let records: [APIRoute] = [
        get("/api/record/potential", .records, "Potential-customer records", [
            p("potent_id", .integer), p("organization_id", .integer), p("director_id", .integer), p("status", allowed: ["all", "-1", "0", "1", "2", "3"]),
        ] + window + paging),
        post("/api/record/potential", .records, .staff, "Create or update a potential record", [
            p("protent_id", .integer), p("potent_id", .integer), p("organization_id", .integer), p("director_id", .integer), p("record_time", .time), p("note"),
        ]),
        post("/api/record/delpotent", .records, .staff, "Set a potential record's status", [
            p("potent_id", .integer), p("protent_id", .integer), p("status", .integer, required: true, allowed: ["-1", "0", "1", "2", "3"]),
        ]),
        get("/api/record/follow", .records, "Follow-up records", [p("protent_id", .integer), p("organization_id", .integer)] + window + paging),
        post("/api/record/follow", .records, .anyone, "Create or update a follow-up record", [
            p("protent_id", .integer), p("follow_id", .integer), p("customers_id", .idArray), p("follower_id", .idArray), p("record_time", .time),
            p("event", .integer, allowed: ["1", "2", "3", "4", "5"]), p("gain"), p("event_attach"), p("event_note"),
        ]),
        post("/api/record/delfollow", .records, .staff, "Delete a follow-up record", [p("follow_id", .integer, required: true)]),
        get("/api/record/demand", .records, "Demand changes", [p("organization_id", .integer)] + window + paging),
        post("/api/record/demand", .records, .anyone, "Create or update a demand change", [
            p("demand_id", .integer), p("customer_id", .idArray), p("organization_id", .integer), p("follower_id", .idArray), p("record_time", .time),
            p("content"), p("demand_attach"), p("demand_note"),
        ]),
        post("/api/record/deldemand", .records, .staff, "Delete a demand change", [p("demand_id", .integer, required: true)]),
    ]

    static let contracts: [APIRoute] = [
        get("/api/feedback/satisfy", .contracts, "Satisfaction feedback", [
            p("organization_id", .integer), p("customers_id", .idArray), p("status", allowed: ["all", "0", "-1"]),
        ] + window + paging),
        post("/api/feedback/satisfy", .contracts, .anyone, "Record or update feedback", [
            p("satisfy_id", .integer), p("organization_id", .integer), p("customers_id", .idArray), p("record_time", .time), p("follower_id", .idArray),
            p("attach"), p("value", .integer), p("note"),
        ]),
        post("/api/feedback/delsatisfy", .contracts, .staff, "Delete (or restore) feedback", [
            p("satisfy_id", .integer, required: true), p("status", .integer, allowed: ["-1", "0"]),
        ]),
        get("/api/contract/contract", .contracts, "Contracts", [p("organization_id", .integer), p("status", allowed: ["all", "0", "-1"])] + window + paging),
        post("/api/contract/contract", .contracts, .staff, "Create or update a contract", [
            p("contract_id", .integer), p("organization_id", .integer), p("name"), p("sign_time", .time), p("code"), p("amount", .number),
            p("remit_amount", .number), p("remit_time", .time), p("aging_start_time", .time), p("aging_end_time", .time), p("creator_id", .integer),
            p("follower_id", .idArray), p("editor_id", .integer), p("note"),
        ]),
        post("/api/contract/delcontract", .contracts, .staff, "Delete (or restore) a contract", [
            p("contract_id", .integer, required: true), p("status", .integer, allowed: ["-1", "0"]),
        ]),
    ]

    static let stats: [APIRoute] = [
        get("/api/stats/sign", .stats, "Signing statistics", [p("organization_ids", .idArray)] + window + paging),
        get("/api/stats/demand", .stats, "Demand statistics", [p("organization_ids", .idArray)] + window + paging, answer: .nestedList),
        get("/api/stats/follow", .stats, "Follow-up statistics", [p("organization_ids", .idArray)] + window + paging, answer: .nestedList),
    ]

    /// Between processes only: the gateway's session check and every service's event feed.
    static let internalRoutes: [APIRoute] = [
        APIRoute("POST", "/internal/session", .users, .public, "Session check for the gateway", [p("token", required: true)], answer: .object),
    ] + ServiceName.allCases.map { service in
        APIRoute("GET", "/internal/events", service, .public, "Outbox events after a sequence number (long poll)",
                 [p("after", .integer), p("limit", .integer), p("wait_ms", .integer), p("types")], answer: .object)
    }

    /// Answered by the gateway itself.
    static let gateway: [APIRoute] = [
        APIRoute("GET", "/livez", nil, .public, "Liveness", answer: .object),
        APIRoute("GET", "/healthz", nil, .public, "Health of every service", answer: .object),
        APIRoute("GET", "/metrics", nil, .public, "Prometheus metrics", answer: .none),
        APIRoute("GET", "/openapi.json", nil, .public, "This document", answer: .none),
    ]
}
