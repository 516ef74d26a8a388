#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import XCTest
@testable import WireProtocol

/// One bad request never harms another: frame limits are checked where frames are made,
/// protocol errors fail only what was in flight (never resent), resends are bounded, and every
/// connection state and every queued request has a deadline.
final class WireFailureTests: XCTestCase {
    var loop: EventLoop!
    var path: String!

    override func setUpWithError() throws {
        loop = try EventLoop.start(name: "failure-loop")
        path = "/tmp/crm-wfail-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    override func tearDown() {
        loop.stop()
        unlink(path)
    }

    func makeClient(holdMillis: Int64 = 5000, maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength, helloTimeoutMillis: Int64 = 3000) -> WireClient {
        var config = WireClientConfiguration()
        config.holdMillis = holdMillis
        config.maxFrameLength = maxFrameLength
        config.helloTimeoutMillis = helloTimeoutMillis
        let client = WireClient(loop: loop, endpoint: .unix(path: path), serviceName: "test", hello: Hello(peer: "client", replica: "1"), configuration: config)
        client.start()
        return client
    }

    /// An echo server; `n == 1` answers `size` bytes of text.
    func makeServer(maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength, bigAnswer size: Int = 0) throws -> WireServer {
        let server = WireServer(loop: loop, endpoint: .unix(path: path), hello: Hello(peer: "test", replica: "1"), maxFrameLength: maxFrameLength) { request, responder in
            let n = request.params["n"]?.intValue ?? -1
            let text = n == 1 ? String(repeating: "x", count: size) : "small"
            responder.respond(WireResponse(status: 200, body: .object(JSONObject([("n", .int(n)), ("text", .string(text))]))))
        }
        try server.start()
        return server
    }

    func testRequestTooLargeForAFrameIsRefusedAloneAndNeverSent() async throws {
        let server = try makeServer(maxFrameLength: 1024)
        let client = makeClient(maxFrameLength: 1024)
        let first = try await client.send(makeRequest(2)).get()
        XCTAssertEqual(first.body["n"]?.intValue, 2)
        var big = makeRequest(3)
        big.params["text"] = .string(String(repeating: "\u{1}", count: 300))  // 300 bytes → 1,800 once escaped
        let refused = await client.send(big)
        guard case .tooLarge(let bytes)? = refused.failureValue else { return XCTFail("expected tooLarge, got \(refused)") }
        XCTAssertGreaterThan(bytes, 1024)
        let after = try await client.send(makeRequest(4)).get()
        XCTAssertEqual(after.body["n"]?.intValue, 4)
        XCTAssertEqual(client.retries, 0, "nothing was resent")
        let connections = await onLoop { server.connectionCount }
        XCTAssertEqual(connections, 1, "the shared connection survived")
    }

    func testAnswerTooLargeForAFrameBecomesAnErrorForThatRequestOnly() async throws {
        let server = try makeServer(maxFrameLength: 1024, bigAnswer: 5000)
        let client = makeClient(maxFrameLength: 1024)
        async let big = client.send(makeRequest(1))
        async let small = client.send(makeRequest(2))
        let (bigResult, smallResult) = await (big, small)
        let answer = try bigResult.get()
        XCTAssertEqual(answer.status, 500)
        XCTAssertTrue(answer.body["msg"]?.stringValue?.contains("fewer rows") == true, "\(answer.body)")
        XCTAssertEqual(try smallResult.get().body["n"]?.intValue, 2)
        XCTAssertEqual(client.retries, 0)
        let connections = await onLoop { server.connectionCount }
        XCTAssertEqual(connections, 1)
    }

    func testProtocolErrorFailsInFlightRequestsAndDoesNotResendThem() async throws {
        let fake = try FakeService(path: path) { _ in .garbage }
        let client = makeClient()
        let started = monotonicMillis()
        let result = await client.send(makeRequest(7))
        guard case .protocolFailure? = result.failureValue else { return XCTFail("expected protocolFailure, got \(result)") }
        XCTAssertLessThan(monotonicMillis() - started, 1000, "answered at once, not after the hold time")
        // No resend may arrive: nothing to poll for, so the wait itself is the check.
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(fake.requestIDs, ["r7"], "the request was written once")
        fake.stop()
    }

    /// A response frame that names its request but whose body is broken fails that request
    /// alone (502, naming the problem); the shared connection and the next answer on it stay.
    func testABrokenAnswerFailsOnlyItsOwnRequest() async throws {
        let fake = try FakeService(path: path) { $0.params["n"]?.intValue == 1 ? .brokenBody : .answer }
        let client = makeClient()
        let broken = try await client.send(makeRequest(1)).get()
        XCTAssertEqual(broken.status, 502)
        XCTAssertEqual(broken.body["status"]?.intValue, 1)
        XCTAssertTrue(broken.body["msg"]?.stringValue?.contains("not valid") == true, "\(broken.body)")
        let next = try await client.send(makeRequest(2)).get()
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(next.body["n"]?.intValue, 2)
        XCTAssertEqual(fake.connectionCount, 1, "the connection stayed up")
        XCTAssertEqual(fake.requestIDs, ["r1", "r2"], "nothing was resent")
        fake.stop()
    }

