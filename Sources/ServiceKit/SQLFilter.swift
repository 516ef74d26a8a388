import WireProtocol

/// A WHERE clause built from optional filters, with its bound values (never user text in SQL).
public struct SQLFilter: Sendable {
    public private(set) var conditions: [String] = []
    public private(set) var binds: [SQLValue] = []

    public init() {}

    /// Adds a condition with `?` placeholders and their values.
    public mutating func add(_ condition: String, _ values: [SQLValue] = []) {
        conditions.append(condition)
        binds += values
    }

    /// `column IN (?, …)`.
    public mutating func `in`(_ column: String, _ values: [Int64]) {
        var condition = column
        condition += " IN ("
        condition += SQLFilter.marks(values.count)
        condition += ")"
        conditions.append(condition)
        binds.reserveCapacity(binds.count + values.count)
        for value in values { binds.append(.int(value)) }
    }

    /// Adds every condition of `other`.
    public mutating func add(_ other: SQLFilter) {
        conditions += other.conditions
        binds += other.binds
    }

    /// `WHERE …` or "" when there is no condition.
    public var clause: String {
        guard !conditions.isEmpty else { return "" }
        var clause = "WHERE "
        clause.reserveCapacity(conditions.reduce(6) { $0 + $1.utf8.count + 5 })
        for (index, condition) in conditions.enumerated() {
            if index > 0 { clause += " AND " }
            clause += condition
        }
        return clause
    }

    /// `?, ?, …` for `count` values (made once for the counts a status filter or a page of ids
    /// uses: lists build it on every request).
    public static func marks(_ count: Int) -> String {
        smallMarks.indices.contains(count) ? smallMarks[count] : makeMarks(count)
    }

    private static let smallMarks = (0...64).map(makeMarks)

    private static func makeMarks(_ count: Int) -> String {
        Array(repeating: "?", count: max(count, 0)).joined(separator: ", ")
    }
}

extension SQLiteConnection {
    /// Linked rows of many owners at once, for list answers: `sql` selects
    /// `(owner id, linked id, linked name)` ordered as they should be shown and contains one
    /// `IN (%@)` that receives a placeholder per owner id. Answers owner → [(id, name)].
    public func links(_ sql: String, owners: [Int64]) throws -> [Int64: [(id: Int64, name: JSON)]] {
        guard !owners.isEmpty else { return [:] }
        var result: [Int64: [(id: Int64, name: JSON)]] = [:]
        // Found by bytes (not Character by Character, which costs more than the query's prepare
        // check): the template's first `IN (%@)`.
        let marker = Array("IN (%@)".utf8)
        let utf8 = Array(sql.utf8)
        var expanded = sql
        if let at = (0...max(0, utf8.count - marker.count)).first(where: { utf8.count >= marker.count && utf8[$0..<($0 + marker.count)].elementsEqual(marker) }) {
            expanded = String(decoding: utf8[..<at], as: UTF8.self) + "IN (\(SQLFilter.marks(owners.count)))"
                + String(decoding: utf8[(at + marker.count)...], as: UTF8.self)
        }
        for row in try query(expanded, owners.map { .int($0) }) {
            guard let owner = row.int(0), let linked = row.int(1) else { continue }
            result[owner, default: []].append((linked, row[2].json))
        }
        return result
    }
}
