import WireProtocol

/// `GET /openapi.json`: the endpoints of API.md as an OpenAPI 3 document — paths, methods and
/// every parameter (query parameters for GET, a JSON or form body for POST). Decisions and
/// answer shapes are described in docs/API.md.
enum OpenAPI {
    /// A parameter: name, JSON type (`integer`, `string`, `array`, `number`) and whether required.
    typealias Parameter = (name: String, type: String, required: Bool)

    struct Operation {
        var method: String
        var summary: String
        var parameters: [Parameter]
    }

    static func p(_ name: String, _ type: String = "string", required: Bool = false) -> Parameter { (name, type, required) }

    static let paging = [p("page", "integer"), p("count", "integer")]
    static let window = [p("start_time"), p("end_time")]

    static let endpoints: [(path: String, operations: [Operation])] = [
        ("/api/user/group", [
            Operation(method: "get", summary: "Employee groups", parameters: [p("status")]),
            Operation(method: "post", summary: "Create or rename a group", parameters: [p("group_id", "integer"), p("name", required: true), p("content")]),
        ]),
        ("/api/user/delgroup", [Operation(method: "post", summary: "Delete (or restore) a group", parameters: [p("group_id", "integer", required: true), p("status", "integer")])]),
        ("/api/user/user", [
            Operation(method: "get", summary: "Employees", parameters: paging + [p("status"), p("type"), p("group_ids", "array")]),
            Operation(method: "post", summary: "Create or update an employee", parameters: [
                p("user_id", "integer"), p("phoneNumber"), p("group_id", "array"), p("number"), p("nickName"), p("realName"), p("headImageUrl"),
                p("sex", "integer"), p("openId"), p("birthday"), p("title"), p("address"), p("school"), p("politicalAffiliation"), p("education"),
                p("info"), p("note"), p("entryTime"), p("officialTime"), p("resignTime"), p("role_id", "integer"), p("password"),
            ]),
        ]),
        ("/api/user/deluser", [Operation(method: "post", summary: "Delete, disable or enable an employee", parameters: [p("user_id", "integer", required: true), p("status", "integer")])]),
        ("/api/user/login", [Operation(method: "post", summary: "Log in", parameters: [p("phoneNumber", required: true), p("password", required: true)])]),
        ("/api/user/logout", [Operation(method: "post", summary: "Log out", parameters: [p("phoneNumber"), p("password")])]),
        ("/api/user/password", [Operation(method: "post", summary: "Change password", parameters: [p("phoneNumber", required: true), p("old_password", required: true), p("new_password", required: true)])]),
        ("/api/user/menu", [
            Operation(method: "get", summary: "Menu items", parameters: paging),
            Operation(method: "post", summary: "Create, update or delete a menu item", parameters: [p("menu_id", "integer"), p("name"), p("content"), p("note")]),
        ]),
        ("/api/user/usermenu", [
            Operation(method: "get", summary: "Employees' menus", parameters: [p("user_id", "integer")] + paging),
            Operation(method: "post", summary: "Set an employee's menu", parameters: [p("user_id", "integer", required: true), p("menu", "array", required: true)]),
        ]),
        ("/api/customers/organization", [
            Operation(method: "get", summary: "Customer organizations", parameters: [p("organization_name"), p("status"), p("creator_id", "integer")] + paging),
            Operation(method: "post", summary: "Create or update an organization", parameters: [
                p("organization_id", "integer"), p("groupName"), p("groupDetail"), p("type"), p("provience"), p("city"), p("county"), p("address"),
                p("note"), p("legal_person"), p("register_capital"), p("registerDate"), p("website"), p("creator_id", "integer"),
            ]),
        ]),
        ("/api/customers/delorganization", [Operation(method: "post", summary: "Set an organization's status", parameters: [p("organization_id", "integer", required: true), p("status", "integer", required: true)])]),
        ("/api/customers/customers", [
            Operation(method: "get", summary: "Customers", parameters: [p("organization_name"), p("organization_id", "integer"), p("name"), p("status"), p("phoneNumber"), p("creator_id", "integer")] + paging),
            Operation(method: "post", summary: "Create or update a customer", parameters: [
                p("customer_id", "integer"), p("realName"), p("organization_id", "array"), p("type"), p("nickName"), p("avatar"), p("phoneNumber"), p("job"),
                p("sex", "integer"), p("cid"), p("openId"), p("level"), p("isVip", "integer"), p("isSenior", "integer"), p("vipDueTime"), p("navigationDueTime"),
                p("note"), p("legal_person"), p("register_capital"), p("registerDate"), p("website"), p("creator_id", "integer"),
            ]),
        ]),
        ("/api/customers/delcustomer", [Operation(method: "post", summary: "Delete (or restore) a customer", parameters: [p("customer_id", "integer", required: true), p("status", "integer")])]),
        ("/api/record/potential", [
            Operation(method: "get", summary: "Potential-customer records", parameters: [p("potent_id", "integer"), p("organization_id", "integer"), p("director_id", "integer"), p("status")] + window + paging),
            Operation(method: "post", summary: "Create or update a potential record", parameters: [p("protent_id", "integer"), p("potent_id", "integer"), p("organization_id", "integer"), p("director_id", "integer"), p("record_time"), p("note")]),
        ]),
        ("/api/record/delpotent", [Operation(method: "post", summary: "Set a potential record's status", parameters: [p("potent_id", "integer"), p("protent_id", "integer"), p("status", "integer", required: true)])]),
        ("/api/record/follow", [
            Operation(method: "get", summary: "Follow-up records", parameters: [p("protent_id", "integer"), p("organization_id", "integer")] + window + paging),
            Operation(method: "post", summary: "Create or update a follow-up record", parameters: [
                p("protent_id", "integer"), p("follow_id", "integer"), p("customers_id", "array"), p("follower_id", "array"), p("record_time"),
                p("event", "integer"), p("gain"), p("event_attach"), p("event_note"),
            ]),
        ]),
        ("/api/record/delfollow", [Operation(method: "post", summary: "Delete a follow-up record", parameters: [p("follow_id", "integer", required: true)])]),
        ("/api/record/demand", [
            Operation(method: "get", summary: "Demand changes", parameters: [p("organization_id", "integer")] + window + paging),
            Operation(method: "post", summary: "Create or update a demand change", parameters: [
                p("demand_id", "integer"), p("customer_id", "array"), p("organization_id", "integer"), p("follower_id", "array"), p("record_time"),
                p("content"), p("demand_attach"), p("demand_note"),
            ]),
        ]),
        ("/api/record/deldemand", [Operation(method: "post", summary: "Delete a demand change", parameters: [p("demand_id", "integer", required: true)])]),
        ("/api/feedback/satisfy", [
            Operation(method: "get", summary: "Satisfaction feedback", parameters: [p("organization_id", "integer"), p("customers_id", "array")] + window + paging),
            Operation(method: "post", summary: "Record or update feedback", parameters: [
                p("satisfy_id", "integer"), p("organization_id", "integer"), p("customers_id", "array"), p("record_time"), p("follower_id", "array"),
                p("attach"), p("value", "integer"), p("note"),
            ]),
        ]),
        ("/api/feedback/delsatisfy", [Operation(method: "post", summary: "Delete feedback", parameters: [p("satisfy_id", "integer", required: true)])]),
        ("/api/contract/contract", [
            Operation(method: "get", summary: "Contracts", parameters: [p("organization_id", "integer")] + window + paging),
            Operation(method: "post", summary: "Create or update a contract", parameters: [
                p("contract_id", "integer"), p("organization_id", "integer"), p("name"), p("sign_time"), p("code"), p("amount", "number"),
                p("remit_amount", "number"), p("remit_time"), p("aging_start_time"), p("aging_end_time"), p("creator_id", "integer"),
                p("follower_id", "array"), p("editor_id", "integer"), p("note"),
            ]),
        ]),
        ("/api/contract/delcontract", [Operation(method: "post", summary: "Delete a contract", parameters: [p("contract_id", "integer", required: true)])]),
        ("/api/stats/sign", [Operation(method: "get", summary: "Signing statistics", parameters: [p("organization_ids", "array")] + window + paging)]),
        ("/api/stats/demand", [Operation(method: "get", summary: "Demand statistics", parameters: [p("organization_ids", "array")] + window + paging)]),
        ("/api/stats/follow", [Operation(method: "get", summary: "Follow-up statistics", parameters: [p("organization_ids", "array")] + window + paging)]),
        ("/livez", [Operation(method: "get", summary: "Liveness", parameters: [])]),
        ("/healthz", [Operation(method: "get", summary: "Health of every service", parameters: [])]),
        ("/metrics", [Operation(method: "get", summary: "Prometheus metrics", parameters: [])]),
    ]

