import Synchronization

/// Computed statistics, kept until the read model changes: an entry is valid for one commit
/// generation of the database (`CommitSignal.generation`, which every applied event batch
/// advances — also one applied by another replica of StatsService, seen within 100 ms through
/// `Database.watchOtherWriters`), so an answer never outlives the next write for long.
///
/// Requests for one key while it is being computed wait for that computation instead of
/// starting their own (64 clients asking the same window at once cost one computation). At most
/// `capacity` entries; past it the least recently used goes. A request that read an older
/// generation than the newest seen computes for itself and stores nothing.
final class AnswerCache<Value: Sendable>: Sendable {
    private struct Entry {
        var task: Task<Value, any Error>
        var used: UInt64
    }

    private struct State {
        var generation: UInt64 = 0
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 64) {
        self.capacity = max(1, capacity)
    }

    /// The value of `key` at `generation` (read before the data is read): cached, being
    /// computed, or computed now by `compute`. A failed computation is not kept.
    func value(_ key: String, generation: UInt64, compute: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let (task, stored) = state.withLock { state -> (Task<Value, any Error>, Bool) in
            if generation > state.generation {
                state.generation = generation
                state.entries.removeAll(keepingCapacity: true)
            }
            guard generation == state.generation else { return (Task { try await compute() }, false) }
            state.clock &+= 1
            if var entry = state.entries[key] {
                entry.used = state.clock
                state.entries[key] = entry
                return (entry.task, false)
            }
            if state.entries.count >= capacity, let oldest = state.entries.min(by: { $0.value.used < $1.value.used })?.key {
                state.entries[oldest] = nil
            }
            let task = Task { try await compute() }
            state.entries[key] = Entry(task: task, used: state.clock)
            return (task, true)
        }
        do {
            return try await task.value
        } catch {
            if stored {
                state.withLock { state in
                    if state.entries[key]?.task == task { state.entries[key] = nil }
                }
            }
            throw error
        }
    }

    /// Entries held (for tests).
    var count: Int { state.withLock { $0.entries.count } }
}
