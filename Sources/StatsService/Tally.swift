import ServiceKit
import WireProtocol

/// The read model of one statistic (signed contracts, demand changes, follow-up records), kept
/// from its producer's events (docs/EVENTS.md) in two tables of the projection:
///
/// - `<name>_rows(id, organization_id, time, cents)`: every row that counts (not deleted, with a
///   valid time), by the producer's id;
/// - `<name>_blocks(level, block, organization_id, n, cents, min_time)`: per organization and
///   dyadic block of days (`DayBlocks`), the number of rows, their sum in cents and the
///   earliest time.
///
/// `apply` keeps both in the event's transaction: an update takes the old row's contribution
/// out of every level and adds the new one (another organization, another day, out of the
/// window, deleted); a block whose earliest time left is given the next one from the rows
/// (one index seek). `totals` answers a window from the blocks of its whole days and the rows
/// of its partial first and last day only.
struct Tally: Sendable {
    /// Table prefix.
    let name: String
    /// The state field holding the row's time (`sign_time`, `recordTime`).
    let timeField: String
    /// The state field holding an amount in cents (null counts as 0); nil: none.
    let amountField: String?

    var rows: String { "\(name)_rows" }
    var blocks: String { "\(name)_blocks" }

    var schema: String {
        """
        CREATE TABLE \(rows) (
            id INTEGER PRIMARY KEY,
            organization_id INTEGER NOT NULL,
            time TEXT NOT NULL,
            cents INTEGER NOT NULL
        );
        CREATE INDEX \(rows)_time ON \(rows)(time);
        CREATE INDEX \(rows)_organization ON \(rows)(organization_id, time);
        CREATE TABLE \(blocks) (
            level INTEGER NOT NULL,
            block INTEGER NOT NULL,
            organization_id INTEGER NOT NULL,
            n INTEGER NOT NULL,
            cents INTEGER NOT NULL,
            min_time TEXT NOT NULL,
            PRIMARY KEY (level, block, organization_id)
        ) WITHOUT ROWID;

        """
    }

    /// What one producer row contributes.
    struct Entry: Equatable, Sendable {
        /// 0 stands for a row without an organization (answered as null).
        var organization: Int64
        var time: String
        var day: Int64
        var cents: Int64
    }

    /// The contribution of an entity in `state`; nil when it is deleted (`status` -1) or has
    /// no valid time.
    func entry(_ state: JSONObject) -> Entry? {
        guard state["status"]?.intValue != -1, let text = state[timeField]?.stringValue,
              let time = Timestamp.normalize(text, dateOnlyAllowed: true), let day = DayBlocks.day(time) else { return nil }
        let cents = amountField.flatMap { state[$0]?.intValue } ?? 0
        return Entry(organization: state["organization_id"]?.intValue ?? 0, time: time, day: day, cents: cents)
    }

    /// Applies an entity's new state (an upsert by id: applying it twice changes nothing).
    func apply(_ db: SQLiteConnection, id: Int64, state: JSONObject) throws {
        try apply(db, id: id, entry(state))
    }

    func apply(_ db: SQLiteConnection, id: Int64, _ new: Entry?) throws {
        let old = try db.queryOne("SELECT organization_id, time, cents FROM \(rows) WHERE id = ?", [.int(id)]).flatMap { row -> Entry? in
            guard let organization = row.int(0), let time = row.string(1), let day = DayBlocks.day(time) else { return nil }
            return Entry(organization: organization, time: time, day: day, cents: row.int(2) ?? 0)
        }
        guard old != new else { return }
        if let old {
            try db.run("DELETE FROM \(rows) WHERE id = ?", [.int(id)])
            try remove(db, old)
        }
        if let new {
            try db.run("INSERT INTO \(rows)(id, organization_id, time, cents) VALUES (?, ?, ?, ?)",
                       [.int(id), .int(new.organization), .text(new.time), .int(new.cents)])
            for level in DayBlocks.levels {
                try db.run("""
                    INSERT INTO \(blocks)(level, block, organization_id, n, cents, min_time) VALUES (?, ?, ?, 1, ?, ?)
                    ON CONFLICT(level, block, organization_id) DO UPDATE SET
                        n = n + 1, cents = cents + excluded.cents, min_time = min(min_time, excluded.min_time)
                    """, [.int(Int64(level)), .int(new.day >> Int64(level)), .int(new.organization), .int(new.cents), .text(new.time)])
            }
        }
    }

