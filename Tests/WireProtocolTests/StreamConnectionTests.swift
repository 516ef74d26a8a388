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

/// Small writes go straight into a buffer the loop lends (`write(reserving:_:)`): they must leave
/// in the order they were queued, between buffers written whole, however the socket splits the
/// sending, and the buffer must come back to the loop once sent.
final class StreamConnectionSharedBufferTests: XCTestCase {
    func testSmallAndWholeWritesLeaveInOrderAndTheBufferIsReused() throws {
        let loop = try EventLoop.start(name: "shared-write")
        defer { loop.stop() }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        defer { Glibc.close(fds[1]) }
        // A stalled writer fails the test instead of hanging it.
        var patience = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        // Rounds of small writes with whole buffers between them: 1.2 MB in all, far more than
        // the socket holds, so sends are partial and later small writes land behind a
        // partly sent buffer.
        var expected: [UInt8] = []
        var rounds: [[(whole: Bool, bytes: [UInt8])]] = []
        for round in 0..<40 {
            var writes: [(whole: Bool, bytes: [UInt8])] = []
            for piece in 0..<12 {
                let whole = piece % 5 == 4
                let count = whole ? 20_000 + round * 13 : 1 + (round * 7 + piece * 131) % 3_000
                let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ piece &* 17 &+ round) }
                writes.append((whole, bytes))
                expected += bytes
            }
            rounds.append(writes)
        }
        let stream = Mutex<StreamConnection?>(nil)
        let fd = fds[0]
        let all = rounds
        loop.execute {
            let connection = StreamConnection(fd: fd, loop: loop)
            stream.withLock { $0 = connection }
            do { try connection.start() } catch { XCTFail("start: \(error)") }
            for writes in all {
                for write in writes {
                    if write.whole { connection.write(write.bytes) } else { connection.write(reserving: write.bytes.count) { $0 += write.bytes } }
                }
            }
        }
        // Read it all, slowly at first.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 7_000)
        while received.count < expected.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fds[1], $0.baseAddress, received.count < 200_000 ? 1_000 : $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        XCTAssertEqual(received.count, expected.count)
        XCTAssertTrue(received == expected, "the bytes arrived out of order or changed")
        // Once everything is sent, the last shared buffer is back with the loop, and the next
        // small write takes it instead of a new one. (The peer can read the last bytes just
        // before the loop has seen its send return: ask again until the queue is empty.)
        var counts: (before: Int, after: Int)?
        for _ in 0..<500 where counts == nil {
            counts = onLoop(loop) { () -> (Int, Int)? in
                guard let connection = stream.withLock({ $0 }), connection.pendingOutputBytes == 0 else { return nil }
                let before = loop.spareOutputBufferCount
                connection.write(reserving: 10) { $0 += Array("after".utf8) }
                return (before, loop.spareOutputBufferCount)
            }
            if counts == nil { usleep(10_000) }
        }
        XCTAssertGreaterThanOrEqual(counts?.before ?? 0, 1)
        XCTAssertEqual(counts?.after, (counts?.before ?? 0) - 1)
        var tail = [UInt8](repeating: 0, count: 16)
        let n = tail.withUnsafeMutableBytes { Glibc.recv(fds[1], $0.baseAddress, $0.count, 0) }
        XCTAssertEqual(n > 0 ? Array(tail[0..<n]) : [], Array("after".utf8))
        loop.execute { stream.withLock { $0?.close() } }
    }
}

/// Runs `body` on `loop`'s thread and answers its result.
private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) -> T {
    let result = Mutex<[T]>([])
    let done = DispatchSemaphore(value: 0)
    loop.execute {
        let value = body()
        result.withLock { $0.append(value) }
        done.signal()
    }
    done.wait()
    return result.withLock { $0.removeFirst() }
}
