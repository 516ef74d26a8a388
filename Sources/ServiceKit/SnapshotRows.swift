import WireProtocol

/// List rows as `Resource.writeRows` read them from SQLite (each row's JSON text up to the
/// places where names go, the referenced ids, the linked ids), kept per reader connection for
/// as long as that connection sees the same data, as `SnapshotCounts` keeps totals: a page
/// whose rows are kept reads only their ids (from an index), not 20 rows of 20-odd columns
/// (on customer-page SQLite's column reads and the text were about two thirds of the service's
/// instructions).
///
/// Exact, never stale: rows are kept and used only inside a read transaction of
/// `Database.read`, under the snapshot's version (`SnapshotCounts.version`: `data_version`,
/// `total_changes()`, the pager's data version); a connection that sees another version drops
/// them all.
/// So any commit (of this process or another) makes the next page read its rows again. Names
/// are not part of a kept row: they come from `ReadCache` per page, as before.
///
/// Touched only on its connection's queue (no lock). Bounded: `maxBytes` of row text per
/// connection; reaching it starts over.
final class SnapshotRows {
    /// One row as read (immutable, one object: a page takes its rows with one retain each).
    final class Row {
        /// The row's text, from its first key to its last column's value.
        let text: [UInt8]
        /// Where each of the answer plan's cuts is in `text`.
        let cuts: [Int]
        /// The value of each reference's column.
        let targets: [Int64?]
        /// Each link's ids, from the row's list column.
        let links: [[Int64]]

        init(text: [UInt8], cuts: [Int], targets: [Int64?], links: [[Int64]]) {
            self.text = text
            self.cuts = cuts
            self.targets = targets
            self.links = links
        }

        /// What it counts against `maxBytes`: the text, 16 bytes per cut and target, and each
        /// link list's ids (8 bytes each, plus its array's header), so a row with long link
        /// lists is counted by what it holds.
        var cost: Int { text.count + 16 * (cuts.count + targets.count) + links.reduce(0) { $0 + 32 + 8 * $1.count } }
    }

    static let maxBytes = 2 << 20

    /// The rows kept of one page shape, by id.
    private final class Kept {
        var rows = IDTable<Row>()

        subscript(id: Int64) -> Row? { rows[row: id] }

        /// Keeps `row` for `id`; true when `id` was not kept before.
        func keep(_ id: Int64, _ row: Row) -> Bool {
            let isNew = rows[row: id] == nil
            rows.set(row, forRow: id)
            return isNew
        }

        var count: Int { rows.count }
    }

    private var version: SnapshotCounts.Version?
    /// Per page shape (table and select list).
    private var shapes: [String: Kept] = [:]
    /// The shape found last: the next page is usually of the same list, whose shape (the same
    /// string) then compares at once instead of hashing its long text.
    private var last: (shape: String, kept: Kept)?
    private var bytes = 0

    private func kept(_ shape: String) -> Kept? {
        if let last, last.shape == shape { return last.kept }
        guard let found = shapes[shape] else { return nil }
        last = (shape, found)
        return found
    }

    private func forgetAll() {
        shapes = [:]
        last = nil
        bytes = 0
    }

    /// The rows of `ids`, in that order, when every one is kept for `version`; nil otherwise.
    func rows(_ shape: String, of ids: [Int64], version: SnapshotCounts.Version) -> [Row]? {
        guard self.version == version, let kept = kept(shape) else { return nil }
        var rows: [Row] = []
        rows.reserveCapacity(ids.count)
        for id in ids {
            guard let row = kept[id] else { return nil }
            rows.append(row)
        }
        return rows
    }

    /// Keeps `rows`, read in a transaction that sees `version`.
    func keep(_ shape: String, _ rows: [(id: Int64, row: Row)], version: SnapshotCounts.Version) {
        if self.version != version {
            forgetAll()
            self.version = version
        }
        let adding = rows.reduce(0) { $0 + $1.row.cost }
        if bytes + adding > SnapshotRows.maxBytes {
            forgetAll()
            guard adding <= SnapshotRows.maxBytes else { return }
        }
        let kept = kept(shape) ?? Kept()
        shapes[shape] = kept
        for (id, row) in rows where kept.keep(id, row) { bytes += row.cost }
    }

    /// How many rows are kept (for tests).
    var count: Int { shapes.values.reduce(0) { $0 + $1.count } }
}
