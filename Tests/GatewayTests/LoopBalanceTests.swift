#if canImport(Glibc)
import Glibc
#endif
@testable import Gateway
import XCTest
import WireProtocol

/// New connections go to the loop with the fewest, whichever loop accepted them: connections
/// made one after another end up split evenly, each is served where it landed, and the counts
/// fall back to zero as they close.
final class LoopBalanceTests: XCTestCase {
    func testConnectionsAreSpreadEvenlyOverTheLoops() throws {
        let configuration = GatewayConfiguration()
        let group = try GatewayGroup(configuration: configuration)
        let loops = try (0..<2).map { try EventLoop.start(name: "balance-\($0)") }
        defer { for loop in loops { loop.stop() } }
        let gateways = try loops.map { try Gateway(configuration: configuration, loop: $0, group: group) }
        let listener = try Socket.listen(on: .tcp(host: "127.0.0.1", port: 0))
        let port = Socket.localPort(listener)
        // Only the first loop accepts: without balancing it would keep every connection.
        gateways[0].start(listening: listener)

        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for index in 0..<9 {
            let fd = try connectClient(port: port)
            clients.append(fd)
            // Answered means accepted and adopted by some loop.
            XCTAssertTrue(try livez(fd).hasPrefix("HTTP/1.1 200 OK\r\n"), "connection \(index)")
            let counts = gateways.map { $0.loopConnections.load(ordering: .relaxed) }
            XCTAssertEqual(counts.reduce(0, +), index + 1)
            XCTAssertLessThanOrEqual(abs(counts[0] - counts[1]), 1, "after \(index + 1) connections: \(counts)")
        }
        // Each connection keeps working on its loop.
        for fd in clients { XCTAssertTrue(try livez(fd).hasPrefix("HTTP/1.1 200 OK\r\n")) }
        for fd in clients { close(fd) }
        clients = []
        let deadline = monotonicMillis() + 5_000
        while gateways.contains(where: { $0.loopConnections.load(ordering: .relaxed) != 0 }) && monotonicMillis() < deadline { usleep(5_000) }
        XCTAssertEqual(gateways.map { $0.loopConnections.load(ordering: .relaxed) }, [0, 0])
        XCTAssertEqual(group.openConnections.load(ordering: .relaxed), 0)
    }

    private func connectClient(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(rc, 0)
        var patience = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `GET /livez` and reads the answer's head.
    private func livez(_ fd: Int32) throws -> String {
        let request = Array("GET /livez HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
        XCTAssertEqual(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, request.count)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // The answer ends with its 12-byte body after the blank line.
        while !(String(decoding: received, as: UTF8.self).contains("\r\n\r\n{\"status\":0}")) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
