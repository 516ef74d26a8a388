import WireProtocol

/// Case-insensitive substring search that stays fast on large tables.
///
/// Every folded name is indexed by its distinct 1- to 4-character substrings in a posting
/// table per entity kind: `(gram, status, entity_id)`, a WITHOUT ROWID primary key, so the
/// entity's status (the filter every list applies) lives in the index too. A query of up to
/// four characters *is* a gram: its posting list is exactly the set of matching rows, counted
/// and paged straight from the index. A longer query is driven by its rarest 4-gram and each
/// candidate is confirmed with `instr` on the folded text. Either way `%`, `_` and quotes are
/// just characters, and one- and two-character Chinese queries are indexed too.
public enum NgramIndex {
    /// The longest gram indexed.
    static let maxGram = 4
    /// Posting lists are counted up to this many entries when choosing the rarest gram…
    static let countCap = 4000
    /// …among at most this many of the query's grams, spread over it.
    static let gramsCompared = 4
    /// Bumped whenever what is indexed changes, so postings of an older version are rebuilt.
    /// (4: no `entity_id` index, an entity's postings found by its grams; grams distinct as bytes.)
    public static let version: Int64 = 4

    /// The form both names and queries are compared in.
    public static func fold(_ text: String) -> String {
        text.lowercased()
    }

    /// The grams of `texts` as the JSON array `insert` binds (nil: no gram). Made before the
    /// write transaction (`Write.postings`), so the writer, which every write of the service
    /// waits for, spends none of its time on it.
    public static func gramArray(_ texts: [String]) -> String? {
        gramArray(folded: texts.map(fold))
    }

    /// `gramArray` of texts already folded: every run of one to `maxGram` characters of each
    /// text (none spans two), each distinct byte sequence once, in order of first appearance.
    /// Distinct as bytes, as SQLite compares them: "é" and "e\u{301}" are two grams (a query
    /// matches the bytes it is written in). Grams are ranges of one byte buffer, told apart by
    /// a hash and then their bytes: no `String` or `Set` per gram.
    static func gramArray(folded texts: [String]) -> String? {
        var bytes: [UInt8] = []
        /// Each gram's bytes (a range of `bytes`) and their hash.
        var grams: [(start: Int, end: Int, hash: UInt64)] = []
        for text in texts {
            let base = bytes.count
            bytes.append(contentsOf: text.utf8)
            // Character boundaries as offsets into `bytes`.
            var bounds = text.indices.map { base + text.utf8.distance(from: text.startIndex, to: $0) }
            bounds.append(bytes.count)
            let count = bounds.count - 1
            for i in 0..<count {
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, extended one character at a time
                for length in 1...maxGram where i + length <= count {
                    for byte in bytes[bounds[i + length - 1]..<bounds[i + length]] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                    grams.append((bounds[i], bounds[i + length], hash))
                }
            }
        }
        guard !grams.isEmpty else { return nil }
        // Later copies of a gram: equal hashes are neighbours once sorted, then bytes decide.
        var duplicate = [Bool](repeating: false, count: grams.count)
        let order = grams.indices.sorted { grams[$0].hash != grams[$1].hash ? grams[$0].hash < grams[$1].hash : $0 < $1 }
        var runStart = 0
        while runStart < order.count {
            var runEnd = runStart + 1
            while runEnd < order.count && grams[order[runEnd]].hash == grams[order[runStart]].hash { runEnd += 1 }
            if runEnd - runStart > 1 {
                for a in runStart..<runEnd where !duplicate[order[a]] {
                    let first = grams[order[a]]
                    for b in (a + 1)..<runEnd where !duplicate[order[b]] {
                        let other = grams[order[b]]
                        if bytes[first.start..<first.end].elementsEqual(bytes[other.start..<other.end]) { duplicate[order[b]] = true }
                    }
                }
            }
            runStart = runEnd
        }
        var text = JSONText(capacity: bytes.count * 8 + 16)
        text.openArray()
        bytes.withUnsafeBufferPointer { all in
            var first = true
            for (i, gram) in grams.enumerated() where !duplicate[i] {
                if !first { text.comma() }
                first = false
                text.string(utf8: UnsafeBufferPointer(rebasing: all[gram.start..<gram.end]))
            }
        }
        text.closeArray()
        return String(decoding: text.bytes(), as: UTF8.self)
    }

