import XCTest
import APICatalog
import ServiceKit
import WireProtocol
@testable import Gateway
@testable import UserService
@testable import CustomerService
@testable import StatsService

/// One route catalog: the gateway's routing, public paths and OpenAPI document, and every
/// service's router come from it — these tests fail when any of them disagrees.
final class CatalogTests: XCTestCase {
    func testCatalogIsSound() {
        XCTAssertEqual(Catalog.problems, [])
    }

    func testEveryServiceBindsExactlyItsCatalogRoutes() throws {
        let stubs = [ServiceName.records, .contracts].map { ServiceDefinition(service: $0, migrations: [], routes: Route.notYetBuilt($0)) }
        for definition in [ServiceDefinition.users, ServiceDefinition.customers, ServiceDefinition.stats] + stubs {
            XCTAssertEqual(definition.routeProblems, [], definition.name)
            XCTAssertNoThrow(try ServiceRouter(name: definition.name, declared: definition.declared, routes: definition.allRoutes))
        }
    }

    func testRouterRefusesDuplicateUndeclaredAndMissingRoutes() {
        let declared = [APIRoute("GET", "/a", nil, .anyone, "a", answer: .list), APIRoute("POST", "/a", nil, .staff, "a", answer: .mutation)]
        let handler: RouteHandler = { _ in Reply.ok() }
        let problems = ServiceRouter.problems(name: "t", declared: declared, routes: [.get("/a", handler), .get("/a", handler), .get("/b", handler)])
        XCTAssertEqual(problems, ["GET /a is bound twice", "GET /b is not declared for t in the catalog", "POST /a is declared for t but has no handler"])
        XCTAssertThrowsError(try ServiceRouter(name: "t", declared: declared, routes: [.get("/a", handler)]))
    }

    func testGatewayRoutesEveryPublicPathToItsOwner() {
        for route in Catalog.routes where !route.isInternal {
            XCTAssertEqual(Catalog.service(forPath: route.path), route.service, route.key)
            XCTAssertEqual(Catalog.publicPaths.contains(route.path), route.access == .public, route.key)
        }
        XCTAssertEqual(Catalog.publicPaths, ["/api/user/login", "/api/user/logout", "/api/user/password", "/livez", "/healthz", "/metrics", "/openapi.json"])
        XCTAssertNil(Catalog.service(forPath: "/internal/session"), "the gateway never routes /internal")
        XCTAssertEqual(Catalog.service(forPath: "/api/user/nothing"), .users, "an unknown path under a prefix goes to its service (404 there)")
    }

    func testOpenAPIDocumentListsEveryRouteAndParameter() throws {
        let document = try JSONParser.parse(OpenAPI.document)
        for route in Catalog.routes where !route.isInternal {
            let operation = try XCTUnwrap(document["paths"]?[route.path]?[route.method.lowercased()], route.key)
            let names: [String]
            if route.method == "GET" {
                names = operation["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            } else {
                let schema = operation["requestBody"]?["content"]?["application/json"]?["schema"]
                names = schema?["properties"]?.objectValue.map { $0.map(\.key) } ?? []
                let required = schema?["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
                XCTAssertEqual(Set(required), Set(route.parameters.filter(\.required).map(\.name)), route.key)
            }
            XCTAssertEqual(names, route.parameters.map(\.name), route.key)
            // Answers are documented: the success envelope and the error shape.
            let failure = operation["responses"]?["default"]?["content"]?["application/json"]?["schema"]
            XCTAssertEqual(failure?["required"]?.arrayValue?.compactMap(\.stringValue), ["status", "msg"], route.key)
            let success = operation["responses"]?["200"]?["content"]?[route.path == "/metrics" ? "text/plain" : "application/json"]?["schema"]
            XCTAssertNotNil(success?["type"], route.key)
            if route.answer == .list && route.service != nil {
                XCTAssertEqual(success?["properties"]?["data"]?["type"]?.stringValue, "array", route.key)
            }
        }
    }
}

/// Every catalog route reaches a handler through the real gateway and services: none answers
/// 404 or 405 (a stub service answers 501).
final class CatalogSystemTests: SystemTestCase {
    func testEveryCatalogRouteReachesAHandler() throws {
        let system = try system
        let token = try system.login()
        // Logout last: it ends the session the others use.
        let served = Catalog.routes.filter { !$0.isInternal && $0.service != nil }
        let routes = served.filter { $0.path != "/api/user/logout" } + served.filter { $0.path == "/api/user/logout" }
        for route in routes {
            let answer = route.method == "GET"
                ? try system.get(route.path, token: token)
                : try system.post(route.path, json: .object(JSONObject()), token: token)
            XCTAssertFalse([404, 405].contains(answer.status), "\(route.key): \(answer.status) \(answer.text)")
            XCTAssertEqual(answer.json["status"]?.intValue, answer.status == 200 ? 0 : 1, route.key)
        }
        let unknown = try system.get("/api/user/nothing", token: try system.login())
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(try system.get("/nothing").status, 404)
    }
}
