import ServiceKit

/// records.sqlite: potential, follow-up and demand records with their follower and customer
/// lists. Names come from the copies (`employee_copies`, `organization_copies`,
/// `customer_copies`) the projections keep; link tables hold no foreign key to those copies,
/// which a projection rebuild drops and refills.
///
/// Lists filter on status and a `recordTime` window and order by `recordTime DESC, id DESC`:
/// every index has the equality filters first, then `recordTime` (SQLite appends the rowid),
/// so a page is read in order from the index and stops after `count` rows, whatever the
/// table's size. Potential lists filter on several statuses at once (all but deleted), so
/// their index is `(recordTime, id, status)`: read in order, status checked in the index.
enum RecordSchema {
    static let migrations = [
        Migration(name: "001-potentials-follows-demands",
                  sql: tables + [Potentials.resource, Follows.resource, Demands.resource].map { $0.schemaPieces(linkForeignKeys: false) }.joined()),
    ]

    /// Potential, follow-up and demand records and their indexes.
    static let tables = """
        CREATE TABLE potentials (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            organization_id INTEGER NOT NULL,
            director_id INTEGER NOT NULL,
            recordTime TEXT NOT NULL,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            operator_id INTEGER NOT NULL
        );
        CREATE INDEX potentials_time ON potentials(recordTime, id, status);
        CREATE INDEX potentials_organization ON potentials(organization_id, recordTime);
        CREATE INDEX potentials_director ON potentials(director_id, recordTime);
        CREATE TABLE follows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            potential_id INTEGER NOT NULL REFERENCES potentials(id),
            organization_id INTEGER NOT NULL,
            event INTEGER,
            attach TEXT,
            gain TEXT,
            recordTime TEXT NOT NULL,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            operator_id INTEGER NOT NULL
        );
        CREATE INDEX follows_organization ON follows(organization_id, status, recordTime);
        CREATE INDEX follows_potential ON follows(potential_id, status, recordTime);
        CREATE INDEX follows_status_time ON follows(status, recordTime);
        CREATE TABLE demands (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            organization_id INTEGER NOT NULL,
            content TEXT NOT NULL,
            attach TEXT,
            recordTime TEXT NOT NULL,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            operator_id INTEGER NOT NULL
        );
        CREATE INDEX demands_organization ON demands(organization_id, status, recordTime);
        CREATE INDEX demands_status_time ON demands(status, recordTime);
        """
}
