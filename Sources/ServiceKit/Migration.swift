/// One schema change, known by its name: a database records the names it has applied in
/// `schema_migrations`, so a change is never run twice and its place in the list is free.
/// Never rename or edit a migration that has shipped; add a new one.
public struct Migration: Sendable, Equatable {
    public var name: String
    public var sql: String
    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// A list of migrations that cannot be applied as given (refused before anything runs).
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "migrations: \(message)" }
}

extension SQLiteConnection {
    /// Applies, in list order, each migration whose name is not recorded yet: each in its own
    /// `BEGIN IMMEDIATE` transaction together with its record, which is checked again inside
    /// the transaction (two processes starting on one file do not both run it).
    ///
    /// A database made before migrations had names (`PRAGMA user_version` = N, no
    /// `schema_migrations`) is adopted: the first N are recorded as applied without running.
    /// `user_version` is kept at the number recorded, so an older binary skips them too.
    public func migrate(_ migrations: [Migration]) throws {
        var names = Set<String>()
        for migration in migrations {
            guard !migration.name.isEmpty else { throw MigrationError(message: "a migration has an empty name") }
            guard names.insert(migration.name).inserted else {
                throw MigrationError(message: "the name \"\(migration.name)\" is given to two migrations; each needs its own")
            }
        }
        try writeTransaction { db in
            guard try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") == 0 else { return }
            try db.execute("""
                CREATE TABLE schema_migrations (
                    name TEXT PRIMARY KEY,
                    applied_at TEXT NOT NULL,
                    adopted INTEGER NOT NULL DEFAULT 0  -- 1: recorded from user_version, not run here
                ) WITHOUT ROWID
                """)
            let version = Int(db.userVersion)
            guard version > 0 else { return }
            for migration in migrations.prefix(version) {
                try db.run("INSERT INTO schema_migrations(name, applied_at, adopted) VALUES (?, ?, 1)",
                           [.text(migration.name), .text(Timestamp.now())])
            }
            Log.info("adopted \(min(version, migrations.count)) migrations applied by position (user_version \(version))")
            if version > migrations.count {
                Log.warning("user_version \(version) is past the \(migrations.count) migrations this build knows")
            }
        }
        let applied = Set(try query("SELECT name FROM schema_migrations").compactMap { $0.string(0) })
        for migration in migrations where !applied.contains(migration.name) {
            try writeTransaction { db in
                guard try db.scalar("SELECT COUNT(*) FROM schema_migrations WHERE name = ?", [.text(migration.name)]) == 0 else { return }
                try db.execute(migration.sql)
                try db.run("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)", [.text(migration.name), .text(Timestamp.now())])
                let recorded = try db.scalar("SELECT COUNT(*) FROM schema_migrations")
                try db.execute("PRAGMA user_version = \(max(recorded, db.userVersion))")
            }
        }
        let unknown = applied.subtracting(names).sorted()
        if !unknown.isEmpty {
            Log.warning("the database has migrations this build does not know (a newer build?): \(unknown.joined(separator: ", "))")
        }
    }
}
