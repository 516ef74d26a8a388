import ServiceKit

/// customers.sqlite: organizations, customers, their links, search grams and counters (each
/// table's SQL beside its resource).
enum CustomerSchema {
    static let migrations = [
        Migration(name: "001-organizations-customers-grams-counters",
                  sql: Organizations.table + "\n" + Customers.table + Organizations.resource.schemaPieces + Customers.resource.schemaPieces),
        // Each link's ids kept in the row as well (`Link.listColumn`): a list page reads them with
        // its rows instead of one lookup per link.
        Migration(name: "002-link-lists", sql: Organizations.resource.linkListsSQL + Customers.resource.linkListsSQL),
    ]
}
