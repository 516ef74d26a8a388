import CSQLite
import Glibc
import WireProtocol

/// A SQLite failure: result code, SQLite's message and the SQL — never the bound values.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var sql: String?
    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " — in \($0)" } ?? "")
    }
    /// SQLITE_CONSTRAINT and its extended codes.
    public var isConstraint: Bool { code & 0xff == SQLITE_CONSTRAINT }
    public var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension SQLValue {
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .int($0) } ?? .null }
    public init(_ value: Int?) { self = value.map { .int(Int64($0)) } ?? .null }

    /// The value as JSON (text stays text, integers stay integers).
    public var json: JSON {
        switch self {
        case .null: return .null
        case .int(let v): return .int(v)
        case .double(let v): return .double(v)
        case .text(let v): return .string(v)
        case .blob(let v): return .string(String(decoding: v, as: UTF8.self))
        }
    }
}

let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The result columns of a statement by name (as `SELECT` names them, e.g. `e.id` is `id`),
/// computed once per prepared statement and shared by its rows.
public final class ColumnNames: Sendable {
    let positions: [String: Int]
    init(_ names: [String]) {
        var positions: [String: Int] = [:]
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
    }
}

/// One row of a result, read by column name (or index).
public struct Row: Sendable {
    public var values: [SQLValue]
    let names: ColumnNames?
    public init(values: [SQLValue], names: ColumnNames? = nil) {
        self.values = values
        self.names = names
    }
    public subscript(_ index: Int) -> SQLValue { values[index] }
    /// The value of the column named `name`; null when the result has no such column.
    public subscript(_ name: String) -> SQLValue {
        guard let i = names?.positions[name], i < values.count else { return .null }
        return values[i]
    }
    public func int(_ name: String) -> Int64? { names?.positions[name].flatMap { $0 < values.count ? int($0) : nil } }
    public func string(_ name: String) -> String? { names?.positions[name].flatMap { $0 < values.count ? string($0) : nil } }
    public func int(_ index: Int) -> Int64? {
        if case .int(let v) = values[index] { return v }
        if case .double(let v) = values[index] { return Int64(exactly: v) }
        return nil
    }
    public func string(_ index: Int) -> String? {
        switch values[index] {
        case .text(let v): return v
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .blob(let v): return String(decoding: v, as: UTF8.self)
        case .null: return nil
        }
    }
    public func blob(_ index: Int) -> [UInt8]? {
        if case .blob(let v) = values[index] { return v }
        if case .text(let v) = values[index] { return Array(v.utf8) }
        return nil
    }
}

/// A prepared statement owned by one connection (cached and reused). Finalized when the last
/// reference goes: a statement evicted from the cache while a caller is still stepping it lives
/// until that caller is done.
final class Statement {
    let handle: OpaquePointer
    let sql: String
    /// The cache's clock at the last use, and how often it was used (for eviction).
    var lastUse: UInt64 = 0
    var uses: Int = 0
    init(handle: OpaquePointer, sql: String) {
        self.handle = handle
        self.sql = sql
    }
    deinit { sqlite3_finalize(handle) }

    /// The result column names, read once.
    private(set) lazy var columnNames: ColumnNames = {
        let count = sqlite3_column_count(handle)
        return ColumnNames((0..<count).map { i in sqlite3_column_name(handle, i).map { String(cString: $0) } ?? "" })
    }()
}

