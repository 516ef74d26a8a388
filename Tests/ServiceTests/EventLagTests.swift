#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// How long a waiting long poll takes to answer once its producer commits (printed, not asserted).
final class EventLagTests: XCTestCase {
    func testCommitToWaitingPollLag() async throws {
        let dir = "/tmp/crm-lag-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runtime = try ServiceRuntime(definition: ServiceDefinition(name: "producer", declaring: [], migrations: [], routes: []),
                                         configuration: ServiceConfiguration(endpoint: .unix(path: "\(dir)/p.sock"), databasePath: "\(dir)/p.sqlite", replica: "1"))
        try runtime.start()
        let loop = try EventLoop.start(name: "lag")
        let client = WireClient(loop: loop, endpoint: .unix(path: "\(dir)/p.sock"), serviceName: "producer", hello: Hello(peer: "test", replica: "1"))
        client.start()
        defer {
            let done = DispatchSemaphore(value: 0)
            runtime.shutdown(timeoutSeconds: 5) { done.signal() }
            done.wait()
            client.stop()
            loop.stop()
        }
        let clock = ContinuousClock()
        var lags: [Duration] = []
        for i in 1...200 {
            let poll = Task {
                let answer = try await client.send(WireRequest(method: "GET", path: "/internal/events",
                                                               params: JSONObject([("after", .int(Int64(i - 1))), ("wait_ms", .int(5_000))]),
                                                               caller: nil, requestID: "", deadline: 0)).get()
                return (clock.now, answer.body["data"]?["events"]?.arrayValue?.count ?? 0)
            }
            // Lets the poll reach the service and start waiting: what is measured is a wake-up.
            try await Task.sleep(for: .milliseconds(15))
            let committed = clock.now
            try await runtime.database.write { db in
                try Outbox.append(db, type: "item", entityID: Int64(i), state: JSONObject([("n", .int(Int64(i)))]))
            }
            let (answered, count) = try await poll.value
            XCTAssertEqual(count, 1)
            lags.append(answered - committed)
        }
        lags.sort()
        func ms(_ d: Duration) -> String { String(format: "%.2f ms", Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000) }
        print("commit → waiting poll answered, 200 commits: median \(ms(lags[lags.count / 2])), p99 \(ms(lags[lags.count * 99 / 100])), max \(ms(lags[lags.count - 1]))")
    }
}
