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
        add("\(column) IN (\(SQLFilter.marks(values.count)))", values.map { .int($0) })
    }

    /// `WHERE …` or "" when there is no condition.
    public var clause: String {
        conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
    }

    /// `?, ?, …` for `count` values.
    public static func marks(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
