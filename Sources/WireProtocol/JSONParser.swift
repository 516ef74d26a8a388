/// Why a document was rejected, and where: `offset` is the byte offset into the input.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(reason) at byte offset \(offset)" }
}

/// A strict RFC 8259 parser working directly on UTF-8 bytes.
///
/// The input must be exactly one value with optional surrounding whitespace. Rejected:
/// trailing data, leading zeros, `+1`, `.5`, `1.`, `NaN`/`Infinity`, numbers outside the
/// `Double` range, unescaped control characters, invalid escapes, lone surrogates in
/// `\u` escapes, invalid UTF-8, and nesting deeper than `maxDepth` (containers nest
/// recursively, so keep `maxDepth` modest). Duplicate keys are accepted: the last value
/// wins and the key keeps its first position; keys are duplicates when their UTF-8
/// bytes are identical.
public enum JSONParser {
    /// The nesting limit every frame is parsed with.
    public static let defaultMaxDepth = 64

    /// Parses one JSON document from raw UTF-8 bytes.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONParseError) -> JSON {
        var parser = Parser(bytes: bytes.assumingMemoryBound(to: UInt8.self), maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses one JSON document from UTF-8 bytes.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONParseError) -> JSON {
        let result = bytes.withUnsafeBytes { raw in parseCatching(raw, maxDepth: maxDepth) }
        return try result.get()
    }

    /// Parses one JSON document from a string (its UTF-8 form).
    public static func parse(_ string: String, maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONParseError) -> JSON {
        var string = string
        let result = string.withUTF8 { utf8 in parseCatching(UnsafeRawBufferPointer(utf8), maxDepth: maxDepth) }
        return try result.get()
    }

    /// Parses a frame: one JSON object whose member `rawKey` (when present, at the top level) is
    /// validated exactly as `parse` would, but not built: its bytes' range in `bytes` is returned
    /// instead (the last one when the key repeats). The other members are parsed as usual.
    /// Accepts and rejects exactly the documents `parse` does; a document that is valid JSON but
    /// not an object throws `EnvelopeError.notAnObject`.
    public static func parseEnvelope(_ bytes: UnsafeRawBufferPointer, rawKey: StaticString,
                                     maxDepth: Int = JSONParser.defaultMaxDepth) throws(EnvelopeError) -> (members: JSONObject, raw: Range<Int>?) {
        var parser = Parser(bytes: bytes.assumingMemoryBound(to: UInt8.self), maxDepth: maxDepth)
        parser.skipWhitespace()
        guard parser.index < parser.end, parser.bytes[parser.index] == JSONASCII.openBrace else {
            // Not an object: the full parser says whether it is valid JSON at all.
            do { _ = try parse(bytes, maxDepth: maxDepth) } catch { throw .invalid(error) }
            throw .notAnObject
        }
        let result = rawKey.withUTF8Buffer { key -> Result<(members: JSONObject, raw: Range<Int>?), JSONParseError> in
            parser.rawKey = key
            defer { parser.rawKey = nil }
            do throws(JSONParseError) {
                guard case .object(let members) = try parser.parseDocument() else { return .failure(parser.error("not an object", at: 0)) }
                return .success((members, parser.rawRange))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let scanned): return scanned
        case .failure(let error): throw .invalid(error)
        }
    }

    /// Whether `bytes` hold exactly one JSON document `parse` accepts, without building it
    /// (nothing is allocated for valid input; the error names the first problem as `parse` does).
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONParseError) {
        var parser = Parser(bytes: bytes.assumingMemoryBound(to: UInt8.self), maxDepth: maxDepth)
        parser.skipWhitespace()
        guard parser.index < parser.end else {
            throw parser.error("unexpected end of input, expected a JSON value", at: parser.index)
        }
        if !parser.quickSkipValue(depth: 0) { try parser.skipValue(depth: 0) }
        parser.skipWhitespace()
        if parser.index < parser.end {
            throw parser.error("unexpected \(parser.describeByte(at: parser.index)) after the JSON value", at: parser.index)
        }
    }

    /// Why `parseEnvelope` refused a document.
    public enum EnvelopeError: Error, Sendable, Equatable {
        case invalid(JSONParseError)
        case notAnObject
    }

    private static func parseCatching(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) -> Result<JSON, JSONParseError> {
        do throws(JSONParseError) {
            return .success(try parse(bytes, maxDepth: maxDepth))
        } catch {
            return .failure(error)
        }
    }
}

/// A frame's top-level object read member by member (`Message.decode`): keys are matched as
/// bytes against the names the caller knows, only the values it wants are built, and every other
/// value is validated without building. Accepts and rejects exactly what `parse` does, with the
/// same errors.
struct EnvelopeReader {
    private var parser: Parser
    /// A member was read (what `parseObject`'s "trailing comma" test looks at).
    private var sawMember = false
    private var finished = false

    init(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = JSONParser.defaultMaxDepth) {
        parser = Parser(bytes: bytes, maxDepth: maxDepth)
    }

    /// Steps into the top-level object; false when the document does not start with one.
    mutating func open() throws(JSONParseError) -> Bool {
        parser.skipWhitespace()
        guard parser.index < parser.end, parser.bytes[parser.index] == JSONASCII.openBrace else { return false }
        if 1 > parser.maxDepth { throw parser.error("maximum nesting depth \(parser.maxDepth) exceeded", at: parser.index) }
        parser.index += 1
        parser.skipWhitespace()
        if parser.index < parser.end && parser.bytes[parser.index] == JSONASCII.closeBrace {
            parser.index += 1
            try close()
        }
        return true
    }

    /// A key of at most 8 bytes packed into an integer (little-endian, zero-padded); nil for a
    /// longer key. What `nextKey` compares: one integer comparison per known name.
    static func packed(_ key: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard key.count <= 8 else { return nil }
        var value: UInt64 = 0
        for (i, byte) in key.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        return value
    }

