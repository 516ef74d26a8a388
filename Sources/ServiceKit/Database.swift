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
    /// Checkpoints run here (`checkpointIfLarge`), not inside the writer's commits.
    private let checkpointer: (queue: DispatchQueue, connection: SQLiteConnection)
    private let checkpointQueued = Atomic<Bool>(false)
    private var lastWrite: Int64 = 0
    /// `PRAGMA data_version` as `watchOtherWriters` last read it (touched only on `queue`).
    private var dataVersion: Int64?
    private let closedFlag = Atomic<Bool>(false)
    private let closingFlag = Atomic<Bool>(false)
    /// True once the service began shutting down: long polls answer at once, so a drain is
    /// not held up by a follower's wait.
    public var isClosing: Bool { closingFlag.load(ordering: .acquiring) }
    public func beginClosing() {
        closingFlag.store(true, ordering: .releasing)
        signalCommit(outboxMayHaveChanged: true)
    }
    /// Signalled after every commit of the writer and when closing begins (what keys on any
    /// change: the statistics' answer cache, writes waiting for a copy to catch up).
    public let commitSignal = CommitSignal()
    /// Signalled after a commit that changed the outbox (`events`), a commit by another process
    /// (which may have), and when closing begins: wakes the event feed's long polls. A commit
    /// of copies or other rows without an event wakes none of them (it did wake every follower
    /// of the service, to find nothing new).
    public let outboxSignal = CommitSignal()

    /// Wakes what waits for a commit, and the feed's long polls too when the outbox may have
    /// changed (closing, another process's commit and maintenance count as may).
    /// `eventTypes`: the types of the events the commit appended, so that a feed waiting for
    /// others does not look (nil: unknown — another process's commit, closing).
    private func signalCommit(outboxMayHaveChanged: Bool, eventTypes: Set<String>? = nil) {
        commitSignal.signal()
        if outboxMayHaveChanged { outboxSignal.signal(topics: eventTypes) }
    }
    /// The names list pages show, kept between reads (a new generation after a commit that
    /// changed a table they come from, or another process's commit).
    public let readCache = ReadCache()
    /// The in-memory search indexes, one registry for the writer and the readers (`SearchIndex`).
    public let searchIndexes = SearchIndexes()
    private var closed: Bool { closedFlag.load(ordering: .acquiring) }
    /// True once `close` ran: later work is answered 503.
    public var isClosed: Bool { closed }
    public let path: String
    /// Marks this database's own queues (0: the writer, 1…: the readers), so a blocking call made
    /// from inside one of its bodies is refused instead of waiting for itself.
    private let queueKey = DispatchSpecificKey<Int>()

    /// Opens (creating if needed) the file and applies the `migrations` it has not recorded yet.
    public init(path: String, migrations: [Migration], readerCount: Int = 2) throws {
        self.path = path
        queue = DispatchQueue(label: "crm.sqlite.writer")
        queue.setSpecific(key: queueKey, value: 0)
        connection = try SQLiteConnection(path: path)
        connection.searchIndexes = searchIndexes
        connection.trackChangedTables()
        connection.reportWALSize()
        try connection.migrate(migrations)
        try IdempotencyStore.createSchema(connection)
        try connection.execute(Outbox.schema)
        var readers: [(queue: DispatchQueue, connection: SQLiteConnection)] = []
        for i in 0..<max(1, readerCount) {
            let reader = try SQLiteConnection(path: path)
            try reader.execute("PRAGMA query_only = 1")
            reader.readCache = readCache
            reader.searchIndexes = searchIndexes
            let readerQueue = DispatchQueue(label: "crm.sqlite.reader\(i)")
            readerQueue.setSpecific(key: queueKey, value: i + 1)
            readers.append((readerQueue, reader))
        }
        self.readers = readers
        pendingReads = Mutex(PendingReads(idle: Array(readers.indices.reversed())))
        checkpointer = (DispatchQueue(label: "crm.sqlite.checkpointer"), try SQLiteConnection(path: path))
    }

    /// Runs `body` on a read-only connection inside one read transaction, so every statement
    /// of the body sees the same snapshot (a page and its `page_info.total` agree even while
    /// writes commit). Use `write` for anything that must read and write atomically.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try refuseNested("read")
        return try await withCheckedThrowingContinuation { continuation in
            read(body) { continuation.resume(with: $0) }
        }
    }

    /// `read` for a caller that is not a task (a server's event loop answering through a
    /// callback): `completion` gets the result on the reader's queue. A request answered this
    /// way crosses two threads (loop → reader → loop) instead of four (loop → task → reader →
    /// task → loop).
    ///
    /// Reads wait in one queue, oldest first, taken by whichever reader is free: a reader held
    /// up (descheduled, a slow page) delays only the reads it took, not the ones that a fixed
    /// assignment would have queued behind it. A busy reader takes the next reads without a
    /// thread wake-up, up to `readBatch` at a time, and runs them in one read transaction
    /// (`drainReads`).
    public func read<T>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                        completion: @escaping @Sendable (Result<T, Error>) -> Void) {
        enqueueRead { reader in
            let (result, endsTransaction) = Database.outcome(of: reader, body)
            completion(result)
            return endsTransaction
        }
    }

    /// What a read job makes of its reader: `body`'s result, or why there is no reader; and
    /// whether it failed in a way that may have ended the read transaction (an SQLite error).
    static func outcome<T>(of reader: Result<SQLiteConnection, Error>,
                           _ body: (SQLiteConnection) throws -> T) -> (Result<T, Error>, endsTransaction: Bool) {
        switch reader {
        case .failure(let error):
            return (.failure(error), false)
        case .success(let connection):
            let result = Result { try body(connection) }
            if case .failure(let error) = result, error is SQLiteError { return (result, true) }
            return (result, false)
        }
    }

    /// Queues a read job (`read(_:completion:)`); a caller whose job's closure captures one
    /// object allocates nothing more per read.
    func enqueueRead(_ job: @escaping ReadJob) {
        let idle = pendingReads.withLock { state -> Int? in
            state.jobs.append(job)
            guard let idle = state.idle.popLast() else { return nil }
            state.waking += 1
            return idle
        }
        if let idle { readers[idle].queue.async { [self] in drainReads(idle) } }
    }

    /// How many list rows the readers keep together (`SnapshotRows`; for tests).
    func keptRowCount() -> Int {
        readers.reduce(0) { sum, reader in sum + reader.queue.sync { reader.connection.snapshotRows.count } }
    }

    /// A read waiting for a reader: run with the reader's connection inside its open read
    /// transaction (or with why there is none), answering its caller. True when it failed in a
    /// way that may have ended that transaction (an SQLite error): the reader starts another
    /// for the reads after it.
    typealias ReadJob = @Sendable (Result<SQLiteConnection, Error>) -> Bool
    private struct PendingReads {
        var jobs: [ReadJob] = []
        /// Where the oldest waiting job is in `jobs` (taken ones before it are dropped in bulk).
        var head = 0
        /// Readers with nothing to do (not draining).
        var idle: [Int]
        /// Readers woken for new reads that have not taken any yet.
        var waking = 0
    }
    private let pendingReads: Mutex<PendingReads>
    /// Most reads one reader takes at once, into one transaction: enough to share a BEGIN and
    /// COMMIT (and their lock calls) among the reads that queued while the readers were busy.
    /// A reader takes at most its share of what waits, counting the readers woken for it, so a
    /// burst that woke idle readers is still spread over them.
    static let readBatch = 8

    /// Runs waiting reads on reader `index` until none is left (its queue only). The reads taken
    /// together share one read transaction: every one of them was queued before its BEGIN, so
    /// its snapshot is at least as new as each read's request (a write answered before a read
    /// was sent is in it), and the snapshot stays one for the whole of each read (a page and its
    /// total agree).
    private func drainReads(_ index: Int) {
        let connection = readers[index].connection
        var batch: [ReadJob] = []
        batch.reserveCapacity(Database.readBatch)
        var woken = true
        while true {
            pendingReads.withLock { state in
                if woken {
                    state.waking -= 1
                    woken = false
                }
                let waiting = state.jobs.count - state.head
                let share = (waiting + state.waking) / (state.waking + 1)
                let taken = min(Database.readBatch, share)
                guard taken > 0 else {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                    state.idle.append(index)
                    return
                }
                batch.append(contentsOf: state.jobs[state.head..<(state.head + taken)])
                state.head += taken
                if state.head >= 64 && state.head * 2 >= state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
            }
            guard !batch.isEmpty else { return }
            var next = batch.startIndex
            while next < batch.endIndex {
                if closed {
                    for job in batch[next...] { _ = job(.failure(APIError.unavailable("database is closed"))) }
                    break
                }
                // Before the snapshot begins (at the first statement after BEGIN): see `ReadCache`.
                connection.readGeneration = readCache.generation
                connection.readSerial &+= 1
                do {
                    try connection.run("BEGIN")
                } catch {
                    for job in batch[next...] { _ = job(.failure(error)) }
                    break
                }
                while next < batch.endIndex {
                    let broken = batch[next](.success(connection))
                    next += 1
                    if broken { break }
                }
                _ = try? connection.run("COMMIT")
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction on the writer and answers once it is
    /// committed.
    ///
    /// Group commit: writes that arrive while the writer is busy run together in the next
    /// transaction, and every caller is answered after the one COMMIT that makes its change
    /// durable. Many concurrent writes then share the cost of writing the pages they touch to
    /// the WAL. A body that throws leaves no change of its own and takes none of the others
    /// with it (`runBatch`). A batch that meets SQLITE_BUSY (another replica holding the lock
    /// past the busy timeout) is retried a bounded number of times as a whole — so a body may
    /// run more than once and must change nothing but the database.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try refuseNested("write")
        return try await withCheckedThrowingContinuation { continuation in
            write(body) { continuation.resume(with: $0) }
        }
    }

    /// `write` for a caller that is not a task: `completion` gets the result on the writer's
    /// queue once the batch is committed (or failed). A write answered this way wakes no task:
    /// the writer hands its answer on itself (`Route.direct`). `completion` must not block; it
    /// may queue another write.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                                   completion: @escaping @Sendable (Result<T, Error>) -> Void) {
        let slot = ResultSlot<T>()
        let job = WriteJob(
            run: { db in
                db.lastAppendedSeq = 0
                slot.result = Result { try body(db) }
                if case .success = slot.result { return true }
                return false
            },
            finish: { batchError in
                switch slot.result {
                case .failure(let error)?: completion(.failure(error))
                case .success(let value)? where batchError == nil: completion(.success(value))
                default: completion(.failure(batchError ?? APIError.internal()))
                }
            })
        let first = pendingWrites.withLock { jobs -> Bool in
            jobs.append(job)
            return jobs.count == 1
        }
        if first { queue.async { [self] in drainWrites() } }
    }

    /// Most writes committed together.
    static let maxBatch = 64
    private let pendingWrites = Mutex<[WriteJob]>([])
    /// Writes waiting for the writer (tests: to know a batch is queued).
    var queuedWrites: Int { pendingWrites.withLock { $0.count } }

    /// Runs queued writes in batches until none is left (writer queue only).
    private func drainWrites() {
        while true {
            let jobs = pendingWrites.withLock { pending -> [WriteJob] in
                let taken = Array(pending.prefix(Database.maxBatch))
                pending.removeFirst(taken.count)
                return taken
            }
            if jobs.isEmpty { return }
            let error = runBatch(jobs)
            for job in jobs { job.finish(error) }
        }
    }

    /// Batches left to run with a savepoint per job after one failed without (writer queue only).
    private var isolatedBatches = 0
    /// How many batches run with savepoints after a failure: a client whose writes keep failing
    /// costs the batches it shares at most one extra run now and then, not one each.
    static let isolatedBatchesAfterFailure = 16

    /// One transaction for `jobs`; answers the error that failed the whole batch, if any.
    ///
    /// The jobs run one after the other without savepoints: a savepoint makes SQLite copy every
    /// page a job is first to change into a statement journal (~40 pages, 160 KB, for a customer
    /// create when it still wrote search postings), a fifth of the creates a second (docs/BENCHMARKS.md). Should one
    /// throw, the transaction is rolled back and the batch runs again with each job under its
    /// own savepoint, which then rolls back only the failing job's changes — as do the next
    /// `isolatedBatchesAfterFailure` batches. A batch of one job needs no savepoint at all.
    private func runBatch(_ jobs: [WriteJob]) -> Error? {
        guard !closed else { return APIError.unavailable("database is closed") }
        var attempt = 0
        var isolated = false
        if jobs.count > 1 && isolatedBatches > 0 {
            isolatedBatches -= 1
            isolated = true
        }
        while true {
            do {
                try connection.execute("BEGIN IMMEDIATE")
                let counts = CounterDeltas()
                connection.counterDeltas = counts
                // Gathering ends with this transaction, however it ends.
                defer { connection.counterDeltas = nil }
                do {
                    if isolated {
                        for job in jobs {
                            try connection.run("SAVEPOINT job")
                            let mark = counts.mark
                            if !job.run(connection) {
                                try connection.run("ROLLBACK TO job")
                                counts.truncate(to: mark)
                            }
                            try connection.run("RELEASE job")
                        }
                    } else if jobs.contains(where: { !$0.run(connection) }) {
                        // The failing job's changes are mixed with the others': undo all of them.
                        try connection.execute("ROLLBACK")
                        writerDone()
                        // Alone, it is answered its own error and there is nothing to keep.
                        if jobs.count == 1 { return nil }
                        isolated = true
                        isolatedBatches = Database.isolatedBatchesAfterFailure
                        continue
                    }
                    try Counters.writeGathered(connection)
                    try connection.execute("COMMIT")
                } catch {
                    try? connection.execute("ROLLBACK")
                    writerDone()
                    throw error
                }
                let (changed, eventTypes) = writerDone()
                lastWrite = monotonicMillis()
                // Events appended other than through `Outbox.append` (none today) wake every feed.
                signalCommit(outboxMayHaveChanged: changed.contains(Outbox.table), eventTypes: eventTypes.isEmpty ? nil : eventTypes)
                return nil
            } catch let error as SQLiteError where error.isBusy && attempt < 3 {
                attempt += 1
            } catch {
                Log.error("write batch of \(jobs.count) failed: \(error)")
                return error
            }
        }
    }

    /// Runs `body` synchronously on the queue: for start-up and tests, never on a request path.
    /// Throws `DatabaseMisuse` when called from inside a body of this database (it would wait
    /// for itself).
    public func sync<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try refuseNested("sync")
        return try queue.sync {
            defer { writerDone() }
            return try body(connection)
        }
    }

    /// After the writer's work (committed or not): a new generation of names if it changed a
    /// table they come from — before the writes are answered (writer queue only).
    /// Answers the tables changed (rowid tables: SQLite's update hook) and the types of the
    /// events appended.
    @discardableResult
    private func writerDone() -> (tables: Set<String>, eventTypes: Set<String>) {
        let changed = connection.takeChangedTables()
        if !changed.isEmpty { readCache.invalidate(tables: changed) }
        let eventTypes = connection.appendedEventTypes
        if !eventTypes.isEmpty { connection.appendedEventTypes = [] }
        checkpointIfLarge()
        return (changed, eventTypes)
    }

    /// Returns once the checkpoint queued so far has run (tests).
    func waitForCheckpoint() { checkpointer.queue.sync {} }

    /// WAL pages after which a commit queues a checkpoint: SQLite's own default. The first
    /// checkpoint after the WAL starts over copies all of it at once (later ones only what the
    /// spacing let in): at 4,000 pages that copy of 16 MiB and its syncs stretched the writer's
    /// batches under customer creates to 23–32 ms (the create p99's stalls); at 1,000 the worst
    /// was 11–14 ms, with half as many batches over 8 ms (docs/BENCHMARKS.md). Four times this
    /// had saved 3 % of CustomerService's instructions when creates came one at a time and
    /// every commit past it checkpointed, before the spacing below.
    static let checkpointPages: Int32 = 1000
    /// WAL pages after which the writer checkpoints itself: the checkpointer is not keeping up.
    static let writerCheckpointPages: Int32 = 16_000
    /// The least time between two checkpoints the writer queues. Under a steady stream of
    /// commits the WAL seldom starts over (a reader is nearly always in it), so past
    /// `checkpointPages` every commit queued one: a checkpoint per group commit, each copying
    /// the same hot pages again (a table's and its indexes' last leaves, the counters) and
    /// syncing the file twice — 9 % of CustomerService's CPU under customer creates. Spaced,
    /// each page is copied once per spacing (−5 to −10 % CPU per create; docs/BENCHMARKS.md,
    /// "Gathered polls, spaced checkpoints"). 200 ms spacing made p99 worse (larger bursts).
    static let checkpointSpacingMillis: Int64 = 50
    /// When the writer last queued a checkpoint (writer queue only).
    private var lastCheckpointQueued: Int64 = 0

    /// What SQLite's automatic checkpoint did inside the committing writer — copy the WAL into
    /// the database and sync both, every `checkpointPages` — done by the checkpointer's own
    /// connection and queue, so writes queued behind the commit do not wait for it (7 % of the
    /// writer's time at 2,500 customer creates a second, and its fsyncs). A passive checkpoint
    /// never blocks the writer or readers; the WAL starts over at the next write once all of it
    /// was copied. At most one every `checkpointSpacingMillis`. Writer queue only.
    private func checkpointIfLarge() {
        let now = monotonicMillis()
        switch Database.checkpoint(walPages: connection.walPages, millisSinceQueued: now - lastCheckpointQueued) {
        case .none:
            return
        case .inWriter:
            connection.checkpointPassively()
        case .queued(let delay):
            guard !checkpointQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
            lastCheckpointQueued = now + delay
            let run: @Sendable () -> Void = { [self] in
                checkpointQueued.store(false, ordering: .releasing)
                if !closed { checkpointer.connection.checkpointPassively() }
            }
            if delay > 0 {
                checkpointer.queue.asyncAfter(deadline: .now() + .milliseconds(Int(delay)), execute: run)
            } else {
                checkpointer.queue.async(execute: run)
            }
        }
    }

    /// Where a commit's checkpoint runs, if anywhere.
    enum Checkpoint: Equatable { case none, queued(afterMillis: Int64), inWriter }

    /// The checkpoint after a commit that left `walPages` pages in the WAL, the last one queued
    /// to run `millisSinceQueued` ago: the writer's own past `writerCheckpointPages`; past
    /// `checkpointPages` the checkpointer's, at once when the spacing is over, else when it
    /// will be — so the commits at the end of a burst are copied too, not left in the WAL for
    /// the idle checkpoint (readers look every page up in a WAL not wholly copied); else none.
    ///
    /// Near the writer's own mark (`unspacedCheckpointPages`) the spacing stops: the writer's
    /// checkpoint, which lets the WAL start over, copies and syncs what the last ones left, with
    /// every write waiting — 7 to 68 ms with 50 ms of commits left (the p99 of creates).
    static func checkpoint(walPages pages: Int32, millisSinceQueued: Int64) -> Checkpoint {
        if pages >= writerCheckpointPages { return .inWriter }
        guard pages >= checkpointPages else { return .none }
        if pages >= unspacedCheckpointPages { return .queued(afterMillis: 0) }
        return .queued(afterMillis: max(0, checkpointSpacingMillis - millisSinceQueued))
    }

    /// WAL pages past which every commit queues a checkpoint again (see `checkpoint`).
    static let unspacedCheckpointPages: Int32 = writerCheckpointPages / 4 * 3

    /// Throws (and logs) when the caller runs on one of this database's queues — inside a
    /// `write`, `read`, `sync` or timer body — where waiting for a queue can deadlock: the
    /// writer's own queue waits for itself, and a reader waiting for the writer deadlocks with
    /// `close()`, which waits for the readers from the writer. `read` and `write` are async and
    /// so cannot be reached from a body without a `Task`; they check anyway, for the price of a
    /// lookup. A body that blocks on a `Task` running `write` is not detected.
    private func refuseNested(_ call: String) throws(DatabaseMisuse) {
        guard let which = DispatchQueue.getSpecific(key: queueKey) else { return }
        let place = which == 0 ? "a write (the writer queue)" : "a read (reader queue \(which - 1))"
        let misuse = DatabaseMisuse(message: "Database.\(call) called from inside \(place) of \(path) would block on this "
                                    + "database's own queues (a deadlock); use the connection the body was given")
        Log.error(misuse.message)
        throw misuse
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

    /// Signals `commitSignal` within `intervalMillis` of a commit by another process on the same
    /// file (another replica of the service): `PRAGMA data_version` on the writer connection
    /// changes exactly when some other connection committed. So what waits on the signal or
    /// keys on its generation — event feed long polls, the answer cache of statistics — sees
    /// another replica's writes too, not only this process's own.
    /// Every commit by another connection after this returns is signalled.
    public func watchOtherWriters(intervalMillis: Int = 100) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(intervalMillis), repeating: .milliseconds(intervalMillis))
        queue.sync { dataVersion = try? connection.scalar("PRAGMA data_version") }
        timer.setEventHandler { [self] in
            guard !closed, let version = try? connection.scalar("PRAGMA data_version") else { return }
            if let seen = dataVersion, seen != version {
                readCache.invalidateAll()
                signalCommit(outboxMayHaveChanged: true)
            }
            dataVersion = version
        }
        timer.resume()
        maintenanceTimers.append(timer)
    }

    /// Runs `task` in a write transaction on the writer every `intervalSeconds` (first run
    /// after one interval): for forgetting what has expired.
    public func every(seconds intervalSeconds: Int, _ task: @escaping (SQLiteConnection) throws -> Void) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .seconds(intervalSeconds), repeating: .seconds(intervalSeconds))
        timer.setEventHandler { [self] in
            guard !closed else { return }
            defer { writerDone() }
            do {
                try connection.writeTransaction(task)
                signalCommit(outboxMayHaveChanged: true)
            } catch {
                Log.warning("maintenance failed: \(error)")
            }
        }
        timer.resume()
        maintenanceTimers.append(timer)
    }
    private var maintenanceTimers: [DispatchSourceTimer] = []

    /// Checkpoints and closes; later calls answer 503. Called from inside a body of this
    /// database it logs the mistake and closes nothing (it would wait for itself).
    public func close() {
        guard (try? refuseNested("close")) != nil else { return }
        queue.sync {
            guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
            checkpointTimer?.cancel()
            for timer in maintenanceTimers { timer.cancel() }
            for reader in readers { reader.queue.sync { reader.connection.close() } }
            checkpointer.queue.sync { checkpointer.connection.close() }
            connection.checkpoint()
            connection.close()
        }
    }
}

/// A `Database` call made where it would deadlock (from inside one of its own bodies). Not an
/// `APIError`: the client is answered a plain 500 and the message, naming the mistake, is logged.
public struct DatabaseMisuse: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A write waiting for the writer (touched only on the writer queue once queued).
final class WriteJob: @unchecked Sendable {
    /// Runs the body; false when it threw (its changes are then rolled back: `runBatch`).
    let run: (SQLiteConnection) -> Bool
    /// Answers the caller after the batch: nil when committed.
    let finish: (Error?) -> Void
    init(run: @escaping (SQLiteConnection) -> Bool, finish: @escaping (Error?) -> Void) {
        self.run = run
        self.finish = finish
    }
}

/// Where a write body leaves its result until the batch commits.
final class ResultSlot<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
