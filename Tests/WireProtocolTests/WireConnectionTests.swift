#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import XCTest
@testable import WireProtocol

/// Connections over real Unix sockets: multiplexing, ordering, failures, reconnects, drain.
final class WireConnectionTests: XCTestCase {
    var loop: EventLoop!
    var path: String!

    override func setUpWithError() throws {
        loop = try EventLoop.start(name: "test-loop")
        path = "/tmp/crm-wire-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    override func tearDown() {
        loop.stop()
        unlink(path)
    }

    /// A server that echoes `params.n` back as `body.n`, after `delayMillis(n)`.
    func makeServer(delayMillis: @escaping @Sendable (Int64) -> Int = { _ in 0 }) throws -> WireServer {
        let server = WireServer(loop: loop, endpoint: .unix(path: path), hello: Hello(peer: "test", replica: "1")) { request, responder in
            let n = request.params["n"]?.intValue ?? -1
            let body = JSON.object(JSONObject([("n", .int(n)), ("rid", .string(request.requestID))]))
            let delay = delayMillis(n)
            if delay == 0 {
                responder.respond(WireResponse(status: 200, body: body))
            } else {
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) {
                    responder.respond(WireResponse(status: 200, body: body))
                }
            }
        }
        try server.start()
        return server
    }

    func makeClient(holdMillis: Int64 = 5000) -> WireClient {
        var config = WireClientConfiguration()
        config.holdMillis = holdMillis
        let client = WireClient(loop: loop, endpoint: .unix(path: path), serviceName: "test", hello: Hello(peer: "client", replica: "1"), configuration: config)
        client.start()
        return client
    }


    /// Runs `body` on the loop and waits for its result.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            box.value = body()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    func testResponsesOutOfOrderAreMatchedByID() async throws {
        // Earlier requests answer later: 10 → 200 ms, 1 → 20 ms.
        let server = try makeServer { n in Int(20 * (11 - n)) }
        let client = makeClient()
        let order = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in Int64(1)...10 {
                group.addTask {
                    let result = await client.send(makeRequest(n))
                    let response = try result.get()
                    XCTAssertEqual(response.body["n"]?.intValue, n)
                    order.append(n)
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(order.values.count, 10)
        XCTAssertEqual(order.values.first, 10, "the fastest answer (request 10) arrives first")
        XCTAssertEqual(onLoop { server.connectionCount }, 1)
    }

    func testThousandConcurrentRequestsOnOneConnection() async throws {
        let server = try makeServer { n in Int(n % 7) }
        let client = makeClient()
        let results = try await withThrowingTaskGroup(of: (Int64, Int64?).self) { group in
            for n in Int64(0)..<1000 {
                group.addTask {
                    let response = try await client.send(makeRequest(n)).get()
                    return (n, response.body["n"]?.intValue)
                }
            }
            var all: [(Int64, Int64?)] = []
            for try await pair in group { all.append(pair) }
            return all
        }
        XCTAssertEqual(results.count, 1000)
        for (sent, answered) in results { XCTAssertEqual(sent, answered) }
        XCTAssertEqual(onLoop { server.connectionCount }, 1, "all 1,000 requests share one connection")
    }

    func testRequestSentBeforeServerStartsIsHeldThenAnswered() async throws {
        let client = makeClient(holdMillis: 5000)
        async let answer = client.send(makeRequest(42))
        let held = await eventually { onLoop { client.waitingCount } == 1 }
        XCTAssertTrue(held, "held while no server listens")
        let server = try makeServer()
        let response = try await answer.get()
        XCTAssertEqual(response.body["n"]?.intValue, 42)
        _ = server
    }

    func testUnreachableServiceFailsAfterHoldTime() async throws {
        let client = makeClient(holdMillis: 300)
        let started = monotonicMillis()
        let result = await client.send(makeRequest(1))
        XCTAssertEqual(result.failureValue, .unavailable)
        XCTAssertGreaterThanOrEqual(monotonicMillis() - started, 300)
    }

    func testClientReconnectsAfterServerRestart() async throws {
        var server: WireServer? = try makeServer()
        let client = makeClient()
        let first = try await client.send(makeRequest(1)).get()
        XCTAssertEqual(first.body["n"]?.intValue, 1)
        let drained = DispatchSemaphore(value: 0)
        server?.drain { drained.signal() }
        drained.wait()
        server = nil
        // Sent while no server is listening: held, then answered by the new one.
        async let second = client.send(makeRequest(2))
        let held = await eventually { onLoop { client.waitingCount } == 1 }
        XCTAssertTrue(held, "held while no server listens")
        server = try makeServer()
        let response = try await second.get()
        XCTAssertEqual(response.body["n"]?.intValue, 2)
        XCTAssertEqual(response.body["rid"]?.stringValue, "r2", "the resent request keeps its request id")
    }

    func testDrainAnswersInFlightRequestsBeforeClosing() async throws {
        let arrived = Flag()
        let server = try makeServer { _ in arrived.set(); return 300 }
        let client = makeClient()
        async let slow = client.send(makeRequest(7))
        let inFlight = await eventually { arrived.isSet }
        XCTAssertTrue(inFlight, "the server is working on the request")
        let drained = DispatchSemaphore(value: 0)
        server.drain { drained.signal() }
        let response = try await slow.get()
        XCTAssertEqual(response.body["n"]?.intValue, 7)
        XCTAssertEqual(drained.wait(timeout: .now() + 5), .success)
    }

    func testServerSurvivesPeerDyingMidFrame() async throws {
        let server = try makeServer()
        let raw = try RawSocket(path: path)
        raw.send(Message.hello(Hello(peer: "raw", replica: "1")).frame())
        let frame = Message.request(makeRequest(5)).frame()
        raw.send(Array(frame.prefix(frame.count / 2)))
        raw.close()
        let closed = await eventually { onLoop { server.connectionCount } == 0 }
        XCTAssertTrue(closed, "the dead peer's connection is closed")
        let client = makeClient()
        let response = try await client.send(makeRequest(6)).get()
        XCTAssertEqual(response.body["n"]?.intValue, 6)
    }

    func testClientResendsWhenServerDiesMidResponse() async throws {
        // A fake service that reads the request and dies after half an answer.
        let listener = try Socket.listen(on: .unix(path: path))
        let fake = Thread {
            var pollfd = Glibc.pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            _ = poll(&pollfd, 1, 5000)
            guard let fd = try? Socket.accept(listener) else { return }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
            let hello = Message.hello(Hello(peer: "fake", replica: "1")).frame()
            _ = hello.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            var decoder = FrameDecoder()
            var buffer = [UInt8](repeating: 0, count: 4096)
            var requestID: UInt64 = 0
            loop: while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                decoder.feed(Array(buffer[0..<n]))
                while let payload = try? decoder.nextFrame() {
                    if case .request(let r)? = try? Message.decode(payload) { requestID = r.id; break loop }
                }
            }
            let answer = Array(Message.response(WireResponse(id: requestID, status: 200, body: .string("never complete"))).frame().dropLast(3))
            _ = answer.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            Glibc.close(fd)
            Glibc.close(listener)
        }
        fake.start()
        let client = makeClient()
        async let answer = client.send(makeRequest(9))
        let died = await eventually { fake.isFinished }
        XCTAssertTrue(died, "the fake service took the request and died")
        let server = try makeServer()
        let response = try await answer.get()
        XCTAssertEqual(response.body["n"]?.intValue, 9, "answered by the real service after the fake one died")
        _ = server
    }

    /// Sends `frames` to a fresh server on a raw socket and checks that it answers an error
    /// frame mentioning `expected`, then closes. Answers every message received.
    @discardableResult
    func expectProtocolError(_ frames: [[UInt8]], mentioning expected: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Message] {
        let server = try makeServer()
        defer { withExtendedLifetime(server) {} }
        let raw = try RawSocket(path: path)
        for frame in frames { raw.send(frame) }
        let messages = raw.readMessagesUntilClosed()
        guard case .error(let reason)? = messages.last else {
            XCTFail("expected an error frame, got \(messages)", file: file, line: line)
            return messages
        }
        XCTAssertTrue(reason.contains(expected), reason, file: file, line: line)
        return messages
    }

    var rawHello: [UInt8] { Message.hello(Hello(peer: "raw", replica: "1")).frame() }

    func testOversizeFrameIsAnsweredWithErrorAndClosed() throws {
        let messages = try expectProtocolError([rawHello, [0x7f, 0xff, 0xff, 0xff]], mentioning: "exceeds")
        XCTAssertEqual(messages.count, 2, "hello, then an error")
    }

    func testNonObjectFrameIsAProtocolError() throws {
        try expectProtocolError([rawHello, FrameEncoder.encode(Array("[1,2,3]".utf8))], mentioning: "not a JSON object")
    }

    func testInvalidJSONFrameIsAProtocolError() throws {
        try expectProtocolError([rawHello, FrameEncoder.encode(Array("{\"kind\":".utf8))], mentioning: "not valid JSON")
    }

    func testUnknownFrameKindIsAProtocolError() throws {
        try expectProtocolError([rawHello, FrameEncoder.encode(Array("{\"kind\":\"gossip\"}".utf8))], mentioning: "unknown frame kind")
    }

    func testVersionMismatchIsRefusedClearly() throws {
        try expectProtocolError([Message.hello(Hello(version: 99, peer: "raw", replica: "1")).frame()], mentioning: "version 99")
    }

    func testFirstFrameMustBeHello() throws {
        try expectProtocolError([Message.ping(id: 1).frame()], mentioning: "hello")
    }

    /// Frames that arrive whole are read where they lie, the rest is buffered: whatever the
    /// split between two reads (whole frames, then a part; a part, then whole frames), every
    /// frame is answered once, in order.
    func testFramesSplitAnywhereAcrossReadsAreAllAnswered() throws {
        let server = try makeServer()
        defer { withExtendedLifetime(server) {} }
        let pings = (1...4).flatMap { Message.ping(id: UInt64($0)).frame() }
        for split in stride(from: 0, through: pings.count, by: 3) {
            let raw = try RawSocket(path: path)
            raw.send(rawHello)
            raw.send(Array(pings[..<split]))
            usleep(2_000)
            raw.send(Array(pings[split...]))
            let messages = raw.readMessages(count: 5)
            let pongs = messages.compactMap { message -> UInt64? in if case .pong(let id) = message { return id } else { return nil } }
            XCTAssertEqual(pongs, [1, 2, 3, 4], "split at \(split)")
        }
    }

    /// A frame over the limit after whole frames of the same read: those are answered first.
    func testOversizeFrameAfterWholeFramesInOneRead() throws {
        let messages = try expectProtocolError([rawHello + Message.ping(id: 5).frame() + [0x7f, 0xff, 0xff, 0xff]], mentioning: "exceeds")
        XCTAssertEqual(messages.count, 3, "hello, the pong, then an error")
        guard case .pong(5)? = messages.dropFirst().first else { return XCTFail("expected the pong first, got \(messages)") }
    }

    func testPingPong() throws {
        let server = try makeServer()
        defer { withExtendedLifetime(server) {} }
        let raw = try RawSocket(path: path)
        raw.send(Message.hello(Hello(peer: "raw", replica: "1")).frame() + Message.ping(id: 77).frame())
        let messages = raw.readMessages(count: 2)
        guard case .pong(let id)? = messages.last else { return XCTFail("expected a pong, got \(messages)") }
        XCTAssertEqual(id, 77)
    }

    func testEndpointParsing() throws {
        XCTAssertEqual(try Endpoint(parsing: "unix:/run/crm/users.sock"), .unix(path: "/run/crm/users.sock"))
        XCTAssertEqual(try Endpoint(parsing: "/run/x.sock"), .unix(path: "/run/x.sock"))
        XCTAssertEqual(try Endpoint(parsing: "tcp:127.0.0.1:7000"), .tcp(host: "127.0.0.1", port: 7000))
        XCTAssertEqual(try Endpoint(parsing: "tcp:[::1]:7000"), .tcp(host: "::1", port: 7000))
        XCTAssertThrowsError(try Endpoint(parsing: "tcp:host"))
        XCTAssertThrowsError(try Endpoint(parsing: "unix:/" + String(repeating: "a", count: 120)))
    }

    func testSameFramingOverTCP() async throws {
        // Port 0: the system picks a free one.
        let server = WireServer(loop: loop, endpoint: .tcp(host: "127.0.0.1", port: 0), hello: Hello(peer: "tcp", replica: "1")) { request, responder in
            responder.respond(WireResponse(status: 200, body: .object(request.params)))
        }
        try server.start()
        let bound = try XCTUnwrap(server.boundEndpoint)
        guard case .tcp(_, let port) = bound, port != 0 else { return XCTFail("no port: \(bound)") }
        let client = WireClient(loop: loop, endpoint: bound, serviceName: "tcp", hello: Hello(peer: "c", replica: "1"))
        client.start()
        let response = try await client.send(makeRequest(3)).get()
        XCTAssertEqual(response.body["n"]?.intValue, 3)
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int64] = []
    func append(_ v: Int64) { lock.withLock { items.append(v) } }
    var values: [Int64] { lock.withLock { items } }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// A blocking client socket for speaking raw frames to a server.
final class RawSocket {
    let fd: Int32
    private var decoder = FrameDecoder()

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = Socket.unixAddress(path)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { throw SyscallError(call: "connect", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    func readMessagesUntilClosed() -> [Message] {
        readMessages(count: Int.max)
    }

    func readMessages(count: Int) -> [Message] {
        var messages: [Message] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while messages.count < count {
            while messages.count < count, let payload = try? decoder.nextFrame() {
                if let message = try? Message.decode(payload) { messages.append(message) }
            }
            if messages.count >= count { break }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            decoder.feed(Array(buffer[0..<n]))
        }
        return messages
    }
}

/// A request carrying `n`, with request id `r<n>`.
func makeRequest(_ n: Int64) -> WireRequest {
    WireRequest(method: "GET", path: "/x", params: JSONObject([("n", .int(n))]), caller: nil, requestID: "r\(n)", deadline: 0)
}
