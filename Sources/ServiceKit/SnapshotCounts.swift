#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import Synchronization

/// Counts remembered per SQLite connection for as long as that connection sees the same data:
/// list pages' `page_info.total` (a window's unit counts, a filtered `COUNT(*)`), so a repeated
/// page counts once, not on every request (a window's ~28 unit lookups cost SQLite about as much
/// as the rest of a page). A search's total comes from `SearchIndex`, which keeps its own.
///
/// Exact, never stale: a count is kept and used only inside a read transaction (a fixed
/// snapshot, nothing of the connection's own uncommitted), under the key
/// (`data_version`, `total_changes()`, the pager's data version) read in that same transaction.
/// `data_version` changes when any other connection or process has committed since the
/// connection's last snapshot, `total_changes()` when the connection itself has written rows,
/// and the pager's data version (`SQLITE_FCNTL_DATA_VERSION`) on any change to the database
/// file, by this connection (its schema changes too) or another; while all three are equal the
/// snapshot holds the same rows. Bounded: `maxCountsPerConnection` per connection, entries of
/// closed connections dropped.
enum SnapshotCounts {
    static let maxCountsPerConnection = 256
    static let maxConnections = 64

    /// The connection an entry belongs to, held weakly: a new connection at the address of a
    /// closed one never takes over its counts. Only compared against, never used.
    private final class Owner: @unchecked Sendable {
        weak var connection: SQLiteConnection?
        init(_ connection: SQLiteConnection) { self.connection = connection }
    }

    private struct Entry {
        let owner: Owner
        var version: Version
        var counts: [Key: Int64]
    }

    /// A count's key, compared as bytes: `String`'s `==` is canonical equivalence, under which
    /// a filter on "é" and one on "e\u{301}" — different values to SQLite — would share a count.
    struct Key: Hashable {
        let bytes: [UInt8]

        /// All bytes in one call: `[UInt8]`'s own hash combines them one at a time (a list
        /// page's ~170-byte key cost ~4,000 instructions per request).
        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }

        /// Compared with `memcmp` (`[UInt8]`'s `==` goes byte by byte: ~2,600 instructions
        /// per filtered list page).
        static func == (a: Key, b: Key) -> Bool {
            guard a.bytes.count == b.bytes.count else { return false }
            return a.bytes.withUnsafeBytes { x in
                b.bytes.withUnsafeBytes { y in
                    guard let p = x.baseAddress, let q = y.baseAddress else { return true }
                    return memcmp(p, q, x.count) == 0
                }
            }
        }
    }

    struct Version: Equatable {
        var data: Int64
        var changes: Int64
        /// The pager's data version (`SQLITE_FCNTL_DATA_VERSION`).
        var file: UInt32
    }

    private static let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    /// A key naming a count by its SQL (or shape) and values, unambiguously: each value is
    /// written with its type and, for text and blobs, its length. Written as bytes in one
    /// buffer (string interpolation per value cost a filtered list page ~5,000 instructions).
    static func key(_ sql: String, _ binds: [SQLValue]) -> Key {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sql.utf8.count + 24 * binds.count)
        bytes.append(contentsOf: sql.utf8)
        func decimal<T: BinaryInteger>(_ value: T) {
            var digits = String(value)
            digits.withUTF8 { bytes.append(contentsOf: $0) }
        }
        for bind in binds {
            bytes.append(0x1F)
            switch bind {
            case .null:
                bytes.append(UInt8(ascii: "n"))
            case .int(let v):
                bytes.append(UInt8(ascii: "i"))
                decimal(v)
            case .double(let v):
                bytes.append(UInt8(ascii: "d"))
                decimal(v.bitPattern)
            case .text(let v):
                bytes.append(UInt8(ascii: "t"))
                decimal(v.utf8.count)
                bytes.append(UInt8(ascii: ":"))
                bytes.append(contentsOf: v.utf8)
            case .blob(let v):
                bytes.append(UInt8(ascii: "b"))
                decimal(v.count)
                bytes.append(UInt8(ascii: ":"))
                bytes.append(contentsOf: v)
            }
        }
        return Key(bytes: bytes)
    }

    /// What names the data `db` sees in its current read transaction (nil outside one: nothing
    /// may be kept or used then). Read once per transaction of `Database.read`.
    static func version(_ db: SQLiteConnection) throws -> Version? {
        if db.readSerial > 0, let known = db.snapshot, known.serial == db.readSerial { return known.version }
        // A plain pragma (prepared once, kept in the statement cache): the table-valued
        // `pragma_data_version` prepares a statement of its own on every use. It also starts the
        // snapshot the file control then reads the pager's version of; the file control replaced
        // `PRAGMA schema_version` (another statement to step, about a tenth of a list page's
        // instructions) and sees every change the schema version did.
        var version = Version(data: 0, changes: 0, file: 0)
        try db.forEachRow("PRAGMA data_version") { row in version.data = row.int(0) }
        guard sqlite3_file_control(db.handle, "main", SQLITE_FCNTL_DATA_VERSION, &version.file) == SQLITE_OK else { return nil }
        version.changes = sqlite3_total_changes64(db.handle)
        // Checked after that read, which starts the snapshot of a `BEGIN` not yet used; outside
        // a transaction the state is back to none once the statement is done.
        guard sqlite3_txn_state(db.handle, "main") == SQLITE_TXN_READ else { return nil }
        if db.readSerial > 0 { db.snapshot = (db.readSerial, version) }
        return version
    }

    /// The count `count` answers for `key` on `db`, from the cache when `db` still sees the
    /// data it was counted in.
    static func count(_ db: SQLiteConnection, key: Key, _ count: (SQLiteConnection) throws -> Int64) throws -> Int64 {
        guard let version = try version(db) else { return try count(db) }
        let id = ObjectIdentifier(db)
        let cached = entries.withLock { entries -> Int64? in
            guard let entry = entries[id], entry.owner.connection === db, entry.version == version else { return nil }
            return entry.counts[key]
        }
        if let cached { return cached }
        let counted = try count(db)
        let owner = Owner(db)
        entries.withLock { entries in
            if var entry = entries[id], entry.owner.connection === db, entry.version == version {
                if entry.counts.count >= maxCountsPerConnection { entry.counts.removeAll(keepingCapacity: true) }
                entry.counts[key] = counted
                entries[id] = entry
                return
            }
            if entries[id] == nil && entries.count >= maxConnections {
                entries = entries.filter { $0.value.owner.connection != nil }
                if entries.count >= maxConnections { return }
            }
            entries[id] = Entry(owner: owner, version: version, counts: [key: counted])
        }
        return counted
    }
}