    func testRequestThatKeepsLosingItsConnectionIsResentBoundedTimes() async throws {
        let fake = try FakeService(path: path) { _ in .hangUp }
        let client = makeClient(holdMillis: 20_000)
        let started = monotonicMillis()
        let result = await client.send(makeRequest(5))
        XCTAssertEqual(result.failureValue, .connectionLost)
        XCTAssertLessThan(monotonicMillis() - started, 5000, "the hold time is not pushed forward by each loss")
        XCTAssertEqual(fake.requestIDs, ["r5", "r5", "r5"], "written maxTransmissions times, always with the same request id")
        fake.stop()
    }

    func testHoldDeadlineIsFixedWhenTheRequestFirstArrives() async throws {
        // Every connection is lost before the hello: the request waits, never written, and
        // fails when its hold time (counted from its arrival) ends.
        let fake = try FakeService(path: path, sendHello: false) { _ in .hangUp }
        let client = makeClient(holdMillis: 600, helloTimeoutMillis: 100)
        let started = monotonicMillis()
        let result = await client.send(makeRequest(1))
        let elapsed = monotonicMillis() - started
        XCTAssertEqual(result.failureValue, .unavailable)
        XCTAssertGreaterThanOrEqual(elapsed, 600)
        XCTAssertLessThan(elapsed, 1500)
        XCTAssertGreaterThanOrEqual(fake.connectionCount, 2, "a peer that never says hello is dropped and tried again")
        fake.stop()
    }

    func testCompletionThatSendsAgainIsNeverLost() throws {
        // Nothing listens: the first request fails after its hold time, and its completion
        // sends a second one from inside the sweep that failed the first.
        let client = makeClient(holdMillis: 200)
        let answered = expectation(description: "the second request is answered")
        let second = ResultBox<Result<WireResponse, WireClientError>>()
        client.send(makeRequest(1)) { _ in
            client.sendOnLoop(makeRequest(2)) { result in
                second.value = result
                answered.fulfill()
            }
        }
        wait(for: [answered], timeout: 3)
        XCTAssertEqual(second.value?.failureValue, .unavailable)
    }

    func testServerClosesAPeerThatNeverSaysHello() throws {
        let server = try makeServer()
        server.helloTimeoutMillis = 200
        defer { withExtendedLifetime(server) {} }
        let raw = try RawSocket(path: path)
        let started = monotonicMillis()
        let messages = raw.readMessagesUntilClosed()
        XCTAssertEqual(messages.count, 1, "only the server's hello")
        XCTAssertLessThan(monotonicMillis() - started, 2000, "closed by the hello deadline, not by the test's 5 s read timeout")
    }

    /// A server whose socket path a replacement bound and left (it died) binds the path again
    /// when asked, keeping the connections it has; asked while the path is its own, it changes
    /// nothing.
    func testReclaimSocketPathBindsThePathAgainOnlyWhenItIsNoLongerItsOwn() async throws {
        let server = try makeServer()
        let client = makeClient()
        let first = try await client.send(makeRequest(2)).get()
        XCTAssertEqual(first.body["n"]?.intValue, 2)
        var before = stat()
        XCTAssertEqual(stat(path, &before), 0)
        server.reclaimSocketPath()
        _ = await onLoop { 0 }
        var now = stat()
        XCTAssertEqual(stat(path, &now), 0)
        XCTAssertEqual(now.st_ino, before.st_ino, "still its own: left as it is")

        // A replacement binds the path anew, then dies: a dead socket is left there.
        close(try Socket.listen(on: .unix(path: path)))
        XCTAssertEqual(connectErrno(), ECONNREFUSED)
        server.reclaimSocketPath()
        _ = await onLoop { 0 }
        XCTAssertEqual(connectErrno(), 0, "the path is served again")
        let fresh = makeClient()
        let viaNew = try await fresh.send(makeRequest(5)).get()
        XCTAssertEqual(viaNew.body["n"]?.intValue, 5)
        let viaOld = try await client.send(makeRequest(6)).get()
        XCTAssertEqual(viaOld.body["n"]?.intValue, 6, "the open connection stayed")
        let connections = await onLoop { server.connectionCount }
        XCTAssertGreaterThanOrEqual(connections, 2)
    }