/// Prepared statements of one connection by SQL text, at most `capacity` of them.
///
/// Scan-resistant LRU: a miss evicts the least recently used statement that was used only
/// once, and only when every cached statement was reused the least recently used of all.
/// Generated SQL (an `IN (?, …)` list of each length, a column subset) is then prepared, used
/// and dropped without pushing the hot fixed queries out.
///
/// In front of the dictionary, a direct-mapped table (`recent`): the slot a text's length and a
/// few of its bytes pick holds the statement last found for such a text, and a hit, confirmed by
/// comparing the whole text, skips hashing it (a request's BEGIN, pragmas, page query and COMMIT
/// each hashed their SQL, about as much work as running the pragma).
struct StatementCache {
    let capacity: Int
    private var statements: [String: Statement] = [:]
    private var recent: [Statement?] = Array(repeating: nil, count: StatementCache.recentSlots)
    private var clock: UInt64 = 0
    private static let recentSlots = 64

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { statements.count }
    func contains(_ sql: String) -> Bool { statements[sql] != nil }

    /// `recent`'s slot for `sql`: its length and its first, last and two inner bytes, mixed.
    private static func slot(_ sql: String) -> Int {
        let utf8 = sql.utf8
        let mixed = utf8.withContiguousStorageIfAvailable { bytes -> UInt64 in
            guard let last = bytes.last else { return 0 }
            let a = UInt64(bytes[0]), b = UInt64(bytes[bytes.count / 2]), c = UInt64(bytes[bytes.count / 3]), d = UInt64(last)
            return (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15) ^ (a | b << 8 | c << 16 | d << 24) &* 0xC2B2_AE3D_27D4_EB4F
        } ?? UInt64(utf8.count)
        return Int(truncatingIfNeeded: (mixed >> 32) ^ mixed) & (recentSlots - 1)
    }

    mutating func get(_ sql: String) -> Statement? {
        let slot = StatementCache.slot(sql)
        let statement: Statement
        if let front = recent[slot], front.sql == sql {
            statement = front
        } else {
            guard let found = statements[sql] else { return nil }
            recent[slot] = found
            statement = found
        }
        clock &+= 1
        statement.lastUse = clock
        statement.uses += 1
        return statement
    }

    mutating func insert(_ statement: Statement) {
        if statements.count >= capacity { evict() }
        clock &+= 1
        statement.lastUse = clock
        statement.uses = 1
        statements[statement.sql] = statement
        recent[StatementCache.slot(statement.sql)] = statement
    }

    private mutating func evict() {
        var victim: Statement?
        var victimOnce: Statement?
        for statement in statements.values {
            if victim.map({ statement.lastUse < $0.lastUse }) ?? true { victim = statement }
            if statement.uses == 1, victimOnce.map({ statement.lastUse < $0.lastUse }) ?? true { victimOnce = statement }
        }
        if let chosen = victimOnce ?? victim {
            statements[chosen.sql] = nil
            let slot = StatementCache.slot(chosen.sql)
            if recent[slot] === chosen { recent[slot] = nil }
        }
    }

    mutating func removeAll() {
        statements.removeAll()
        for slot in recent.indices { recent[slot] = nil }
    }
}

/// The update hook's record for `SQLiteConnection.trackChangedTables` (touched only on the
/// connection's queue).
final class ChangedTables {
    var names: Set<String> = []
}

/// The WAL hook's record for `SQLiteConnection.reportWALSize` (touched only on the
/// connection's queue).
final class WALSize {
    var pages: Int32 = 0
}