    /// `names` packed for `nextKey` (each at most 8 bytes).
    static func packed(_ names: [StaticString]) -> [UInt64] {
        names.map { name in name.withUTF8Buffer { packed($0) ?? UInt64.max } }
    }

    /// The next member's key as its position in `names` (made by `packed(_:)`; -1: another
    /// key), nil after the last member. The caller then takes its value with `value()` or `skip()`.
    mutating func nextKey(_ names: [UInt64]) throws(JSONParseError) -> Int? {
        if finished { return nil }
        guard parser.index < parser.end, parser.bytes[parser.index] == JSONASCII.quote else {
            if parser.index < parser.end && parser.bytes[parser.index] == JSONASCII.closeBrace && sawMember {
                throw parser.error("trailing comma in object", at: parser.index)
            }
            throw parser.unexpected("expected a string key in object", at: parser.index)
        }
        let keyStart = parser.index + 1
        // Every envelope name is at most 8 plain ASCII bytes: packed in the pass that finds its
        // end. Anything else (longer, escaped, not ASCII, invalid) goes the general way.
        var quick: UInt64 = 0
        var position = keyStart
        while position < parser.end && position - keyStart <= 8 {
            let byte = parser.bytes[position]
            if byte == JSONASCII.quote || byte == JSONASCII.backslash || byte < 0x20 || byte >= 0x80 { break }
            quick |= UInt64(byte) << (8 * UInt64(position - keyStart))
            position += 1
        }
        if position < parser.end && position - keyStart <= 8 && parser.bytes[position] == JSONASCII.quote {
            parser.index = position + 1
            return try afterKey(position == keyStart ? nil : quick, names)
        }
        try parser.skipString()
        let raw = UnsafeBufferPointer(rebasing: parser.bytes[keyStart..<(parser.index - 1)])
        var key = EnvelopeReader.packed(raw)
        if raw.contains(JSONASCII.backslash) {
            // Escaped: compare the decoded text (the string was validated just now).
            let keyEnd = parser.index
            parser.index = keyStart - 1
            var decoded = try parser.parseString()
            parser.index = keyEnd
            // A NUL (`\u0000`) would pack like the zero padding: no known name has one.
            key = decoded.withUTF8 { $0.contains(0) ? nil : EnvelopeReader.packed($0) }
        }
        return try afterKey(key, names)
    }

    /// Past the key (`packed`, nil: none of `names`): the colon, and the key's position in `names`.
    private mutating func afterKey(_ packed: UInt64?, _ names: [UInt64]) throws(JSONParseError) -> Int {
        parser.skipWhitespace()
        guard parser.index < parser.end, parser.bytes[parser.index] == JSONASCII.colon else {
            throw parser.unexpected("expected ':' after object key", at: parser.index)
        }
        parser.index += 1
        parser.skipWhitespace()
        guard let packed, packed != 0 else { return -1 }
        return names.firstIndex(of: packed) ?? -1
    }

    /// The current member's value, built.
    mutating func value() throws(JSONParseError) -> JSON {
        if parser.index < parser.end && parser.bytes[parser.index] == JSONASCII.openBrace, let caller = try quickCaller() { return caller }
        let value = try parser.parseValue(depth: 1)
        sawMember = true
        try afterValue()
        return value
    }

    /// The current member's value when it is exactly `{"id":N,"role":N}` (integers of at most
    /// 18 digits, no whitespace: how request frames carry `caller`), built without the general
    /// object parser (its entry and key-fingerprint arrays cost more than the rest of the
    /// envelope's values); nil, with nothing read, for anything else. The value the general
    /// parser builds.
    @inline(never)
    private mutating func quickCaller() throws(JSONParseError) -> JSON? {
        guard let (id, role) = callerPair() else { return nil }
        sawMember = true
        try afterValue()
        return .object(JSONObject(uniqueEntries: [JSONObject.Entry(key: "id", value: .int(id)), JSONObject.Entry(key: "role", value: .int(role))]))
    }

    // MARK: Frames laid out as this code writes them

    // `Message.decode` first tries to read a request or response frame member by member in the
    // order and spelling its writer uses, with no whitespace, through these; each reads nothing
    // and answers nil/false at the first byte that differs, and the general path then reads
    // (or rejects) the frame. What they build is what the general path builds from the same bytes.

    /// Past `text`, when the bytes at the current position are exactly it.
    mutating func literal(_ text: StaticString) -> Bool {
        var position = parser.index
        guard match(text, at: &position) else { return false }
        parser.index = position
        return true
    }

    /// A non-negative integer of at most 18 digits at the current position, past it; nil for
    /// anything else (a sign, a leading zero, more digits: the next `literal` sees a fraction
    /// or an exponent and fails).
    mutating func unsignedInteger() -> Int64? {
        guard parser.index < parser.end, parser.bytes[parser.index] != JSONASCII.minus else { return nil }
        var position = parser.index
        guard let value = integer(at: &position) else { return nil }
        parser.index = position
        return value
    }

    /// A string at the current position, decoded and validated as the general parser does; nil
    /// when none starts here.
    mutating func string() throws(JSONParseError) -> String? {
        guard parser.index < parser.end, parser.bytes[parser.index] == JSONASCII.quote else { return nil }
        return try parser.parseString()
    }

    /// The value at the current position, built as a member of the frame object (`value()`).
    mutating func builtValue() throws(JSONParseError) -> JSON {
        try parser.parseValue(depth: 1)
    }

