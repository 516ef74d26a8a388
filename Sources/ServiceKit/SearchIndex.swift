#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CSQLite
import Synchronization
import WireProtocol

/// Case-insensitive substring search over a resource's folded texts (`name_fold`), from an
/// n-gram index held in memory: every distinct run of one to four characters of each text
/// (`NgramIndex.forEachGram`) → the ids whose texts have it, ascending. A query of up to four
/// characters *is* a gram: its list, filtered by status, is exactly the matching rows. A longer
/// query is driven by the rarest of its four-character grams; a candidate matches when it has
/// every one of them and its folded text contains the query's bytes. `%`, `_` and quotes are
/// just characters.
///
/// The index is the rows as of one outbox sequence number (`seq`: every event up to it
/// applied), and it answers *exactly* what a read transaction's snapshot holds. A read sees
/// the newest event its snapshot holds (`head`); when that is ahead of the index, a read
/// transaction applies the events between (the rows they name, read from its snapshot: every
/// one committed) and moves the index on — another replica's writes arrive this way too; when
/// it is behind (the snapshot began before a commit the index has taken), the ids of the
/// events between come from the index's list of recent changes and those rows are taken as
/// the snapshot has them. A write transaction (its own uncommitted rows) corrects the same way
/// without moving the index. Every change of a searched row publishes an event
/// (`Resource.insert`, `update`, `changeStatus`), so nothing changes a row unseen.
///
/// Replaces a posting table in SQLite (`(gram, status, entity_id)`), whose ~50 entries per
/// customer spread over ~30 b-tree leaves were half of the single writer's work per create
/// (docs/BENCHMARKS.md, "The search index in memory"). Bounded: memory in proportion to the
/// rows (~300 bytes a customer at 100,000: `GramTable`, one text buffer, 16 bytes per id);
/// `Limits.recent` changes remembered, `State.maxCounts` totals.
public final class SearchIndex: Sendable {
    public let table: String
    public let eventType: String
    private let state = Mutex(State())

    /// Rows are kept by id in arrays (16 bytes a slot): an id past twice the rows held plus
    /// this (a table far sparser than AUTOINCREMENT makes it) leaves every search to a scan
    /// instead of a huge array.
    static let idSlack = 1 << 16

    /// How far the index looks back and ahead.
    public struct Limits: Sendable {
        /// Changes remembered for snapshots behind the index; an older snapshot is answered by a scan.
        public var recent = 16_384
        /// A read more events behind than this rebuilds the index from the table instead.
        public var rebuildAfter = 20_000
        /// A filtered search with at most this many matches hands them to SQL as a list.
        public var idList = 2_000
        public init() {}
    }
    let limits: Limits

    public init(table: String, eventType: String, limits: Limits = Limits()) {
        self.table = table
        self.eventType = eventType
        self.limits = limits
    }

    /// One search: the folded query and the grams it is looked up by.
    struct Query {
        let bytes: [UInt8]
        /// At most `NgramIndex.maxGram` characters: the query is its one gram.
        let short: Bool
        /// The query (short), else its distinct four-character grams. Empty: nothing matches
        /// (a query holding the texts' separator).
        let grams: [GramTable.Key]

        init(_ folded: String) {
            bytes = Array(folded.utf8)
            short = folded.count <= NgramIndex.maxGram
            guard !bytes.contains(Search.separatorByte), !bytes.isEmpty else {
                grams = []
                return
            }
            if short {
                grams = [GramTable.Key(bytes)]
            } else {
                // (A set: a query of 1,000 characters has ~1,000 grams, compared pairwise ~500,000 times.)
                var seen = Set<GramTable.Key>()
                var grams: [GramTable.Key] = []
                NgramIndex.forEachGram(of: folded, lengths: NgramIndex.maxGram...NgramIndex.maxGram) { gram in
                    let key = GramTable.Key(gram)
                    if seen.insert(key).inserted { grams.append(key) }
                }
                self.grams = grams
            }
        }

