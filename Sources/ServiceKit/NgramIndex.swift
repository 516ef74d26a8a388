import WireProtocol

/// The n-grams search is made of (`SearchIndex` holds them in memory): every distinct run of
/// one to `maxGram` characters of each folded text, none spanning two texts.
public enum NgramIndex {
    /// The longest gram indexed.
    static let maxGram = 4

    /// The form both names and queries are compared in.
    public static func fold(_ text: String) -> String {
        text.lowercased()
    }

    /// Calls `body` with every run of `lengths` characters (not bytes or scalars: "é" written
    /// as e + combining accent is one) of each text of `fold` (`name_fold`: texts joined by
    /// `Search.separator`), as bytes, repeats included. Grams are told apart as bytes, as the
    /// query's are: "é" and "e\u{301}" are two grams (a query matches the bytes it is written in).
    static func forEachGram(of fold: String, lengths: ClosedRange<Int>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var fold = fold
        fold.withUTF8 { forEachGram(in: $0, lengths: lengths, body) }
    }

    /// `forEachGram` of `name_fold`'s bytes.
    static func forEachGram(in all: UnsafeBufferPointer<UInt8>, lengths: ClosedRange<Int>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var start = 0
        while start <= all.count {
            var end = start
            while end < all.count && all[end] != Search.separatorByte { end += 1 }
            grams(of: UnsafeBufferPointer(rebasing: all[start..<end]), lengths: lengths, body)
            start = end + 1
        }
    }

    /// `forEachGram` of one text.
    private static func grams(of text: UnsafeBufferPointer<UInt8>, lengths: ClosedRange<Int>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard !text.isEmpty else { return }
        // In ASCII every byte is a character but for CR LF (one grapheme cluster, UAX #29 GB3).
        var ascii = true
        for (i, byte) in text.enumerated() where byte >= 0x80 || (byte == 0x0D && i + 1 < text.count && text[i + 1] == 0x0A) {
            ascii = false
            break
        }
        if ascii {
            for i in 0..<text.count {
                for length in lengths where i + length <= text.count {
                    body(UnsafeBufferPointer(rebasing: text[i..<(i + length)]))
                }
            }
            return
        }
        let string = String(decoding: text, as: UTF8.self)
        var bounds = string.indices.map { string.utf8.distance(from: string.startIndex, to: $0) }
        bounds.append(string.utf8.count)
        // (`String(decoding:)` keeps valid UTF-8 as it is: offsets into it are offsets into `text`.)
        guard bounds.last == text.count else { return }
        let count = bounds.count - 1
        for i in 0..<count {
            for length in lengths where i + length <= count {
                body(UnsafeBufferPointer(rebasing: text[bounds[i]..<bounds[i + length]]))
            }
        }
    }

    /// Whether `fold` contains `bytes`.
    static func contains(_ fold: UnsafeBufferPointer<UInt8>, _ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return true }
        guard fold.count >= bytes.count else { return false }
        for i in 0...(fold.count - bytes.count) where fold[i] == first {
            var j = 1
            while j < bytes.count && fold[i + j] == bytes[j] { j += 1 }
            if j == bytes.count { return true }
        }
        return false
    }

    /// The posting table the shipped migrations create (`Resource.schemaPieces`): kept word for
    /// word, since a shipped migration's text never changes (`MigrationPinTests`). Search no
    /// longer reads or writes it (`SearchIndex`); `Resource.retireSearchPostings` marks it stale.
    public static func migrationSchema(_ table: String) -> String {
        """
        CREATE TABLE \(table) (gram TEXT NOT NULL, status INTEGER NOT NULL, entity_id INTEGER NOT NULL,
            PRIMARY KEY (gram, status, entity_id)) WITHOUT ROWID;
        """ + "\nCREATE INDEX \(table)_entity ON \(table)(entity_id);"
    }
}

/// Row counts kept per filter key (status, status+creator, status+parent…), updated in the
/// same transaction as the rows, so `page_info.total` for common filters never scans the table.
public enum Counters {
    public static func schema(_ table: String) -> String {
        "CREATE TABLE \(table) (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    }

    /// Adds `delta` to each key (a key twice in `keys` is counted twice). Inside a write batch
    /// of `Database` the change is gathered and written before the batch commits
    /// (`CounterDeltas`); on any other connection, at once.
    public static func add(_ db: SQLiteConnection, table: String, keys: [String], delta: Int64) throws {
        if let gathered = db.counterDeltas {
            gathered.add(table: table, keys: keys, delta: delta)
            return
        }
        try write(db, table: table, keys.map { ($0, delta) })
    }

    /// One statement per `keysPerStatement` keys (a create counts three or four), not one per
    /// key; a key twice is counted twice, as SQLite applies the rows one by one.
    static func write(_ db: SQLiteConnection, table: String, _ deltas: [(key: String, delta: Int64)]) throws {
        for start in stride(from: deltas.startIndex, to: deltas.endIndex, by: keysPerStatement) {
            let chunk = deltas[start..<min(start + keysPerStatement, deltas.endIndex)]
            var rows = ""
            var values: [SQLValue] = []
            values.reserveCapacity(chunk.count * 2)
            for (key, delta) in chunk {
                rows += rows.isEmpty ? "(?, ?)" : ", (?, ?)"
                values += [.text(key), .int(delta)]
            }
            try db.run("INSERT INTO \(table)(key, n) VALUES \(rows) ON CONFLICT(key) DO UPDATE SET n = n + excluded.n", values)
        }
    }

    /// Writes what a batch gathered (`Database.runBatch`, before its COMMIT; it also ends the
    /// gathering, with the transaction).
    static func writeGathered(_ db: SQLiteConnection) throws {
        guard let gathered = db.counterDeltas else { return }
        for (table, deltas) in gathered.summed() where !deltas.isEmpty { try write(db, table: table, deltas) }
    }

    /// Keys per statement in `add`: two variables each, within the 999 of older SQLite builds.
    static let keysPerStatement = 400

    /// Moves a row from the keys it had to the keys it has now.
    public static func move(_ db: SQLiteConnection, table: String, from old: [String], to new: [String]) throws {
        let removed = old.filter { !new.contains($0) }
        let added = new.filter { !old.contains($0) }
        try add(db, table: table, keys: removed, delta: -1)
        try add(db, table: table, keys: added, delta: 1)
    }

    /// The count, with what the current write batch gathered for it so far.
    public static func get(_ db: SQLiteConnection, table: String, key: String) throws -> Int64 {
        try db.scalar("SELECT n FROM \(table) WHERE key = ?", [.text(key)]) + (db.counterDeltas?.pending(table: table, key: key) ?? 0)
    }
}
