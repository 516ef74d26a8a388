#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import WireProtocol

/// A consistent copy of a live database, taken with SQLite's online backup API while the
/// service keeps reading and writing (WAL: the copy is one read snapshot; writers are not
/// blocked). The copy is a single self-contained file (rollback journal mode, no `-wal`
/// beside it), checked with `PRAGMA quick_check`, written under a temporary name and renamed
/// into place, so a destination path never holds half a backup.
public enum Backup {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// How long a step may wait for a lock (a checkpoint truncating the WAL) before giving up.
    static let busyTimeoutMillis: Int32 = 10_000

    /// Copies the database at `source` to the new file `destination` (refused if it exists).
    /// Returns the number of pages copied.
    @discardableResult
    public static func copy(from source: String, to destination: String) throws(Failure) -> Int {
        guard access(source, F_OK) == 0 else { throw Failure("no database at \(source)") }
        guard access(destination, F_OK) != 0 else { throw Failure("\(destination) exists; a backup never overwrites a file") }
        let temporary = destination + ".partial-\(getpid())"
        defer { unlink(temporary) }
        var src: OpaquePointer?
        var dst: OpaquePointer?
        defer {
            sqlite3_close_v2(dst)
            sqlite3_close_v2(src)
        }
        guard sqlite3_open_v2(source, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let src else {
            throw Failure("cannot open \(source): \(message(src))")
        }
        guard sqlite3_open_v2(temporary, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let dst else {
            throw Failure("cannot create \(temporary): \(message(dst))")
        }
        sqlite3_busy_timeout(src, busyTimeoutMillis)
        sqlite3_busy_timeout(dst, busyTimeoutMillis)
        guard let backup = sqlite3_backup_init(dst, "main", src, "main") else {
            throw Failure("cannot start the backup: \(message(dst))")
        }
        // All pages in one step: one read snapshot of the source, so the copy is consistent.
        // SQLITE_BUSY/LOCKED are retried a bounded number of times (busy_timeout waits first).
        var rc = SQLITE_OK
        for _ in 0..<3 {
            rc = sqlite3_backup_step(backup, -1)
            if rc != SQLITE_BUSY && rc != SQLITE_LOCKED { break }
        }
        let pages = Int(sqlite3_backup_pagecount(backup))
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw Failure("backup of \(source) failed: \(String(cString: sqlite3_errstr(rc)))") }
        // A single file that opens anywhere: no WAL mode to carry along.
        for pragma in ["PRAGMA journal_mode=DELETE", "PRAGMA quick_check"] {
            let answer = try scalarText(dst, pragma)
            if pragma.hasSuffix("quick_check"), answer != "ok" { throw Failure("the copy of \(source) fails quick_check: \(answer)") }
        }
        guard rename(temporary, destination) == 0 else {
            throw Failure("cannot rename the copy to \(destination): \(String(cString: strerror(errno)))")
        }
        return pages
    }

    private static func message(_ db: OpaquePointer?) -> String {
        db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
    }

    private static func scalarText(_ db: OpaquePointer, _ sql: String) throws(Failure) -> String {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { throw Failure("\(sql): \(message(db))") }
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_step(stmt) == SQLITE_ROW else { throw Failure("\(sql): \(message(db))") }
        return sqlite3_column_text(stmt, 0).map { String(cString: $0) } ?? ""
    }

    /// `<Service> backup [--db PATH] [--to FILE]`: copies the service's database (the same
    /// `--db`/`CRM_DB` as when it runs) to FILE, or, without `--to` (or `--to -`), to standard
    /// output (through a temporary file), for `docker-compose exec -T users UserService backup > users.sqlite`.
    /// Returns the exit status.
    public static func command(name: String, arguments: [String]) -> Int32 {
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration.fromCommandLine(name: name, arguments: arguments)
        } catch {
            StdIO.error("\(name) backup: \(error)")
            return 2
        }
        var target = "-"
        if let i = arguments.firstIndex(of: "--to") {
            guard i + 1 < arguments.count else { StdIO.error("\(name) backup: --to takes a file name (or - for standard output)"); return 2 }
            target = arguments[i + 1]
        }
        if target != "-" {
            do {
                let pages = try copy(from: configuration.databasePath, to: target)
                StdIO.error("\(name) backup: \(configuration.databasePath) → \(target) (\(pages) pages)")
                return 0
            } catch {
                StdIO.error("\(name) backup: \(error)")
                return 1
            }
        }
        guard isatty(1) == 0 else {
            StdIO.error("\(name) backup: standard output is a terminal; redirect it to a file or give --to FILE")
            return 2
        }
        let temporary = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/\(name)-backup-\(getpid()).sqlite"
        defer { unlink(temporary) }
        do {
            try copy(from: configuration.databasePath, to: temporary)
            try stream(temporary, to: 1)
            return 0
        } catch {
            StdIO.error("\(name) backup: \(error)")
            return 1
        }
    }

    /// Writes the whole file at `path` to `fd`, 64 KiB at a time.
    static func stream(_ path: String, to fd: Int32) throws(Failure) {
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { return }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, n - offset) }
                if w > 0 { offset += w } else if w < 0 && errno == EINTR { continue } else {
                    throw Failure("cannot write the backup: \(String(cString: strerror(errno)))")
                }
            }
        }
    }
}
