import ServiceKit

extension ServiceDefinition {
    /// CustomerService: organizations and customers (`main.swift` runs it; tests open it in process).
    static let customers = ServiceDefinition(
        service: .customers,
        migrations: CustomerSchema.migrations,
        routes: Organizations.routes + Customers.routes,
        onStart: { database in
            try database.sync { db in
                try Organizations.resource.prepareSearch(db)
                try Customers.resource.prepareSearch(db)
            }
        })
}
