import Synchronization

/// What list pages read besides their rows, kept between requests: the names they show beside
/// ids (`operator_name`, `follower_name`, `organization_name` …), each as its JSON text
/// (`"张三"`, `null`), and windowed totals (`page_info.total`). A page then reads its own rows,
/// and a name or a total only the first time a generation needs it.
///
/// **Generations.** `Database` moves the generation on after a commit of its writer changed a
/// table kept values come from (before the writes are answered) — forgetting the names, or the
/// counts, that came from it — and after it sees another process's commit to the file
/// (`watchOtherWriters`, every 100 ms: everything is forgotten). A reader takes the generation
/// *before* its transaction's snapshot begins (`Database.read` sets
/// `SQLiteConnection.readGeneration` before `BEGIN`), and uses or keeps names (counts) only if
/// they were last forgotten at or before that generation. So a snapshot older than a commit
/// never keeps a value that commit changed: the commit's forgetting either came before the
/// reader took its generation (its snapshot then sees the commit) or after (what it read is
/// dropped). Names and counts are forgotten apart: a new follow-up record changes totals, not
/// names.
public final class ReadCache: Sendable {
    /// Where names come from: a table and the SQL of a row's name over its alias `x`.
    public struct Source: Hashable, Sendable {
        public var table: String
        public var nameSQL: String
        public init(table: String, nameSQL: String) {
            self.table = table
            self.nameSQL = nameSQL
        }

        /// The id and name of the rows whose ids are bound as one JSON array.
        var sql: String { "SELECT x.id, \(nameSQL) FROM json_each(?) j CROSS JOIN \(table) x ON x.id = j.value" }
    }

    /// A count over some tables (`tables`: what a change to makes it stale; the first must be
    /// changed by every write that changes the count, as a windowed total's table is), named by
    /// `text` and `binds` (the query and its values, or its shape and bounds).
    public struct CountKey: Hashable, Sendable {
        public var tables: [String]
        public var text: String
        public var binds: [SQLValue]
        public init(tables: [String], text: String, binds: [SQLValue] = []) {
            self.tables = tables
            self.text = text
            self.binds = binds
        }
    }

    private struct State {
        var generation: UInt64 = 0
        /// The generations at which names and counts were last forgotten.
        var namesSince: UInt64 = 0
        var countsSince: UInt64 = 0
        /// Per source, id → the name's JSON; an empty array: no such row (it stays unnamed).
        var names: [Source: [Int64: [UInt8]]] = [:]
        var count = 0
        var counts: [CountKey: Int64] = [:]
        /// Per table: whether SQLite's update hook reports its changes (not for `WITHOUT ROWID`).
        var reported: [String: Bool] = [:]

        mutating func forgetNames() {
            generation &+= 1
            namesSince = generation
            names = [:]
            count = 0
        }

        mutating func forgetCounts() {
            generation &+= 1
            countsSince = generation
            counts = [:]
        }
    }

    private let state = Mutex(State())
    /// Most names kept; reaching it starts the cache over (a bound on memory, not an eviction
    /// policy: a page needs tens of names, a service's copies a few hundred thousand at most).
    public let capacity: Int

    /// Most counts kept (each window's end moves with the clock: a bound, as `capacity`).
    public let countCapacity: Int

    public init(capacity: Int = 50_000, countCapacity: Int = 1_000) {
        self.capacity = capacity
        self.countCapacity = countCapacity
    }

    public var generation: UInt64 { state.withLock { $0.generation } }

    /// How many names are kept (for tests).
    public var count: Int { state.withLock { $0.count } }

    /// Forgets the names, and the counts, that come from one of `tables` (after the writer
    /// committed changes to them).
    public func invalidate(tables: Set<String>) {
        state.withLock { state in
            if state.names.keys.contains(where: { tables.contains($0.table) }) { state.forgetNames() }
            if state.counts.keys.contains(where: { $0.tables.contains(where: tables.contains) }) { state.forgetCounts() }
        }
    }

    /// Forgets everything (another process committed: what it changed is unknown).
    public func invalidateAll() {
        state.withLock { state in
            state.forgetNames()
            state.forgetCounts()
        }
    }

    /// The count kept for `key` while the cache is still in `generation`, else `count()` (run in
    /// the caller's transaction, whose snapshot began in `generation`), kept.
    public func count(_ key: CountKey, generation: UInt64, count: () throws -> Int64) rethrows -> Int64 {
        if let kept = state.withLock({ $0.countsSince <= generation ? $0.counts[key] : nil }) { return kept }
        let value = try count()
        state.withLock { state in
            guard state.countsSince <= generation else { return }
            if state.counts.count >= countCapacity { state.counts = [:] }
            state.counts[key] = value
        }
        return value
    }

    /// Whether changes to `table` reach `invalidate(tables:)`: the update hook reports rows of
    /// rowid tables only, so values from a `WITHOUT ROWID` table are never kept (looked up once
    /// per table, in the caller's transaction).
    func reports(_ table: String, _ db: SQLiteConnection) throws -> Bool {
        if let known = state.withLock({ $0.reported[table] }) { return known }
        let reported = try db.scalar("SELECT COUNT(*) FROM pragma_table_list WHERE name = ? AND type = 'table' AND wr = 0", [.text(table)]) > 0
        state.withLock { $0.reported[table] = reported }
        return reported
    }

    /// How many counts are kept (for tests).
    public var countsKept: Int { state.withLock { $0.counts.count } }

    /// The JSON of each id's name (ids with no row in `source` are left out): kept ones from the
    /// cache when it is still in `generation`, the others read with `read` (in the caller's
    /// transaction, whose snapshot began in `generation`) and kept.
    public func names(_ source: Source, of ids: [Int64], generation: UInt64,
                      read: ([Int64]) throws -> [(id: Int64, name: [UInt8])]) rethrows -> [Int64: [UInt8]] {
        var found: [Int64: [UInt8]] = [:]
        found.reserveCapacity(ids.count)
        let missing = state.withLock { state -> [Int64] in
            guard state.namesSince <= generation, let kept = state.names[source] else { return ids }
            var missing: [Int64] = []
            for id in ids {
                if let name = kept[id] {
                    if !name.isEmpty { found[id] = name }
                } else {
                    missing.append(id)
                }
            }
            return missing
        }
        guard !missing.isEmpty else { return found }
        var read = try read(missing)
        for (id, name) in read where !name.isEmpty { found[id] = name }
        // What was asked for and not found: no such row, kept as such.
        let named = Set(read.map(\.id))
        for id in missing where !named.contains(id) { read.append((id, [])) }
        state.withLock { state in
            guard state.namesSince <= generation else { return }
            if state.count + read.count > capacity {
                state.names = [:]
                state.count = 0
            }
            var kept = state.names[source, default: [:]]
            state.names[source] = nil
            for (id, name) in read where kept.updateValue(name, forKey: id) == nil { state.count += 1 }
            state.names[source] = kept
        }
        return found
    }
}
