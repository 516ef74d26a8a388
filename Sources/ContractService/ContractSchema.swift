import ServiceKit

/// contracts.sqlite: satisfaction feedback and contracts, their links, unit counts for the
/// windowed totals. Money columns hold integer cents. The copies of employees, organizations and
/// customers the names come from are projections (Copies.*), not part of these migrations.
enum ContractSchema {
    static let migrations = [
        Migration(name: "001-satisfactions-contracts", sql: tables + Feedback.resource.schemaPieces + Contracts.resource.schemaPieces),
        // Each link's ids kept in the row as well (`Link.listColumn`): a list page reads them with
        // its rows instead of one lookup per link.
        Migration(name: "002-link-lists", sql: Feedback.resource.linkListsSQL + Contracts.resource.linkListsSQL),
    ]

    /// Lists read `(status, window column, id)` (the default list, newest first, and the edge
    /// days of a windowed total) or `(organization_id, status, window column, id)`.
    static let tables = """
        CREATE TABLE satisfactions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, value INTEGER NOT NULL, attach TEXT, recordTime TEXT NOT NULL,
            operator_id INTEGER, organization_id INTEGER NOT NULL, createTime TEXT NOT NULL, updateTime TEXT NOT NULL,
            note TEXT, status INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX satisfactions_window ON satisfactions(status, recordTime, id);
        CREATE INDEX satisfactions_organization ON satisfactions(organization_id, status, recordTime, id);
        CREATE TABLE contracts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, organization_id INTEGER NOT NULL, name TEXT NOT NULL, code TEXT,
            amount INTEGER, -- cents
            sign_time TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0, aging_start_time TEXT, aging_end_time TEXT,
            remit_amount INTEGER, -- cents
            remit_time TEXT, creator_id INTEGER, editor_id INTEGER, createTime TEXT NOT NULL, updateTime TEXT NOT NULL, note TEXT
        );
        CREATE INDEX contracts_window ON contracts(status, sign_time, id);
        CREATE INDEX contracts_organization ON contracts(organization_id, status, sign_time, id);

        """
}