    /// `{"id":N,"role":N}` at the current position (how request frames carry `caller`), past
    /// it; nil, with nothing read, for anything else.
    mutating func callerPair() -> (id: Int64, role: Int64)? {
        guard parser.maxDepth >= 2 else { return nil }
        var position = parser.index
        guard match(#"{"id":"#, at: &position), let id = integer(at: &position),
              match(#","role":"#, at: &position), let role = integer(at: &position),
              match("}", at: &position) else { return nil }
        parser.index = position
        return (id, role)
    }

    /// Past any whitespace (as after a member's colon).
    mutating func skipWhitespace() {
        parser.skipWhitespace()
    }

    /// Whether the current position is the end of the input.
    var atEnd: Bool { parser.index == parser.end }

    /// Whether the object was closed (by `skip`, `value` or `takeRest`) with nothing after it.
    var isFinished: Bool { finished }

    /// True, past them, when the bytes at `position` are `text` (compared eight bytes at a
    /// time: a request frame's ten member names are most of what its quick path reads).
    private func match(_ text: StaticString, at position: inout Int) -> Bool {
        let count = text.utf8CodeUnitCount
        guard parser.end - position >= count else { return false }
        guard text.hasPointerRepresentation, let base = parser.bytes.baseAddress else {
            let found = text.withUTF8Buffer { expected in
                for i in 0..<count where parser.bytes[position + i] != expected[i] { return false }
                return true
            }
            if found { position += count }
            return found
        }
        let found = UnsafeRawPointer(base + position), expected = UnsafeRawPointer(text.utf8Start)
        if count >= 8 {
            var i = 0
            while i + 8 < count {
                guard found.loadUnaligned(fromByteOffset: i, as: UInt64.self) == expected.loadUnaligned(fromByteOffset: i, as: UInt64.self) else { return false }
                i += 8
            }
            guard found.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == expected.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) else { return false }
        } else {
            for i in 0..<count where found.load(fromByteOffset: i, as: UInt8.self) != expected.load(fromByteOffset: i, as: UInt8.self) { return false }
        }
        position += count
        return true
    }

    /// A JSON integer of at most 18 digits at `position` (`-`, then `0` or digits without a
    /// leading zero), past it; nil for anything else. What follows is the caller's to check.
    private func integer(at position: inout Int) -> Int64? {
        var at = position
        let negative = at < parser.end && parser.bytes[at] == JSONASCII.minus
        if negative { at += 1 }
        var value: Int64 = 0
        let first = at
        while at < parser.end, at - first < 18, parser.bytes[at] >= JSONASCII.zero, parser.bytes[at] <= JSONASCII.zero + 9 {
            value = value * 10 + Int64(parser.bytes[at] - JSONASCII.zero)
            at += 1
        }
        guard at > first, parser.bytes[first] != JSONASCII.zero || at == first + 1 else { return nil }
        position = at
        return negative ? -value : value
    }

    /// The current member's value taken as the rest of the object, up to the frame's closing
    /// brace, without reading it: for a member its writer puts last (a response's `body`).
    /// Nil, with nothing read, when no value is left or an object or array value does not end
    /// with its closer (a truncated body): the caller then validates it (`skip`), which names
    /// the problem.
    mutating func takeRest() -> Range<Int>? {
        let start = parser.index
        var end = parser.end
        while end > start, JSONASCII.isWhitespace(parser.bytes[end - 1]) { end -= 1 }
        guard end > start + 1, parser.bytes[end - 1] == JSONASCII.closeBrace else { return nil }
        end -= 1
        while end > start, JSONASCII.isWhitespace(parser.bytes[end - 1]) { end -= 1 }
        guard end > start else { return nil }
        switch parser.bytes[start] {
        case JSONASCII.openBrace: guard parser.bytes[end - 1] == JSONASCII.closeBrace, end - start >= 2 else { return nil }
        case JSONASCII.openBracket: guard parser.bytes[end - 1] == JSONASCII.closeBracket, end - start >= 2 else { return nil }
        default: break
        }
        parser.index = parser.end
        sawMember = true
        finished = true
        return start..<end
    }

    /// Validates the current member's value without building it; returns where it is.
    @discardableResult
    mutating func skip() throws(JSONParseError) -> Range<Int> {
        let start = parser.index
        if !parser.quickSkipValue(depth: 1) { try parser.skipValue(depth: 1) }
        let range = start..<parser.index
        sawMember = true
        try afterValue()
        return range
    }

    private mutating func afterValue() throws(JSONParseError) {
        parser.skipWhitespace()
        guard parser.index < parser.end else { throw parser.unexpected("expected ',' or '}' in object", at: parser.index) }
        let byte = parser.bytes[parser.index]
        parser.index += 1
        if byte == JSONASCII.closeBrace { try close(); return }
        guard byte == JSONASCII.comma else { throw parser.unexpected("expected ',' or '}' in object", at: parser.index - 1) }
        parser.skipWhitespace()
    }

    /// After the object's closing brace: only whitespace may follow.
    private mutating func close() throws(JSONParseError) {
        finished = true
        parser.skipWhitespace()
        if parser.index < parser.end {
            throw parser.error("unexpected \(parser.describeByte(at: parser.index)) after the JSON value", at: parser.index)
        }
    }
}

// MARK: - Implementation

/// Byte constants used by the parser and the serializer.
enum JSONASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")

    /// JSON's whitespace (RFC 8259 `ws`): space, tab, line feed, carriage return.
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == newline || byte == carriageReturn || byte == tab
    }
}

/// Exactly representable powers of ten for the fast `Double` path.
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// Objects with more members than this use a hash index to find duplicate keys.
private let linearKeySearchLimit = 32

/// Key wrapper hashing and comparing raw UTF-8 bytes (duplicate detection in large objects).
private struct ByteKey: Hashable {
    var string: String

