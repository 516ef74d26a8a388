/// Request counters and a latency histogram, rendered in Prometheus text format.
/// Loop-thread confined.
final class Metrics: @unchecked Sendable {
    var inFlight = 0
    private var requests: [String: [Int: Int]] = [:]
    /// Upper bounds of the latency buckets, in milliseconds.
    private static let bounds: [Int64] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]
    private var buckets = [Int](repeating: 0, count: Metrics.bounds.count)
    private var latencyCount = 0
    private var latencySumMillis: Int64 = 0

    func record(route: String, status: Int, millis: Int64) {
        requests[route, default: [:]][status, default: 0] += 1
        for (i, bound) in Metrics.bounds.enumerated() where millis <= bound { buckets[i] += 1 }
        latencyCount += 1
        latencySumMillis += millis
    }

    func render(gateway: Gateway) -> String {
        var out = "# TYPE crm_http_requests_total counter\n"
        for (route, statuses) in requests.sorted(by: { $0.key < $1.key }) {
            for (status, count) in statuses.sorted(by: { $0.key < $1.key }) {
                out += "crm_http_requests_total{route=\"\(route)\",status=\"\(status)\"} \(count)\n"
            }
        }
        out += "# TYPE crm_http_request_duration_seconds histogram\n"
        for (i, bound) in Metrics.bounds.enumerated() {
            out += "crm_http_request_duration_seconds_bucket{le=\"\(Double(bound) / 1000)\"} \(buckets[i])\n"
        }
        out += "crm_http_request_duration_seconds_bucket{le=\"+Inf\"} \(latencyCount)\n"
        out += "crm_http_request_duration_seconds_sum \(Double(latencySumMillis) / 1000)\n"
        out += "crm_http_request_duration_seconds_count \(latencyCount)\n"
        out += "# TYPE crm_http_in_flight gauge\ncrm_http_in_flight \(inFlight)\n"
        out += "# TYPE crm_http_connections gauge\ncrm_http_connections \(gateway.openConnections)\n"
        out += "# TYPE crm_http_buffered_output_bytes gauge\ncrm_http_buffered_output_bytes \(gateway.bufferedOutputBytes)\n"
        out += "# TYPE crm_service_connected gauge\n"
        for (name, client) in gateway.clients.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "crm_service_connected{service=\"\(name.rawValue)\"} \(client.isReady ? 1 : 0)\n"
        }
        out += "# TYPE crm_service_replicas gauge\n"
        for (name, client) in gateway.clients.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "crm_service_replicas{service=\"\(name.rawValue)\",state=\"known\"} \(client.replicaCount)\n"
            out += "crm_service_replicas{service=\"\(name.rawValue)\",state=\"connected\"} \(client.readyCount)\n"
        }
        out += "# TYPE crm_service_retries_total counter\n"
        for (name, client) in gateway.clients.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "crm_service_retries_total{service=\"\(name.rawValue)\"} \(client.retries)\n"
        }
        out += "# TYPE crm_service_held_requests gauge\n"
        for (name, client) in gateway.clients.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "crm_service_held_requests{service=\"\(name.rawValue)\"} \(client.waitingCount)\n"
        }
        return out
    }
}
