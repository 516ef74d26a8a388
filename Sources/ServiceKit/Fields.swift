import WireProtocol

/// A writable column and how its parameter is parsed: what every create/update endpoint repeats.
public struct Field: Sendable {
    public enum Kind: Sendable {
        /// Trimmed text up to the given length in Unicode scalars (see `Params.string`).
        case text(maxLength: Int)
        /// An integer or a string, stored as given (the seed shows both for some fields).
        case scalar
        /// An integer, optionally restricted to a set of values.
        case int(oneOf: [Int64]?)
        /// A non-negative integer.
        case count
        /// `YYYY-MM-DD HH:MM:SS` (a date alone means 00:00:00).
        case time
        /// `YYYY-MM-DD`.
        case date
        /// An exact amount of money, stored as integer cents (`Params.money`).
        case money
    }

    public var param: String
    public var column: String
    public var kind: Kind
    /// What clearing the field (sending null or "") stores: NULL unless the column has a default.
    public var clearedValue: SQLValue

    public init(_ param: String, column: String? = nil, _ kind: Kind = .text(maxLength: Params.maxTextLength), cleared: SQLValue = .null) {
        self.param = param
        self.column = column ?? param
        self.kind = kind
        self.clearedValue = cleared
    }

    public static func text(_ param: String, column: String? = nil) -> Field { Field(param, column: column) }
    public static func longText(_ param: String, column: String? = nil) -> Field { Field(param, column: column, .text(maxLength: Params.maxLongTextLength)) }
}

extension Params {
    /// True when the parameter was sent as JSON null or an empty string: "clear this field".
    public func isCleared(_ name: String) -> Bool {
        values[name].map(Params.clears) ?? false
    }

    /// Whether a sent value clears its field: JSON null, or text that is empty once trimmed.
    static func clears(_ value: JSON) -> Bool {
        switch value {
        case .null: return true
        case .string(let s): return s.trimmingWhitespace.isEmpty
        default: return false
        }
    }

    /// The sent fields as column values, in the order given; absent ones are left out,
    /// cleared ones (null or "") become NULL (or the column's default). One lookup per field
    /// (a sent value that does not clear its field is one `has` accepts).
    public func values(for fields: [Field]) throws(APIError) -> [(column: String, value: SQLValue)] {
        var result: [(column: String, value: SQLValue)] = []
        for field in fields {
            guard let sent = values[field.param] else { continue }
            if Params.clears(sent) { result.append((field.column, field.clearedValue)); continue }
            result.append((field.column, try value(for: field)))
        }
        return result
    }

    func value(for field: Field) throws(APIError) -> SQLValue {
        switch field.kind {
        case .text(let maxLength):
            return SQLValue(try string(field.param, maxLength: maxLength))
        case .scalar:
            if let raw = raw(field.param), case .int(let v) = raw { return .int(v) }
            return SQLValue(try string(field.param))
        case .int(let allowed):
            if let allowed { return SQLValue(try int(field.param, oneOf: allowed)) }
            return SQLValue(try int(field.param))
        case .count:
            let v = try int(field.param)
            if let v, v < 0 { throw .badRequest("\(field.param) must not be negative") }
            return SQLValue(v)
        case .time:
            return SQLValue(try time(field.param))
        case .date:
            return SQLValue(try date(field.param))
        case .money:
            return SQLValue(try money(field.param))
        }
    }
}

extension SQLiteConnection {
    /// `INSERT INTO table(columns…) VALUES (?…)`; answers the new row id.
    @discardableResult
    public func insert(_ table: String, _ values: [(column: String, value: SQLValue)]) throws -> Int64 {
        // Appended in place: mapping and joining allocated an array and a string per column.
        var sql = "INSERT INTO "
        sql.reserveCapacity(32 + table.utf8.count + values.count * 24)
        sql += table
        sql += "("
        for (i, value) in values.enumerated() {
            sql += i == 0 ? "\"" : ", \""
            sql += value.column
            sql += "\""
        }
        sql += ") VALUES ("
        sql += SQLFilter.marks(values.count)
        sql += ")"
        try run(sql, values.map(\.value))
        return lastInsertRowID
    }

    /// `UPDATE table SET column = ?… WHERE id = ?`.
    public func update(_ table: String, id: Int64, _ values: [(column: String, value: SQLValue)]) throws {
        guard !values.isEmpty else { return }
        let sets = values.map { "\"\($0.column)\" = ?" }.joined(separator: ", ")
        try run("UPDATE \(table) SET \(sets) WHERE id = ?", values.map(\.value) + [.int(id)])
    }
}
