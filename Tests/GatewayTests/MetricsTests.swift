@testable import Gateway
import XCTest

/// `/metrics` sums every event loop's snapshot: counters and the histogram add up, a service is
/// connected only when every loop is, replicas known is the most any loop knows.
final class MetricsTests: XCTestCase {
    func snapshot(_ requests: [String: [Int: Int]], bucket: Int, inFlight: Int, buffered: Int,
                  users: MetricsSnapshot.Service) -> MetricsSnapshot {
        MetricsSnapshot(requests: requests, buckets: [Int](repeating: bucket, count: Metrics.bounds.count), latencyCount: bucket,
                        latencySumMillis: Int64(bucket * 3), inFlight: inFlight, bufferedOutputBytes: buffered, services: ["users": users])
    }

    func testLoopsAreSummed() {
        let a = snapshot(["/livez": [200: 5], "other": [404: 1]], bucket: 6, inFlight: 1, buffered: 10,
                         users: .init(connected: true, known: 2, ready: 2, retries: 1, held: 0))
        let b = snapshot(["/livez": [200: 2, 405: 1], "/api/user/group": [200: 4]], bucket: 7, inFlight: 0, buffered: 5,
                         users: .init(connected: false, known: 3, ready: 0, retries: 2, held: 4))
        let text = Metrics.render([a, b], connections: 9)
        for line in [
            #"crm_http_requests_total{route="/livez",status="200"} 7"#,
            #"crm_http_requests_total{route="/livez",status="405"} 1"#,
            #"crm_http_requests_total{route="/api/user/group",status="200"} 4"#,
            #"crm_http_requests_total{route="other",status="404"} 1"#,
            #"crm_http_request_duration_seconds_bucket{le="0.001"} 13"#,
            "crm_http_request_duration_seconds_count 13",
            "crm_http_request_duration_seconds_sum 0.039",
            "crm_http_in_flight 1", "crm_http_connections 9", "crm_http_buffered_output_bytes 15",
            #"crm_service_connected{service="users"} 0"#,
            #"crm_service_replicas{service="users",state="known"} 3"#,
            #"crm_service_replicas{service="users",state="connected"} 0"#,
            #"crm_service_retries_total{service="users"} 3"#,
            #"crm_service_held_requests{service="users"} 4"#,
        ] {
            XCTAssertTrue(text.split(separator: "\n").contains(Substring(line)), "\(line) in\n\(text)")
        }
    }

    func testOneLoopIsRenderedAsItIs() {
        let only = snapshot(["/livez": [200: 1]], bucket: 1, inFlight: 0, buffered: 0, users: .init(connected: true, known: 1, ready: 1, retries: 0, held: 0))
        let text = Metrics.render([only], connections: 1)
        XCTAssertTrue(text.contains(#"crm_service_connected{service="users"} 1"#), text)
        XCTAssertTrue(text.contains(#"crm_http_requests_total{route="/livez",status="200"} 1"#), text)
    }
}