    /// The posting table's schema. No index on `entity_id`: an entity's postings are found by
    /// the grams of its texts before the change (`update`, `setStatus`), and a create — the
    /// service's most frequent write — then adds ~50 entries to one b-tree instead of two
    /// (about 100,000 fewer instructions of the single writer's per customer create).
    public static func schema(_ table: String) -> String {
        """
        CREATE TABLE \(table) (gram TEXT NOT NULL, status INTEGER NOT NULL, entity_id INTEGER NOT NULL,
            PRIMARY KEY (gram, status, entity_id)) WITHOUT ROWID;
        """
    }

    /// The posting table as the shipped migrations create it (`Resource.schemaPieces`), with
    /// the `entity_id` index of versions before 4: kept word for word, since a shipped
    /// migration's text never changes (`MigrationPinTests`). `rebuildIfNeeded` replaces the
    /// table by `schema`'s at the first start.
    public static func migrationSchema(_ table: String) -> String {
        schema(table) + "\nCREATE INDEX \(table)_entity ON \(table)(entity_id);"
    }

    /// Replaces the postings of one entity, `old` (`gramArray` of its texts before, with its
    /// status) by `new` (one statement each, through `json_each`; each posting found by its key).
    public static func update(_ db: SQLiteConnection, table: String, id: Int64, status: Int64, old: String?, new: String?) throws {
        if let old {
            try db.run("DELETE FROM \(table) WHERE gram IN (SELECT value FROM json_each(?)) AND status = ? AND entity_id = ?",
                       [.text(old), .int(status), .int(id)])
        }
        try insert(db, table: table, id: id, status: status, gramArray: new)
    }

    /// Adds the postings of a new entity (`gramArray`'s text; nothing when nil). Its id was
    /// never used (AUTOINCREMENT), so there is nothing to delete first.
    public static func insert(_ db: SQLiteConnection, table: String, id: Int64, status: Int64, gramArray grams: String?) throws {
        guard let grams else { return }
        try db.run("INSERT OR IGNORE INTO \(table)(gram, status, entity_id) SELECT value, ?, ? FROM json_each(?)", [.int(status), .int(id), .text(grams)])
    }

    /// Moves an entity's postings (`gramArray` of its texts) from `old` to its new status.
    public static func setStatus(_ db: SQLiteConnection, table: String, id: Int64, grams: String?, from old: Int64, to status: Int64) throws {
        guard let grams, old != status else { return }
        try db.run("UPDATE \(table) SET status = ? WHERE gram IN (SELECT value FROM json_each(?)) AND status = ? AND entity_id = ?",
                   [.int(status), .text(grams), .int(old), .int(id)])
    }

    /// The query's longest grams (at most `maxGram` characters each), distinct, in order.
    static func queryGrams(_ folded: String) -> [String] {
        let chars = Array(folded)
        let length = min(maxGram, chars.count)
        guard length > 0 else { return [] }
        var seen = Set<String>()
        var result: [String] = []
        for i in 0...(chars.count - length) {
            let gram = String(chars[i..<(i + length)])
            if seen.insert(gram).inserted { result.append(gram) }
        }
        return result
    }

    /// The query's rarest gram (posting lists counted up to a cap): the one to drive a search
    /// from. A query of at most `maxGram` characters is its own (exact) gram.
    public static func rarestGram(_ db: SQLiteConnection, table: String, folded query: String) throws -> String {
        if query.count <= maxGram { return query }
        let all = queryGrams(query)
        guard all.count > 1 else { return all.first ?? query }
        // First, last and evenly spaced ones between: a long query costs a few counts, not one per gram.
        let step = max(1, (all.count - 1) / (gramsCompared - 1))
        var grams = stride(from: 0, to: all.count, by: step).prefix(gramsCompared).map { all[$0] }
        if let last = all.last, grams.last != last { grams.append(last) }
        var best = grams[0]
        var bestSize = Int64.max
        for gram in grams {
            let size = try db.scalar("SELECT COUNT(*) FROM (SELECT 1 FROM \(table) WHERE gram = ? LIMIT \(countCap))", [.text(gram)])
            if size < bestSize { best = gram; bestSize = size }
        }
        return best
    }

    /// A condition on `idColumn` (with its values) that holds for exactly the rows whose folded
    /// text in `foldColumn` contains `query`, whatever their status.
    public static func condition(_ db: SQLiteConnection, table: String, idColumn: String, foldColumn: String, folded query: String) throws -> (sql: String, binds: [SQLValue]) {
        let gram = try rarestGram(db, table: table, folded: query)
        return ("\(idColumn) IN (SELECT entity_id FROM \(table) WHERE gram = ?) AND instr(\(foldColumn), ?) > 0", [.text(gram), .text(query)])
    }

