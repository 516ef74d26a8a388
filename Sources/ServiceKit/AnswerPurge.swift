import Synchronization
import WireProtocol

/// Forgets stored answers past the retention time (`IdempotencyStore.retentionSeconds`) by
/// walking `applied_requests` in request-id order, one step of `stepRows` rows per write job
/// (`IdempotencyStore.purgeStep`): each step queues behind the writes waiting, and the next is
/// queued from its completion, so a large table delays a write by one step at most. Nothing
/// indexes the answers by age (that index cost every write an entry). One walk at a time: a
/// walk still running when the next is due is not doubled.
public final class AnswerPurge: Sendable {
    let stepRows: Int
    private let walking = Atomic<Bool>(false)

    public init(stepRows: Int = IdempotencyStore.purgeStepRows) {
        self.stepRows = stepRows
    }

    /// Starts a walk over `database`'s answers unless one is running; `completion` is called
    /// (on the writer's queue) when this walk ends, or at once when one was already running.
    public func start(_ database: Database, completion: @escaping @Sendable () -> Void = {}) {
        guard !walking.exchange(true, ordering: .acquiringAndReleasing) else { return completion() }
        step(database, after: nil, completion)
    }

    private func step(_ database: Database, after: String?, _ completion: @escaping @Sendable () -> Void) {
        let rows = stepRows
        database.write({ db in try IdempotencyStore.purgeStep(db, after: after, limit: rows) }) { [self] result in
            switch result {
            case .success(let last?):
                step(database, after: last, completion)
            case .success(nil):
                walking.store(false, ordering: .releasing)
                completion()
            case .failure(let error):
                // A closed database ends the walk; the next one starts over.
                if !database.isClosed { Log.warning("purging stored answers: \(error)") }
                walking.store(false, ordering: .releasing)
                completion()
            }
        }
    }
}
