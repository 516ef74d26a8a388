@testable import Gateway
import WireProtocol
import XCTest

/// How an HTTP request becomes the parameters a service gets, and where its session token is.
final class RequestParamsTests: XCTestCase {
    func request(_ target: String = "/p", contentType: String? = nil, headers: [(String, String)] = [], body: String = "") -> HTTPRequest {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var fields = headers.map { (name: $0.0.lowercased(), value: $0.1) }
        if let contentType { fields.append((name: "content-type", value: contentType)) }
        let head = HTTPRequestHead(method: "POST", target: target, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : "",
                                   versionMinor: 1, headers: fields, keepAlive: true)
        return HTTPRequest(head: head, body: Array(body.utf8))
    }

    func params(_ request: HTTPRequest) throws -> String {
        try JSON.object(RequestParams.build(request)).jsonString
    }

    func refusal(_ request: HTTPRequest) -> String? {
        do {
            _ = try RequestParams.build(request)
            return nil
        } catch {
            return error.reason
        }
    }

    func testQueryAndBodyMergeAndTheBodyWins() throws {
        XCTAssertEqual(try params(request("/p?a=1&b=2", contentType: "application/json", body: #"{"b":3,"c":[1]}"#)), #"{"a":"1","b":3,"c":[1]}"#)
        XCTAssertEqual(try params(request("/p?a=1&b=2", contentType: "application/x-www-form-urlencoded", body: "b=x&d=y")), #"{"a":"1","b":"x","d":"y"}"#)
        XCTAssertEqual(try params(request("/p?a=1")), #"{"a":"1"}"#, "no body: the query alone")
        XCTAssertEqual(try params(request("/p")), "{}")
    }

    func testJSONOrFormIsDecidedByContentTypeElseByTheFirstByte() throws {
        XCTAssertEqual(try params(request(contentType: "application/json; charset=utf-8", body: #"{"a":1}"#)), #"{"a":1}"#)
        XCTAssertEqual(try params(request(contentType: "application/merge-patch+json", body: #"{"a":1}"#)), #"{"a":1}"#, "+json is JSON")
        XCTAssertEqual(try params(request(body: " \r\n\t{\"a\":1}")), #"{"a":1}"#, "no type, starts with '{' after blanks: JSON")
        XCTAssertEqual(try params(request(contentType: "text/plain", body: #"{"a":1}"#)), #"{"a":1}"#, "text/plain starting with '{' is JSON too")
        XCTAssertEqual(try params(request(body: "a=1")), #"{"a":"1"}"#, "no type: a form")
        XCTAssertEqual(try params(request(contentType: "TEXT/PLAIN", body: "a=1")), #"{"a":"1"}"#, "types are case-insensitive")
        XCTAssertEqual(try params(request(contentType: "application/x-www-form-urlencoded", body: #"{"a":1}"#)), #"{"{\"a\":1}":""}"#,
                       "a declared form is a form even when it looks like JSON")
    }

    func testBadBodiesAreRefusedWithTheReason() {
        XCTAssertEqual(refusal(request(contentType: "application/json", body: "[1]")), "request body must be a JSON object")
        XCTAssertTrue(refusal(request(contentType: "application/json", body: "{\"a\":"))?.hasPrefix("request body is not valid JSON") ?? false)
        XCTAssertEqual(refusal(request(contentType: "multipart/form-data; boundary=x", body: "--x")),
                       "unsupported Content-Type 'multipart/form-data; boundary=x'; send application/json or application/x-www-form-urlencoded")
    }

    func testNestingDepthStopsAtTheFramesLimit() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: #"{"a":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
        }
        let limit = WireRequest.maxParamsDepth
        XCTAssertNoThrow(try RequestParams.build(request(contentType: "application/json", body: nested(limit))))
        let refused = refusal(request(contentType: "application/json", body: nested(limit + 1)))
        XCTAssertTrue(refused?.contains("nesting depth") ?? false, refused ?? "accepted")
        // The parameters, wrapped once more in the request frame, still fit a frame.
        let frame = JSON.object(["params": try JSON.object(RequestParams.build(request(contentType: "application/json", body: nested(limit))))])
        XCTAssertNoThrow(try JSONParser.parse(frame.serialized()))
    }

    func testBearerTokenThenCookie() {
        func token(_ headers: [(String, String)]) -> String? { RequestParams.credential(request(headers: headers).head)?.token }
        XCTAssertEqual(token([("Authorization", "Bearer abc")]), "abc")
        XCTAssertEqual(token([("Authorization", "bearer   abc  ")]), "abc", "scheme case-insensitive, blanks trimmed")
        XCTAssertEqual(token([("Cookie", "x=1; crm_session=def; y=2")]), "def")
        XCTAssertEqual(token([("Cookie", "x=1"), ("Cookie", "crm_session=second")]), "second", "every Cookie header is read")
        XCTAssertEqual(token([("Authorization", "Bearer abc"), ("Cookie", "crm_session=def")]), "abc", "the header wins over the cookie")
        XCTAssertEqual(token([("Authorization", "Basic abc"), ("Cookie", "crm_session=def")]), "def", "another scheme is not a session")
        XCTAssertEqual(token([("Authorization", "Bearer  "), ("Cookie", "crm_session=def")]), "def")
        XCTAssertNil(token([("Cookie", "crm_session=; other=1")]))
        XCTAssertNil(token([("Cookie", "xcrm_session=abc")]))
        XCTAssertNil(token([]))
    }
}
