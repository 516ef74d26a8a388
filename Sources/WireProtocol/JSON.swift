/// A JSON value.
///
/// Numbers keep the distinction the wire format cares about: a literal with no
/// fraction and no exponent that fits `Int64` is `.int`; every other number is
/// `.double`. Objects keep their keys in insertion order (see `JSONObject`).
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number literal with no fraction and no exponent that fits `Int64`.
    case int(Int64)
    /// Every other number.
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)
}

// MARK: - Accessors

extension JSON {
    /// The string payload, or nil unless this is `.string`.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer payload: `.int`, or a `.double` holding an exact integral value
    /// that fits `Int64`. Nil otherwise.
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value): return exactInt64(value)
        default: return nil
        }
    }

    /// `value` as an `Int64` when it is integral and in range. Written with plain
    /// conversions because `Int64(exactly:)` can pull in libm's rounding functions,
    /// which executables that import neither Foundation nor Glibc do not link.
    private func exactInt64(_ value: Double) -> Int64? {
        // -2^63 is representable; 2^63 is the first value past Int64.max.
        guard value.isFinite, value >= -9_223_372_036_854_775_808.0, value < 9_223_372_036_854_775_808.0 else {
            return nil
        }
        let truncated = Int64(value)
        return Double(truncated) == value ? truncated : nil
    }

    /// The object payload, or nil unless this is `.object`.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The array payload, or nil unless this is `.array`.
    public var arrayValue: [JSON]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The boolean payload, or nil unless this is `.bool`.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member named `key`, or nil if this is not an object or has no such member.
    public subscript(key: String) -> JSON? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// Structural equality that ignores the key order of objects (meant for tests).
    /// Numbers compare by case: `.int(1)` is not equivalent to `.double(1)`.
    public func isEquivalent(to other: JSON) -> Bool {
        switch (self, other) {
        case (.array(let lhs), .array(let rhs)):
            guard lhs.count == rhs.count else { return false }
            for index in lhs.indices where !lhs[index].isEquivalent(to: rhs[index]) {
                return false
            }
            return true
        case (.object(let lhs), .object(let rhs)):
            return lhs.isEquivalent(to: rhs)
        default:
            return self == other
        }
    }
}

// MARK: - Literals

extension JSON: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSON: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSON: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSON: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSON: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
}

extension JSON: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSON: ExpressibleByDictionaryLiteral {
    /// `["a": 1]` builds an object; a repeated key keeps its first position and the last value.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(JSONObject(elements))
    }
}

// MARK: - JSONObject

/// A JSON object that keeps its keys in insertion order (responses must keep the
/// documented field order). Lookup is linear, which is the right trade-off for the
/// small objects this protocol carries.
///
/// `==` compares the ordered key/value pairs; use `isEquivalent(to:)` to ignore order.
/// Keys are compared with Swift `String` equality.
public struct JSONObject: Sendable, Equatable {
    /// One member. Internal so the parser can build storage directly.
    @usableFromInline
    internal struct Entry: Sendable, Equatable {
        @usableFromInline var key: String
        @usableFromInline var value: JSON

        @usableFromInline
        init(key: String, value: JSON) {
            self.key = key
            self.value = value
        }
    }

    @usableFromInline
    internal var entries: [Entry]

    /// An empty object.
    public init() { entries = [] }

    /// An object with `pairs` in order; a repeated key keeps its first position and the last value.
    public init(_ pairs: [(String, JSON)]) {
        entries = []
        entries.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// Wraps storage that is already free of duplicate keys (used by the parser).
    internal init(uniqueEntries: [Entry]) { entries = uniqueEntries }

    /// The value for `key`. Setting nil removes the member; setting an existing key
    /// replaces its value in place (the key keeps its position); a new key is appended.
    public subscript(key: String) -> JSON? {
        get {
            for entry in entries where entry.key == key { return entry.value }
            return nil
        }
        set {
            if let index = index(of: key) {
                if let newValue {
                    entries[index].value = newValue
                } else {
                    entries.remove(at: index)
                }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    /// Number of members.
    public var count: Int { entries.count }

    /// True when the object has no members.
    public var isEmpty: Bool { entries.isEmpty }

    /// The keys in order.
    public var keys: [String] { entries.map(\.key) }

    /// The values in key order.
    public var values: [JSON] { entries.map(\.value) }

    /// Appends a member without checking for an existing key (fast path for building
    /// rows whose keys are known to be distinct).
    @inlinable
    public mutating func append(_ key: String, _ value: JSON) {
        entries.append(Entry(key: key, value: value))
    }

    /// Reserves storage for `minimumCapacity` members.
    public mutating func reserveCapacity(_ minimumCapacity: Int) {
        entries.reserveCapacity(minimumCapacity)
    }

    /// Same members with the same values, in any order.
    public func isEquivalent(to other: JSONObject) -> Bool {
        guard count == other.count else { return false }
        for entry in entries {
            guard let otherValue = other[entry.key], entry.value.isEquivalent(to: otherValue) else {
                return false
            }
        }
        return true
    }

    private func index(of key: String) -> Int? {
        entries.firstIndex { $0.key == key }
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// A repeated key keeps its first position and the last value.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self.init(elements)
    }
}

extension JSONObject: Sequence {
    public typealias Element = (key: String, value: JSON)

    /// Iterates the members in order.
    public struct Iterator: IteratorProtocol {
        @usableFromInline var base: IndexingIterator<[Entry]>

        @inlinable
        public mutating func next() -> (key: String, value: JSON)? {
            guard let entry = base.next() else { return nil }
            return (entry.key, entry.value)
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(base: entries.makeIterator())
    }

    public var underestimatedCount: Int { entries.count }
}
