import APICatalog
import WireProtocol

/// `GET /openapi.json`: the public routes of the catalog (`APICatalog`) as an OpenAPI 3
/// document — paths, methods and every parameter (query parameters for GET, a JSON or form body
/// for POST), with types, allowed values and required ones. Decisions and answer shapes are
/// described in docs/API.md.
enum OpenAPI {
    /// Every documented path (metrics label only these: clients choose paths).
    static let paths: Set<String> = Set(Catalog.routes.filter { !$0.isInternal }.map(\.path))

    static func schema(_ parameter: APIParameter) -> JSON {
        var o = JSONObject()
        switch parameter.type {
        case .integer: o.append("type", "integer")
        case .number: o.append("type", "number")
        case .string: o.append("type", "string")
        case .time:
            o.append("type", "string")
            o.append("pattern", "^\\d{4}-\\d{2}-\\d{2}( \\d{2}:\\d{2}:\\d{2})?$")
        case .date:
            o.append("type", "string")
            o.append("pattern", "^\\d{4}-\\d{2}-\\d{2}$")
        case .idArray:
            o.append("type", "array")
            o.append("items", .object(JSONObject([("type", "integer")])))
        }
        if !parameter.allowed.isEmpty {
            // Statuses are sent as numbers or strings (`all`, `normal`): list them as text.
            o = JSONObject([("type", "string"), ("enum", .array(parameter.allowed.map { .string($0) }))])
        }
        return .object(o)
    }

    static func object(_ properties: [(String, JSON)], required: [String]) -> JSON {
        .object(JSONObject([("type", "object"), ("required", .array(required.map { .string($0) })), ("properties", .object(JSONObject(properties)))]))
    }

    static let integer = JSON.object(JSONObject([("type", "integer")]))
    static let string = JSON.object(JSONObject([("type", "string")]))
    static let pageInfo = object([("total", integer), ("page", integer), ("count", integer)], required: ["total", "page", "count"])

    /// Every failure: `{"status":1,"msg":…}`.
    static let errorSchema = object([("status", .object(JSONObject([("type", "integer"), ("enum", [1])]))), ("msg", string)], required: ["status", "msg"])

    /// The success answer of a route: the envelope with `data` of the route's shape.
    static func success(_ route: APIRoute) -> JSON {
        let ok = JSON.object(JSONObject([("type", "integer"), ("enum", [0])]))
        switch route.path {
        case "/livez": return object([("status", ok)], required: ["status"])
        case "/healthz": return object([("status", ok), ("services", .object(JSONObject([("type", "object")]))), ("replicas", .object(JSONObject([("type", "object")])))],
                                       required: ["status", "services"])
        case "/openapi.json": return .object(JSONObject([("type", "object")]))
        default: break
        }
        var properties: [(String, JSON)] = [("status", ok), ("msg", string)]
        var required = ["status", "msg"]
        switch route.answer {
        case .list:
            properties.append(("data", .object(JSONObject([("type", "array"), ("items", .object(JSONObject([("type", "object")])))]))))
            properties.append(("page_info", pageInfo))
            required.append("data")
        case .nestedList:
            // `[[rows], {total, page, count}]`: OpenAPI 3.0 has no tuple schema, so each item is either.
            let rows = JSON.object(JSONObject([("type", "array"), ("items", .object(JSONObject([("type", "object")])))]))
            properties.append(("data", .object(JSONObject([("type", "array"), ("minItems", 2), ("maxItems", 2),
                                                           ("items", .object(JSONObject([("anyOf", .array([rows, pageInfo]))])))]))))
            required.append("data")
        case .mutation:
            properties.append(("data", object([("id", integer)], required: ["id"])))
            required.append("data")
        case .object:
            properties.append(("data", .object(JSONObject([("type", "object")]))))
        case .none:
            break
        }
        return object(properties, required: required)
    }

    static let document: [UInt8] = {
        var paths = JSONObject()
        var order: [String] = []
        var byPath: [String: [APIRoute]] = [:]
        for route in Catalog.routes where !route.isInternal {
            if byPath[route.path] == nil { order.append(route.path) }
            byPath[route.path, default: []].append(route)
        }
        for path in order {
            var item = JSONObject()
            for route in byPath[path] ?? [] {
                var op = JSONObject()
                op.append("summary", .string(route.summary))
                if route.service == nil || route.access == .public { op.append("security", .array([])) }
                if route.method == "GET" {
                    op.append("parameters", .array(route.parameters.map { parameter in
                        .object(JSONObject([("name", .string(parameter.name)), ("in", "query"), ("required", .bool(parameter.required)), ("schema", schema(parameter))]))
                    }))
                } else if !route.parameters.isEmpty {
                    var properties = JSONObject()
                    for parameter in route.parameters { properties.append(parameter.name, schema(parameter)) }
                    var body = JSONObject([("type", "object"), ("properties", .object(properties))])
                    let required = route.parameters.filter(\.required).map { JSON.string($0.name) }
                    if !required.isEmpty { body.append("required", .array(required)) }
                    let content = JSON.object(JSONObject([("schema", .object(body))]))
                    op.append("requestBody", .object(JSONObject([("content", .object(JSONObject([
                        ("application/json", content), ("application/x-www-form-urlencoded", content),
                    ])))])))
                }
                let ok: JSON
                if route.path == "/metrics" {
                    ok = .object(JSONObject([("description", "Prometheus text format"),
                                             ("content", .object(JSONObject([("text/plain", .object(JSONObject([("schema", .object(JSONObject([("type", "string")])))])))])))]))
                } else {
                    ok = .object(JSONObject([("description", .string("{\"status\":0,…} — data: \(route.answer.rawValue)")),
                                             ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", success(route))])))])))]))
                }
                let failure = JSON.object(JSONObject([("description", "{\"status\":1,\"msg\":…} with the HTTP status of the error"),
                                                      ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", errorSchema)])))])))]))
                op.append("responses", .object(JSONObject([("200", ok), ("default", failure)])))
                item.append(route.method.lowercased(), .object(op))
            }
            paths.append(path, .object(item))
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