        /// Whether a row whose folded text is `fold` matches: the query is one of its grams,
        /// else it has every gram of the query and contains the query's bytes.
        func matches(_ fold: [UInt8]) -> Bool {
            guard !grams.isEmpty else { return false }
            var missing = Set(grams)
            fold.withUnsafeBufferPointer { fold in
                NgramIndex.forEachGram(in: fold, lengths: (short ? 1 : NgramIndex.maxGram)...NgramIndex.maxGram) { gram in
                    if !missing.isEmpty { missing.remove(GramTable.Key(gram)) }
                }
            }
            return missing.isEmpty && (short || fold.withUnsafeBufferPointer { NgramIndex.contains($0, bytes) })
        }
    }

    /// A row as a snapshot holds it (nil status: no such row).
    struct Entry {
        var id: Int64
        var status: Int64?
        var fold: [UInt8]
    }

    struct State {
        var built = false
        /// Set when a row cannot be held (an id far past the rows held, `idSlack`): every search scans.
        var unusable = false
        /// Every event up to this one is applied.
        var seq: Int64 = 0
        /// Snapshots from this sequence number on can be corrected from `recent`.
        var floor: Int64 = 0
        /// Each id's status (`absent`: no row), by id, and how many rows there are.
        var statuses: [Int64] = []
        var rows = 0
        /// Each id's folded text: `foldSpans[id]` (start << 32 | length) in `foldBytes`, one
        /// buffer for all (a `String` each cost ~64 bytes apiece more). A rename appends and
        /// leaves its old text as garbage, compacted away once it is half the buffer.
        var foldBytes: [UInt8] = []
        var foldSpans: [UInt64] = []
        var foldGarbage = 0
        var lists = GramTable()
        /// The events applied since `floor`, oldest first: (seq, entity id).
        var recent: [(seq: Int64, id: Int64)] = []
        /// Totals of searches as of `seq` (`evaluate`), dropped at any change.
        var counts: [CountKey: Int] = [:]
        static let maxCounts = 256

        struct CountKey: Hashable {
            var query: [UInt8]
            var statuses: [Int64]?
        }

        static let absent = Int64.min

        /// The bytes a span of `foldSpans` names within `all` (`foldBytes`).
        static func fold(_ span: UInt64, in all: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
            let start = Int(span >> 32), count = Int(span & 0xFFFF_FFFF)
            return UnsafeBufferPointer(rebasing: all[start..<(start + count)])
        }

        /// Takes row `id64` as it now is: `status` nil when there is no such row.
        mutating func set(_ id64: Int64, status: Int64?, fold new: UnsafeBufferPointer<UInt8>) {
            guard id64 > 0, id64 <= Int64(max(statuses.count, 2 * rows + SearchIndex.idSlack)) else {
                unusable = true
                return
            }
            let id = Int(id64)
            if id >= statuses.count {
                let grown = id < statuses.capacity ? statuses.capacity : max(id + 1, statuses.count + statuses.count / 2)
                statuses.append(contentsOf: repeatElement(State.absent, count: grown - statuses.count))
                foldSpans.append(contentsOf: repeatElement(0, count: grown - foldSpans.count))
            }
            if !counts.isEmpty { counts.removeAll() }
            let oldStatus = statuses[id]
            statuses[id] = status ?? State.absent
            rows += (status == nil ? 0 : 1) - (oldStatus == State.absent ? 0 : 1)
            let old: [UInt8] = oldStatus == State.absent ? [] : foldBytes.withUnsafeBufferPointer { Array(State.fold(foldSpans[id], in: $0)) }
            let kept = status == nil ? UnsafeBufferPointer<UInt8>(start: nil, count: 0) : new
            // A status change alone leaves the lists as they are (they hold every status).
            if oldStatus != State.absent && status != nil && old.elementsEqual(kept) { return }
            old.withUnsafeBufferPointer { old in
                NgramIndex.forEachGram(in: old, lengths: 1...NgramIndex.maxGram) { lists.remove(UInt32(id), $0) }
            }
            foldGarbage += old.count
            foldSpans[id] = UInt64(foldBytes.count) << 32 | UInt64(kept.count)
            foldBytes.append(contentsOf: kept)
            NgramIndex.forEachGram(in: kept, lengths: 1...NgramIndex.maxGram) { lists.insert(UInt32(id), $0) }
            if foldGarbage > 1 << 20 && foldGarbage * 2 > foldBytes.count { compactFolds() }
        }

