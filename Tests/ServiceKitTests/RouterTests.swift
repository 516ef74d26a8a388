import XCTest
import ServiceKit
import WireProtocol

/// `ServiceRouter` alone: which route a method and path find, and the errors when none does.
final class RouterTests: XCTestCase {
    static func handler(_ name: String) -> RouteHandler {
        { _ in Reply.ok(data: .string(name)) }
    }

    static let declared = [
        APIRoute("GET", "/api/things", nil, .anyone, "list", answer: .list),
        APIRoute("POST", "/api/things", nil, .staff, "create", answer: .mutation),
        APIRoute("DELETE", "/api/things", nil, .adminOnly, "delete", answer: .none),
        APIRoute("GET", "/", nil, .public, "root", answer: .object),
    ]

    var router: ServiceRouter {
        get throws {
            try ServiceRouter(name: "things", declared: Self.declared, routes: [
                .get("/api/things", Self.handler("list")),
                .post("/api/things", Self.handler("create")),
                Route("DELETE", "/api/things", Self.handler("delete")),
                .get("/", Self.handler("root")),
            ])
        }
    }

    /// The envelope written as text around data written in place is `Reply.ok`'s, byte for byte.
    func testTheTextEnvelopeIsTheTreesBytes() {
        let data: JSON = ["events": [["seq": 1, "state": ["名": "值"]]], "last": 7]
        for (message, page) in [(Reply.queryMessage, nil), (Reply.mutationMessage, PageInfo(total: 41, page: 3, count: 20))] {
            let text = Reply.ok(message, capacity: 16, page: page) { $0.value(data) }
            XCTAssertEqual(text.bodyBytes, Reply.ok(message, data: data, page: page).bodyBytes)
            XCTAssertEqual(text.status, 200)
        }
    }

    func testMethodAndPathFindTheirRoute() throws {
        XCTAssertEqual(try router.route(method: "GET", path: "/api/things").method, "GET")
        XCTAssertEqual(try router.route(method: "POST", path: "/api/things").method, "POST")
        XCTAssertEqual(try router.route(method: "DELETE", path: "/api/things").path, "/api/things")
        guard case .roles(let roles) = try router.route(method: "POST", path: "/api/things").access else { return XCTFail("POST needs a role") }
        XCTAssertEqual(roles, [.admin, .employee], "each method keeps its own access")
    }

    func testUnknownPathIs404NamingThePath() {
        for path in ["/api/thing", "/api/things/1", "/API/things", "/api//things", ""] {
            XCTAssertThrowsError(try router.route(method: "GET", path: path), path) { error in
                XCTAssertEqual((error as? APIError)?.status, 404, path)
                XCTAssertEqual((error as? APIError)?.message, "no such endpoint: \(path)")
            }
        }
    }

    func testWrongMethodIs405NamingTheAllowedMethods() {
        XCTAssertThrowsError(try router.route(method: "PUT", path: "/api/things")) { error in
            XCTAssertEqual((error as? APIError)?.status, 405)
            XCTAssertEqual((error as? APIError)?.message, "/api/things does not accept PUT; use DELETE or GET or POST")
        }
        XCTAssertThrowsError(try router.route(method: "get", path: "/api/things"), "methods are case-sensitive") { error in
            XCTAssertEqual((error as? APIError)?.status, 405)
        }
        XCTAssertThrowsError(try router.route(method: "POST", path: "/")) { error in
            XCTAssertEqual((error as? APIError)?.message, "/ does not accept POST; use GET")
        }
    }

    func testOneTrailingSlashIsIgnored() {
        XCTAssertEqual(try router.route(method: "POST", path: "/api/things/").method, "POST")
        XCTAssertEqual(try router.route(method: "GET", path: "/").path, "/", "the root keeps its slash")
        XCTAssertThrowsError(try router.route(method: "GET", path: "/api/things//")) { error in
            XCTAssertEqual((error as? APIError)?.status, 404, "only one slash is dropped")
        }
        XCTAssertThrowsError(try router.route(method: "PUT", path: "/api/things/")) { error in
            XCTAssertEqual((error as? APIError)?.status, 405, "the slash does not turn a 405 into a 404")
        }
        // U+0600 joins the "/" after it into one Character: the path still names no route.
        XCTAssertThrowsError(try router.route(method: "POST", path: "/api/things\u{0600}/")) { error in
            XCTAssertEqual((error as? APIError)?.status, 404, "a slash inside a longer Character is not the trailing slash")
        }
    }
}