    /// Every documented path.
    static let paths: Set<String> = Set(endpoints.map(\.path) + ["/openapi.json"])

    static func schema(_ type: String) -> JSON {
        type == "array" ? .object(JSONObject([("type", "array"), ("items", .object(JSONObject([("type", "integer")])))])) : .object(JSONObject([("type", .string(type))]))
    }

    static let document: [UInt8] = {
        let envelope = JSON.object(JSONObject([("type", "object"), ("properties", .object(JSONObject([
            ("status", .object(JSONObject([("type", "integer"), ("description", "0 success, 1 failure")]))),
            ("msg", .object(JSONObject([("type", "string")]))),
            ("data", .object(JSONObject())), ("page_info", .object(JSONObject())),
        ])))]))
        var paths = JSONObject()
        for endpoint in endpoints {
            var item = JSONObject()
            for operation in endpoint.operations {
                var op = JSONObject()
                op.append("summary", .string(operation.summary))
                if operation.method == "get" {
                    op.append("parameters", .array(operation.parameters.map { parameter in
                        .object(JSONObject([("name", .string(parameter.name)), ("in", "query"), ("required", .bool(parameter.required)), ("schema", schema(parameter.type))]))
                    }))
                } else if !operation.parameters.isEmpty {
                    var properties = JSONObject()
                    for parameter in operation.parameters { properties.append(parameter.name, schema(parameter.type)) }
                    var body = JSONObject([("type", "object"), ("properties", .object(properties))])
                    let required = operation.parameters.filter(\.required).map { JSON.string($0.name) }
                    if !required.isEmpty { body.append("required", .array(required)) }
                    let content = JSON.object(JSONObject([("schema", .object(body))]))
                    op.append("requestBody", .object(JSONObject([("content", .object(JSONObject([
                        ("application/json", content), ("application/x-www-form-urlencoded", content),
                    ])))])))
                }
                let ok = JSON.object(JSONObject([("description", "{\"status\":0,…}"), ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", envelope)])))])))]))
                let failure = JSON.object(JSONObject([("description", "{\"status\":1,\"msg\":…} with the HTTP status of the error")]))
                op.append("responses", .object(JSONObject([("200", ok), ("default", failure)])))
                item.append(operation.method, .object(op))
            }
            paths.append(endpoint.path, .object(item))
        }
        let doc = JSONObject([
            ("openapi", "3.0.3"),
            ("info", .object(JSONObject([("title", "CRM API"), ("version", "1.0"),
                                         ("description", "See docs/API.md for the answer shapes and every decision.")]))),
            ("components", .object(JSONObject([("securitySchemes", .object(JSONObject([
                ("cookie", .object(JSONObject([("type", "apiKey"), ("in", "cookie"), ("name", "crm_session")]))),
                ("bearer", .object(JSONObject([("type", "http"), ("scheme", "bearer")]))),
            ])))]))),
            ("security", .array([.object(JSONObject([("cookie", .array([]))])), .object(JSONObject([("bearer", .array([]))]))])),
            ("paths", .object(paths)),
        ])
        return JSON.object(doc).serialized()
    }()
}