        /// Copies every live text into a new buffer, dropping the garbage.
        mutating func compactFolds() {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(foldBytes.count - foldGarbage)
            foldBytes.withUnsafeBufferPointer { all in
                for id in foldSpans.indices where statuses[id] != State.absent {
                    let text = State.fold(foldSpans[id], in: all)
                    foldSpans[id] = UInt64(bytes.count) << 32 | UInt64(text.count)
                    bytes.append(contentsOf: text)
                }
            }
            foldBytes = bytes
            foldGarbage = 0
        }

        mutating func remember(_ seq: Int64, _ id: Int64, limit: Int) {
            recent.append((seq, id))
            guard recent.count > limit else { return }
            let dropped = recent.count - limit / 2
            floor = recent[dropped - 1].seq
            recent.removeFirst(dropped)
        }
    }

    // MARK: Searching

    /// The ids matching `folded` with one of `statuses` (nil: any) as `db` sees them, newest
    /// first: one page of them and how many there are, or all of them (`paging` nil).
    public func search(_ db: SQLiteConnection, folded: String, statuses: [Int64]?, paging: Paging?) throws -> (ids: [Int64], total: Int64) {
        let query = Query(folded)
        guard !query.grams.isEmpty else { return ([], 0) }
        return try inTransaction(db) { head, readOnly in
            try answer(db, query, head: head, readOnly: readOnly, statuses: statuses, paging: paging)
                ?? scan(db, query, statuses: statuses, paging: paging)
        }
    }

    /// Runs `body` with the newest event `db`'s snapshot holds and whether the transaction is a
    /// read (nothing uncommitted in it): inside the caller's transaction, else in one of its own.
    private func inTransaction<T>(_ db: SQLiteConnection, _ body: (_ head: Int64, _ readOnly: Bool) throws -> T) throws -> T {
        let began = sqlite3_get_autocommit(db.handle) != 0
        if began { try db.run("BEGIN") }
        defer { if began { _ = try? db.run("COMMIT") } }
        let head = try Outbox.newestSeq(db)
        // Read after that statement, which began the snapshot (or wrote: a write transaction).
        return try body(head, sqlite3_txn_state(db.handle, "main") == SQLITE_TXN_READ)
    }

    /// The answer from the index brought to `db`'s snapshot (nil: only a scan can tell).
    private func answer(_ db: SQLiteConnection, _ query: Query, head: Int64, readOnly: Bool, statuses: [Int64]?, paging: Paging?) throws -> (ids: [Int64], total: Int64)? {
        try state.withLock { state -> (ids: [Int64], total: Int64)? in
            if state.unusable { return nil }
            if !state.built {
                guard readOnly else { return nil }
                try build(&state, db, head: head)
            }
            var changed: [Int64] = []
            if head > state.seq {
                // More than `limits.rebuildAfter` behind: rebuilt (a read) or scanned (a write).
                guard let events = try self.events(db, after: state.seq, limit: limits.rebuildAfter) else {
                    guard readOnly else { return nil }
                    try build(&state, db, head: head)
                    return state.unusable ? nil : SearchIndex.evaluate(&state, query, statuses: statuses, corrections: [], paging: paging)
                }
                if readOnly {
                    for entry in try rows(db, Set(events.map(\.id))) { entry.fold.withUnsafeBufferPointer { state.set(entry.id, status: entry.status, fold: $0) } }
                    for event in events { state.remember(event.seq, event.id, limit: limits.recent) }
                    state.seq = head
                } else {
                    changed = events.map(\.id)
                }
            } else if head < state.seq {
                guard head >= state.floor else { return nil }
                changed = state.recent.reversed().prefix { $0.seq > head }.map(\.id)
            }
            guard !state.unusable else { return nil }
            let corrections = changed.isEmpty ? [] : try rows(db, Set(changed))
            return SearchIndex.evaluate(&state, query, statuses: statuses, corrections: corrections, paging: paging)
        }
    }

    /// Builds the index from the rows `db` sees now, unless it is built (at start, so the first
    /// search does not wait for it).
    public func prepare(_ db: SQLiteConnection) throws {
        try inTransaction(db) { head, readOnly in
            try state.withLock { state in
                if !state.built && readOnly { try build(&state, db, head: head) }
            }
        }
    }

