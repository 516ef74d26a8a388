@testable import Gateway
import XCTest
import WireProtocol

/// The bytes of an answer: a large body is written from its own buffer, behind the same head.
final class HTTPResponseTests: XCTestCase {
    func testPiecesAreTheSerializedAnswer() {
        for size in [0, 5, StreamConnection.ownBufferBytes - 1, StreamConnection.ownBufferBytes, 40_000] {
            var response = HTTPResponse(status: size == 5 ? 404 : 200, body: Array(repeating: UInt8(ascii: "x"), count: size),
                                        headers: [(name: "Set-Cookie", value: "a=1")])
            response.requestID = "gw-1"
            for (keepAlive, headOnly) in [(true, false), (false, false), (true, true)] {
                let pieces = response.pieces(keepAlive: keepAlive, headOnly: headOnly)
                XCTAssertEqual(Array(pieces.joined()), response.serialized(keepAlive: keepAlive, headOnly: headOnly), "\(size) bytes")
                XCTAssertEqual(pieces.count, !headOnly && size >= StreamConnection.ownBufferBytes ? 2 : 1)
            }
        }
        let head = String(decoding: HTTPResponse(status: 200, body: Array("{}".utf8)).serialized(keepAlive: true), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(head.hasSuffix("Connection: keep-alive\r\n\r\n{}"))
    }
}