/// One SQLite connection. Not thread-safe: `Database` confines it to its own serial queue.
public final class SQLiteConnection {
    let handle: OpaquePointer
    @exclusivity(unchecked) private(set) var cache: StatementCache
    private var isClosed = false
    public let path: String
    /// The cache of names its reads use (a `Database`'s readers), and that cache's generation
    /// taken before the current read transaction's snapshot began (see `ReadCache`).
    var readCache: ReadCache?
    var readGeneration: UInt64 = 0
    /// Counts the read transactions `Database.read` began on this connection (0: none, e.g. the
    /// writer), so what is known of the current one (`snapshot`) is not taken for a later one.
    var readSerial: UInt64 = 0
    /// The snapshot's version as `SnapshotCounts.version` read it in read transaction `serial`.
    var snapshot: (serial: UInt64, version: SnapshotCounts.Version)?
    /// List rows kept while the connection sees the same data (`SnapshotRows`).
    let snapshotRows = SnapshotRows()
    /// The search indexes its searches use: a `Database`'s connections share one registry.
    public var searchIndexes = SearchIndexes()
    /// The tables changed since the last `takeChangedTables()`, once `trackChangedTables()` ran.
    private var changedTables: ChangedTables?
    private var walSize: WALSize?
    /// The event types `Outbox.append` wrote since the writer last signalled a commit
    /// (`Database.writerDone`); rolled back or not: a signal for an undone event costs a look.
    var appendedEventTypes: Set<String> = []
    /// The seq of the event `Outbox.append` wrote last in the current write (0: none yet);
    /// `Database.write` sets it to 0 before each body it runs.
    var lastAppendedSeq: Int64 = 0
    /// Counter changes gathered while `Database` runs a write batch on this connection
    /// (`CounterDeltas`); nil: `Counters.add` writes at once.
    var counterDeltas: CounterDeltas?

    /// Prepared statements kept per connection by default (see `StatementCache`).
    public static let defaultStatementCacheCapacity = 64

