import ServiceKit

extension ServiceDefinition {
    /// RecordService: potential, follow-up and demand records, with names from its own copies
    /// of employees, organizations and customers (`main.swift` runs it; tests open it in process).
    static let records = ServiceDefinition(
        service: .records,
        migrations: RecordSchema.migrations,
        routes: Potentials.routes + Follows.routes + Demands.routes,
        projections: [Copies.employees, Copies.organizations, Copies.customers])
}
