import ServiceKit

extension ServiceDefinition {
    /// CustomerService: organizations and customers (`main.swift` runs it; tests open it in process).
    static let customers = ServiceDefinition(
        service: .customers,
        migrations: CustomerSchema.migrations,
        routes: Organizations.routes + Customers.routes,
        onStart: { database in
            try database.sync { db in
                try NgramIndex.rebuildIfNeeded(db, table: "organization_grams", source: "SELECT id, status, groupName FROM organizations")
                try NgramIndex.rebuildIfNeeded(db, table: "customer_grams", source: "SELECT id, status, realName, nickName FROM customers")
            }
        })
}
