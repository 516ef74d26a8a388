import ServiceKit

extension ServiceDefinition {
    /// ContractService: satisfaction feedback and contracts, with its own copies of employees,
    /// organizations and customers (`main.swift` runs it; tests open it in process).
    static let contracts = ServiceDefinition(
        service: .contracts,
        migrations: ContractSchema.migrations,
        routes: Feedback.routes + Contracts.routes,
        projections: [Copies.employees, Copies.organizations, Copies.customers])
}
