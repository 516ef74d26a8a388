import CSQLite
import Synchronization
import WireProtocol

/// Case-insensitive substring search over a resource's folded texts (`name_fold`), from an
/// n-gram index held in memory: every distinct run of one to four characters of each text
/// (`NgramIndex.grams`) → the ids whose texts have it, ascending. A query of up to four
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
/// rows (about 30 bytes per gram and 4 per posting); `Limits.recent` changes remembered.
public final class SearchIndex: Sendable {
    public let table: String
    public let eventType: String
    private let state = Mutex(State())

    /// Ids above this (a table far sparser than AUTOINCREMENT makes it) are answered by a scan.
    static let maxID: Int64 = 1 << 28

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
        let grams: [Gram]

        init(_ folded: String) {
            bytes = Array(folded.utf8)
            let characters = folded.count
            short = characters <= NgramIndex.maxGram
            guard !bytes.contains(Search.separatorByte), !bytes.isEmpty else {
                grams = []
                return
            }
            if short {
                grams = [Gram(bytes[...])]
            } else {
                var seen = Set<Gram>()
                var grams: [Gram] = []
                NgramIndex.forEachGram(of: folded, lengths: NgramIndex.maxGram...NgramIndex.maxGram) { gram in
                    let g = Gram(gram)
                    if seen.insert(g).inserted { grams.append(g) }
                }
                self.grams = grams
            }
        }

