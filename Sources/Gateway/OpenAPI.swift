import WireProtocol

/// `GET /openapi.json`: the endpoints of API.md as an OpenAPI 3 document (paths and methods;
/// parameters are described in docs/API.md).
enum OpenAPI {
    static let endpoints: [(path: String, methods: [String], summary: String)] = [
        ("/api/user/group", ["get", "post"], "Employee groups"),
        ("/api/user/delgroup", ["post"], "Delete an employee group"),
        ("/api/user/user", ["get", "post"], "Employees"),
        ("/api/user/deluser", ["post"], "Delete, disable or enable an employee"),
        ("/api/user/login", ["post"], "Log in"),
        ("/api/user/logout", ["post"], "Log out"),
        ("/api/user/password", ["post"], "Change password"),
        ("/api/user/menu", ["get", "post"], "Menu items"),
        ("/api/user/usermenu", ["get", "post"], "Employee menus"),
        ("/api/customers/organization", ["get", "post"], "Customer organizations"),
        ("/api/customers/delorganization", ["post"], "Organization status"),
        ("/api/customers/customers", ["get", "post"], "Customers"),
        ("/api/customers/delcustomer", ["post"], "Delete a customer"),
        ("/api/record/potential", ["get", "post"], "Potential-customer records"),
        ("/api/record/delpotent", ["post"], "Potential record status"),
        ("/api/record/follow", ["get", "post"], "Follow-up records"),
        ("/api/record/delfollow", ["post"], "Delete a follow-up record"),
        ("/api/record/demand", ["get", "post"], "Demand changes"),
        ("/api/record/deldemand", ["post"], "Delete a demand change"),
        ("/api/feedback/satisfy", ["get", "post"], "Satisfaction feedback"),
        ("/api/feedback/delsatisfy", ["post"], "Delete feedback"),
        ("/api/contract/contract", ["get", "post"], "Contracts"),
        ("/api/contract/delcontract", ["post"], "Delete a contract"),
        ("/api/stats/sign", ["get"], "Signing statistics"),
        ("/api/stats/demand", ["get"], "Demand statistics"),
        ("/api/stats/follow", ["get"], "Follow-up statistics"),
        ("/livez", ["get"], "Liveness"),
        ("/healthz", ["get"], "Health of every service"),
        ("/metrics", ["get"], "Prometheus metrics"),
    ]

    /// Every documented path.
    static let paths: Set<String> = Set(endpoints.map(\.path) + ["/openapi.json"])

    static let document: [UInt8] = {
        var paths = JSONObject()
        for endpoint in endpoints {
            var item = JSONObject()
            for method in endpoint.methods {
                let responses = JSONObject([("200", .object(JSONObject([("description", "{\"status\":0,…}")]))),
                                            ("default", .object(JSONObject([("description", "{\"status\":1,\"msg\":…}")])))])
                item.append(method, .object(JSONObject([("summary", .string(endpoint.summary)), ("responses", .object(responses))])))
            }
            paths.append(endpoint.path, .object(item))
        }
        let doc = JSONObject([
            ("openapi", "3.0.3"),
            ("info", .object(JSONObject([("title", "CRM API"), ("version", "1.0")]))),
            ("paths", .object(paths)),
        ])
        return JSON.object(doc).serialized()
    }()
}