    /// The matching ids of a filtered list (`filter` on the table as `t`), newest first: the
    /// index's matches narrowed by SQL, a page of them and the total.
    public func searchPage(_ db: SQLiteConnection, folded: String, statuses: [Int64]?, filter: SQLFilter, paging: Paging) throws -> (ids: [Int64], total: Int64) {
        guard !filter.conditions.isEmpty else { return try search(db, folded: folded, statuses: statuses, paging: paging) }
        let matches = try search(db, folded: folded, statuses: statuses, paging: nil).ids
        guard !matches.isEmpty else { return ([], 0) }
        let ids: [Int64]
        if matches.count <= limits.idList {
            var narrowed = filter
            narrowed.add("t.id IN (SELECT value FROM json_each(?))", [Resource.idArray(matches)])
            ids = try db.queryIDs("SELECT t.id FROM \(table) t \(narrowed.clause) ORDER BY t.id DESC", narrowed.binds)
        } else {
            // Many matches (a one-letter query): the filter's rows, kept when they match.
            let matching = Set(matches)
            ids = try db.queryIDs("SELECT t.id FROM \(table) t \(filter.clause) ORDER BY t.id DESC", filter.binds).filter(matching.contains)
        }
        return paging.page(of: ids)
    }

    /// A condition on `idColumn` that holds for exactly the rows matching `folded`, whatever
    /// their status (the ids as one bound JSON array).
    public func condition(_ db: SQLiteConnection, idColumn: String, folded: String) throws -> (sql: String, binds: [SQLValue]) {
        let ids = try search(db, folded: folded, statuses: nil, paging: nil).ids
        return ("\(idColumn) IN (SELECT value FROM json_each(?))", [Resource.idArray(ids)])
    }

    /// The matches in `state` as of its `seq`, except that the rows in `corrections` are taken
    /// as given (the snapshot's own): newest first, paged. A total found without corrections is
    /// remembered until the index changes, and a page whose total is known stops once it is full
    /// (a one-letter query at 100,000 customers walks its 60,000 ids once, not on every page).
    static func evaluate(_ state: inout State, _ query: Query, statuses: [Int64]?, corrections: [Entry], paging: Paging?) -> (ids: [Int64], total: Int64) {
        let corrected = Set(corrections.map(\.id))
        let extra = corrections.filter { entry in
            guard let status = entry.status else { return false }
            return (statuses?.contains(status) ?? true) && query.matches(entry.fold)
        }.map(\.id).sorted(by: >)
        let key = corrections.isEmpty ? State.CountKey(query: query.bytes, statuses: statuses) : nil
        let known = key.flatMap { state.counts[$0] }
        var lists: [[UInt32]] = []
        for gram in query.grams {
            guard let postings = state.lists.postings(gram) else {
                lists = []
                break
            }
            lists.append(postings.ids)
        }
        lists.sort { $0.count < $1.count }
        let driver = lists.first ?? []
        let others = lists.dropFirst()
        let skip = paging.map { Int($0.offset) } ?? 0
        let limit = paging.map { Int($0.count) } ?? Int.max
        var ids: [Int64] = []
        ids.reserveCapacity(min(limit, 64))
        var total = 0
        var e = 0
        let single = statuses?.count == 1 ? statuses?.first : nil
        for raw in driver.reversed() {
            if known != nil && ids.count == limit { break }
            let status = state.statuses[Int(raw)]
            if let single { if status != single { continue } } else if let statuses, !statuses.contains(status) { continue }
            let id = Int64(raw)
            if !corrected.isEmpty && corrected.contains(id) { continue }
            if !query.short {
                guard others.allSatisfy({ $0.sortedContains(raw) }) else { continue }
                let span = state.foldSpans[Int(raw)]
                guard state.foldBytes.withUnsafeBufferPointer({ NgramIndex.contains(State.fold(span, in: $0), query.bytes) }) else { continue }
            }
            while e < extra.count && extra[e] > id {
                if total >= skip && ids.count < limit { ids.append(extra[e]) }
                total += 1
                e += 1
            }
            if total >= skip && ids.count < limit { ids.append(id) }
            total += 1
        }
        while e < extra.count {
            if total >= skip && ids.count < limit { ids.append(extra[e]) }
            total += 1
            e += 1
        }
        if let known { return (ids, Int64(known)) }
        if let key {
            if state.counts.count >= State.maxCounts { state.counts.removeAll(keepingCapacity: true) }
            state.counts[key] = total
        }
        return (ids, Int64(total))
    }

