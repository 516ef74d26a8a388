import WireProtocol

/// Request parameters (query string and body, merged by the gateway) with the parsing rules of
/// API.md §1. Every error names the parameter. Unknown parameters are ignored.
public struct Params: Sendable {
    public let values: JSONObject

    /// Longest text accepted by default, and for notes/content.
    public static let maxTextLength = 1000
    public static let maxLongTextLength = 4000
    /// Largest page size; larger requests are clamped.
    public static let maxPageSize: Int64 = 100
    public static let defaultPageSize: Int64 = 20
    /// Most ids one array parameter may hold.
    public static let maxArrayCount = 1000

    public init(_ values: JSONObject) {
        self.values = values
    }

    /// The raw value, nil when absent, JSON null or an empty string (form clients send `x=`).
    public func raw(_ name: String) -> JSON? {
        guard let value = values[name] else { return nil }
        switch value {
        case .null: return nil
        // By bytes: every Character is a space or tab exactly when every byte is.
        case .string(let s) where s.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }): return nil
        default: return value
        }
    }

    public func has(_ name: String) -> Bool { raw(name) != nil }

    // MARK: Integers

    public func int(_ name: String) throws(APIError) -> Int64? {
        guard let value = raw(name) else { return nil }
        guard let parsed = Params.integer(value) else {
            throw .badRequest(Params.repeated(name, value) ?? "\(name) must be an integer")
        }
        return parsed
    }

    /// The error for a one-value parameter given several values (`page=1&page=2` reaches a
    /// service as an array): saying it must be an integer or a string would send the caller
    /// looking at the wrong thing.
    static func repeated(_ name: String, _ value: JSON) -> String? {
        guard case .array(let items) = value, items.count > 1 else { return nil }
        return "\(name) takes one value, not \(items.count)"
    }

    public func requireInt(_ name: String) throws(APIError) -> Int64 {
        guard let value = try int(name) else { throw .badRequest("\(name) is required") }
        return value
    }

    /// An integer that must be one of `allowed`.
    public func int(_ name: String, oneOf allowed: [Int64]) throws(APIError) -> Int64? {
        guard let value = try int(name) else { return nil }
        guard allowed.contains(value) else {
            throw .badRequest("\(name) must be one of \(allowed.map(String.init).joined(separator: ", "))")
        }
        return value
    }

    /// A positive id.
    public func id(_ name: String) throws(APIError) -> Int64? {
        guard let value = try int(name) else { return nil }
        guard value > 0 else { throw .badRequest("\(name) must be a positive integer") }
        return value
    }

    public func requireID(_ name: String) throws(APIError) -> Int64 {
        guard let value = try id(name) else { throw .badRequest("\(name) is required") }
        return value
    }

    static func integer(_ value: JSON) -> Int64? {
        switch value {
        case .int(let v): return v
        case .double(let d): return Int64(exactly: d)
        case .string(let s): return parseDecimal(s)
        case .array(let items) where items.count == 1: return integer(items[0])
        default: return nil
        }
    }

    /// A decimal integer with an optional leading '-', surrounding whitespace allowed.
    static func parseDecimal(_ text: String) -> Int64? {
        // Plain digits (the usual `page=2`) read by bytes; anything else, a value out of range
        // included, the general way (trimming Unicode whitespace costs more than the rest).
        plainDecimal(text) ?? generalDecimal(text)
    }

    /// `parseDecimal` for any text.
    static func generalDecimal(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty, trimmed.utf8.count <= 20 else { return nil }
        var utf8 = Substring(trimmed).utf8[...]
        var negative = false
        if utf8.first == UInt8(ascii: "-") { negative = true; utf8 = utf8.dropFirst() }
        guard !utf8.isEmpty else { return nil }
        var result: Int64 = 0
        for byte in utf8 {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (m, o1) = result.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(byte - 48))
            if o1 || o2 { return nil }
            result = a
        }
        return negative ? -result : result
    }

    /// `text` when it is only an optional `-` and at most 18 digits (nothing to trim, no
    /// overflow): what `parseDecimal` answers for it; nil for anything else.
    static func plainDecimal(_ text: String) -> Int64? {
        let utf8 = text.utf8
        var negative = false
        var digits = 0
        var result: Int64 = 0
        for byte in utf8 {
            if byte == UInt8(ascii: "-") && digits == 0 && !negative {
                negative = true
                continue
            }
            guard byte >= 48 && byte <= 57, digits < 18 else { return nil }
            result = result * 10 + Int64(byte - 48)
            digits += 1
        }
        guard digits > 0 else { return nil }
        return negative ? -result : result
    }

    // MARK: Text

    /// Text trimmed of surrounding whitespace; numbers are accepted as their decimal text.
    /// `maxLength` counts Unicode scalars (code points), not grapheme clusters: one letter
    /// followed by a million combining marks is one `Character` but megabytes of storage.
    public func string(_ name: String, maxLength: Int = Params.maxTextLength) throws(APIError) -> String? {
        guard let value = raw(name) else { return nil }
        let text: String
        switch value {
        case .string(let s): text = s.trimmingWhitespace
        case .int(let v): text = String(v)
        case .double(let d): text = String(d)
        case .bool(let b): text = b ? "1" : "0"
        case .array(let items) where items.count == 1:
            return try Params(JSONObject([(name, items[0])])).string(name, maxLength: maxLength)
        default: throw .badRequest(Params.repeated(name, value) ?? "\(name) must be a string")
        }
        guard text.unicodeScalars.count <= maxLength else {
            throw .badRequest("\(name) is longer than \(maxLength) characters")
        }
        return text
    }

    public func requireString(_ name: String, maxLength: Int = Params.maxTextLength) throws(APIError) -> String {
        guard let value = try string(name, maxLength: maxLength), !value.isEmpty else {
            throw .badRequest("\(name) is required")
        }
        return value
    }

    // MARK: Arrays

    /// An array of integers in any accepted form: a JSON array, a string holding a JSON array,
    /// a comma list, repeated keys (the gateway folds them into an array), or a single integer.
    public func intArray(_ name: String) throws(APIError) -> [Int64]? {
        guard let value = raw(name) else { return nil }
        let bad = APIError.badRequest("\(name) must be an array of integers, e.g. [1,2,3]")
        switch value {
        case .int, .double:
            guard let v = Params.integer(value) else { throw bad }
            return [v]
        case .array(let items):
            var result: [Int64] = []
            for item in items {
                if case .string(let s) = item, s.contains(",") || s.hasPrefix("[") {
                    guard let inner = try Params(JSONObject([(name, item)])).intArray(name) else { continue }
                    result.append(contentsOf: inner)
                    continue
                }
                guard let v = Params.integer(item) else { throw bad }
                result.append(v)
            }
            return result
        case .string(let s):
            let text = s.trimmingWhitespace
            if text.hasPrefix("[") {
                guard let parsed = try? JSONParser.parse(text), case .array = parsed else { throw bad }
                return try Params(JSONObject([(name, parsed)])).intArray(name)
            }
            var result: [Int64] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let piece = String(part).trimmingWhitespace
                if piece.isEmpty { continue }
                guard let v = Params.parseDecimal(piece) else { throw bad }
                result.append(v)
            }
            return result
        default:
            throw bad
        }
    }

    /// An array of positive ids, duplicates removed (first position kept).
    public func idArray(_ name: String) throws(APIError) -> [Int64]? {
        guard let values = try intArray(name) else { return nil }
        guard values.count <= Params.maxArrayCount else { throw .badRequest("\(name) holds more than \(Params.maxArrayCount) ids") }
        var seen = Set<Int64>()
        var result: [Int64] = []
        for v in values {
            guard v > 0 else { throw .badRequest("\(name) must hold positive integer ids") }
            if seen.insert(v).inserted { result.append(v) }
        }
        return result
    }

    // MARK: Money

    /// The largest amount accepted, in cents (10^13 yuan).
    public static let maxMoneyCents: Int64 = 1_000_000_000_000_000

    /// An amount of money as integer cents: a JSON number or a decimal string with at most two
    /// decimals (`112`, `112.5`, `"0.10"`), not negative, at most 10^13. Exponents, thousands
    /// separators, signs, NaN and Infinity are refused, naming the parameter.
    public func money(_ name: String) throws(APIError) -> Int64? {
        guard let raw = raw(name) else { return nil }
        let refused = APIError.badRequest("\(name) must be an amount like 112 or 112.50 (at most two decimals, not negative, at most 10^13)")
        switch raw {
        case .null:
            return nil
        case .int(let v):
            guard v >= 0, v <= Params.maxMoneyCents / 100 else { throw refused }
            return v * 100
        case .double(let v):
            // The shortest text that reads back as this double (`0.1`, `112.5`, `1000.0`) is what
            // the client wrote, up to an exponent: it must pass the same rule as a string. (A
            // tolerance on `v * 100` would let `10000000.001` through as 10000000.00.)
            guard v.isFinite, let cents = Params.cents(v.description) else { throw refused }
            return cents
        case .string(let text):
            let trimmed = text.trimmingWhitespace
            if trimmed.isEmpty { return nil }
            guard let cents = Params.cents(trimmed) else { throw refused }
            return cents
        case .array(let items) where items.count == 1:
            return try Params(JSONObject([(name, items[0])])).money(name)
        default:
            if let repeated = Params.repeated(name, raw) { throw .badRequest(repeated) }
            throw refused
        }
    }

    /// `digits[.d[d]]` → cents, nil for anything else or above the maximum.
    static func cents(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty, whole.count <= 14,
              whole.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let units = Int64(whole) else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let decimals = parts[1]
            guard (1...2).contains(decimals.count), decimals.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let d = Int64(decimals) else { return nil }
            fraction = decimals.count == 1 ? d * 10 : d
        }
        let total = units * 100 + fraction
        return total <= maxMoneyCents ? total : nil
    }

    /// Cents as the API answers money: exactly two decimals.
    public static func moneyText(_ cents: Int64) -> String {
        let fraction = cents % 100
        return "\(cents / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    // MARK: Times

    /// `YYYY-MM-DD HH:MM:SS`, or a date alone meaning 00:00:00; answered normalized.
    public func time(_ name: String) throws(APIError) -> String? {
        guard let text = try string(name) else { return nil }
        guard let normalized = Timestamp.normalize(text, dateOnlyAllowed: true) else {
            throw .badRequest("\(name) must be a time like 2020-12-11 00:00:02 (or a date like 2020-12-11)")
        }
        return normalized
    }

    public func requireTime(_ name: String) throws(APIError) -> String {
        guard let value = try time(name) else { throw .badRequest("\(name) is required") }
        return value
    }

    /// A date `YYYY-MM-DD` (a full time is accepted and cut to its date).
    public func date(_ name: String) throws(APIError) -> String? {
        guard let text = try string(name) else { return nil }
        guard let normalized = Timestamp.normalize(text, dateOnlyAllowed: true) else {
            throw .badRequest("\(name) must be a date like 2020-12-12")
        }
        return String(normalized.prefix(10))
    }

    /// `start_time` / `end_time` with their defaults: end = now, start = end minus `defaultSpan` seconds.
    public func timeWindow(defaultSpanSeconds: Int64 = 7 * 86_400) throws(APIError) -> (start: String, end: String) {
        let end = try time("end_time") ?? Timestamp.now()
        let start: String
        if let given = try time("start_time") {
            start = given
        } else {
            start = Timestamp.shiftRemembered(end, seconds: -defaultSpanSeconds) ?? end
        }
        guard start <= end else { throw .badRequest("start_time is after end_time") }
        return (start, end)
    }

    // MARK: Paging

    /// `page` ≥ 1 (default 1) and `count` 1…100 (default 20, larger clamped to 100).
    public func paging() throws(APIError) -> Paging {
        let page = try int("page") ?? 1
        guard page >= 1 else { throw .badRequest("page must be 1 or more") }
        var count = try int("count") ?? Params.defaultPageSize
        guard count >= 1 else { throw .badRequest("count must be 1 or more") }
        count = min(count, Params.maxPageSize)
        let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: count)
        guard !overflow, offset <= Int64(Int32.max) else { throw .badRequest("page is too large") }
        return Paging(page: page, count: count)
    }

    // MARK: Status filters

    /// A `status` filter: `all` (every row, deleted too), a named alias, or one of `allowed`.
    public func statusFilter(_ name: String = "status", allowed: [Int64], aliases: [String: [Int64]] = [:], default defaultValues: [Int64]?) throws(APIError) -> [Int64]? {
        guard let value = raw(name) else { return defaultValues }
        if case .string(let s) = value {
            let key = s.trimmingWhitespace.lowercased()
            if key == "all" { return nil }
            if let alias = aliases[key] { return alias }
        }
        guard let v = Params.integer(value), allowed.contains(v) else {
            if let repeated = Params.repeated(name, value) { throw .badRequest(repeated) }
            let names = ["all"] + aliases.keys.sorted() + allowed.map(String.init)
            throw .badRequest("\(name) must be one of \(names.joined(separator: ", "))")
        }
        return [v]
    }
}

