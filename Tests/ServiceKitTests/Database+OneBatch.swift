import Dispatch
import Synchronization
@testable import ServiceKit
import WireProtocol

extension Database {
    /// A write queued behind the held writer never got queued, or the holding write never ran.
    struct NotOneBatch: Error { var what: String }

    /// Starts the writes `start` makes while a first write holds the writer, and lets the writer
    /// go once all of them are queued behind it, so that they run as one batch; answers their
    /// tasks. Throws when the writer or the writes are not there within 10 s.
    func queuedAsOneBatch<Success: Sendable, Failure: Error>(_ start: () -> [Task<Success, Failure>]) async throws -> [Task<Success, Failure>] {
        let gate = DispatchSemaphore(value: 0)
        let holding = Atomic<Bool>(false)
        let holder = Task { try await write { _ in holding.store(true, ordering: .releasing); gate.wait() } }
        let deadline = monotonicMillis() + 10_000
        while !holding.load(ordering: .acquiring) {
            guard monotonicMillis() < deadline else { gate.signal(); throw NotOneBatch(what: "the writer never ran the first write") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        let writes = start()
        while queuedWrites < writes.count {
            guard monotonicMillis() < deadline else { gate.signal(); throw NotOneBatch(what: "the writes never queued") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        gate.signal()
        try await holder.value
        return writes
    }
}