    /// The answer without the index (a snapshot older than it remembers, or no index yet in a
    /// write transaction): every row read and matched.
    func scan(_ db: SQLiteConnection, _ query: Query, statuses: [Int64]?, paging: Paging?) throws -> (ids: [Int64], total: Int64) {
        var rows = try rows(db, nil).filter { entry in
            guard let status = entry.status else { return false }
            return (statuses?.contains(status) ?? true) && query.matches(entry.fold)
        }
        rows.sort { $0.id > $1.id }
        let ids = rows.map(\.id)
        return paging?.page(of: ids) ?? (ids, Int64(ids.count))
    }

    // MARK: Following the rows

    /// The index built afresh from the rows `db`'s read transaction sees, whose newest event is `head`.
    private func build(_ state: inout State, _ db: SQLiteConnection, head: Int64) throws {
        state = State()
        // The arrays by id and the text buffer sized up front, not grown by copies.
        try db.forEachRow("SELECT COALESCE(MAX(id), 0), COUNT(*), COALESCE(SUM(length(CAST(name_fold AS BLOB))), 0) FROM \(table)") { row in
            let slots = Int(min(row.int(0), Int64(2 * row.int(1)) + Int64(SearchIndex.idSlack))) + 1
            state.statuses.reserveCapacity(slots)
            state.foldSpans.reserveCapacity(slots)
            state.foldBytes.reserveCapacity(Int(min(row.int(2), 1 << 30)))
        }
        try db.forEachRow("SELECT id, status, name_fold FROM \(table)") { row in
            if case .bytes(let fold) = row[2] { state.set(row.int(0), status: row.int(1), fold: fold) } else {
                state.set(row.int(0), status: row.int(1), fold: UnsafeBufferPointer(start: nil, count: 0))
            }
        }
        state.built = true
        state.seq = head
        state.floor = head
        // What the rows read and the old index freed goes back to the system.
        _ = malloc_trim(0)
    }

    /// The events of the index's type after `seq` that `db` sees, oldest first; nil when
    /// there are more than `limit`.
    private func events(_ db: SQLiteConnection, after seq: Int64, limit: Int) throws -> [(seq: Int64, id: Int64)]? {
        var events: [(seq: Int64, id: Int64)] = []
        try db.forEachRow("SELECT seq, entity_id FROM events WHERE seq > ? AND +type = ? ORDER BY seq LIMIT ?",
                          [.int(seq), .text(eventType), .int(Int64(limit) + 1)]) { row in
            events.append((row.int(0), row.int(1)))
        }
        return events.count > limit ? nil : events
    }

    /// The rows `ids` (nil: every row) as `db` sees them; an id without a row is answered
    /// with no status.
    private func rows(_ db: SQLiteConnection, _ ids: Set<Int64>?) throws -> [Entry] {
        var entries: [Entry] = []
        var found = Set<Int64>()
        let sql = "SELECT id, status, name_fold FROM \(table)" + (ids == nil ? "" : " WHERE id IN (SELECT value FROM json_each(?))")
        try db.forEachRow(sql, ids.map { [Resource.idArray($0)] } ?? []) { row in
            let fold: [UInt8]
            if case .bytes(let bytes) = row[2] { fold = Array(bytes) } else { fold = [] }
            entries.append(Entry(id: row.int(0), status: row.int(1), fold: fold))
            if ids != nil { found.insert(row.int(0)) }
        }
        for id in ids ?? [] where !found.contains(id) { entries.append(Entry(id: id, status: nil, fold: [])) }
        return entries
    }
}

/// The registry of a database's search indexes, shared by its connections.
public final class SearchIndexes: Sendable {
    private let indexes = Mutex<[String: SearchIndex]>([:])

    public init() {}

    /// The index of `table`, whose rows' changes are published as `eventType`.
    public func index(table: String, eventType: String) -> SearchIndex {
        indexes.withLock { indexes in
            if let index = indexes[table] { return index }
            let index = SearchIndex(table: table, eventType: eventType)
            indexes[table] = index
            return index
        }
    }
}
