import ServiceKit

/// records.sqlite: potential, follow-up and demand records with their follower and customer
/// lists (each table's SQL beside its resource), and hourly counts per status for the totals.
/// Names come from the copies (`employee_copies`, `organization_copies`, `customer_copies`) the
/// projections keep; link tables hold no foreign key to those copies, which a projection
/// rebuild drops and refills.
///
/// Lists filter on status and a `recordTime` window and order by `recordTime DESC, id DESC`:
/// every index has the equality filters first, then `recordTime` (SQLite appends the rowid),
/// so a page is read in order from the index and stops after `count` rows, whatever the
/// table's size. Potential lists filter on several statuses at once (all but deleted), so
/// their index is `(recordTime, id, status)`: read in order, status checked in the index.
enum RecordSchema {
    static let migrations = [
        Migration(name: "001-potentials-follows-demands",
                  sql: Potentials.table + Follows.table + Demands.table
                    + [Potentials.resource, Follows.resource, Demands.resource].map { $0.schemaPieces(linkForeignKeys: false) }.joined()),
        // Each link's ids kept in the row as well (`Link.listColumn`): a list page reads them with
        // its rows instead of one lookup per link.
        Migration(name: "002-link-lists", sql: [Potentials.resource, Follows.resource, Demands.resource].map(\.linkListsSQL).joined()),
    ]
}
