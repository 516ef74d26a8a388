@testable import Gateway
import XCTest

final class HTTPRequestParserTests: XCTestCase {

    // MARK: - Basic decoding

    func testSimpleGet() throws {
        let outcome = decode("GET /api/user/group?status=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \t\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.requests.count, 1)
        let request = try XCTUnwrap(outcome.requests.first)
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/api/user/group?status=1")
        XCTAssertEqual(request.path, "/api/user/group")
        XCTAssertEqual(request.query, "status=1")
        XCTAssertEqual(request.versionMinor, 1)
        XCTAssertEqual(request.headers, ["host: example.com", "accept: */*"])
        XCTAssertTrue(request.keepAlive)
        XCTAssertEqual(request.body, [])
        XCTAssertEqual(outcome.leftover, 0)
    }

    func testHeaderLookupAndOrder() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/1.1\r\nX-Dup: one\r\nX-Empty:\r\nx-dup:two\r\nX-Name: \u{5F20}\u{4E09}\r\nX-Tab:\ta\tb\t\r\n\r\n"))
        let request = try XCTUnwrap(try parser.next())
        XCTAssertEqual(request.head.headers.map(\.name), ["x-dup", "x-empty", "x-dup", "x-name", "x-tab"])
        XCTAssertEqual(request.head.header("x-dup"), "one")
        XCTAssertEqual(request.head.headerValues("x-dup"), ["one", "two"])
        XCTAssertEqual(request.head.header("x-empty"), "")
        XCTAssertEqual(request.head.header("x-name"), "\u{5F20}\u{4E09}")
        XCTAssertEqual(request.head.header("x-tab"), "a\tb")
        XCTAssertNil(request.head.header("host"))  // Host is not required
    }

    func testTargetSplitting() {
        let cases: [(target: String, path: String, query: String)] = [
            ("/", "/", ""),
            ("/a/b%20c", "/a/b%20c", ""),
            ("/p?", "/p", ""),
            ("/p?a=1?b=2", "/p", "a=1?b=2"),
        ]
        for (target, path, query) in cases {
            let request = decode("GET \(target) HTTP/1.1\r\n\r\n").requests.first
            XCTAssertEqual(request?.target, target)
            XCTAssertEqual(request?.path, path)
            XCTAssertEqual(request?.query, query)
        }
    }

