/// Case-insensitive substring search that stays fast on large tables: every folded name is
/// indexed by its distinct 1- and 2-character substrings (a posting table per entity kind,
/// `(gram, entity_id)` as a WITHOUT ROWID primary key). A query narrows the candidates to the
/// ids holding all of its bigrams (its one character, for a one-character query) and confirms
/// them with `instr` on the folded text, so `%`, `_` and quotes are just characters.
///
/// Works for every length — two-character Chinese names included, where a trigram index
/// cannot help — at the cost of about 2·L posting rows per name of L characters.
public enum NgramIndex {
    /// The form both names and queries are compared in.
    public static func fold(_ text: String) -> String {
        text.lowercased()
    }

    /// Distinct unigrams and bigrams of each text (no gram spans two texts).
    public static func grams(_ texts: [String]) -> Set<String> {
        var result = Set<String>()
        for text in texts {
            let chars = Array(fold(text))
            for (i, c) in chars.enumerated() {
                result.insert(String(c))
                if i + 1 < chars.count { result.insert(String(c) + String(chars[i + 1])) }
            }
        }
        return result
    }

    /// The posting table's schema.
    public static func schema(_ table: String) -> String {
        """
        CREATE TABLE \(table) (gram TEXT NOT NULL, entity_id INTEGER NOT NULL, PRIMARY KEY (gram, entity_id)) WITHOUT ROWID;
        CREATE INDEX \(table)_entity ON \(table)(entity_id);
        """
    }

    /// Replaces the grams of one entity.
    public static func update(_ db: SQLiteConnection, table: String, id: Int64, texts: [String]) throws {
        try db.run("DELETE FROM \(table) WHERE entity_id = ?", [.int(id)])
        for gram in grams(texts) {
            try db.run("INSERT OR IGNORE INTO \(table)(gram, entity_id) VALUES (?, ?)", [.text(gram), .int(id)])
        }
    }

    /// A subquery selecting candidate ids for `query` (already folded), with its values.
    public static func candidates(table: String, folded query: String) -> (sql: String, binds: [SQLValue]) {
        let chars = Array(query)
        var keys: [String] = []
        if chars.count == 1 {
            keys = [String(chars[0])]
        } else {
            var seen = Set<String>()
            for i in 0..<(chars.count - 1) {
                let gram = String(chars[i]) + String(chars[i + 1])
                if seen.insert(gram).inserted { keys.append(gram) }
            }
        }
        // A few bigrams narrow enough; instr confirms the rest.
        let used = Array(keys.prefix(4))
        let sql = used.map { _ in "SELECT entity_id FROM \(table) WHERE gram = ?" }.joined(separator: " INTERSECT ")
        return (sql, used.map { .text($0) })
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