    /// One page of a search, newest first, and the total. With no other filter and a query of
    /// at most four characters the index alone answers (a count and a page of the posting
    /// list); otherwise the candidates of the query's rarest gram are joined to the entity and
    /// filtered in one pass, which gives the page and the total.
    /// - Parameters:
    ///   - from: the entity table with its alias, e.g. `customers c`.
    ///   - idColumn / foldColumn: e.g. `c.id`, `c.name_fold`.
    ///   - statuses: the status filter (nil: every status).
    ///   - filter: the other conditions on the entity.
    public static func searchPage(_ db: SQLiteConnection, table: String, from: String, idColumn: String, foldColumn: String,
                                  folded query: String, statuses: [Int64]?, filter: SQLFilter, paging: Paging) throws -> (ids: [Int64], total: Int64) {
        let gram = try rarestGram(db, table: table, folded: query)
        var search = SQLFilter()
        search.add("g.gram = ?", [.text(gram)])
        if let statuses { search.in("g.status", statuses) }
        if query.count <= maxGram && filter.conditions.isEmpty {
            // The posting list is the answer: its length (counted inside SQLite, and only again
            // once the data changed, `SnapshotCounts`) and a page read from its newest end,
            // instead of every matching id crossing into Swift (977 of them for a 1 % term at
            // 100,000 customers) to keep twenty.
            let clause = search.clause
            let countSQL = "SELECT COUNT(*) FROM \(table) g \(clause)"
            let total = try SnapshotCounts.count(db, key: SnapshotCounts.key(countSQL, search.binds)) { db in
                try db.scalar(countSQL, search.binds)
            }
            guard paging.offset < total, paging.count > 0 else { return ([], total) }
            let page = try db.queryIDs("SELECT g.entity_id FROM \(table) g \(clause) ORDER BY g.entity_id DESC LIMIT ? OFFSET ?",
                                       search.binds + [.int(paging.count), .int(paging.offset)])
            return (page, total)
        }
        if query.count > maxGram { search.add("instr(\(foldColumn), ?) > 0", [.text(query)]) }
        search.add(filter)
        let ids = try db.queryIDs("SELECT g.entity_id FROM \(table) g CROSS JOIN \(from) ON \(idColumn) = g.entity_id \(search.clause) ORDER BY g.entity_id DESC",
                                  search.binds)
        let page = ids.dropFirst(Int(paging.offset)).prefix(Int(paging.count))
        return (Array(page), Int64(ids.count))
    }

    /// Rebuilds the posting table — schema and content — from `source` (a query answering `id`,
    /// `status`, then the texts) when it was built by another version. Runs at start-up, in one
    /// transaction.
    public static func rebuildIfNeeded(_ db: SQLiteConnection, table: String, source: String) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS search_index_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID")
        let current = try db.queryOne("SELECT version FROM search_index_versions WHERE name = ?", [.text(table)])?.int(0)
        guard current != version else { return }
        try db.writeTransaction { db in
            try db.execute("DROP TABLE IF EXISTS \(table)")
            try db.execute(schema(table))
            for row in try db.query(source) {
                guard let id = row.int(0), let status = row.int(1) else { continue }
                let texts = (2..<row.values.count).map { row.string($0) ?? "" }
                try insert(db, table: table, id: id, status: status, gramArray: gramArray(texts))
            }
            try db.run("INSERT INTO search_index_versions(name, version) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET version = excluded.version",
                       [.text(table), .int(version)])
        }
    }
}

/// Row counts kept per filter key (status, status+creator, status+parent…), updated in the
/// same transaction as the rows, so `page_info.total` for common filters never scans the table.
public enum Counters {
    public static func schema(_ table: String) -> String {
        "CREATE TABLE \(table) (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    }

    public static func add(_ db: SQLiteConnection, table: String, keys: [String], delta: Int64) throws {
        for key in keys {
            try db.run("INSERT INTO \(table)(key, n) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET n = n + excluded.n", [.text(key), .int(delta)])
        }
    }

    /// Moves a row from the keys it had to the keys it has now.
    public static func move(_ db: SQLiteConnection, table: String, from old: [String], to new: [String]) throws {
        let removed = old.filter { !new.contains($0) }
        let added = new.filter { !old.contains($0) }
        try add(db, table: table, keys: removed, delta: -1)
        try add(db, table: table, keys: added, delta: 1)
    }

    public static func get(_ db: SQLiteConnection, table: String, key: String) throws -> Int64 {
        try db.scalar("SELECT n FROM \(table) WHERE key = ?", [.text(key)])
    }
}
