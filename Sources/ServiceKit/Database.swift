import Dispatch
import Synchronization
import WireProtocol

/// A SQLite file owned by one service, GRDB-pool style: one writer connection and a few
/// read-only connections, each on its own serial queue (never Swift's cooperative pool).
/// WAL lets the readers run beside the writer. `read` and `write` suspend the caller until a
/// queue has run the body.
public final class Database: @unchecked Sendable {
    private let queue: DispatchQueue
    /// Touched only on `queue`.
    private let connection: SQLiteConnection
    /// Each reader is touched only on its own queue.
    private let readers: [(queue: DispatchQueue, connection: SQLiteConnection)]
    private let nextReader = Atomic<Int>(0)
    private var lastWrite: Int64 = 0
    private let closedFlag = Atomic<Bool>(false)
    private var closed: Bool { closedFlag.load(ordering: .acquiring) }
    public let path: String

    /// Opens (creating if needed) the file and applies `migrations` by `PRAGMA user_version`.
    public init(path: String, migrations: [String], readerCount: Int = 2) throws {
        self.path = path
        queue = DispatchQueue(label: "crm.sqlite.writer")
        connection = try SQLiteConnection(path: path)
        try connection.migrate(migrations)
        try connection.execute(IdempotencyStore.schema)
        try connection.execute(Outbox.schema)
        var readers: [(queue: DispatchQueue, connection: SQLiteConnection)] = []
        for i in 0..<max(1, readerCount) {
            let reader = try SQLiteConnection(path: path)
            try reader.execute("PRAGMA query_only = 1")
            readers.append((DispatchQueue(label: "crm.sqlite.reader\(i)"), reader))
        }
        self.readers = readers
    }

    /// Runs `body` on a read-only connection (no explicit transaction: each statement sees the
    /// latest committed state). Use `write` for anything that must read and write atomically.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let index = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count
        return try await withCheckedThrowingContinuation { continuation in
            readers[index].queue.async { [self] in
                guard !closed else { continuation.resume(throwing: APIError.unavailable("database is closed")); return }
                continuation.resume(with: Result { try body(readers[index].connection) })
            }
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction on the database queue. A transaction that
    /// meets SQLITE_BUSY (another replica holding the lock past the busy timeout) is retried a
    /// bounded number of times as a whole.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                guard !closed else { continuation.resume(throwing: APIError.unavailable("database is closed")); return }
                continuation.resume(with: Result { try writeNow(body) })
            }
        }
    }

    private func writeNow<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                let result = try connection.writeTransaction(body)
                lastWrite = monotonicMillis()
                return result
            } catch let error as SQLiteError where error.isBusy && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// Runs `body` synchronously on the queue: for start-up and tests, never on a request path.
    public func sync<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        try queue.sync { try body(connection) }
    }

    /// Checkpoints the WAL (TRUNCATE) every `intervalSeconds` when no write happened for a second,
    /// so long-running readers cannot make it grow without bound.
    public func startCheckpointing(intervalSeconds: Int = 30) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .seconds(intervalSeconds), repeating: .seconds(intervalSeconds))
        timer.setEventHandler { [self] in
            guard !closed, monotonicMillis() - lastWrite > 1000 else { return }
            connection.checkpoint()
        }
        timer.resume()
        checkpointTimer = timer
    }
    private var checkpointTimer: DispatchSourceTimer?

    /// Checkpoints and closes; later calls answer 503.
    public func close() {
        queue.sync {
            guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
            checkpointTimer?.cancel()
            for reader in readers { reader.queue.sync { reader.connection.close() } }
            connection.checkpoint()
            connection.close()
        }
    }
}