    /// Takes a row's contribution out of its blocks (the row itself is already gone).
    private func remove(_ db: SQLiteConnection, _ old: Entry) throws {
        for level in DayBlocks.levels {
            let block = old.day >> Int64(level)
            let key: [SQLValue] = [.int(Int64(level)), .int(block), .int(old.organization)]
            try db.run("UPDATE \(blocks) SET n = n - 1, cents = cents - ? WHERE level = ? AND block = ? AND organization_id = ?", [.int(old.cents)] + key)
            guard let left = try db.queryOne("SELECT n, min_time FROM \(blocks) WHERE level = ? AND block = ? AND organization_id = ?", key) else { continue }
            if (left.int(0) ?? 0) <= 0 {
                try db.run("DELETE FROM \(blocks) WHERE level = ? AND block = ? AND organization_id = ?", key)
            } else if left.string(1) == old.time {
                let days = DayBlocks.days(level: level, block: block)
                // A date sorts before every time of its day.
                try db.run("""
                    UPDATE \(blocks) SET min_time = (SELECT MIN(time) FROM \(rows) WHERE organization_id = ? AND time >= ? AND time < ?)
                    WHERE level = ? AND block = ? AND organization_id = ?
                    """, [.int(old.organization), .text(DayBlocks.date(days.first)), .text(DayBlocks.date(days.last + 1))] + key)
            }
        }
    }

    /// One organization's figures in a window.
    struct Total: Sendable {
        var organization: Int64
        var count: Int64
        var cents: Int64
        var first: String
    }

    /// How `totals` orders organizations.
    enum Order: String, Sendable {
        /// Earliest time in the window, newest first.
        case firstDescending = "first_time DESC, organization_id"
        /// Number of rows, most first.
        case countDescending = "total_n DESC, organization_id"
    }

    /// Per organization with at least one row in `[start, end]` (normalized times, start ≤ end),
    /// only `organizations` when given: the blocks of the whole days, the rows of a partial
    /// first and last day.
    func totals(_ db: SQLiteConnection, start: String, end: String, organizations: [Int64]?, order: Order) throws -> [Total] {
        guard let startDay = DayBlocks.day(start), let endDay = DayBlocks.day(end) else { return [] }
        var branches: [String] = []
        var binds: [SQLValue] = []
        let only = organizations.map { ids in " AND organization_id IN (SELECT value FROM json_each(?))" } ?? ""
        let idsJSON: [SQLValue] = organizations.map { ids in [.text(JSON.array(ids.map { .int($0) }).jsonString)] } ?? []
        func rowsBetween(_ from: String, _ to: String, inclusive: Bool) {
            branches.append("SELECT organization_id, 1 AS n, cents, time AS first FROM \(rows) WHERE time >= ? AND time \(inclusive ? "<=" : "<") ?" + only)
            binds += [.text(from), .text(to)] + idsJSON
        }
        if startDay == endDay {
            rowsBetween(start, end, inclusive: true)
        } else {
            var firstWhole = startDay, lastWhole = endDay
            if !start.hasSuffix(" 00:00:00") {
                rowsBetween(start, DayBlocks.date(startDay + 1), inclusive: false)
                firstWhole += 1
            }
            if !end.hasSuffix(" 23:59:59") {
                rowsBetween(DayBlocks.date(endDay), end, inclusive: true)
                lastWhole -= 1
            }
            if firstWhole <= lastWhole {
                for run in DayBlocks.cover(firstWhole, lastWhole) {
                    branches.append("SELECT organization_id, n, cents, min_time AS first FROM \(blocks) WHERE level = ? AND block BETWEEN ? AND ?" + only)
                    binds += [.int(Int64(run.level)), .int(run.from), .int(run.to)] + idsJSON
                }
            }
        }
        let sql = """
            SELECT organization_id, SUM(n) AS total_n, SUM(cents) AS total_cents, MIN(first) AS first_time
            FROM (\(branches.joined(separator: " UNION ALL "))) GROUP BY organization_id ORDER BY \(order.rawValue)
            """
        return try db.query(sql, binds).map { row in
            Total(organization: row.int(0) ?? 0, count: row.int(1) ?? 0, cents: row.int(2) ?? 0, first: row.string(3) ?? "")
        }
    }
}
