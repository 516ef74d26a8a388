#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// Why a session was not accepted: the answer to send the client.
struct AuthFailure: Error {
    var response: HTTPResponse
}

/// A session the gateway accepts, and whether UserService vouched for it just now or it is
/// served from the outage fallback.
struct Authenticated {
    var caller: Caller
    /// True when UserService could not be asked and a recently validated entry was used: such
    /// a session may read, never change anything.
    var fromFallback: Bool
}

/// Validated sessions, trusted for a short time, and the lookups in progress.
/// Loop-thread confined. Only successes are cached, so a refused token is asked again.
///
/// While UserService cannot be reached, a session validated within `staleMillis` is still
/// accepted for reads, so an outage or a slow restart of UserService does not log everyone
/// out. Revocations cannot happen during the outage (they go through UserService), and those
/// before it reach the gateway as UserService events (`session`, `employee`), which drop
/// every entry of that employee (`dropEmployees`). The fallback is used only while that event
/// feed was followed up to shortly before the outage (see `Gateway`).
///
/// One cache serves every event loop of the gateway (`GatewayGroup`): its state is behind a
/// lock, and a waiter runs where the caller's `Waiter` puts it (the gateway wraps each one to
/// run on its own loop).
final class SessionCache: @unchecked Sendable {
    typealias Waiter = (Result<Authenticated, AuthFailure>) -> Void

    private let lock = SharedLock()

    private let ttlMillis: Int64
    let staleMillis: Int64
    @exclusivity(unchecked) private var entries: [String: (caller: Caller, validated: Int64)] = [:]
    /// Waiters per token, and the drop generation when the question was asked.
    private var waiters: [String: (generation: UInt64, list: [Waiter])] = [:]
    /// Bound on cached sessions; past it the cache is cleared (it refills on demand).
    private let maxEntries = 100_000
    /// Bumped by every `dropEmployees`; an answer to a question asked before the employee's
    /// last drop is passed on but not cached (it may predate the revocation).
    private var generation: UInt64 = 0
    private var droppedAt: [Int64: UInt64] = [:]
    /// Questions asked before this generation are never cached (`droppedAt` was cleared).
    private var floor: UInt64 = 0

    init(ttlMillis: Int64, staleMillis: Int64) {
        self.ttlMillis = ttlMillis
        self.staleMillis = max(ttlMillis, staleMillis)
    }

    /// A session validated within the trust time.
    func lookup(_ token: String, now: Int64) -> Caller? {
        lock.withLock {
            guard let entry = entries[token], now - entry.validated < ttlMillis else { return nil }
            return entry.caller
        }
    }

    /// A session validated within the stale window (for when UserService is unreachable).
    func lookupStale(_ token: String, now: Int64) -> Caller? {
        lock.withLock {
            guard let entry = entries[token], now - entry.validated < staleMillis else { return nil }
            return entry.caller
        }
    }

    /// Queues `waiter`; true when it is the first, i.e. the caller must ask UserService.
    func addWaiter(_ token: String, _ waiter: @escaping Waiter) -> Bool {
        lock.withLock {
            if waiters[token] != nil {
                waiters[token]?.list.append(waiter)
                return false
            }
            waiters[token] = (generation, [waiter])
            return true
        }
    }

    /// Answers everyone waiting for `token`. A success from UserService itself is cached unless
    /// the employee's sessions were dropped since the question was asked.
    func resolve(_ token: String, _ outcome: Result<Authenticated, AuthFailure>, now: Int64) {
        let pending = lock.withLock { () -> [Waiter] in
            let pending = waiters.removeValue(forKey: token)
            if case .success(let authenticated) = outcome, !authenticated.fromFallback {
                let asked = pending?.generation ?? generation
                if asked >= floor && (droppedAt[authenticated.caller.id] ?? 0) <= asked {
                    if entries.count >= maxEntries { entries.removeAll() }
                    entries[token] = (authenticated.caller, now)
                }
            }
            return pending?.list ?? []
        }
        // Outside the lock: a waiter may look the cache up again.
        for waiter in pending { waiter(outcome) }
    }

    /// Forgets a token UserService refused.
    func forget(_ token: String) {
        lock.withLock { entries[token] = nil }
    }

    /// Forgets every session of these employees (a session ended, or the employee changed).
    func dropEmployees(_ ids: Set<Int64>) {
        guard !ids.isEmpty else { return }
        lock.withLock {
            generation += 1
            if droppedAt.count >= maxEntries {
                droppedAt.removeAll()
                floor = generation
            }
            for id in ids { droppedAt[id] = generation }
            entries = entries.filter { !ids.contains($0.value.caller.id) }
        }
    }

    func evictExpired(now: Int64) {
        lock.withLock { entries = entries.filter { now - $0.value.validated < staleMillis } }
    }

    var count: Int { lock.withLock { entries.count } }
}

/// A plain mutual-exclusion lock (pthread mutex) for state the gateway's loops share.
final class SharedLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Carries a loop-confined value to the loop it belongs to (`EventLoop.execute`).
final class LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
