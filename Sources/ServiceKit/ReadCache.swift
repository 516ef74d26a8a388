import Synchronization
import WireProtocol

/// The names list pages show beside ids (`operator_name`, `follower_name`, `organization_name`
/// …), kept between requests as their JSON text (`"张三"`, `null`): a page then reads its own
/// rows, and a name only once after each change of its table. (Totals are remembered per
/// connection and snapshot instead: `SnapshotCounts`.)
///
/// **Generations.** The cache counts the writer's commits that changed anything (and commits of
/// other processes to the file, seen by `watchOtherWriters` within 100 ms), and records for each
/// table the count at its last change; a change forgets the names that come from that table
/// (another process's commit: every name). A reader takes the count *before* its transaction's
/// snapshot begins (`Database.read` sets `SQLiteConnection.readGeneration` before `BEGIN`) and
/// keeps what it read from a table only if the table's last change is not newer than that. A
/// commit newer than the reader's count may be missing from its snapshot — its names are not
/// kept — even when no name of that table was kept yet when the commit landed. So a name a
/// commit changed is never kept from a snapshot older than the commit. A name another replica
/// changed shows within about 100 ms.
public final class ReadCache: Sendable {
    /// Where names come from: a table and the SQL of a row's name over its alias `x`.
    public struct Source: Hashable, Sendable {
        public let table: String
        public let nameSQL: String
        /// Both strings hashed once (a page looks its sources up for every reference and link;
        /// `Resource`'s answer plan makes each source once).
        private let fingerprint: Int

        public init(table: String, nameSQL: String) {
            self.table = table
            self.nameSQL = nameSQL
            var hasher = Hasher()
            hasher.combine(table)
            hasher.combine(nameSQL)
            fingerprint = hasher.finalize()
        }

        public static func == (a: Source, b: Source) -> Bool {
            a.fingerprint == b.fingerprint && a.table == b.table && a.nameSQL == b.nameSQL
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(fingerprint)
        }

        /// The id and name of the rows whose ids are bound as one JSON array.
        var sql: String { "SELECT x.id, \(nameSQL) FROM json_each(?) j CROSS JOIN \(table) x ON x.id = j.value" }
    }

    private struct State {
        /// Commits counted so far (see "Generations").
        var generation: UInt64 = 0
        /// Per table, the generation of its last change; `everything`: of the last change that
        /// may have touched any table (another process's commit).
        var changed: [String: UInt64] = [:]
        var everything: UInt64 = 0
        /// Per source, the names kept.
        var names: [Source: Kept] = [:]
        var count = 0
        /// Per table: whether SQLite's update hook reports its changes (not for `WITHOUT ROWID`).
        var reported: [String: Bool] = [:]

        /// Whether a snapshot that began at `generation` may keep what it read from `table`.
        func mayKeep(_ table: String, readAt generation: UInt64) -> Bool {
            everything <= generation && (changed[table] ?? 0) <= generation
        }
    }

    /// One source's names: each id's name's JSON in `bytes`, at `spans[row: id]` (an empty
    /// span: no such row, it stays unnamed). Reachable only through `state`, so touched only
    /// under its lock (a class: a page's lookups neither copy nor retain its arrays).
    private final class Kept: @unchecked Sendable {
        var spans = IDTable<Range<Int32>>()
        var bytes: [UInt8] = []

        func keep(_ id: Int64, _ name: [UInt8]) {
            let start = Int32(truncatingIfNeeded: bytes.count)
            bytes += name
            spans.set(start..<Int32(truncatingIfNeeded: bytes.count), forRow: id)
        }
    }

    private let state = Mutex(State())
    /// Most bytes of names kept per source (its spans are 32-bit offsets).
    static let maxBytesPerSource = 16 << 20
    /// Most names kept; reaching it starts the cache over (a bound on memory, not an eviction
    /// policy: a page needs tens of names, a service's copies a few hundred thousand at most).
    public let capacity: Int

    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    public var generation: UInt64 { state.withLock { $0.generation } }

    /// How many names are kept (for tests).
    public var count: Int { state.withLock { $0.count } }

    /// Counts a commit of the writer that changed `tables` and forgets the names that come
    /// from them.
    public func invalidate(tables: Set<String>) {
        state.withLock { state in
            state.generation &+= 1
            for table in tables { state.changed[table] = state.generation }
            for source in state.names.keys where tables.contains(source.table) {
                state.count -= state.names[source]?.spans.count ?? 0
                state.names[source] = nil
            }
        }
    }

    /// Counts a commit of another process (what it changed is unknown) and forgets every name.
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.everything = state.generation
            state.names = [:]
            state.count = 0
        }
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


    /// Each id's name's JSON written into `out`, as its range there, in the order of `ids`
    /// (which may repeat; nil: no row in `source`): kept ones copied from the cache (never
    /// older than the table's last change), the others read with `read` (once each, in the
    /// caller's transaction, whose snapshot began at `generation`) and kept if no change of the
    /// table is newer than that.
    public func names(_ source: Source, of ids: [Int64], generation: UInt64, into out: inout JSONText,
                      read: ([Int64]) throws -> [(id: Int64, name: [UInt8])]) rethrows -> [Range<Int>?] {
        var found = [Range<Int>?](repeating: nil, count: ids.count)
        /// Indexes into `ids` of the names not kept.
        var missing: [Int] = []
        state.withLock { state in
            guard let kept = state.names[source] else {
                missing = Array(ids.indices)
                return
            }
            kept.bytes.withUnsafeBufferPointer { bytes in
                for (i, id) in ids.enumerated() {
                    guard let span = kept.spans[row: id] else {
                        missing.append(i)
                        continue
                    }
                    guard !span.isEmpty else { continue }
                    let start = out.count
                    out.raw(UnsafeBufferPointer(rebasing: bytes[Int(span.lowerBound)..<Int(span.upperBound)]))
                    found[i] = start..<out.count
                }
            }
        }
        guard !missing.isEmpty else { return found }
        let wanted = Array(Set(missing.map { ids[$0] }))
        var named: [Int64: [UInt8]] = [:]
        for (id, name) in try read(wanted) { named[id] = name }
        for i in missing {
            guard let name = named[ids[i]] else { continue }
            let start = out.count
            out.raw(name)
            found[i] = start..<out.count
        }
        state.withLock { state in
            guard state.mayKeep(source.table, readAt: generation) else { return }
            if state.count + wanted.count > capacity {
                state.names = [:]
                state.count = 0
            }
            let kept: Kept
            if let existing = state.names[source], existing.bytes.count < ReadCache.maxBytesPerSource {
                kept = existing
            } else {
                // (A source's text past its bound starts over, as the whole cache does past `capacity`.)
                state.count -= state.names[source]?.spans.count ?? 0
                kept = Kept()
                state.names[source] = kept
            }
            // What was asked for and not found: no such row, kept as such (an empty name).
            for id in wanted {
                if kept.spans[row: id] == nil { state.count += 1 }
                kept.keep(id, named[id] ?? [])
            }
        }
        return found
    }

    /// `names(_:of:generation:into:read:)` as separate arrays (for tests).
    func names(_ source: Source, of ids: [Int64], generation: UInt64,
               read: ([Int64]) throws -> [(id: Int64, name: [UInt8])]) rethrows -> [[UInt8]?] {
        var out = JSONText(capacity: 256)
        let ranges = try names(source, of: ids, generation: generation, into: &out, read: read)
        return out.withBytes { bytes in ranges.map { $0.map { Array(bytes[$0]) } } }
    }
}