        /// Whether a row whose folded text is `fold` matches: the query is one of its grams,
        /// else it has every gram of the query and contains the query's bytes.
        func matches(_ fold: String) -> Bool {
            guard !grams.isEmpty else { return false }
            var missing = Set(grams)
            NgramIndex.forEachGram(of: fold, lengths: (short ? 1 : NgramIndex.maxGram)...NgramIndex.maxGram) { gram in
                if !missing.isEmpty { missing.remove(Gram(gram)) }
            }
            return missing.isEmpty && (short || NgramIndex.contains(fold, bytes))
        }
    }

    /// A gram's bytes as a key: up to 16 inline (every gram of one- to four-byte characters),
    /// longer ones (characters of several scalars) in an array.
    struct Gram: Hashable {
        var low: UInt64 = 0
        var high: UInt64 = 0
        var count: Int
        var long: [UInt8]?

        init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
            count = bytes.count
            guard count <= 16 else {
                long = Array(bytes)
                return
            }
            for (i, byte) in bytes.enumerated() {
                if i < 8 { low |= UInt64(byte) << (8 * i) } else { high |= UInt64(byte) << (8 * (i - 8)) }
            }
        }
    }

    /// A row as a snapshot holds it (nil status: no such row).
    struct Entry {
        var id: Int64
        var status: Int64?
        var fold: String
    }

    struct State {
        var built = false
        /// Set when a row cannot be held (an id past `maxID`): every search scans.
        var unusable = false
        /// Every event up to this one is applied.
        var seq: Int64 = 0
        /// Snapshots from this sequence number on can be corrected from `recent`.
        var floor: Int64 = 0
        /// Each id's status and folded text (`absent`: no row), by id.
        var statuses: [Int64] = []
        var folds: [String] = []
        var lists: [Gram: [UInt32]] = [:]
        /// The events applied since `floor`, oldest first: (seq, entity id).
        var recent: [(seq: Int64, id: Int64)] = []

        static let absent = Int64.min

        func status(_ id: Int64) -> Int64 { id >= 0 && id < statuses.count ? statuses[Int(id)] : State.absent }

        mutating func set(_ entry: Entry) {
            guard entry.id > 0, entry.id <= SearchIndex.maxID else {
                unusable = true
                return
            }
            let id = Int(entry.id)
            if id >= statuses.count {
                statuses.append(contentsOf: repeatElement(State.absent, count: max(id + 1, statuses.count * 2) - statuses.count))
                folds.append(contentsOf: repeatElement("", count: statuses.count - folds.count))
            }
            let old = folds[id], oldStatus = statuses[id]
            let new = entry.status == nil ? "" : entry.fold
            statuses[id] = entry.status ?? State.absent
            // A status change alone leaves the lists as they are (they hold every status).
            guard oldStatus == State.absent || entry.status == nil || old != new else { return }
            if oldStatus != State.absent {
                NgramIndex.forEachGram(of: old, lengths: 1...NgramIndex.maxGram) { gram in
                    let key = Gram(gram)
                    guard let at = lists[key].flatMap({ SearchIndex.position(of: UInt32(id), in: $0) }) else { return }
                    lists[key, default: []].remove(at: at)
                    if lists[key]?.isEmpty == true { lists[key] = nil }
                }
            }
            folds[id] = new
            guard entry.status != nil else { return }
            NgramIndex.forEachGram(of: new, lengths: 1...NgramIndex.maxGram) { gram in
                lists[Gram(gram), default: []].insertSorted(UInt32(id))
            }
        }

        mutating func remember(_ seq: Int64, _ id: Int64, limit: Int) {
            recent.append((seq, id))
            guard recent.count > limit else { return }
            let dropped = recent.count - limit / 2
            floor = recent[dropped - 1].seq
            recent.removeFirst(dropped)
        }
    }

    /// The position of `id` in an ascending list, if it is there.
    static func position(of id: UInt32, in list: [UInt32]) -> Int? {
        var low = 0, high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid] < id { low = mid + 1 } else { high = mid }
        }
        return low < list.count && list[low] == id ? low : nil
    }

    // MARK: Searching

    /// The ids matching `folded` with one of `statuses` (nil: any) as `db` sees them, newest
    /// first: one page of them and how many there are, or all of them (`paging` nil).
    public func search(_ db: SQLiteConnection, folded: String, statuses: [Int64]?, paging: Paging?) throws -> (ids: [Int64], total: Int64) {
        let query = Query(folded)
        guard !query.grams.isEmpty else { return ([], 0) }
        let began = sqlite3_get_autocommit(db.handle) != 0
        if began { try db.run("BEGIN") }
        defer { if began { _ = try? db.run("COMMIT") } }
        var head: Int64 = 0
        try db.forEachRow("SELECT COALESCE(MAX(seq), 0) FROM events") { head = $0.int(0) }
        // Read after that statement, which began the snapshot (or wrote: a write transaction).
        let readOnly = sqlite3_txn_state(db.handle, "main") == SQLITE_TXN_READ
        let answered = try state.withLock { state -> (ids: [Int64], total: Int64)? in
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
                    return state.unusable ? nil : SearchIndex.evaluate(state, query, statuses: statuses, corrections: [], paging: paging)
                }
                if readOnly {
                    for entry in try rows(db, Set(events.map(\.id))) { state.set(entry) }
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
            return SearchIndex.evaluate(state, query, statuses: statuses, corrections: corrections, paging: paging)
        }
        return try answered ?? scan(db, query, statuses: statuses, paging: paging)
    }

    /// Builds the index from the rows `db` sees now, unless it is built (at start, so the first
    /// search does not wait for it). Answers how many rows it holds.
    @discardableResult
    public func prepare(_ db: SQLiteConnection) throws -> Int {
        let began = sqlite3_get_autocommit(db.handle) != 0
        if began { try db.run("BEGIN") }
        defer { if began { _ = try? db.run("COMMIT") } }
        var head: Int64 = 0
        try db.forEachRow("SELECT COALESCE(MAX(seq), 0) FROM events") { head = $0.int(0) }
        let readOnly = sqlite3_txn_state(db.handle, "main") == SQLITE_TXN_READ
        return try state.withLock { state in
            if !state.built && readOnly { try build(&state, db, head: head) }
            return state.statuses.reduce(0) { $0 + ($1 == State.absent ? 0 : 1) }
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
            narrowed.add("t.id IN (SELECT value FROM json_each(?))", [.text(SearchIndex.idArray(matches))])
            ids = try db.queryIDs("SELECT t.id FROM \(table) t \(narrowed.clause) ORDER BY t.id DESC", narrowed.binds)
        } else {
            // Many matches (a one-letter query): the filter's rows, kept when they match.
            let matching = Set(matches)
            ids = try db.queryIDs("SELECT t.id FROM \(table) t \(filter.clause) ORDER BY t.id DESC", filter.binds).filter(matching.contains)
        }
        return (Array(ids.dropFirst(Int(paging.offset)).prefix(Int(paging.count))), Int64(ids.count))
    }

    /// A condition on `idColumn` that holds for exactly the rows matching `folded`, whatever
    /// their status (the ids as one bound JSON array).
    public func condition(_ db: SQLiteConnection, idColumn: String, folded: String) throws -> (sql: String, binds: [SQLValue]) {
        let ids = try search(db, folded: folded, statuses: nil, paging: nil).ids
        return ("\(idColumn) IN (SELECT value FROM json_each(?))", [.text(SearchIndex.idArray(ids))])
    }

    static func idArray(_ ids: [Int64]) -> String {
        var text = JSONText(capacity: ids.count * 7 + 2)
        text.openArray()
        for (i, id) in ids.enumerated() {
            if i > 0 { text.comma() }
            text.int(id)
        }
        text.closeArray()
        return String(decoding: text.bytes(), as: UTF8.self)
    }

    /// The matches in `state` as of its `seq`, except that the rows in `corrections` are taken
    /// as given (the snapshot's own): newest first, paged.
    static func evaluate(_ state: State, _ query: Query, statuses: [Int64]?, corrections: [Entry], paging: Paging?) -> (ids: [Int64], total: Int64) {
        let corrected = Set(corrections.map(\.id))
        let extra = corrections.filter { entry in
            guard let status = entry.status else { return false }
            return (statuses?.contains(status) ?? true) && query.matches(entry.fold)
        }.map(\.id).sorted(by: >)
        var lists: [[UInt32]] = []
        for gram in query.grams {
            guard let list = state.lists[gram] else {
                lists = []
                break
            }
            lists.append(list)
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
        func take(_ id: Int64) {
            if total >= skip && ids.count < limit { ids.append(id) }
            total += 1
        }
        let single = statuses?.count == 1 ? statuses?.first : nil
        for raw in driver.reversed() {
            let id = Int64(raw)
            let status = state.statuses[Int(raw)]
            if let single { if status != single { continue } } else if let statuses, !statuses.contains(status) { continue }
            if !corrected.isEmpty && corrected.contains(id) { continue }
            if !query.short {
                guard others.allSatisfy({ position(of: raw, in: $0) != nil }), NgramIndex.contains(state.folds[Int(raw)], query.bytes) else { continue }
            }
            while e < extra.count && extra[e] > id {
                take(extra[e])
                e += 1
            }
            take(id)
        }
        while e < extra.count {
            take(extra[e])
            e += 1
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
        guard let paging else { return (ids, Int64(ids.count)) }
        return (Array(ids.dropFirst(Int(paging.offset)).prefix(Int(paging.count))), Int64(ids.count))
    }

    // MARK: Following the rows

    /// The index built afresh from the rows `db`'s read transaction sees, whose newest event is `head`.
    private func build(_ state: inout State, _ db: SQLiteConnection, head: Int64) throws {
        state = State()
        for entry in try rows(db, nil) { state.set(entry) }
        state.built = true
        state.seq = head
        state.floor = head
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
        try db.forEachRow(sql, ids.map { [.text(SearchIndex.idArray(Array($0)))] } ?? []) { row in
            let fold: String
            if case .bytes(let bytes) = row[2] { fold = String(decoding: bytes, as: UTF8.self) } else { fold = "" }
            entries.append(Entry(id: row.int(0), status: row.int(1), fold: fold))
            if ids != nil { found.insert(row.int(0)) }
        }
        for id in ids ?? [] where !found.contains(id) { entries.append(Entry(id: id, status: nil, fold: "")) }
        return entries
    }
}

extension Array where Element == UInt32 {
    /// Inserts `id` in order unless it is there (a new id is the largest: appended).
    mutating func insertSorted(_ id: UInt32) {
        guard let last, last >= id else { return append(id) }
        guard last != id else { return }
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid] < id { low = mid + 1 } else { high = mid }
        }
        if self[low] != id { insert(id, at: low) }
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
