#if canImport(Glibc)
import Glibc
#endif
@testable import Gateway
import Synchronization
import XCTest
import WireProtocol

/// The bytes of an answer: a large body is written from its own buffer, behind the same head.
final class HTTPResponseTests: XCTestCase {
    func testWrittenAnswersAreTheSerializedOnesInOrder() throws {
        let loop = try EventLoop.start(name: "http-response")
        defer { loop.stop() }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        defer { Glibc.close(fds[1]) }
        // A stalled writer fails the test instead of hanging it.
        var patience = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        // Every size around the one from which a body is written from its own buffer, each
        // kept alive, closing and HEAD, queued in one iteration as pipelined answers are.
        var answers: [(HTTPResponse, keepAlive: Bool, headOnly: Bool)] = []
        for size in [0, 5, StreamConnection.ownBufferBytes - 1, StreamConnection.ownBufferBytes, 40_000] {
            var response = HTTPResponse(status: size == 5 ? 404 : 200, body: (0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) },
                                        headers: [(name: "Set-Cookie", value: "a=1")])
            response.requestID = "gw-1"
            for (keepAlive, headOnly) in [(true, false), (false, false), (true, true)] { answers.append((response, keepAlive, headOnly)) }
        }
        let expected = answers.flatMap { $0.0.serialized(keepAlive: $0.keepAlive, headOnly: $0.headOnly) }
        let fd = fds[0]
        let queued = answers
        let stream = Mutex<StreamConnection?>(nil)
        loop.execute {
            let connection = StreamConnection(fd: fd, loop: loop)
            stream.withLock { $0 = connection }
            do { try connection.start() } catch { XCTFail("start: \(error)") }
            for (response, keepAlive, headOnly) in queued { response.write(to: connection, keepAlive: keepAlive, headOnly: headOnly) }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < expected.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fds[1], $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        XCTAssertTrue(received == expected, "\(received.count) bytes written, \(expected.count) expected")
        loop.execute { stream.withLock { $0?.close() } }
    }

    func testSerializedAnswer() {
        let head = String(decoding: HTTPResponse(status: 200, body: Array("{}".utf8)).serialized(keepAlive: true), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(head.hasSuffix("Connection: keep-alive\r\n\r\n{}"))
        var answer = HTTPResponse(status: 404, body: Array("{}".utf8), contentType: "text/plain; charset=utf-8",
                                  headers: [(name: "Set-Cookie", value: "crm_session=é; Path=/")], close: true)
        answer.requestID = "gw-0a1b-t12345678901234567890"
        XCTAssertEqual(String(decoding: answer.serialized(keepAlive: true), as: UTF8.self),
                       "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
                       + "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nSet-Cookie: crm_session=é; Path=/\r\n"
                       + "X-Request-Id: gw-0a1b-t12345678901234567890\r\nConnection: close\r\n\r\n{}")
    }
}

/// The ids the gateway makes: its prefix, a letter for the number of digits, and a counter in
/// decimal, so that one prefix's ids sort as their numbers do.
final class RequestIDTests: XCTestCase {
    func testNumberedIDs() {
        let prefix = Array("gw-0a1b-t".utf8)
        XCTAssertEqual(Gateway.numbered(prefix, 0), "gw-0a1b-ta0")
        XCTAssertEqual(Gateway.numbered(prefix, 9), "gw-0a1b-ta9")
        XCTAssertEqual(Gateway.numbered(prefix, 10), "gw-0a1b-tb10")
        XCTAssertEqual(Gateway.numbered(prefix, 1_234_567), "gw-0a1b-tg1234567")
        XCTAssertEqual(Gateway.numbered(prefix, .max), "gw-0a1b-tt18446744073709551615")
        XCTAssertEqual(Gateway.numbered([], 42), "b42")
    }

    func testNumberedIDsSortAsTheirNumbers() {
        let prefix = Array("gw-0a1b-t".utf8)
        let numbers: [UInt64] = [0, 1, 9, 10, 11, 99, 100, 2291, 2292, 22_910, 22_918, 99_999, 100_000, 1_000_000_007, .max - 1, .max]
        let ids = numbers.map { Gateway.numbered(prefix, $0) }
        XCTAssertEqual(ids.sorted(), ids, "byte order is number order")
        XCTAssertEqual(Set(ids).count, ids.count)
    }

    /// The loops of one process share the prefix and the counter: ids made by turns on two
    /// loops sort in the order made; another process (group) has another prefix.
    func testLoopsOfOneProcessShareThePrefixAndCounter() throws {
        let configuration = GatewayConfiguration()
        let group = try GatewayGroup(configuration: configuration)
        let loops = try (0..<2).map { try EventLoop.start(name: "rid-\($0)") }
        defer { for loop in loops { loop.stop() } }
        let gateways = try loops.map { try Gateway(configuration: configuration, loop: $0, group: group) }
        let ids = (0..<40).map { gateways[$0 % 2].newRequestID() }
        XCTAssertEqual(ids.sorted(), ids, "in the order made, whichever loop made them")
        XCTAssertEqual(Set(ids).count, ids.count)
        let prefix = String(decoding: group.requestIDPrefix, as: UTF8.self)
        XCTAssertTrue(ids.allSatisfy { $0.hasPrefix(prefix + "t") }, "\(ids.first ?? "")")
        let other = try GatewayGroup(configuration: configuration)
        XCTAssertNotEqual(other.requestIDPrefix, group.requestIDPrefix)
    }
}
