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
    static let bounds: [Int64] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]
    @exclusivity(unchecked) private var buckets = [Int](repeating: 0, count: Metrics.bounds.count)
    @exclusivity(unchecked) private var latencyCount = 0
    @exclusivity(unchecked) private var latencySumMillis: Int64 = 0

    init(documentedPaths: Set<String>) {
        var routes: [String: RouteCounts] = [:]
        for path in documentedPaths { routes[path] = RouteCounts(label: path) }
        self.routes = routes
    }

    /// The counters of `route`: its own when it is documented, else "other".
    func counts(forRoute route: String) -> RouteCounts { routes[route] ?? other }

    /// Counts an answer under `counts` (from `counts(forRoute:)`).
    func record(_ counts: RouteCounts, status: Int, millis: Int64) {
        counts.add(status)
        // The buckets are cumulative (`le`): every one from the first bound at or above `millis`.
        var i = Metrics.bounds.count
        while i > 0 && millis <= Metrics.bounds[i - 1] { i -= 1 }
        for j in i..<Metrics.bounds.count { buckets[j] += 1 }
        latencyCount += 1
        latencySumMillis += millis
    }

    /// This loop's counters, to be summed with the other loops' for `/metrics` (loop thread).
    func snapshot(gateway: Gateway) -> MetricsSnapshot {
        var requests: [String: [Int: Int]] = [:]
        for counts in Array(routes.values) + [other] where !counts.byStatus.isEmpty {
            requests[counts.label] = Dictionary(counts.byStatus.map { ($0.status, $0.count) }, uniquingKeysWith: +)
        }
        var services: [String: MetricsSnapshot.Service] = [:]
        for (name, client) in gateway.clients {
            services[name.rawValue] = MetricsSnapshot.Service(connected: client.isReady, known: client.replicaCount, ready: client.readyCount,
                                                              retries: client.retries, held: client.waitingCount)
        }
        return MetricsSnapshot(requests: requests, buckets: buckets, latencyCount: latencyCount, latencySumMillis: latencySumMillis,
                               inFlight: inFlight, bufferedOutputBytes: gateway.bufferedOutputBytes, services: services)
    }

    /// Every loop's snapshot summed, in Prometheus text format. A service counts as connected
    /// when every loop has a connection to it; replicas known is the most any loop knows,
    /// connected replicas the fewest any loop has; retries and held requests are summed.
    static func render(_ snapshots: [MetricsSnapshot], connections: Int) -> String {
        var requests: [String: [Int: Int]] = [:]
        var buckets = [Int](repeating: 0, count: bounds.count)
        var latencyCount = 0, latencySumMillis: Int64 = 0, inFlight = 0, buffered = 0
        var services: [String: MetricsSnapshot.Service] = [:]
        for snapshot in snapshots {
            for (route, statuses) in snapshot.requests { requests[route, default: [:]].merge(statuses, uniquingKeysWith: +) }
            for i in buckets.indices where i < snapshot.buckets.count { buckets[i] += snapshot.buckets[i] }
            latencyCount += snapshot.latencyCount
            latencySumMillis += snapshot.latencySumMillis
            inFlight += snapshot.inFlight
            buffered += snapshot.bufferedOutputBytes
            for (name, service) in snapshot.services {
                guard let seen = services[name] else { services[name] = service; continue }
                services[name] = MetricsSnapshot.Service(connected: seen.connected && service.connected, known: max(seen.known, service.known),
                                                         ready: min(seen.ready, service.ready), retries: seen.retries + service.retries,
                                                         held: seen.held + service.held)
            }
        }
        var out = "# TYPE crm_http_requests_total counter\n"
        for (route, statuses) in requests.sorted(by: { $0.key < $1.key }) {
            for (status, count) in statuses.sorted(by: { $0.key < $1.key }) {
                out += "crm_http_requests_total{route=\"\(route)\",status=\"\(status)\"} \(count)\n"
            }
        }
        out += "# TYPE crm_http_request_duration_seconds histogram\n"
        for (i, bound) in bounds.enumerated() {
            out += "crm_http_request_duration_seconds_bucket{le=\"\(Double(bound) / 1000)\"} \(buckets[i])\n"
        }
        out += "crm_http_request_duration_seconds_bucket{le=\"+Inf\"} \(latencyCount)\n"
        out += "crm_http_request_duration_seconds_sum \(Double(latencySumMillis) / 1000)\n"
        out += "crm_http_request_duration_seconds_count \(latencyCount)\n"
        out += "# TYPE crm_http_in_flight gauge\ncrm_http_in_flight \(inFlight)\n"
        out += "# TYPE crm_http_connections gauge\ncrm_http_connections \(connections)\n"
        out += "# TYPE crm_http_buffered_output_bytes gauge\ncrm_http_buffered_output_bytes \(buffered)\n"
        let sorted = services.sorted(by: { $0.key < $1.key })
        out += "# TYPE crm_service_connected gauge\n"
        for (name, service) in sorted { out += "crm_service_connected{service=\"\(name)\"} \(service.connected ? 1 : 0)\n" }
        out += "# TYPE crm_service_replicas gauge\n"
        for (name, service) in sorted {
            out += "crm_service_replicas{service=\"\(name)\",state=\"known\"} \(service.known)\n"
            out += "crm_service_replicas{service=\"\(name)\",state=\"connected\"} \(service.ready)\n"
        }
        out += "# TYPE crm_service_retries_total counter\n"
        for (name, service) in sorted { out += "crm_service_retries_total{service=\"\(name)\"} \(service.retries)\n" }
        out += "# TYPE crm_service_held_requests gauge\n"
        for (name, service) in sorted { out += "crm_service_held_requests{service=\"\(name)\"} \(service.held)\n" }
        return out
    }
}

/// One loop's counters and gauges at one moment (`Metrics.snapshot`).
struct MetricsSnapshot: Sendable {
    struct Service: Sendable {
        var connected: Bool
        var known: Int
        var ready: Int
        var retries: Int
        var held: Int
    }
    var requests: [String: [Int: Int]]
    var buckets: [Int]
    var latencyCount: Int
    var latencySumMillis: Int64
    var inFlight: Int
    var bufferedOutputBytes: Int
    var services: [String: Service]
}
