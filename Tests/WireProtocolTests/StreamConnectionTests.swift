#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import XCTest
@testable import WireProtocol

/// Every connection on a loop receives into the loop's one read buffer: what each delegate is
/// handed must still be exactly its own peer's bytes, in order, with many connections readable
/// at once and several loops reading on their own threads at the same time.
final class StreamConnectionTests: XCTestCase {
    func testConnectionsSharingTheLoopsReadBufferEachGetTheirOwnBytes() throws {
        let loopCount = 2, perLoop = 4, payloadBytes = 300_000
        let loops = try (0..<loopCount).map { try EventLoop.start(name: "shared-read-\($0)") }
        defer { for loop in loops { loop.stop() } }

        var collectors: [Collector] = []
        var writers: [Int32] = []
        var payloads: [[UInt8]] = []
        for index in 0..<(loopCount * perLoop) {
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            let payload = (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 31 &+ $0 >> 9) }
            let collector = Collector(expected: payloadBytes, done: expectation(description: "connection \(index)"))
            let loop = loops[index % loopCount]
            let fd = fds[0]
            loop.execute {
                let stream = StreamConnection(fd: fd, loop: loop)
                stream.delegate = collector
                collector.stream = stream
                do { try stream.start() } catch { XCTFail("start: \(error)") }
            }
            collectors.append(collector)
            writers.append(fds[1])
            payloads.append(payload)
        }
        // Every peer writes at the same time, in uneven chunks, so reads of different
        // connections interleave on each loop.
        let group = DispatchGroup()
        for (index, fd) in writers.enumerated() {
            let payload = payloads[index]
            DispatchQueue.global().async(group: group) {
                var offset = 0
                var chunk = 1_000 + index * 517
                while offset < payload.count {
                    let end = min(payload.count, offset + chunk)
                    let n = payload[offset..<end].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    offset += n
                    chunk = chunk * 3 % 70_000 + 1
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        wait(for: collectors.map(\.done), timeout: 20)
        for (index, collector) in collectors.enumerated() {
            let received = collector.received.withLock { $0 }
            XCTAssertEqual(received.count, payloadBytes, "connection \(index)")
            XCTAssertTrue(received == payloads[index], "connection \(index) got another connection's bytes")
        }
        for fd in writers { Glibc.close(fd) }
    }
}

/// Copies what it is handed (the bytes are valid only during the call) and says when all came.
private final class Collector: StreamConnectionDelegate, @unchecked Sendable {
    let received = Mutex<[UInt8]>([])
    let expected: Int
    let done: XCTestExpectation
    var stream: StreamConnection?

    init(expected: Int, done: XCTestExpectation) {
        self.expected = expected
        self.done = done
    }

    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        let count = received.withLock { $0.append(contentsOf: bytes); return $0.count }
        if count == expected { done.fulfill() }
    }

    func connectionDidClose(_ connection: StreamConnection, error: SyscallError?) {}
}
