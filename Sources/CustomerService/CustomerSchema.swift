import ServiceKit

/// customers.sqlite: organizations, customers, their links, search grams and counters (each
/// table's SQL beside its resource).
enum CustomerSchema {
    static let migrations = [
        Migration(name: "001-organizations-customers-grams-counters",
                  sql: Organizations.table + "\n" + Customers.table + Organizations.resource.schemaPieces + Customers.resource.schemaPieces),
    ]
}