    public init(path: String, busyTimeoutMillis: Int32 = 5000,
                statementCacheCapacity: Int = SQLiteConnection.defaultStatementCacheCapacity) throws(SQLiteError) {
        _ = SQLiteConnection.libraryConfigured
        cache = StatementCache(capacity: statementCacheCapacity)
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message, sql: nil)
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMillis)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
        try execute("PRAGMA temp_store=MEMORY")
        // Reads come straight from the OS page cache (shared by every connection) instead of
        // a read() per page into a small private cache.
        try execute("PRAGMA mmap_size=1073741824")
        try execute("PRAGMA cache_size=-16384")
    }

    deinit { close() }

    /// Records the name of every table a statement changes a row of (SQLite's update hook: rowid
    /// tables; rows of a `WITHOUT ROWID` table and a `DELETE` without `WHERE` are not reported),
    /// for `takeChangedTables()`.
    func trackChangedTables() {
        let tracker = ChangedTables()
        changedTables = tracker
        sqlite3_update_hook(handle, { context, _, _, table, _ in
            guard let context, let table else { return }
            Unmanaged<ChangedTables>.fromOpaque(context).takeUnretainedValue().names.insert(String(cString: table))
        }, Unmanaged.passUnretained(tracker).toOpaque())
    }

    /// The tables changed since the last call (empty unless `trackChangedTables()` ran).
    func takeChangedTables() -> Set<String> {
        guard let changedTables, !changedTables.names.isEmpty else { return [] }
        defer { changedTables.names = [] }
        return changedTables.names
    }

    /// Process-wide settings made before the first connection initializes SQLite: no memory
    /// statistics, which would take a global mutex on every allocation (no code reads them).
    private static let libraryConfigured: Bool = crm_sqlite3_disable_memstatus() == SQLITE_OK

    /// Closes the connection (statements first); used on clean shutdown. Later calls, and the
    /// deinit, do nothing (closing a handle twice is undefined behaviour); later statements
    /// fail with SQLITE_MISUSE.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Prepared statements alive on this connection (SQLite's own list: cached, and any still
    /// being stepped).
    public var liveStatementCount: Int {
        guard !isClosed else { return 0 }
        var count = 0
        var next = sqlite3_next_stmt(handle, nil)
        while let stmt = next {
            count += 1
            next = sqlite3_next_stmt(handle, stmt)
        }
        return count
    }

    /// Statements held in the cache.
    public var cachedStatementCount: Int { cache.count }

    private func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs SQL that returns no rows (may hold several statements; no parameters).
    public func execute(_ sql: String) throws(SQLiteError) {
        guard !isClosed else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed", sql: sql) }
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw SQLiteError(code: rc, message: text, sql: sql)
        }
    }

    private func statement(_ sql: String) throws(SQLiteError) -> Statement {
        guard !isClosed else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed", sql: sql) }
        if let cached = cache.get(sql) { return cached }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        let statement = Statement(handle: stmt, sql: sql)
        cache.insert(statement)
        return statement
    }

    private func bind(_ statement: Statement, _ values: [SQLValue]) throws(SQLiteError) {
        let stmt = statement.handle
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v): rc = SQLiteConnection.bindText(stmt, index, v)
            case .blob(let v): rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
            }
            if rc != SQLITE_OK { throw error(rc, statement.sql) }
        }
    }

    /// Binds all of `text`'s bytes (a NUL included) from its own UTF-8 storage: passing the
    /// `String` as a C string copied it into a new array first, an allocation per bound text
    /// (a customer create binds about fifteen). SQLite copies the bytes (`SQLITE_TRANSIENT`).
    /// Empty text goes the C-string way, whose pointer is never nil: a nil one binds NULL.
    private static func bindText(_ stmt: OpaquePointer, _ index: Int32, _ text: String) -> Int32 {
        let bound = text.utf8.withContiguousStorageIfAvailable { bytes -> Int32? in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                sqlite3_bind_text(stmt, index, $0, Int32(bytes.count), SQLITE_TRANSIENT)
            }
        }
        if let bound = bound ?? nil { return bound }
        return sqlite3_bind_text(stmt, index, text, Int32(text.utf8.count), SQLITE_TRANSIENT)
    }

    static func value(_ stmt: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(stmt, i) else { return .null }
            let count = Int(sqlite3_column_bytes(stmt, i))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(stmt, i))
            guard count > 0, let bytes = sqlite3_column_blob(stmt, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    /// Runs a parameterised query and returns every row.
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> [Row] {
        let statement = try statement(sql)
        try bind(statement, values)
        defer { sqlite3_reset(statement.handle) }
        var rows: [Row] = []
        let columns = sqlite3_column_count(statement.handle)
        let names = statement.columnNames
        while true {
            let rc = sqlite3_step(statement.handle)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columns))
            for i in 0..<columns { values.append(SQLiteConnection.value(statement.handle, i)) }
            rows.append(Row(values: values, names: names))
        }
        return rows
    }

    /// The first column of every row as integers (ids), without building rows.
    public func queryIDs(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> [Int64] {
        let statement = try statement(sql)
        try bind(statement, values)
        defer { sqlite3_reset(statement.handle) }
        var ids: [Int64] = []
        while true {
            let rc = sqlite3_step(statement.handle)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            ids.append(sqlite3_column_int64(statement.handle, 0))
        }
        return ids
    }

    /// Steps a query's rows without building a `Row` per row: `body` reads the current row's
    /// columns in place, by index. For hot loops (the statistics' sums, list pages written
    /// straight into JSON text), where a `Row` with its array of values and a `String` per text
    /// would cost more than SQLite's own work.
    public func forEachRow(_ sql: String, _ values: [SQLValue] = [], _ body: (ColumnValues) throws -> Void) throws {
        let statement = try statement(sql)
        try bind(statement, values)
        defer { sqlite3_reset(statement.handle) }
        let columns = ColumnValues(handle: statement.handle)
        while true {
            let rc = sqlite3_step(statement.handle)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            try body(columns)
        }
    }

    /// The first row, if any.
    public func queryOne(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Row? {
        try query(sql, values).first
    }

    /// Whether the query answers a row (without building it).
    public func exists(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Bool {
        let statement = try statement(sql)
        try bind(statement, values)
        defer { sqlite3_reset(statement.handle) }
        switch sqlite3_step(statement.handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw error(rc, sql)
        }
    }

    /// The first column of the first row as an integer (0 when there is no row).
    public func scalar(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Int64 {
        try queryOne(sql, values)?.int(0) ?? 0
    }

    /// Runs a parameterised statement that returns no rows; answers the number of changed rows.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Int {
        let statement = try statement(sql)
        try bind(statement, values)
        defer { sqlite3_reset(statement.handle) }
        while true {
            let rc = sqlite3_step(statement.handle)
            if rc == SQLITE_DONE { break }
            if rc == SQLITE_ROW { continue }
            throw error(rc, sql)
        }
        return Int(sqlite3_changes(handle))
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    public var userVersion: Int64 {
        get { (try? scalar("PRAGMA user_version")) ?? 0 }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: commits when it returns, rolls back when
    /// it throws. The write lock is taken up front, so the body never fails with SQLITE_BUSY halfway.
    public func writeTransaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body(self)
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Moves the WAL's content into the database and truncates it.
    public func checkpoint() {
        guard !isClosed else { return }
        growInChunks()
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
    }

    /// Moves what it can of the WAL into the database without waiting for readers or the
    /// writer (`Database`'s checkpointer).
    func checkpointPassively() {
        guard !isClosed else { return }
        growInChunks()
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }

    /// Lets a checkpoint grow the database file in steps of an eighth of its size (1–16 MiB)
    /// instead of a few pages at a time. Every connection maps the file (`mmap_size`) and maps
    /// it anew, faulting its pages in again, each time it grew: at 2,000 customer creates a
    /// second that was several remaps a second per connection (perf: 4 % of CustomerService in
    /// `munmap` and page faults). An eighth keeps the unused tail small.
    private func growInChunks() {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        var chunk: Int32 = 1 << 20
        while chunk < 16 << 20 && Int(chunk) * 8 < Int(info.st_size) { chunk <<= 1 }
        sqlite3_file_control(handle, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk)
    }

    /// Turns off SQLite's checkpoint at commit on this connection (its WAL hook) and records
    /// the WAL's size after each commit in `walPages` instead, for `Database`, which
    /// checkpoints on another connection, off the writer's path.
    func reportWALSize() {
        let size = WALSize()
        walSize = size
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if let context { Unmanaged<WALSize>.fromOpaque(context).takeUnretainedValue().pages = pages }
            return SQLITE_OK
        }, Unmanaged.passUnretained(size).toOpaque())
    }

    /// Pages in the WAL after this connection's last commit (0 unless `reportWALSize()` ran).
    var walPages: Int32 { walSize?.pages ?? 0 }
}

/// The current row of `SQLiteConnection.forEachRow`, read in place by column index. Valid only
/// inside the body it is given to (and `text` only until the next call on the same column).
public struct ColumnValues {
    let handle: OpaquePointer

    /// The column as an integer, SQLite's conversion (NULL reads as 0).
    public func int(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }

    /// The column's value as `Row` holds it.
    public func value(_ index: Int32) -> SQLValue { SQLiteConnection.value(handle, index) }

    /// The column as an integer the way `Row.int(_:)` reads it: integers, and reals that are
    /// whole numbers; nil for anything else.
    public func exactInt(_ index: Int32) -> Int64? {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return sqlite3_column_int64(handle, index)
        case SQLITE_FLOAT: return Int64(exactly: sqlite3_column_double(handle, index))
        default: return nil
        }
    }

    /// What the column holds, and for text and blobs the bytes, in place (no copy, no `String`).
    public enum Value {
        case null
        case int(Int64)
        case double(Double)
        /// Text or blob bytes; valid until the statement steps or is reset.
        case bytes(UnsafeBufferPointer<UInt8>)
    }

    public subscript(_ index: Int32) -> Value {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(handle, index))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(handle, index) else { return .null }
            return .bytes(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, index))))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, index))
            guard count > 0, let bytes = sqlite3_column_blob(handle, index) else { return .bytes(UnsafeBufferPointer(start: nil, count: 0)) }
            return .bytes(UnsafeBufferPointer(start: bytes.assumingMemoryBound(to: UInt8.self), count: count))
        default: return .null
        }
    }
}
