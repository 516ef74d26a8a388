import ServiceKit

/// users.sqlite: groups, employees, sessions, login failures, menus (each table's SQL beside
/// the code that uses it).
enum UserSchema {
    static let migrations = [
        Migration(name: "001-groups-employees-sessions-menus",
                  sql: [Groups.table, Employees.table, Sessions.table, Menus.table].joined(separator: "\n") + Employees.resource.schemaPieces),
        // A failed-login attempt is recorded once per request id, so a resend is not counted twice.
        Migration(name: "002-login-failures-request-id", sql: """
        ALTER TABLE login_failures ADD COLUMN request_id TEXT;
        CREATE UNIQUE INDEX login_failures_request ON login_failures(request_id) WHERE request_id IS NOT NULL;
        """),
        // Each link's ids kept in the row as well (`Link.listColumn`): a list page reads them with
        // its rows instead of one lookup per link.
        Migration(name: "003-link-lists", sql: Employees.resource.linkListsSQL),
    ]
}
