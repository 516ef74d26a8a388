import WireProtocol

/// Why a session was not accepted: the answer to send the client.
struct AuthFailure: Error {
    var response: HTTPResponse
}

/// Validated sessions, trusted for a short time, and the lookups in progress.
/// Loop-thread confined. Only successes are cached, so a refused token is asked again.
///
/// While UserService cannot be reached, a session validated within `staleMillis` is still
/// accepted (nobody can revoke a session meanwhile: revocations go through UserService), so
/// an outage or a slow restart of UserService does not log everyone out of every service.
final class SessionCache: @unchecked Sendable {
    typealias Waiter = (Result<Caller, AuthFailure>) -> Void

    private let ttlMillis: Int64
    let staleMillis: Int64
    private var entries: [String: (caller: Caller, validated: Int64)] = [:]
    private var waiters: [String: [Waiter]] = [:]
    /// Bound on cached sessions; past it the cache is cleared (it refills on demand).
    private let maxEntries = 100_000

    init(ttlMillis: Int64, staleMillis: Int64) {
        self.ttlMillis = ttlMillis
        self.staleMillis = max(ttlMillis, staleMillis)
    }

    /// A session validated within the trust time.
    func lookup(_ token: String, now: Int64) -> Caller? {
        guard let entry = entries[token], now - entry.validated < ttlMillis else { return nil }
        return entry.caller
    }

    /// A session validated within the stale window (for when UserService is unreachable).
    func lookupStale(_ token: String, now: Int64) -> Caller? {
        guard let entry = entries[token], now - entry.validated < staleMillis else { return nil }
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

    /// Answers everyone waiting for `token`; `validated` says the outcome is UserService's own
    /// answer (a stale entry used during an outage is not made fresh again).
    func resolve(_ token: String, _ outcome: Result<Caller, AuthFailure>, now: Int64, validated: Bool = true) {
        if validated, case .success(let caller) = outcome {
            if entries.count >= maxEntries { entries.removeAll() }
            entries[token] = (caller, now)
        }
        let pending = waiters.removeValue(forKey: token) ?? []
        for waiter in pending { waiter(outcome) }
    }

    /// Forgets a token UserService refused.
    func forget(_ token: String) {
        entries[token] = nil
    }

    func evictExpired(now: Int64) {
        entries = entries.filter { now - $0.value.validated < staleMillis }
    }
}
