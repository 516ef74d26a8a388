import WireProtocol

/// Why a session was not accepted: the answer to send the client.
struct AuthFailure: Error {
    var response: HTTPResponse
}

/// Validated sessions, trusted for a short time, and the lookups in progress.
/// Loop-thread confined. Only successes are cached, so a refused token is asked again.
final class SessionCache: @unchecked Sendable {
    typealias Waiter = (Result<Caller, AuthFailure>) -> Void

    private let ttlMillis: Int64
    private var entries: [String: (caller: Caller, expires: Int64)] = [:]
    private var waiters: [String: [Waiter]] = [:]
    /// Bound on cached sessions; past it the cache is cleared (it refills on demand).
    private let maxEntries = 100_000

    init(ttlMillis: Int64) {
        self.ttlMillis = ttlMillis
    }

    func lookup(_ token: String, now: Int64) -> Caller? {
        guard let entry = entries[token], entry.expires > now else { return nil }
        return entry.caller
    }

    /// Queues `waiter`; true when it is the first, i.e. the caller must ask UserService.
    func addWaiter(_ token: String, _ waiter: @escaping Waiter) -> Bool {
        if waiters[token] != nil {
            waiters[token]?.append(waiter)
            return false
        }
        waiters[token] = [waiter]
        return true
    }

    func resolve(_ token: String, _ outcome: Result<Caller, AuthFailure>, now: Int64) {
        if case .success(let caller) = outcome {
            if entries.count >= maxEntries { entries.removeAll() }
            entries[token] = (caller, now + ttlMillis)
        }
        let pending = waiters.removeValue(forKey: token) ?? []
        for waiter in pending { waiter(outcome) }
    }

    func evictExpired(now: Int64) {
        entries = entries.filter { $0.value.expires > now }
    }
}
