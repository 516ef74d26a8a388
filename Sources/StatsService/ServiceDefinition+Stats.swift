import ServiceKit

extension ServiceDefinition {
    /// StatsService: statistics over contracts, demand changes and follow-up records, from its
    /// own read model of ContractService's and RecordService's events (`main.swift` runs it;
    /// tests open it in process). A new value each time: each has its own answer cache.
    static var stats: ServiceDefinition {
        ServiceDefinition(
            service: .stats,
            migrations: [],
            routes: Statistic.routes(),
            projections: [Statistic.contracts, Statistic.records])
    }
}
