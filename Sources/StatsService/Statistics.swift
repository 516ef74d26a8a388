import ServiceKit
import WireProtocol

/// `GET /api/stats/sign`, `/api/stats/demand`, `/api/stats/follow` (API.md §2 "Statistics"):
/// per organization over `[start_time, end_time]` (default the week before `end_time`, which
/// defaults to now), rows not deleted, `organization_ids` in any array form (absent or empty:
/// all), paged like every list. Answered from this service's read model only (`Tally`, fed by
/// the projections below), never by asking the producers, so statistics still answer while
/// they are down (from the last events seen).
struct Statistic: Sendable {
    let path: String
    let tally: Tally
    let order: Tally.Order
    /// The seed's `[[rows], {total, page, count}]` instead of `data` + `page_info`.
    let nested: Bool
    let row: @Sendable (Tally.Total) -> JSON

    /// Contracts by `sign_time`: `{organization_id, sign_amount, sign_count, min_sign_time}`,
    /// earliest signing in the window newest first; `sign_amount` exact, as money text.
    static let sign = Statistic(path: "/api/stats/sign", tally: Tally(name: "sign", timeField: "sign_time", amountField: "amount"),
                                order: .firstDescending, nested: false) { total in
        .object(JSONObject([("organization_id", organization(total)), ("sign_amount", .string(Params.moneyText(total.cents))),
                            ("sign_count", .int(total.count)), ("min_sign_time", .string(DayBlocks.time(total.first)))]))
    }

    /// Demand changes by `recordTime`: `{organization_id, demand_count, m_recordTime}`, most first.
    static let demand = Statistic(path: "/api/stats/demand", tally: Tally(name: "demand", timeField: "recordTime", amountField: nil),
                                  order: .countDescending, nested: true) { total in
        .object(JSONObject([("organization_id", organization(total)), ("demand_count", .int(total.count)), ("m_recordTime", .string(DayBlocks.time(total.first)))]))
    }

    /// Follow-up records by `recordTime`: `{organization_id, follow_count, min_sign_time}` (the
    /// seed's name for the earliest follow-up time), most first.
    static let follow = Statistic(path: "/api/stats/follow", tally: Tally(name: "follow", timeField: "recordTime", amountField: nil),
                                  order: .countDescending, nested: true) { total in
        .object(JSONObject([("organization_id", organization(total)), ("follow_count", .int(total.count)), ("min_sign_time", .string(DayBlocks.time(total.first)))]))
    }

    static let all = [sign, demand, follow]

    private static func organization(_ total: Tally.Total) -> JSON { total.organization == 0 ? .null : .int(total.organization) }

    /// Contracts from ContractService.
    static let contracts = Projection(name: "stats_contracts", version: 1, source: ServiceName.contracts.rawValue, eventTypes: ["contract"],
                                      schema: sign.tally.schema) { db, event in
        try sign.tally.apply(db, id: event.entityID, state: event.state)
    }

    /// Demand changes and follow-up records from RecordService.
    static let records = Projection(name: "stats_records", version: 1, source: ServiceName.records.rawValue, eventTypes: ["demand", "follow"],
                                    schema: demand.tally.schema + follow.tally.schema) { db, event in
        switch event.type {
        case "demand": try demand.tally.apply(db, id: event.entityID, state: event.state)
        case "follow": try follow.tally.apply(db, id: event.entityID, state: event.state)
        default: break
        }
    }

    /// The three routes, sharing two answer caches (per definition, so two services in one
    /// process never share answers): a window's totals, and the answers (pages) made of them.
    static func routes() -> [Route] {
        let totals = AnswerCache<[Tally.Total]>()
        let pages = AnswerCache<WireResponse>(capacity: 256)
        return all.map { statistic in Route.get(statistic.path) { try await statistic.answer($0, totals: totals, pages: pages) } }
    }

    func answer(_ ctx: RequestContext, totals cache: AnswerCache<[Tally.Total]>, pages: AnswerCache<WireResponse>) async throws -> WireResponse {
        let params = ctx.params
        let organizations = try params.idArray("organization_ids").flatMap { $0.isEmpty ? nil : $0 }
        let window = try params.timeWindow()
        let paging = try params.paging()
        // Read before the data: a commit after this point makes the entry stale at once.
        let generation = ctx.database.commitSignal.generation
        let key = "\(path) \(window.start) \(window.end) \(organizations.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "*")"
        let tally = self.tally, order = self.order, row = self.row, nested = self.nested
        // The same generation for both: a page is never made of totals newer or older than its key says.
        return try await pages.value("\(key) \(paging.offset) \(paging.count)", generation: generation) {
            let all = try await cache.value(key, generation: generation) {
                try await ctx.database.read { db in
                    try tally.totals(db, start: window.start, end: window.end, organizations: organizations, order: order)
                }
            }
            let total = Int64(all.count)
            let from = Int(min(paging.offset, total)), to = Int(min(paging.offset + paging.count, total))
            let page = JSON.array(all[from..<to].map(row))
            let info = paging.info(total: total)
            return nested ? Reply.ok(data: .array([page, info.json])) : Reply.ok(data: page, page: info)
        }
    }
}
