import Synchronization

/// The names list pages show beside ids (`operator_name`, `follower_name`, `organization_name`
/// …), kept between requests as their JSON text (`"张三"`, `null`): a page then reads its own
/// rows, and a name only the first time a generation needs it. (Totals are remembered per
/// connection and snapshot instead: `SnapshotCounts`.)
///
/// **Generations.** `Database` starts a new generation — forgetting every name — after a commit
/// of its writer changed a table names come from (before the writes are answered), and after it
/// sees another process's commit to the file (`watchOtherWriters`, every 100 ms). A reader takes
/// the generation *before* its transaction's snapshot begins (`Database.read` sets
/// `SQLiteConnection.readGeneration` before `BEGIN`) and uses or keeps names only while that is
/// still the generation. So a snapshot older than a commit never keeps a name that commit
/// changed: the commit's new generation was either taken by the reader (its snapshot then sees
/// the commit) or is newer than the reader's (what it read is dropped). A name another replica
/// changed shows within about 100 ms.
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

    private struct State {
        var generation: UInt64 = 0
        /// Per source, id → the name's JSON; an empty array: no such row (it stays unnamed).
        var names: [Source: [Int64: [UInt8]]] = [:]
        var count = 0
        /// Per table: whether SQLite's update hook reports its changes (not for `WITHOUT ROWID`).
        var reported: [String: Bool] = [:]

        mutating func forgetNames() {
            generation &+= 1
            names = [:]
            count = 0
        }
    }

    private let state = Mutex(State())
    /// Most names kept; reaching it starts the cache over (a bound on memory, not an eviction
    /// policy: a page needs tens of names, a service's copies a few hundred thousand at most).
    public let capacity: Int

    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    public var generation: UInt64 { state.withLock { $0.generation } }

    /// How many names are kept (for tests).
    public var count: Int { state.withLock { $0.count } }

    /// Forgets the names if one comes from one of `tables` (after the writer committed changes
    /// to them).
    public func invalidate(tables: Set<String>) {
        state.withLock { state in
            if state.names.keys.contains(where: { tables.contains($0.table) }) { state.forgetNames() }
        }
    }

    /// Forgets everything (another process committed: what it changed is unknown).
    public func invalidateAll() {
        state.withLock { $0.forgetNames() }
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


    /// The JSON of each id's name, in the order of `ids` (which may repeat; nil: no row in
    /// `source`): kept ones from the cache when it is still in `generation`, the others read
    /// with `read` (once each, in the caller's transaction, whose snapshot began in
    /// `generation`) and kept.
    public func names(_ source: Source, of ids: [Int64], generation: UInt64,
                      read: ([Int64]) throws -> [(id: Int64, name: [UInt8])]) rethrows -> [[UInt8]?] {
        var found = [[UInt8]?](repeating: nil, count: ids.count)
        /// Indexes into `ids` of the names not kept.
        let missing = state.withLock { state -> [Int] in
            guard state.generation == generation, let kept = state.names[source] else { return Array(ids.indices) }
            var missing: [Int] = []
            for (i, id) in ids.enumerated() {
                if let name = kept[id] {
                    if !name.isEmpty { found[i] = name }
                } else {
                    missing.append(i)
                }
            }
            return missing
        }
        guard !missing.isEmpty else { return found }
        let wanted = Array(Set(missing.map { ids[$0] }))
        var named: [Int64: [UInt8]] = [:]
        for (id, name) in try read(wanted) { named[id] = name }
        for i in missing { found[i] = named[ids[i]] }
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.count + wanted.count > capacity {
                state.names = [:]
                state.count = 0
            }
            var kept = state.names[source, default: [:]]
            state.names[source] = nil
            // What was asked for and not found: no such row, kept as such (an empty name).
            for id in wanted where kept.updateValue(named[id] ?? [], forKey: id) == nil { state.count += 1 }
            state.names[source] = kept
        }
        return found
    }
}