    /// A socket file is told apart from the next one bound at its path by inode and change time,
    /// so an inode number given out again cannot pass for the old file.
    func testSocketFileTellsAFileFromTheNextOneAtItsPath() throws {
        XCTAssertNil(SocketFile(path))
        close(try Socket.listen(on: .unix(path: path)))
        let first = try XCTUnwrap(SocketFile(path))
        XCTAssertEqual(SocketFile(path), first)
        close(try Socket.listen(on: .unix(path: path)))
        let second = try XCTUnwrap(SocketFile(path))
        XCTAssertNotEqual(second, first)
        let reused = SocketFile(inode: first.inode, changedSeconds: second.changedSeconds, changedNanoseconds: second.changedNanoseconds)
        XCTAssertNotEqual(reused, first, "the same inode number, changed at another time")
    }

    /// 0 when a Unix socket connects to `path`, else the errno.
    func connectErrno() -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = Socket.unixAddress(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return rc == 0 ? 0 : errno
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }
}

/// A hand-written service on a blocking socket, for failures a real `WireServer` never makes.
final class FakeService: @unchecked Sendable {
    enum Action { case garbage, hangUp, brokenBody, answer }

    /// What the fake saw, shared with its thread.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var ids: [String] = []
        private var connections = 0
        func record(_ request: WireRequest) { lock.withLock { ids.append(request.requestID) } }
        func connected() { lock.withLock { connections += 1 } }
        var requestIDs: [String] { lock.withLock { ids } }
        var connectionCount: Int { lock.withLock { connections } }
    }

    private let tally = Tally()
    private let stopped = ManagedAtomicFlag()
    private let thread: Thread

    var requestIDs: [String] { tally.requestIDs }
    var connectionCount: Int { tally.connectionCount }

    init(path: String, sendHello: Bool = true, onRequest: @escaping @Sendable (WireRequest) -> Action) throws {
        let listener = try Socket.listen(on: .unix(path: path))
        let stopped = self.stopped
        let tally = self.tally
        thread = Thread {
            while !stopped.isSet {
                var pollfd = Glibc.pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&pollfd, 1, 50) > 0, let fd = try? Socket.accept(listener) else { continue }
                tally.connected()
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
                if sendHello {
                    let hello = Message.hello(Hello(peer: "fake", replica: "1")).frame()
                    _ = hello.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                } else {
                    Glibc.close(fd)
                    continue
                }
                var decoder = FrameDecoder()
                var buffer = [UInt8](repeating: 0, count: 65536)
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                connection: while true {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n <= 0 { break }
                    decoder.feed(Array(buffer[0..<n]))
                    while let payload = try? decoder.nextFrame() {
                        guard case .request(let request)? = try? Message.decode(payload) else { continue }
                        tally.record(request)
                        switch onRequest(request) {
                        case .garbage:
                            let bad = FrameEncoder.encode(Array("{\"kind\":".utf8))
                            _ = bad.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            // Keep reading: the client must close, and must not resend.
                        case .hangUp:
                            break connection
                        case .brokenBody:
                            let bad = FrameEncoder.encode(Array("{\"kind\":\"response\",\"id\":\(request.id),\"status\":200,\"body\":{\"n\":}}".utf8))
                            _ = bad.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        case .answer:
                            let good = Message.response(WireResponse(id: request.id, status: 200, body: .object(JSONObject([("n", request.params["n"] ?? .null)])))).frame()
                            _ = good.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        }
                    }
                }
                Glibc.close(fd)
            }
            Glibc.close(listener)
        }
        thread.start()
    }

    func stop() { stopped.set() }
}

final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Stream-level deadlines, on a socket pair whose small buffers fill deterministically.
final class StreamDeadlineTests: XCTestCase {
    func testCloseAfterFlushHasADeadlineWhenThePeerNeverReads() throws {
        let loop = try EventLoop.start(name: "stream-loop")
        defer { loop.stop() }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { Glibc.close(fds[1]) }
        let fd = fds[0]
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let closed = expectation(description: "closed by the deadline")
        let watcher = CloseWatcher { closed.fulfill() }
        let started = monotonicMillis()
        loop.execute {
            let stream = StreamConnection(fd: fd, loop: loop)
            stream.delegate = watcher
            try? stream.start()
            stream.write([UInt8](repeating: 0x61, count: 8 << 20))  // far more than the pair buffers
            XCTAssertGreaterThan(stream.pendingOutputBytes, 0)
            stream.closeAfterFlush(lingerMillis: 0, deadlineMillis: 300)
        }
        wait(for: [closed], timeout: 3)
        XCTAssertGreaterThanOrEqual(monotonicMillis() - started, 290)
        withExtendedLifetime(watcher) {}
    }
}

final class CloseWatcher: StreamConnectionDelegate, @unchecked Sendable {
    let onClose: () -> Void
    init(onClose: @escaping () -> Void) { self.onClose = onClose }
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: StreamConnection, error: SyscallError?) { onClose() }
}