    func testUTF8InTargetIsAcceptedButControlsAndDELAreNot() {
        let request = decode("GET /api/customers/customers?name=\u{5F20}\u{4E09} HTTP/1.1\r\n\r\n").requests.first
        XCTAssertEqual(request?.query, "name=\u{5F20}\u{4E09}")
        XCTAssertEqual(decode("GET /a\u{7F} HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("GET /a\tb HTTP/1.1\r\n\r\n").error?.status, 400)
    }

    func testMethodIsCaseSensitiveToken() {
        XCTAssertEqual(decode("get / HTTP/1.1\r\n\r\n").requests.first?.method, "get")
        XCTAssertEqual(decode("M-SEARCH / HTTP/1.1\r\n\r\n").requests.first?.method, "M-SEARCH")
        XCTAssertEqual(decode("GE(T / HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("GET{} / HTTP/1.1\r\n\r\n").error?.status, 400)
    }

    func testMalformedRequestLines() {
        for line in ["GET  / HTTP/1.1", " GET / HTTP/1.1", "GET /", "GET / HTTP/1.1 ", "GET / x HTTP/1.1", "GET", "GET /\u{01} HTTP/1.1"] {
            XCTAssertEqual(decode("\(line)\r\n\r\n").error?.status, 400, line)
        }
    }

    func testTargetForms() {
        XCTAssertEqual(decode("OPTIONS * HTTP/1.1\r\n\r\n").requests.first?.path, "*")
        XCTAssertEqual(decode("GET * HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("OPTIONS *x HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("GET http://example.com/ HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("CONNECT example.com:443 HTTP/1.1\r\n\r\n").error?.status, 400)
    }

    func testVersions() {
        XCTAssertEqual(decode("GET / HTTP/1.0\r\n\r\n").requests.first?.versionMinor, 0)
        XCTAssertEqual(decode("GET / HTTP/1.1\r\n\r\n").requests.first?.versionMinor, 1)
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
            XCTAssertEqual(decode("GET / \(version)\r\n\r\n").error?.status, 505, version)
        }
        for version in ["HTTP/1", "http/1.1", "HTTP/1.10", "HTTP/11", "HTTP/1.x", "HTTPS/1.1", "HTTP/1,1"] {
            XCTAssertEqual(decode("GET / \(version)\r\n\r\n").error?.status, 400, version)
        }
    }

    // MARK: - Bodies

    func testContentLengthBody() {
        let outcome = decode("POST /login HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(outcome.requests.map(\.body), [bytes("hello world")])
        XCTAssertEqual(outcome.leftover, 0)
    }

    func testContentLengthZeroAndMissing() {
        let outcome = decode("POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST /b HTTP/1.1\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.requests.map(\.path), ["/a", "/b"])
        XCTAssertEqual(outcome.requests.map(\.body), [[], []])
    }

    func testContentLengthAcceptedForms() {
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello").requests.first?.body, bytes("hello"))
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello").requests.first?.body, bytes("hello"))
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 005\r\n\r\nhello").requests.first?.body, bytes("hello"))
    }

    func testContentLengthRejectedForms() {
        for value in ["+5", "-5", "5 5", "5, 6", "", "abc", "0x5", "5,", ",5", "5.0", "99999999999999999999999"] {
            let outcome = decode("POST / HTTP/1.1\r\nContent-Length: \(value)\r\n\r\nhello")
            XCTAssertEqual(outcome.error?.status, 400, value)
            XCTAssertEqual(outcome.requests, [], value)
        }
        let differing = decode("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello")
        XCTAssertEqual(differing.error?.status, 400)
    }

    func testContentLengthAboveLimitIsRejectedBeforeBody() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits: limits).error?.status, 413)
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits).requests.first?.body, bytes("0123456789"))
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n").error?.status, 413)
    }

    func testChunkedBody() throws {
        let outcome = decode("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\n6 ; a=b\r\n world\r\nA\r\n0123456789\r\nf\r\nabcdefghijklmno\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n")
        XCTAssertNil(outcome.error)
        let request = try XCTUnwrap(outcome.requests.first)
        XCTAssertEqual(request.body, bytes("hello world0123456789abcdefghijklmno"))
        XCTAssertEqual(request.headers, ["transfer-encoding: chunked"])  // trailers are discarded
        XCTAssertEqual(outcome.leftover, 0)
    }

    func testChunkedCodingIsCaseInsensitive() {
        let outcome = decode("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n000000000000003\r\nabc\r\n0;last\r\n\r\n")
        XCTAssertEqual(outcome.requests.first?.body, bytes("abc"))
    }

    func testInvalidChunkSizeLines() {
        for line in ["", "xyz", "-5", "5 ", "5x", "0x5", "5;\u{01}"] {
            let outcome = decode("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(outcome.error?.status, 400, line)
        }
    }

    func testChunkSizeOverflow() {
        let prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertEqual(decode(prefix + "FFFFFFFFFFFFFFFFFF\r\n").error?.status, 400)
        XCTAssertEqual(decode(prefix + "0000000000000001\r\n").error?.status, 400)  // 16 digits
        XCTAssertEqual(decode(prefix + "000000000000001\r\nx\r\n0\r\n\r\n").requests.first?.body, bytes("x"))  // 15 digits
    }

    func testMissingCRLFAfterChunkData() {
        let prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertEqual(decode(prefix + "5\r\nhelloX\r\n0\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode(prefix + "5\r\nhello\rX0\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode(prefix + "5\r\nhello\n0\r\n\r\n").error?.status, 400)
        // CRLF is required in chunked framing: bare LF after the size line or in trailers is a 400.
        XCTAssertEqual(decode(prefix + "5\nhello\r\n0\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode(prefix + "0\r\n\n").error?.status, 400)
        XCTAssertEqual(decode(prefix + "0\r\nX: y\n\r\n").error?.status, 400)
    }

    func testChunkedTotalAboveLimitIsRejectedWhenSizeArrives() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertEqual(decode(prefix + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits: limits).requests.first?.body, bytes("helloworld"))
        let outcome = decode(prefix + "5\r\nhello\r\n6\r\n", limits: limits)  // the data never arrives
        XCTAssertEqual(outcome.error?.status, 413)
        XCTAssertEqual(decode(prefix + "B\r\n", limits: limits).error?.status, 413)
    }

    func testTrailerLimits() {
        let limits = HTTPParserLimits(maxHeaderBytes: 64, maxHeaderCount: 2)
        let prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        XCTAssertEqual(decode(prefix + "A: 1\r\nB: 2\r\n\r\n", limits: limits).requests.count, 1)
        XCTAssertEqual(decode(prefix + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits).error?.status, 431)
        XCTAssertEqual(decode(prefix + "A: " + String(repeating: "x", count: 70), limits: limits).error?.status, 431)
        XCTAssertEqual(decode(prefix + "A b: 1\r\n\r\n", limits: limits).error?.status, 400)
        // A chunk-size line (with extensions) is bounded by maxHeaderBytes too.
        let longExtension = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 70)
        XCTAssertEqual(decode(longExtension, limits: limits).error?.status, 431)
    }

    // MARK: - Transfer-Encoding and smuggling

    func testTransferEncodingRules() {
        let cases: [(headers: String, status: Int)] = [
            ("Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 5", 400),
            ("Transfer-Encoding: chunked, gzip", 400),
            ("Transfer-Encoding: gzip", 400),
            ("Transfer-Encoding: identity", 400),
            ("Transfer-Encoding: ", 400),
            ("Transfer-Encoding: chunked, chunked", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: gzip, chunked", 501),
            ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 501),
            ("Transfer-Encoding: deflate,chunked", 501),
        ]
        for (headers, status) in cases {
            let outcome = decode("POST / HTTP/1.1\r\n\(headers)\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(outcome.error?.status, status, headers)
            XCTAssertEqual(outcome.requests, [], headers)
        }
        XCTAssertEqual(decode("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n").requests.count, 1)
    }

    // MARK: - Header syntax

    func testHeaderSyntaxErrors() {
        let cases: [(line: String, why: String)] = [
            ("X: a\r\n folded", "obs-fold with SP"),
            ("X: a\r\n\tfolded", "obs-fold with HTAB"),
            ("Host : example.com", "space before colon"),
            ("Host\t: example.com", "tab before colon"),
            ("NoColon", "missing colon"),
            (": value", "empty name"),
            ("Bad@Name: v", "non-token name"),
            ("X: a\u{00}b", "NUL in value"),
            ("X: a\u{01}b", "control in value"),
            ("X: a\u{7F}b", "DEL in value"),
            ("X: a\rb", "bare CR in value"),
        ]
        for (line, why) in cases {
            XCTAssertEqual(decode("GET / HTTP/1.1\r\n\(line)\r\n\r\n").error?.status, 400, why)
        }
        // A whitespace line right after the request line is folding too.
        XCTAssertEqual(decode("GET / HTTP/1.1\r\n X: a\r\n\r\n").error?.status, 400)
    }

    func testBareCRIsRejectedAnywhereInHead() {
        XCTAssertEqual(decode("GET / HTTP/1.1\rX: a\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("GET /\r HTTP/1.1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(decode("GET / HTTP/1.1\r\nX: a\r\n\r\r\n").error?.status, 400)
        XCTAssertEqual(decode("\rGET / HTTP/1.1\r\n\r\n").error?.status, 400)
    }

    func testBareLFIsAcceptedInHead() {
        let outcome = decode("GET /lf HTTP/1.1\nX-A: 1\r\nX-B: 2\n\nPOST /p HTTP/1.0\nContent-Length: 2\n\nok")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.requests.map(\.path), ["/lf", "/p"])
        XCTAssertEqual(outcome.requests.first?.headers, ["x-a: 1", "x-b: 2"])
        XCTAssertEqual(outcome.requests.last?.body, bytes("ok"))
    }

    func testLeadingEmptyLines() {
        let tolerated = decode("\r\n\n\r\n\nGET / HTTP/1.1\r\n\r\n")
        XCTAssertNil(tolerated.error)
        XCTAssertEqual(tolerated.requests.count, 1)
        // A client that sends CRLF after a body still works.
        XCTAssertEqual(decode("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\nGET / HTTP/1.1\r\n\r\n").requests.count, 2)
        let tooMany = decode(String(repeating: "\r\n", count: HTTPRequestParser.maxLeadingEmptyLines + 1) + "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(tooMany.error?.status, 400)
    }

    // MARK: - Limits

    func testHeadSizeLimit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 64)
        let requestLine = "GET / HTTP/1.1\r\n"  // 16 bytes
        let filler = "X: " + String(repeating: "a", count: 64 - 16 - 2 - 5) + "\r\n"  // head totals exactly 64
        let exact = requestLine + filler + "\r\n"
        XCTAssertEqual(exact.utf8.count, 64)
        XCTAssertEqual(decode(exact, limits: limits).requests.count, 1)
        XCTAssertEqual(decode(requestLine + "Y" + filler + "\r\n", limits: limits).error?.status, 431)

        // 431 as soon as the limit is buffered without the end of the head: no need to wait for more.
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes(requestLine + String(repeating: "b", count: 47)))  // 63 bytes
        XCTAssertNil(try parser.next())
        parser.feed(bytes("b"))  // 64 bytes, still no end
        XCTAssertThrowsError(try parser.next()) { error in
            XCTAssertEqual((error as? HTTPParseError)?.status, 431)
        }
        // The same for an endless request line.
        XCTAssertEqual(decode("GET /" + String(repeating: "a", count: 100), limits: limits).error?.status, 431)
    }

    /// A large head is not kept for the rest of a keep-alive connection: once its bytes are
    /// consumed the buffer goes back to at most `keptCapacity`, and the next request parses.
    func testALargeHeadIsNotKeptOnceConsumed() throws {
        var parser = HTTPRequestParser(limits: HTTPParserLimits(maxHeaderBytes: 128 * 1024))
        let large = "GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: " + String(repeating: "p", count: 60_000) + "\r\n\r\n"
        parser.feed(bytes(large))
        XCTAssertGreaterThan(parser.bufferCapacity, 60_000)
        XCTAssertEqual(try parser.next()?.head.target, "/a")
        XCTAssertLessThanOrEqual(parser.bufferCapacity, HTTPRequestParser.keptCapacity, "given back once consumed")
        XCTAssertNil(try parser.next())
        // Pipelined: a request after the large one stays buffered until it is taken.
        parser.feed(bytes(large + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(try parser.next()?.head.target, "/a")
        XCTAssertEqual(try parser.next()?.head.target, "/b")
        XCTAssertLessThanOrEqual(parser.bufferCapacity, HTTPRequestParser.keptCapacity)
    }

    /// Found by the fuzzer: a CR as the last byte the head limit allows, followed by a byte other
    /// than LF, was a 400 (bare CR) when both bytes arrived together and a 431 when the CR came
    /// last in a read. It is a 431 either way: the line cannot end within the limit.
    func testCRAtTheHeadLimitIsTooLargeHoweverSplit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 64)
        let requestLine = "GET / HTTP/1.1\r\n"  // 16 bytes; the CR below is the 64th byte of the head
        for next in ["X", "\n"] {
            let input = bytes(requestLine + "X: " + String(repeating: "a", count: 44) + "\r" + next + "\r\n")
            XCTAssertEqual(decode([input], limits: limits).error?.status, 431, next.debugDescription)
            XCTAssertEqual(decodeByteByByte(input, limits: limits).error?.status, 431, next.debugDescription)
            XCTAssertEqual(decode([Array(input[..<64]), Array(input[64...])], limits: limits).error?.status, 431, next.debugDescription)
        }
        // One byte shorter, the CR is still judged: a bare CR is a 400, a CRLF ends the line.
        let shorter = bytes(requestLine + "X: " + String(repeating: "a", count: 43) + "\rX\r\n\r\n")
        XCTAssertEqual(decode([shorter], limits: limits).error?.status, 400)
        XCTAssertEqual(decodeByteByByte(shorter, limits: limits).error?.status, 400)
    }

    func testHugeHeaderWithDefaultLimits() {
        let huge = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 64 * 1024)
        XCTAssertEqual(decode(huge).error?.status, 431)
        let big = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 60 * 1024) + "\r\n\r\n"
        XCTAssertEqual(decode(big).requests.first?.headers.first?.utf8.count, "x-big: ".utf8.count + 60 * 1024)
    }

    func testHeaderCountLimit() {
        let limits = HTTPParserLimits(maxHeaderCount: 3)
        XCTAssertEqual(decode("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits).requests.count, 1)
        XCTAssertEqual(decode("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n", limits: limits).error?.status, 431)

        let fields = (0..<100).map { "H\($0): v\r\n" }.joined()
        XCTAssertEqual(decode("GET / HTTP/1.1\r\n\(fields)\r\n").requests.first?.headers.count, 100)
        XCTAssertEqual(decode("GET / HTTP/1.1\r\n\(fields)Extra: v\r\n\r\n").error?.status, 431)
    }

    // MARK: - Connection semantics

    func testKeepAlive() {
        let cases: [(version: String, connection: String?, keepAlive: Bool)] = [
            ("HTTP/1.1", nil, true),
            ("HTTP/1.1", "close", false),
            ("HTTP/1.1", "Close", false),
            ("HTTP/1.1", "keep-alive, CLOSE", false),
            ("HTTP/1.1", "closed", true),
            ("HTTP/1.1", "keep-alive", true),
            ("HTTP/1.1", "upgrade", true),
            ("HTTP/1.0", nil, false),
            ("HTTP/1.0", "keep-alive", true),
            ("HTTP/1.0", "Keep-Alive", true),
            ("HTTP/1.0", "foo, keep-alive", true),
            ("HTTP/1.0", "close", false),
            ("HTTP/1.0", "keep-alive, close", false),
        ]
        for (version, connection, keepAlive) in cases {
            let header = connection.map { "Connection: \($0)\r\n" } ?? ""
            let request = decode("GET / \(version)\r\n\(header)\r\n").requests.first
            XCTAssertEqual(request?.keepAlive, keepAlive, "\(version) \(connection ?? "-")")
        }
        // Several Connection fields are one list.
        XCTAssertEqual(decode("GET / HTTP/1.1\r\nConnection: foo\r\nConnection: close\r\n\r\n").requests.first?.keepAlive, false)
    }

    // MARK: - Feeding patterns

    func testByteAtATimeMatchesWholeFeed() {
        for text in Self.corpus {
            let input = bytes(text)
            let whole = decode([input])
            XCTAssertEqual(decodeByteByByte(input), whole, text)
            XCTAssertFalse(whole.requests.isEmpty && whole.error == nil, "corpus entry decodes to nothing: \(text)")
        }
    }

    func testSplitAtEveryPoint() {
        for text in Self.corpus {
            let input = bytes(text)
            let whole = decode([input])
            for split in 0...input.count {
                let outcome = decode([Array(input[..<split]), Array(input[split...])])
                XCTAssertEqual(outcome, whole, "split at \(split): \(text)")
            }
        }
    }

    func testTwoPipelinedRequestsInOneFeed() {
        let outcome = decode("POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.requests.map(\.path), ["/one", "/two"])
        XCTAssertEqual(outcome.requests.map(\.body), [bytes("abc"), bytes("de")])
        XCTAssertEqual(outcome.leftover, 0)
    }

    func testThreePipelinedRequestsOneAtATime() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes(
            "GET /first?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /second HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /third HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            + "GET /fourth HTTP/1.1\r\n"))
        let first = try XCTUnwrap(try parser.next())
        XCTAssertEqual(first.head.method, "GET")
        XCTAssertEqual(first.head.query, "x=1")
        XCTAssertEqual(first.body, [])
        let second = try XCTUnwrap(try parser.next())
        XCTAssertEqual(second.head.path, "/second")
        XCTAssertEqual(second.body, bytes("hello"))
        let third = try XCTUnwrap(try parser.next())
        XCTAssertEqual(third.head.method, "PUT")
        XCTAssertEqual(third.body, bytes("abcdefg"))
        // The partial fourth request stays buffered.
        XCTAssertNil(try parser.next())
        XCTAssertTrue(parser.hasStartedRequest)
        parser.feed(bytes("\r\n"))
        XCTAssertEqual(try parser.next()?.head.path, "/fourth")
        XCTAssertNil(try parser.next())
        XCTAssertTrue(parser.isIdle)
    }

    func testFeedRawBuffer() throws {
        var parser = HTTPRequestParser()
        let input = bytes("POST /raw HTTP/1.1\r\nContent-Length: 4\r\n\r\nwxyz")
        input.withUnsafeBytes { parser.feed($0) }
        let request = try XCTUnwrap(try parser.next())
        XCTAssertEqual(request.head.path, "/raw")
        XCTAssertEqual(request.body, bytes("wxyz"))
    }

    func testLongHeaderFedOneByteAtATime() throws {
        // Exercises the remembered scan position and buffer compaction (must stay linear).
        let value = String(repeating: "v", count: 60 * 1024)
        let input = bytes("GET / HTTP/1.1\r\nX-Long: \(value)\r\nX-Short: s\r\n\r\n")
        var parser = HTTPRequestParser()
        var requests: [HTTPRequest] = []
        for byte in input {
            parser.feed([byte])
            if let request = try parser.next() { requests.append(request) }
        }
        XCTAssertEqual(requests.count, 1)
        XCTAssertEqual(requests.first?.head.header("x-long"), value)
        XCTAssertEqual(requests.first?.head.header("x-short"), "s")
        XCTAssertTrue(parser.isIdle)
    }

    func testLargeBodiesAcrossManyFeeds() throws {
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var chunked: [UInt8] = []
        var offset = 0
        while offset < payload.count {
            let size = min(70_000, payload.count - offset)
            chunked.append(contentsOf: bytes(String(size, radix: 16) + "\r\n"))
            chunked.append(contentsOf: payload[offset..<(offset + size)])
            chunked.append(contentsOf: bytes("\r\n"))
            offset += size
        }
        var input = bytes("POST /a HTTP/1.1\r\nContent-Length: \(payload.count)\r\n\r\n")
        input.append(contentsOf: payload)
        input.append(contentsOf: bytes("POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
        input.append(contentsOf: chunked)
        input.append(contentsOf: bytes("0\r\n\r\n"))
        let pieces = stride(from: 0, to: input.count, by: 997).map { Array(input[$0..<min($0 + 997, input.count)]) }
        let outcome = decode(pieces)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.requests.map(\.path), ["/a", "/b"])
        XCTAssertEqual(outcome.requests.first?.body, payload)
        XCTAssertEqual(outcome.requests.last?.body, payload)
    }

    // MARK: - Parser state

    func testErrorIsSticky() {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"))
        var first: HTTPParseError?
        XCTAssertThrowsError(try parser.next()) { first = $0 as? HTTPParseError }
        XCTAssertEqual(first?.status, 400)
        parser.feed(bytes("GET / HTTP/1.1\r\n\r\n"))
        for _ in 0..<2 {
            XCTAssertThrowsError(try parser.next()) { error in
                XCTAssertEqual(error as? HTTPParseError, first)
            }
        }
        XCTAssertFalse(parser.isIdle)
    }

    func testErrorAfterGoodRequestsInSameFeed() {
        let outcome = decode("GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/1.1\r\nX : y\r\n\r\nGET /never HTTP/1.1\r\n\r\n")
        XCTAssertEqual(outcome.requests.map(\.path), ["/ok"])
        XCTAssertEqual(outcome.error?.status, 400)
    }

    func testIdleAndStartedFlags() throws {
        var parser = HTTPRequestParser()
        XCTAssertTrue(parser.isIdle)
        XCTAssertFalse(parser.hasStartedRequest)
        XCTAssertNil(try parser.next())
        XCTAssertTrue(parser.isIdle)

        parser.feed(bytes("G"))
        XCTAssertFalse(parser.isIdle)
        XCTAssertTrue(parser.hasStartedRequest)
        XCTAssertNil(try parser.next())
        XCTAssertFalse(parser.isIdle)

        parser.feed(bytes("ET / HTTP/1.1\r\nContent-Length: 2\r\n\r\na"))
        XCTAssertNil(try parser.next())  // body incomplete
        XCTAssertFalse(parser.isIdle)
        XCTAssertEqual(parser.bufferedByteCount, 0)

        parser.feed(bytes("b"))
        XCTAssertEqual(try parser.next()?.body, bytes("ab"))
        XCTAssertTrue(parser.isIdle)
        XCTAssertFalse(parser.hasStartedRequest)
    }
}

// MARK: - Helpers

private extension HTTPRequestParserTests {
    /// A comparable snapshot of a decoded request.
    struct Decoded: Equatable {
        var method: String
        var target: String
        var path: String
        var query: String
        var versionMinor: Int
        var headers: [String]  // "name: value"
        var keepAlive: Bool
        var body: [UInt8]

        init(_ request: HTTPRequest) {
            method = request.head.method
            target = request.head.target
            path = request.head.path
            query = request.head.query
            versionMinor = request.head.versionMinor
            headers = request.head.headers.map { "\($0.name): \($0.value)" }
            keepAlive = request.head.keepAlive
            body = request.body
        }
    }

    /// Everything a parser produced for some input: requests in order, then maybe an error.
    struct Outcome: Equatable {
        var requests: [Decoded] = []
        var error: HTTPParseError?
        /// Bytes still buffered when the input ran out (without an error).
        var leftover = 0
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Feeds `chunks` one after the other, draining `next()` after each.
    func decode(_ chunks: [[UInt8]], limits: HTTPParserLimits = HTTPParserLimits()) -> Outcome {
        var parser = HTTPRequestParser(limits: limits)
        var outcome = Outcome()
        for chunk in chunks {
            parser.feed(chunk)
            do throws(HTTPParseError) {
                while let request = try parser.next() {
                    outcome.requests.append(Decoded(request))
                }
            } catch {
                outcome.error = error
                return outcome
            }
        }
        outcome.leftover = parser.bufferedByteCount
        return outcome
    }

    func decode(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) -> Outcome {
        decode([bytes(text)], limits: limits)
    }

    func decodeByteByByte(_ input: [UInt8], limits: HTTPParserLimits = HTTPParserLimits()) -> Outcome {
        decode(input.map { [$0] }, limits: limits)
    }

    /// Valid and invalid inputs used by the feeding-pattern tests.
    static let corpus: [String] = [
        "GET / HTTP/1.1\r\n\r\n",
        "GET /api/user/group?status=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        "POST /api/login HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\":\"\u{5F20}\"}",
        "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n",
        "\r\n\r\nGET /lf HTTP/1.1\nX-A: 1\n\n",
        "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /z HTTP/1.1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        // Errors.
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
        "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost : x\r\n\r\n",
    ]
}
