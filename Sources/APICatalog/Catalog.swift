/// The HTTP API of docs/API.md, declared once: every route's method, path, owning service,
/// access, parameters (types, allowed values, required) and answer shape. The gateway derives
/// its routing, public paths and `/openapi.json` from it; each service's router is checked
/// against it at start (a handler for an undeclared route, a declared route without a
/// handler, or a route bound twice stops the service).
public enum Catalog {
    public static let routes: [APIRoute] = users + customers + records + contracts + stats + internalRoutes + gateway

    /// The route declared for `method` and `path` (exact path, HEAD answered as GET).
    public static func route(method: String, path: String) -> APIRoute? {
        byKey[APIRoute.key(method == "HEAD" ? "GET" : method, path)]
    }

    /// Every declared route of one path (for 405 answers).
    public static func routes(path: String) -> [APIRoute] {
        byPath[path] ?? []
    }

    /// The routes a service must bind.
    public static func routes(of service: ServiceName) -> [APIRoute] {
        routes.filter { $0.service == service }
    }

    /// The service owning a public path, from its prefix (`/api/<segment>`): unknown paths
    /// under a service's prefix still go to that service, which answers 404 naming them.
    public static func service(forPath path: String) -> ServiceName? {
        guard path.hasPrefix("/api/") else { return nil }
        let rest = path.dropFirst(5)
        let segment = rest.prefix { $0 != "/" }
        return prefixes["/api/" + segment]
    }

    /// `/api/<segment>` → the service owning every route under it.
    public static let prefixes: [String: ServiceName] = {
        var result: [String: ServiceName] = [:]
        for route in routes where !route.isInternal {
            guard let service = route.service, let prefix = route.prefix else { continue }
            result[prefix] = service
        }
        return result
    }()

    /// Paths that need no session at the gateway.
    public static let publicPaths: Set<String> = Set(routes.filter { !$0.isInternal && $0.access == .public }.map(\.path))

    /// Problems that make the catalog unusable: routes declared twice, a prefix shared by two
    /// services, a parameter declared twice. Empty when the catalog is sound (tested).
    public static var problems: [String] {
        var problems: [String] = []
        var seen = Set<String>()
        for route in routes where !seen.insert((route.service?.rawValue ?? "gateway") + " " + route.key).inserted {
            problems.append("\(route.key) is declared twice for \(route.service?.rawValue ?? "the gateway")")
        }
        var owners: [String: Set<ServiceName>] = [:]
        for route in routes where !route.isInternal {
            if let service = route.service, let prefix = route.prefix { owners[prefix, default: []].insert(service) }
        }
        for (prefix, services) in owners where services.count > 1 {
            problems.append("\(prefix) is shared by \(services.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        for route in routes {
            var names = Set<String>()
            for parameter in route.parameters where !names.insert(parameter.name).inserted {
                problems.append("\(route.key) declares \(parameter.name) twice")
            }
        }
        return problems
    }

    /// Public routes only: internal ones are declared once per service and never routed here.
    private static let byKey: [String: APIRoute] = {
        var table: [String: APIRoute] = [:]
        for route in routes where !route.isInternal && table[route.key] == nil { table[route.key] = route }
        return table
    }()

    private static let byPath: [String: [APIRoute]] = Dictionary(grouping: routes.filter { !$0.isInternal }, by: \.path)
}

/// The five services; a service's name is its socket (`<name>.sock`), database
/// (`<name>.sqlite`) and peer name.
public enum ServiceName: String, CaseIterable, Sendable {
    case users, customers, records, contracts, stats

    /// The executable that runs it.
    public var executable: String {
        switch self {
        case .users: return "UserService"
        case .customers: return "CustomerService"
        case .records: return "RecordService"
        case .contracts: return "ContractService"
        case .stats: return "StatsService"
        }
    }
}

/// Roles (`role_id`): 1 administrator, 2 employee, 3 courier (通讯员).
public enum Role: Int64, Sendable, CaseIterable {
    case admin = 1
    case employee = 2
    case courier = 3
}

/// Who may call a route — the role table of API.md §1, declared once per route.
public enum Access: Sendable, Equatable {
    /// No session needed (login, password change, internal calls from the gateway).
    case `public`
    /// A session whose role is in the set.
    case roles(Set<Role>)

    public static let anyone = Access.roles([.admin, .employee, .courier])
    public static let adminOnly = Access.roles([.admin])
    /// Administrators and employees (not couriers).
    public static let staff = Access.roles([.admin, .employee])
}

/// A parameter's type as the API accepts it (query string, form or JSON body).
public enum ParamType: String, Sendable {
    case integer, string, number
    /// Ids in any array form (`[1,2]`, `"1,2"`, repeated keys, `key[]`).
    case idArray
    /// `YYYY-MM-DD HH:MM:SS` (a date alone means 00:00:00).
    case time
    /// `YYYY-MM-DD`.
    case date
}

public struct APIParameter: Sendable, Equatable {
    public var name: String
    public var type: ParamType
    public var required: Bool
    /// The values accepted, when restricted (e.g. a status filter's `all`, `1`, `-1`).
    public var allowed: [String]

    public init(_ name: String, _ type: ParamType = .string, required: Bool = false, allowed: [String] = []) {
        self.name = name
        self.type = type
        self.required = required
        self.allowed = allowed
    }
}

/// What `data` holds in a success answer.
public enum AnswerShape: String, Sendable {
    /// A list of rows with `page_info`.
    case list
    /// The seed's nested `[[rows], {total, page, count}]`.
    case nestedList
    /// `{id}` of the row written.
    case mutation
    /// One object (login, password change, the gateway's own answers).
    case object
    /// No `data`.
    case none
}

public struct APIRoute: Sendable {
    public var method: String
    public var path: String
    /// Nil for the gateway's own endpoints.
    public var service: ServiceName?
    public var access: Access
    public var summary: String
    public var parameters: [APIParameter]
    public var answer: AnswerShape
    /// Reached only between processes (`/internal/…`); the gateway never routes it.
    public var isInternal: Bool { path.hasPrefix("/internal/") }

    public init(_ method: String, _ path: String, _ service: ServiceName?, _ access: Access, _ summary: String,
                _ parameters: [APIParameter] = [], answer: AnswerShape) {
        self.method = method
        self.path = path
        self.service = service
        self.access = access
        self.summary = summary
        self.parameters = parameters
        self.answer = answer
    }

    public var key: String { APIRoute.key(method, path) }
    static func key(_ method: String, _ path: String) -> String { method + " " + path }

    /// `/api/<segment>`, nil outside `/api/`.
    var prefix: String? {
        guard path.hasPrefix("/api/") else { return nil }
        return "/api/" + path.dropFirst(5).prefix { $0 != "/" }
    }
}
