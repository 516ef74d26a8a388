import Dispatch
import Synchronization

/// Wakes the event feed's waiting long polls when the service's writer commits (and when the
/// service begins shutting down). A waiter suspends — no thread and no polling loop — until the
/// generation moves past the one it read, its timeout passes, or its task is cancelled.
///
/// Read `generation` before looking at the data, then `wait(after:)` with it: a commit between
/// the two makes the wait return at once, so none is missed.
public final class CommitSignal: Sendable {
    private enum Waiter {
        /// Registered, not suspended yet.
        case pending
        case waiting(CheckedContinuation<Void, Never>)
        /// Woken (or cancelled) before it suspended.
        case done
    }

    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// The topics each waiter waits for, when it named some (`wait(after:timeoutMillis:topics:)`).
        var topics: [UInt64: [String]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Moves on with every `signal()`.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// How many waiters are registered (for tests).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Advances the generation and resumes every waiter.
    public func signal() { signal(topics: nil) }

    /// Advances the generation and resumes the waiters of any of `topics` (every waiter when
    /// nil) and those that named none. The generation moves for all: a waiter that read it
    /// before this signal and registers after it returns at once — one look for nothing at
    /// worst, never a missed signal.
    public func signal(topics: Set<String>?) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.waiters {
                if let topics, let wanted = state.topics[id], !wanted.contains(where: topics.contains) { continue }
                switch waiter {
                case .waiting(let continuation):
                    woken.append(continuation)
                    state.waiters[id] = nil
                    state.topics[id] = nil
                case .pending:
                    state.waiters[id] = .done
                case .done:
                    break
                }
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Suspends until a `signal()` after `generation`, `timeoutMillis` pass, or the task is
    /// cancelled, whichever comes first. With `topics`, a signal naming none of them (the
    /// event feed: a commit of other event types) does not end the wait.
    public func wait(after generation: UInt64, timeoutMillis: Int64, topics: [String] = []) async {
        let id = state.withLock { state -> UInt64? in
            guard state.generation == generation else { return nil }
            state.nextID &+= 1
            state.waiters[state.nextID] = .pending
            if !topics.isEmpty { state.topics[state.nextID] = topics }
            return state.nextID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let suspended = state.withLock { state -> Bool in
                    guard case .pending? = state.waiters[id] else {
                        state.waiters[id] = nil
                        state.topics[id] = nil
                        return false
                    }
                    state.waiters[id] = .waiting(continuation)
                    return true
                }
                guard suspended else { continuation.resume(); return }
                // One timer per wait, not a loop: a stale one finds its id gone and does nothing.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(max(0, timeoutMillis)))) { [self] in
                    wake(id)
                }
            }
        } onCancel: {
            wake(id)
        }
    }

    /// Resumes one waiter, or marks it so that it does not suspend.
    private func wake(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            switch state.waiters[id] {
            case .waiting(let continuation)?:
                state.waiters[id] = nil
                state.topics[id] = nil
                return continuation
            case .pending?:
                state.waiters[id] = .done
                return nil
            case .done?, nil:
                return nil
            }
        }
        continuation?.resume()
    }
}
