import ServiceKit
import WireProtocol

/// The read model of one statistic (signed contracts, demand changes, follow-up records), kept
/// from its producer's events (docs/EVENTS.md) in two tables of the projection:
///
/// - `<name>_rows(id, organization_id, t, cents)`: every row that counts (not deleted, with a
///   valid time), by the producer's id;
/// - `<name>_blocks(level, block, organization_id, n, cents, min_t)`: per organization and
///   dyadic block of days (`DayBlocks`), the number of rows, their sum in cents and the
///   earliest time.
///
/// Times are stored as integer stamps (`DayBlocks.stamp`, `YYYYMMDDhhmmss`), so a window's
/// thousands of block rows are summed from integer columns without a string per row.
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
            t INTEGER NOT NULL,
            cents INTEGER NOT NULL
        );
        CREATE INDEX \(rows)_time ON \(rows)(t, organization_id, cents);
        CREATE INDEX \(rows)_organization ON \(rows)(organization_id, t);
        CREATE TABLE \(blocks) (
            level INTEGER NOT NULL,
            block INTEGER NOT NULL,
            organization_id INTEGER NOT NULL,
            n INTEGER NOT NULL,
            cents INTEGER NOT NULL,
            min_t INTEGER NOT NULL,
            PRIMARY KEY (level, block, organization_id)
        ) WITHOUT ROWID;

        """
    }

    /// What one producer row contributes.
    struct Entry: Equatable, Sendable {
        /// 0 stands for a row without an organization (answered as null).
        var organization: Int64
        var stamp: Int64
        var day: Int64
        var cents: Int64
    }

    /// The contribution of an entity in `state`; nil when it is deleted (`status` -1) or has
    /// no valid time.
    func entry(_ state: JSONObject) -> Entry? {
        guard state["status"]?.intValue != -1, let text = state[timeField]?.stringValue,
              let time = Timestamp.normalize(text, dateOnlyAllowed: true), let day = DayBlocks.day(time), let stamp = DayBlocks.stamp(time) else { return nil }
        let cents = amountField.flatMap { state[$0]?.intValue } ?? 0
        return Entry(organization: state["organization_id"]?.intValue ?? 0, stamp: stamp, day: day, cents: cents)
    }

    /// Applies an entity's new state (an upsert by id: applying it twice changes nothing).
    func apply(_ db: SQLiteConnection, id: Int64, state: JSONObject) throws {
        try apply(db, id: id, entry(state))
    }

    func apply(_ db: SQLiteConnection, id: Int64, _ new: Entry?) throws {
        let old = try db.queryOne("SELECT organization_id, t, cents FROM \(rows) WHERE id = ?", [.int(id)]).flatMap { row -> Entry? in
            guard let organization = row.int(0), let stamp = row.int(1), let day = DayBlocks.day(DayBlocks.time(stamp)) else { return nil }
            return Entry(organization: organization, stamp: stamp, day: day, cents: row.int(2) ?? 0)
        }
        guard old != new else { return }
        if let old {
            try db.run("DELETE FROM \(rows) WHERE id = ?", [.int(id)])
            try remove(db, old)
        }
        if let new {
            try db.run("INSERT INTO \(rows)(id, organization_id, t, cents) VALUES (?, ?, ?, ?)",
                       [.int(id), .int(new.organization), .int(new.stamp), .int(new.cents)])
            for level in DayBlocks.levels {
                try db.run("""
                    INSERT INTO \(blocks)(level, block, organization_id, n, cents, min_t) VALUES (?, ?, ?, 1, ?, ?)
                    ON CONFLICT(level, block, organization_id) DO UPDATE SET
                        n = n + 1, cents = cents + excluded.cents, min_t = min(min_t, excluded.min_t)
                    """, [.int(Int64(level)), .int(new.day >> Int64(level)), .int(new.organization), .int(new.cents), .int(new.stamp)])
            }
        }
    }

    /// Takes a row's contribution out of its blocks (the row itself is already gone).
    private func remove(_ db: SQLiteConnection, _ old: Entry) throws {
        for level in DayBlocks.levels {
            let block = old.day >> Int64(level)
            let key: [SQLValue] = [.int(Int64(level)), .int(block), .int(old.organization)]
            try db.run("UPDATE \(blocks) SET n = n - 1, cents = cents - ? WHERE level = ? AND block = ? AND organization_id = ?", [.int(old.cents)] + key)
            guard let left = try db.queryOne("SELECT n, min_t FROM \(blocks) WHERE level = ? AND block = ? AND organization_id = ?", key) else { continue }
            if (left.int(0) ?? 0) <= 0 {
                try db.run("DELETE FROM \(blocks) WHERE level = ? AND block = ? AND organization_id = ?", key)
            } else if left.int(1) == old.stamp {
                let days = DayBlocks.days(level: level, block: block)
                try db.run("""
                    UPDATE \(blocks) SET min_t = (SELECT MIN(t) FROM \(rows) WHERE organization_id = ? AND t >= ? AND t < ?)
                    WHERE level = ? AND block = ? AND organization_id = ?
                    """, [.int(old.organization), .int(DayBlocks.stamp(day: days.first)), .int(DayBlocks.stamp(day: days.last + 1))] + key)
            }
        }
    }

    /// One organization's figures in a window.
    struct Total: Sendable, Equatable {
        var organization: Int64
        var count: Int64
        var cents: Int64
        /// The earliest time, as a stamp.
        var first: Int64
    }

    /// How `totals` orders organizations (ties: organization id, ascending).
    enum Order: Sendable {
        /// Earliest time in the window, newest first.
        case firstDescending
        /// Number of rows, most first.
        case countDescending

        func precedes(_ a: Total, _ b: Total) -> Bool {
            switch self {
            case .firstDescending where a.first != b.first: return a.first > b.first
            case .countDescending where a.count != b.count: return a.count > b.count
            default: return a.organization < b.organization
            }
        }
    }

    /// Per organization with at least one row in `[start, end]` (normalized times, start ≤ end),
    /// only `organizations` when given: the blocks of the whole days, the rows of a partial
    /// first and last day, read in one statement and summed here (a `GROUP BY` over them would
    /// sort every row first).
    func totals(_ db: SQLiteConnection, start: String, end: String, organizations: [Int64]?, order: Order) throws -> [Total] {
        guard let startDay = DayBlocks.day(start), let endDay = DayBlocks.day(end),
              let startStamp = DayBlocks.stamp(start), let endStamp = DayBlocks.stamp(end) else { return [] }
        var branches: [String] = []
        var binds: [SQLValue] = []
        let only = organizations.map { ids in " AND organization_id IN (SELECT value FROM json_each(?))" } ?? ""
        let idsJSON: [SQLValue] = organizations.map { ids in [.text(JSON.array(ids.map { .int($0) }).jsonString)] } ?? []
        func rowsBetween(_ from: Int64, _ to: Int64) {
            branches.append("SELECT organization_id, 1, cents, t FROM \(rows) WHERE t BETWEEN ? AND ?" + only)
            binds += [.int(from), .int(to)] + idsJSON
        }
        if startDay == endDay {
            rowsBetween(startStamp, endStamp)
        } else {
            var firstWhole = startDay, lastWhole = endDay
            if !start.hasSuffix(" 00:00:00") {
                rowsBetween(startStamp, DayBlocks.stamp(day: startDay) + 235_959)
                firstWhole += 1
            }
            if !end.hasSuffix(" 23:59:59") {
                rowsBetween(DayBlocks.stamp(day: endDay), endStamp)
                lastWhole -= 1
            }
            if firstWhole <= lastWhole {
                for run in DayBlocks.cover(firstWhole, lastWhole) {
                    branches.append("SELECT organization_id, n, cents, min_t FROM \(blocks) WHERE level = ? AND block BETWEEN ? AND ?" + only)
                    binds += [.int(Int64(run.level)), .int(run.from), .int(run.to)] + idsJSON
                }
            }
        }
        var totals: [Total] = []
        var position: [Int64: Int] = [:]
        try db.forEachRow(branches.joined(separator: " UNION ALL "), binds) { row in
            let organization = row.int(0), n = row.int(1), cents = row.int(2), first = row.int(3)
            if let i = position[organization] {
                totals[i].count += n
                totals[i].cents += cents
                totals[i].first = min(totals[i].first, first)
            } else {
                position[organization] = totals.count
                totals.append(Total(organization: organization, count: n, cents: cents, first: first))
            }
        }
        return totals.sorted(by: order.precedes)
    }
}