    static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var string = string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    let end: Int
    let maxDepth: Int
    var index = 0
    /// Reused buffer for strings containing escapes.
    var scratch: [UInt8] = []
    /// Whether the last string parsed was decoded into `scratch`.
    var lastStringHadEscapes = false
    /// Fingerprints of the keys of every object currently being parsed (a stack).
    var keyHashes: [UInt64] = []
    /// Size of the last completed object/array: sibling rows usually share a shape,
    /// so reserving this much avoids repeated regrowth.
    var lastObjectCount = 0
    var lastArrayCount = 0
    /// `parseEnvelope`: the top-level member that is validated, not built, and where it was.
    var rawKey: UnsafeBufferPointer<UInt8>?
    var rawRange: Range<Int>?

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.end = bytes.count
        self.maxDepth = maxDepth
    }

    // MARK: Errors

    func error(_ reason: String, at offset: Int) -> JSONParseError {
        JSONParseError(offset: offset, reason: reason)
    }

    /// Describes the byte at `offset` for an error message.
    func describeByte(at offset: Int) -> String {
        guard offset < end else { return "end of input" }
        let byte = bytes[offset]
        if byte > 0x20 && byte < 0x7F {
            return "character '\(Character(Unicode.Scalar(byte)))'"
        }
        return "byte \(hex(byte))"
    }

    func unexpected(_ expectation: String, at offset: Int) -> JSONParseError {
        if offset >= end {
            return error("unexpected end of input, \(expectation)", at: offset)
        }
        return error("unexpected \(describeByte(at: offset)), \(expectation)", at: offset)
    }

    // MARK: Structure

    mutating func parseDocument() throws(JSONParseError) -> JSON {
        skipWhitespace()
        guard index < end else {
            throw error("unexpected end of input, expected a JSON value", at: index)
        }
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if index < end {
            throw error("unexpected \(describeByte(at: index)) after the JSON value", at: index)
        }
        return value
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < end {
            let byte = bytes[index]
            guard JSONASCII.isWhitespace(byte) else {
                return
            }
            index += 1
        }
    }

    /// Parses a value starting at `index` (whitespace already skipped). `depth` is the
    /// number of containers enclosing the value.
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSON {
        guard index < end else { throw unexpected("expected a JSON value", at: index) }
        switch bytes[index] {
        case JSONASCII.quote:
            return .string(try parseString())
        case JSONASCII.openBrace:
            return try parseObject(depth: depth + 1)
        case JSONASCII.openBracket:
            return try parseArray(depth: depth + 1)
        case JSONASCII.minus, JSONASCII.zero...JSONASCII.nine:
            return try parseNumber()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case JSONASCII.plus:
            throw error("invalid number: a leading '+' is not allowed", at: index)
        case JSONASCII.dot:
            throw error("invalid number: a digit is required before '.'", at: index)
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw error("invalid literal: NaN and Infinity are not valid JSON", at: index)
        default:
            throw unexpected("expected a JSON value", at: index)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = index
        let count = literal.utf8CodeUnitCount
        guard end - start >= count else {
            throw error("invalid literal, expected '\(literal)'", at: start)
        }
        let matches = literal.withUTF8Buffer { expected in
            for offset in 0..<count where bytes[start + offset] != expected[offset] {
                return false
            }
            return true
        }
        guard matches else { throw error("invalid literal, expected '\(literal)'", at: start) }
        index += count
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSON {
        if depth > maxDepth {
            throw error("maximum nesting depth \(maxDepth) exceeded", at: index)
        }
        index += 1  // [
        skipWhitespace()
        var elements: [JSON] = []
        if index < end && bytes[index] == JSONASCII.closeBracket {
            index += 1
            lastArrayCount = 0
            return .array(elements)
        }
        elements.reserveCapacity(min(lastArrayCount, 256))
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < end else { throw unexpected("expected ',' or ']' in array", at: index) }
            let byte = bytes[index]
            index += 1
            if byte == JSONASCII.closeBracket { break }
            guard byte == JSONASCII.comma else { throw unexpected("expected ',' or ']' in array", at: index - 1) }
            skipWhitespace()
            if index < end && bytes[index] == JSONASCII.closeBracket {
                throw error("trailing comma in array", at: index)
            }
        }
        lastArrayCount = elements.count
        return .array(elements)
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSON {
        if depth > maxDepth {
            throw error("maximum nesting depth \(maxDepth) exceeded", at: index)
        }
        index += 1  // {
        skipWhitespace()
        if index < end && bytes[index] == JSONASCII.closeBrace {
            index += 1
            lastObjectCount = 0
            return .object(JSONObject())
        }
        var entries: [JSONObject.Entry] = []
        entries.reserveCapacity(min(lastObjectCount, 64))
        let hashBase = keyHashes.count
        defer { keyHashes.removeSubrange(hashBase...) }
        var largeIndex: [ByteKey: Int] = [:]

        while true {
            guard index < end, bytes[index] == JSONASCII.quote else {
                if index < end && bytes[index] == JSONASCII.closeBrace && !entries.isEmpty {
                    throw error("trailing comma in object", at: index)
                }
                throw unexpected("expected a string key in object", at: index)
            }
            let keyStart = index + 1
            let key = try parseString()
            let hash = entries.count < linearKeySearchLimit ? lastStringFingerprint(rawStart: keyStart) : 0
            skipWhitespace()
            guard index < end, bytes[index] == JSONASCII.colon else {
                throw unexpected("expected ':' after object key", at: index)
            }
            index += 1
            skipWhitespace()
            if depth == 1, let rawKey, key.utf8.elementsEqual(rawKey) {
                let start = index
                try skipValue(depth: depth)
                rawRange = start..<index
                skipWhitespace()
                guard index < end else { throw unexpected("expected ',' or '}' in object", at: index) }
                let byte = bytes[index]
                index += 1
                if byte == JSONASCII.closeBrace { break }
                guard byte == JSONASCII.comma else { throw unexpected("expected ',' or '}' in object", at: index - 1) }
                skipWhitespace()
                continue
            }
            let value = try parseValue(depth: depth)

            // Duplicate keys: last value wins, first position kept.
            if entries.count < linearKeySearchLimit {
                var duplicate: Int? = nil
                for slot in hashBase..<keyHashes.count where keyHashes[slot] == hash {
                    let candidate = slot - hashBase
                    if entries[candidate].key.utf8.elementsEqual(key.utf8) {
                        duplicate = candidate
                        break
                    }
                }
                if let duplicate {
                    entries[duplicate].value = value
                } else {
                    keyHashes.append(hash)
                    entries.append(JSONObject.Entry(key: key, value: value))
                }
            } else {
                if largeIndex.isEmpty {
                    for (position, entry) in entries.enumerated() {
                        largeIndex[ByteKey(string: entry.key)] = position
                    }
                }
                if let existing = largeIndex[ByteKey(string: key)] {
                    entries[existing].value = value
                } else {
                    largeIndex[ByteKey(string: key)] = entries.count
                    entries.append(JSONObject.Entry(key: key, value: value))
                }
            }

            skipWhitespace()
            guard index < end else { throw unexpected("expected ',' or '}' in object", at: index) }
            let byte = bytes[index]
            index += 1
            if byte == JSONASCII.closeBrace { break }
            guard byte == JSONASCII.comma else { throw unexpected("expected ',' or '}' in object", at: index - 1) }
            skipWhitespace()
        }
        lastObjectCount = entries.count
        return .object(JSONObject(uniqueEntries: entries))
    }

    /// A cheap hash of the UTF-8 bytes of the string `parseString()` just returned
    /// (still in the input, or in `scratch` when it had escapes): a pre-filter before
    /// comparing keys. FNV-1a style, eight bytes at a time.
    func lastStringFingerprint(rawStart: Int) -> UInt64 {
        if lastStringHadEscapes {
            return scratch.withUnsafeBufferPointer { fingerprint(UnsafeRawBufferPointer($0)) }
        }
        return fingerprint(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[rawStart..<(index - 1)]))
    }

    func fingerprint(_ raw: UnsafeRawBufferPointer) -> UInt64 {
        let prime: UInt64 = 0x100_0000_01b3
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(raw.count)
        var offset = 0
        while offset + 8 <= raw.count {
            hash = (hash ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* prime
            hash ^= hash >> 29
            offset += 8
        }
        while offset < raw.count {
            hash = (hash ^ UInt64(raw[offset])) &* prime
            offset += 1
        }
        return hash
    }

    // MARK: Validation without building (`skipValue`)

    /// Checks the value at `index` exactly as `parseValue(depth:)` would, and moves past it
    /// without building anything.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        guard index < end else { throw unexpected("expected a JSON value", at: index) }
        switch bytes[index] {
        case JSONASCII.quote:
            try skipString()
        case JSONASCII.openBrace:
            try skipObject(depth: depth + 1)
        case JSONASCII.openBracket:
            try skipArray(depth: depth + 1)
        case JSONASCII.minus, JSONASCII.zero...JSONASCII.nine:
            try skipNumber()
        default:
            // Literals (and errors) build nothing on the heap: they share `parseValue`.
            _ = try parseValue(depth: depth)
        }
    }

    mutating func skipArray(depth: Int) throws(JSONParseError) {
        if depth > maxDepth {
            throw error("maximum nesting depth \(maxDepth) exceeded", at: index)
        }
        index += 1  // [
        skipWhitespace()
        if index < end && bytes[index] == JSONASCII.closeBracket {
            index += 1
            return
        }
        while true {
            try skipValue(depth: depth)
            skipWhitespace()
            guard index < end else { throw unexpected("expected ',' or ']' in array", at: index) }
            let byte = bytes[index]
            index += 1
            if byte == JSONASCII.closeBracket { return }
            guard byte == JSONASCII.comma else { throw unexpected("expected ',' or ']' in array", at: index - 1) }
            skipWhitespace()
            if index < end && bytes[index] == JSONASCII.closeBracket {
                throw error("trailing comma in array", at: index)
            }
        }
    }

    mutating func skipObject(depth: Int) throws(JSONParseError) {
        if depth > maxDepth {
            throw error("maximum nesting depth \(maxDepth) exceeded", at: index)
        }
        index += 1  // {
        skipWhitespace()
        if index < end && bytes[index] == JSONASCII.closeBrace {
            index += 1
            return
        }
        var members = 0
        while true {
            guard index < end, bytes[index] == JSONASCII.quote else {
                if index < end && bytes[index] == JSONASCII.closeBrace && members > 0 {
                    throw error("trailing comma in object", at: index)
                }
                throw unexpected("expected a string key in object", at: index)
            }
            try skipString()
            skipWhitespace()
            guard index < end, bytes[index] == JSONASCII.colon else {
                throw unexpected("expected ':' after object key", at: index)
            }
            index += 1
            skipWhitespace()
            try skipValue(depth: depth)
            members += 1
            skipWhitespace()
            guard index < end else { throw unexpected("expected ',' or '}' in object", at: index) }
            let byte = bytes[index]
            index += 1
            if byte == JSONASCII.closeBrace { return }
            guard byte == JSONASCII.comma else { throw unexpected("expected ',' or '}' in object", at: index - 1) }
            skipWhitespace()
        }
    }

    /// Checks the string whose opening quote is at `index` as `parseString` does. Eight ASCII
    /// bytes at a time where it can; the common three-byte UTF-8 form (CJK text) checked in
    /// place without a call.
    /// From `position`, eight bytes at a time, the first byte a string scan must look at (quote,
    /// backslash, control, non-ASCII); with fewer than eight bytes left, `position` itself (the
    /// caller goes on byte by byte). `end` when the input holds no such byte.
    @inline(__always)
    func firstStop(from position: Int, _ raw: UnsafeRawBufferPointer) -> Int {
        var position = position
        while position + 8 <= end {
            let mask = JSONSWAR.stringStopMask(raw.loadUnaligned(fromByteOffset: position, as: UInt64.self).littleEndian)
            if mask != 0 { return position + mask.trailingZeroBitCount >> 3 }
            position += 8
        }
        return position
    }

    mutating func skipString() throws(JSONParseError) {
        let start = index + 1
        var position = start
        let raw = UnsafeRawBufferPointer(bytes)
        while position < end {
            position = firstStop(from: position, raw)
            guard position < end else { break }
            let byte = bytes[position]
            if byte >= 0x80 {
                if (0xE1...0xEC).contains(byte) || byte >= 0xEE && byte <= 0xEF, position + 2 < end,
                   bytes[position + 1] & 0xC0 == 0x80, bytes[position + 2] & 0xC0 == 0x80 {
                    // These lead bytes allow any continuation bytes (Unicode Table 3-7).
                    position += 3
                } else {
                    position = try validateUTF8Sequence(at: position)
                }
                continue
            }
            if byte == JSONASCII.quote {
                index = position + 1
                return
            }
            if byte == JSONASCII.backslash {
                position = try decodeEscape(at: position, store: false)
                continue
            }
            if byte < 0x20 {
                throw error("unescaped control character \(hex(byte)) in string", at: position)
            }
            position += 1
        }
        throw error("unterminated string", at: index)
    }

    /// Checks the number at `index` without converting it when it is a plain integer of at
    /// most 18 digits (always in range); anything else goes through `parseNumber`, whose range
    /// check and errors are the reference.
    mutating func skipNumber() throws(JSONParseError) {
        var position = index
        if bytes[position] == JSONASCII.minus { position += 1 }
        let digitsStart = position
        while position < end && isDigit(bytes[position]) { position += 1 }
        let digits = position - digitsStart
        let plain = digits >= 1 && digits <= 18 && (digits == 1 || bytes[digitsStart] != JSONASCII.zero)
            && (position == end || !(bytes[position] == JSONASCII.dot || bytes[position] == JSONASCII.lowerE || bytes[position] == JSONASCII.upperE))
        if plain {
            index = position
        } else {
            _ = try parseNumber()
        }
    }

    // MARK: Quick validation (`quickSkipValue`)

    /// Moves past the value at `index` when it is one of the forms a service's answer is made
    /// of and certainly valid (what `skipValue` accepts), without a call or a `throw` per value:
    /// one loop over the bytes with the open containers as bits of an integer. Returns false,
    /// with `index` unchanged, when it is not sure (an error, an exponent, a `\u` surrogate,
    /// nesting past 63 levels or past `maxDepth`): the caller then runs `skipValue`, which
    /// decides and names the error. So it accepts nothing `skipValue` refuses.
    mutating func quickSkipValue(depth: Int) -> Bool {
        let raw = UnsafeRawBufferPointer(bytes)
        let end = self.end
        var p = index
        /// One bit per open container, innermost lowest: 1 an object, 0 an array.
        var objects: UInt64 = 0
        var level = 0
        @inline(__always) func skipSpace(_ p: inout Int) {
            while p < end, bytes[p] <= JSONASCII.space, JSONASCII.isWhitespace(bytes[p]) {
                p += 1
            }
        }
        /// `"key":` at `p` (whitespace before it skipped), leaving `p` at the value.
        @inline(__always) func key(_ p: inout Int) -> Bool {
            guard p < end, bytes[p] == JSONASCII.quote, let after = quickString(p + 1, raw) else { return false }
            p = after
            skipSpace(&p)
            guard p < end, bytes[p] == JSONASCII.colon else { return false }
            p += 1
            skipSpace(&p)
            return true
        }
        values: while true {
            guard p < end else { return false }
            let byte = bytes[p]
            switch byte {
            case JSONASCII.quote:
                guard let after = quickString(p + 1, raw) else { return false }
                p = after
            case JSONASCII.openBrace, JSONASCII.openBracket:
                guard level < 63, depth + level + 1 <= maxDepth else { return false }
                let isObject = byte == JSONASCII.openBrace
                p += 1
                skipSpace(&p)
                guard p < end else { return false }
                if bytes[p] == (isObject ? JSONASCII.closeBrace : JSONASCII.closeBracket) {
                    p += 1   // empty: a complete value
                } else {
                    objects = objects << 1 | (isObject ? 1 : 0)
                    level += 1
                    if isObject { guard key(&p) else { return false } }
                    continue values
                }
            case JSONASCII.minus, JSONASCII.zero...JSONASCII.nine:
                // -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 300 integer digits (always a finite
                // Double); an exponent goes to `skipNumber`.
                var q = p
                if bytes[q] == JSONASCII.minus { q += 1 }
                let digits = q
                while q < end && isDigit(bytes[q]) { q += 1 }
                let count = q - digits
                guard count >= 1, count <= 300, count == 1 || bytes[digits] != JSONASCII.zero else { return false }
                if q < end && bytes[q] == JSONASCII.dot {
                    q += 1
                    let fraction = q
                    while q < end && isDigit(bytes[q]) { q += 1 }
                    guard q > fraction else { return false }
                }
                if q < end && (bytes[q] | 0x20) == JSONASCII.lowerE { return false }
                p = q
            case UInt8(ascii: "n"), UInt8(ascii: "t"):
                guard p + 4 <= end else { return false }
                let word = raw.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian
                guard word == (byte == UInt8(ascii: "n") ? 0x6C6C_756E : 0x6575_7274) else { return false }   // "null", "true"
                p += 4
            case UInt8(ascii: "f"):
                guard p + 5 <= end, raw.loadUnaligned(fromByteOffset: p + 1, as: UInt32.self).littleEndian == 0x6573_6C61 else { return false }   // "alse"
                p += 5
            default:
                return false
            }
            // After a value: close containers, or go on to the next member or element.
            while true {
                if level == 0 {
                    index = p
                    return true
                }
                skipSpace(&p)
                guard p < end else { return false }
                let next = bytes[p]
                p += 1
                let inObject = objects & 1 == 1
                if next == JSONASCII.comma {
                    skipSpace(&p)
                    if inObject { guard key(&p) else { return false } }
                    continue values
                }
                guard next == (inObject ? JSONASCII.closeBrace : JSONASCII.closeBracket) else { return false }
                objects >>= 1
                level -= 1
            }
        }
    }

    /// The position after the closing quote of the string whose contents start at `position`,
    /// when it is certainly valid (nil: not sure, see `quickSkipValue`).
    @inline(__always)
    func quickString(_ position: Int, _ raw: UnsafeRawBufferPointer) -> Int? {
        var position = position
        while true {
            position = firstStop(from: position, raw)
            guard position < end else { return nil }
            let byte = bytes[position]
            if byte == JSONASCII.quote { return position + 1 }
            if byte >= 0x80 {
                if (0xE1...0xEC).contains(byte) || byte >= 0xEE && byte <= 0xEF, position + 2 < end,
                   bytes[position + 1] & 0xC0 == 0x80, bytes[position + 2] & 0xC0 == 0x80 {
                    position += 3
                    continue
                }
                guard case .valid(let length) = UTF8Sequence.check(bytes, at: position) else { return nil }
                position += length
                continue
            }
            if byte == JSONASCII.backslash {
                guard position + 1 < end else { return nil }
                switch bytes[position + 1] {
                case JSONASCII.quote, JSONASCII.backslash, JSONASCII.slash,
                     UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                case UInt8(ascii: "u"):
                    guard position + 6 <= end else { return nil }
                    var value: UInt32 = 0
                    for offset in 2..<6 {
                        let digit = bytes[position + offset]
                        switch digit {
                        case JSONASCII.zero...JSONASCII.nine: value = value << 4 | UInt32(digit - JSONASCII.zero)
                        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt32(digit - UInt8(ascii: "a") + 10)
                        case UInt8(ascii: "A")...UInt8(ascii: "F"): value = value << 4 | UInt32(digit - UInt8(ascii: "A") + 10)
                        default: return nil
                        }
                    }
                    guard !(0xD800...0xDFFF).contains(value) else { return nil }
                    position += 6
                default:
                    return nil
                }
                continue
            }
            if byte < 0x20 { return nil }
            position += 1   // fewer than eight bytes left: byte by byte
        }
    }

    // MARK: Strings

    /// Parses a string whose opening quote is at `index`.
    mutating func parseString() throws(JSONParseError) -> String {
        let start = index + 1
        var position = start
        let raw = UnsafeRawBufferPointer(bytes)
        while position < end {
            position = firstStop(from: position, raw)
            guard position < end else { break }
            let byte = bytes[position]
            if byte == JSONASCII.quote {
                index = position + 1
                lastStringHadEscapes = false
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            }
            if byte == JSONASCII.backslash {
                return try parseEscapedString(start: start, firstEscape: position)
            }
            if byte < 0x20 {
                throw error("unescaped control character \(hex(byte)) in string", at: position)
            }
            position = byte < 0x80 ? position + 1 : try validateUTF8Sequence(at: position)
        }
        throw error("unterminated string", at: index)
    }

    /// Slow path for strings with escapes: decodes into `scratch`.
    mutating func parseEscapedString(start: Int, firstEscape: Int) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<firstEscape]))
        var position = firstEscape
        var runStart = firstEscape
        while position < end {
            let byte = bytes[position]
            if byte == JSONASCII.quote {
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                index = position + 1
                lastStringHadEscapes = true
                return String(decoding: scratch, as: UTF8.self)
            }
            if byte == JSONASCII.backslash {
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                position = try decodeEscape(at: position)
                runStart = position
                continue
            }
            if byte < 0x20 {
                throw error("unescaped control character \(hex(byte)) in string", at: position)
            }
            position = byte < 0x80 ? position + 1 : try validateUTF8Sequence(at: position)
        }
        throw error("unterminated string", at: start - 1)
    }

    /// Decodes the escape whose backslash is at `position` into `scratch` (only checks it
    /// when `store` is false); returns the position after it.
    mutating func decodeEscape(at position: Int, store: Bool = true) throws(JSONParseError) -> Int {
        guard position + 1 < end else { throw error("unterminated string", at: position) }
        let replacement: UInt8
        switch bytes[position + 1] {
        case JSONASCII.quote: replacement = JSONASCII.quote
        case JSONASCII.backslash: replacement = JSONASCII.backslash
        case JSONASCII.slash: replacement = JSONASCII.slash
        case UInt8(ascii: "b"): replacement = 0x08
        case UInt8(ascii: "f"): replacement = 0x0C
        case UInt8(ascii: "n"): replacement = 0x0A
        case UInt8(ascii: "r"): replacement = 0x0D
        case UInt8(ascii: "t"): replacement = 0x09
        case UInt8(ascii: "u"):
            return try decodeUnicodeEscape(at: position, store: store)
        default:
            throw error("invalid escape sequence '\\' followed by \(describeByte(at: position + 1))", at: position)
        }
        if store { scratch.append(replacement) }
        return position + 2
    }

    /// Decodes `\uXXXX` (and a following low surrogate escape when needed) at `position`.
    mutating func decodeUnicodeEscape(at position: Int, store: Bool = true) throws(JSONParseError) -> Int {
        let first = try hexQuad(at: position + 2, escapeStart: position)
        var scalarValue = UInt32(first)
        var next = position + 6
        if (0xD800...0xDBFF).contains(first) {
            guard next + 1 < end, bytes[next] == JSONASCII.backslash, bytes[next + 1] == UInt8(ascii: "u") else {
                throw error("lone high surrogate \\u\(hexDigits(first)) in string", at: position)
            }
            let second = try hexQuad(at: next + 2, escapeStart: next)
            guard (0xDC00...0xDFFF).contains(second) else {
                throw error("lone high surrogate \\u\(hexDigits(first)) in string", at: position)
            }
            scalarValue = 0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00)
            next += 6
        } else if (0xDC00...0xDFFF).contains(first) {
            throw error("lone low surrogate \\u\(hexDigits(first)) in string", at: position)
        }
        if store { appendUTF8(scalarValue) }
        return next
    }

    /// Reads four hex digits at `position`.
    func hexQuad(at position: Int, escapeStart: Int) throws(JSONParseError) -> UInt16 {
        guard position + 4 <= end else {
            throw error("invalid \\u escape: expected 4 hex digits", at: escapeStart)
        }
        var value: UInt16 = 0
        for offset in 0..<4 {
            let byte = bytes[position + offset]
            let digit: UInt8
            switch byte {
            case JSONASCII.zero...JSONASCII.nine: digit = byte - JSONASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape: expected 4 hex digits", at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (scalar >> 6)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (scalar >> 12)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (scalar >> 18)))
            scratch.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    /// Validates one multi-byte UTF-8 sequence whose lead byte (>= 0x80) is at `position`
    /// (`UTF8Sequence.check`). Returns the position after it.
    @inline(__always)
    func validateUTF8Sequence(at position: Int) throws(JSONParseError) -> Int {
        switch UTF8Sequence.check(bytes, at: position) {
        case .valid(let length):
            return position + length
        case .badLead:
            throw error("invalid UTF-8: unexpected byte \(hex(bytes[position])) in string", at: position)
        case .truncated:
            throw error("invalid UTF-8: truncated sequence in string", at: position)
        case .badContinuation(let at):
            throw error("invalid UTF-8: bad continuation byte \(hex(bytes[at])) in string", at: at)
        }
    }

    // MARK: Numbers

    mutating func parseNumber() throws(JSONParseError) -> JSON {
        let start = index
        var position = index
        let negative = bytes[position] == JSONASCII.minus
        if negative { position += 1 }

        // Significant digits accumulate into `mantissa` until it would overflow.
        var mantissa: UInt64 = 0
        var overflowed = false
        var fractionDigits = 0

        guard position < end, isDigit(bytes[position]) else {
            if position < end && (bytes[position] == UInt8(ascii: "I") || bytes[position] == UInt8(ascii: "N")) {
                throw error("invalid literal: NaN and Infinity are not valid JSON", at: start)
            }
            throw error("invalid number: expected a digit after '-'", at: position)
        }
        if bytes[position] == JSONASCII.zero {
            position += 1
            if position < end && isDigit(bytes[position]) {
                throw error("invalid number: leading zeros are not allowed", at: start)
            }
        } else {
            while position < end, isDigit(bytes[position]) {
                accumulate(bytes[position], into: &mantissa, overflowed: &overflowed)
                position += 1
            }
        }

        var isInteger = true
        if position < end && bytes[position] == JSONASCII.dot {
            isInteger = false
            position += 1
            guard position < end, isDigit(bytes[position]) else {
                throw error("invalid number: expected a digit after '.'", at: position)
            }
            while position < end, isDigit(bytes[position]) {
                accumulate(bytes[position], into: &mantissa, overflowed: &overflowed)
                fractionDigits += 1
                position += 1
            }
        }

        var exponent = 0
        if position < end && (bytes[position] == JSONASCII.lowerE || bytes[position] == JSONASCII.upperE) {
            isInteger = false
            position += 1
            var exponentNegative = false
            if position < end && (bytes[position] == JSONASCII.plus || bytes[position] == JSONASCII.minus) {
                exponentNegative = bytes[position] == JSONASCII.minus
                position += 1
            }
            guard position < end, isDigit(bytes[position]) else {
                throw error("invalid number: expected a digit in the exponent", at: position)
            }
            while position < end, isDigit(bytes[position]) {
                if exponent < 100_000 { exponent = exponent * 10 + Int(bytes[position] - JSONASCII.zero) }
                position += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        index = position

        if isInteger && !overflowed {
            if negative {
                if mantissa <= UInt64(Int64.max) { return .int(-Int64(mantissa)) }
                if mantissa == UInt64(Int64.max) + 1 { return .int(Int64.min) }
            } else if mantissa <= UInt64(Int64.max) {
                return .int(Int64(mantissa))
            }
        }

        // Exact fast path: mantissa and power of ten both exact, one rounding.
        let decimalExponent = exponent - fractionDigits
        if !overflowed && mantissa <= (1 << 53) && decimalExponent >= -22 && decimalExponent <= 22 {
            var value = Double(mantissa)
            if decimalExponent < 0 {
                value /= exactPowersOfTen[-decimalExponent]
            } else {
                value *= exactPowersOfTen[decimalExponent]
            }
            return .double(negative ? -value : value)
        }

        // General case: Swift's correctly rounded, locale-independent conversion.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw error("number out of range", at: start)
        }
        return .double(value)
    }

    @inline(__always)
    func isDigit(_ byte: UInt8) -> Bool {
        byte &- JSONASCII.zero < 10
    }

    @inline(__always)
    func accumulate(_ digit: UInt8, into mantissa: inout UInt64, overflowed: inout Bool) {
        guard !overflowed else { return }
        let (times10, overflow1) = mantissa.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - JSONASCII.zero))
        if overflow1 || overflow2 {
            overflowed = true
        } else {
            mantissa = sum
        }
    }
}

/// `0x1F`-style rendering of a byte.
private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return byte < 0x10 ? "0x0" + digits : "0x" + digits
}

/// Four uppercase hex digits.
private func hexDigits(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