/// A page request: 1-based page and page size.
public struct Paging: Sendable, Equatable {
    public var page: Int64
    public var count: Int64
    public init(page: Int64, count: Int64) {
        self.page = page
        self.count = count
    }
    public var offset: Int64 { (page - 1) * count }
    public func info(total: Int64) -> PageInfo { PageInfo(total: total, page: page, count: count) }

    /// This page of `ids` (all of them, in order) and how many there are.
    func page(of ids: [Int64]) -> (ids: [Int64], total: Int64) {
        (Array(ids.dropFirst(Int(offset)).prefix(Int(count))), Int64(ids.count))
    }
}

extension String {
    /// Without surrounding spaces, tabs and newlines (Unicode whitespace too).
    public var trimmingWhitespace: String {
        if hasNoSurroundingWhitespace { return self }
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        guard let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }

    /// Whether nothing is to be trimmed, told from the first and last scalars without walking
    /// Characters (the walk was most of a create's parameter checks): the first Character is
    /// not whitespace when its first scalar is not, and the last is not when the text ends in
    /// a printable ASCII character or a CJK ideograph, neither of which continues a Character
    /// begun by a whitespace scalar. False when unsure: then the walk decides.
    var hasNoSurroundingWhitespace: Bool {
        let scalars = unicodeScalars
        guard let first = scalars.first, let last = scalars.last, !first.properties.isWhitespace else { return false }
        return (0x21...0x7E).contains(last.value) || (0x4E00...0x9FFF).contains(last.value)
    }
}
