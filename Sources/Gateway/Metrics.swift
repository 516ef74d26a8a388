import WireProtocol

/// Request counters and a latency histogram, rendered in Prometheus text format.
/// Loop-thread confined.
final class Metrics: @unchecked Sendable {
    /// One route label's answers by status (a handful of statuses: a short list, no hashing).
    final class RouteCounts {
        let label: String
        /// The label as a JSON string, for the access line.
        let labelJSON: [UInt8]
        @exclusivity(unchecked) var byStatus: [(status: Int, count: Int)] = []
        init(label: String) {
            self.label = label
            labelJSON = JSON.string(label).serialized()
        }
        func add(_ status: Int) {
            for i in byStatus.indices where byStatus[i].status == status {
                byStatus[i].count += 1
                return
            }
            byStatus.append((status, 1))
        }
    }

    @exclusivity(unchecked) var inFlight = 0
    /// Every documented path, and "other" for the rest (clients choose paths, and each label
    /// is kept for ever): made once, so a request costs one lookup.
    private let routes: [String: RouteCounts]
    /// The label of every path that is not documented.
    let other = RouteCounts(label: "other")
    /// Upper bounds of the latency buckets, in milliseconds.
    private static let bounds: [Int64] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]
    @exclusivity(unchecked) private var buckets = [Int](repeating: 0, count: Metrics.bounds.count)
    @exclusivity(unchecked) private var latencyCount = 0
    @exclusivity(unchecked) private var latencySumMillis: Int64 = 0

    init(documentedPaths: Set<String>) {
        var routes: [String: RouteCounts] = [:]
        for path in documentedPaths { routes[path] = RouteCounts(label: path) }
        self.routes = routes
    }

    /// Counts an answer under `route` when it is documented, else under "other"; returns the
    /// counters (and label) used.
    @discardableResult
    func record(route: String, status: Int, millis: Int64) -> RouteCounts {
        let counts = routes[route] ?? other
        counts.add(status)
        // The buckets are cumulative (`le`): every one from the first bound at or above `millis`.
        var i = Metrics.bounds.count
        while i > 0 && millis <= Metrics.bounds[i - 1] { i -= 1 }
        for j in i..<Metrics.bounds.count { buckets[j] += 1 }
        latencyCount += 1
        latencySumMillis += millis
        return counts
    }

    private var requests: [(route: String, counts: RouteCounts)] {
        routes.map { ($0.key, $0.value) } + [("other", other)]
    }

    func render(gateway: Gateway) -> String {
        var out = "# TYPE crm_http_requests_total counter\n"
        for (route, counts) in requests.sorted(by: { $0.route < $1.route }) {
            for (status, count) in counts.byStatus.sorted(by: { $0.status < $1.status }) {
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
