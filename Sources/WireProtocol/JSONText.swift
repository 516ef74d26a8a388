/// JSON written straight to bytes, for answers too large to build as a `JSON` tree first (a
/// page of list rows): the same compact encoding as `JSON.serialized()`, without the tree's
/// allocations. The caller writes the structure (`{`, `,`, keys) in order; values are always
/// encoded by the serializer. See `WireResponse(status:jsonText:)` for how the result is checked.
public struct JSONText: ~Copyable {
    @usableFromInline var writer: JSONByteWriter

    public init(capacity: Int = 4096) {
        writer = JSONByteWriter(capacity: capacity)
    }

    /// `"key":` (escaped and quoted, with the colon), for `raw` (made once, written per row).
    public static func key(_ key: String) -> [UInt8] {
        var bytes = JSON.string(key).serialized()
        bytes.append(JSONASCII.colon)
        return bytes
    }

    /// Bytes that are already JSON (a key from `key(_:)`, punctuation).
    @inlinable
    public mutating func raw(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { writer.write(bytes: $0) }
    }

    @inlinable
    public mutating func raw(_ bytes: UnsafeBufferPointer<UInt8>) {
        writer.write(bytes: bytes)
    }

    @inlinable
    public mutating func raw(_ text: StaticString) {
        writer.write(ascii: text)
    }

    @inlinable public mutating func openObject() { writer.write(byte: UInt8(ascii: "{")) }
    @inlinable public mutating func closeObject() { writer.write(byte: UInt8(ascii: "}")) }
    @inlinable public mutating func openArray() { writer.write(byte: UInt8(ascii: "[")) }
    @inlinable public mutating func closeArray() { writer.write(byte: UInt8(ascii: "]")) }
    @inlinable public mutating func comma() { writer.write(byte: UInt8(ascii: ",")) }

    public mutating func int(_ value: Int64) { writer.write(integer: value) }
    public mutating func string(_ value: String) { writer.write(string: value) }
    @inlinable public mutating func null() { writer.writeNull() }
    public mutating func double(_ value: Double) { writer.write(double: value) }
    /// A string given as UTF-8 bytes (e.g. read in place from SQLite): the same text as
    /// `string(String(decoding: utf8, as: UTF8.self))`, without making the `String`.
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) { writer.write(utf8String: utf8) }

    /// Copies bytes `range` of what `other` has written (a part written ahead, placed now).
    @inlinable
    public mutating func raw(_ other: borrowing JSONText, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        // (A range this code wrote itself: outside what `other` holds is a bug, as slicing traps.)
        precondition(range.lowerBound >= 0 && range.upperBound <= other.writer.count, "range outside the text")
        writer.write(bytes: UnsafeBufferPointer(start: other.writer.base + range.lowerBound, count: range.count))
    }
    public mutating func value(_ value: JSON) { writer.write(value) }

    /// The bytes written so far.
    @inlinable public var count: Int { writer.count }

    /// Calls `body` with the bytes written so far (to write them out without a copy).
    public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try writer.withBytes(body)
    }

    /// Forgets what was written and keeps the memory: a buffer reused batch after batch.
    public mutating func removeAll() { writer.removeAll() }

    public consuming func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(writer.count)
        writer.append(to: &out)
        return out
    }
}

extension WireResponse {
    /// An answer whose body was written as `JSONText`. Debug builds (the tests) check it with
    /// `JSONParser.validate`, what the receiver's frame decoder checks, and answer 500 for an
    /// invalid one; release builds trust it: every value goes through the serializer, and only
    /// the structure is the caller's, which its tests hold against the tree's serialization.
    public init(status: Int, jsonText: consuming JSONText, headers: [(name: String, value: String)] = []) {
        let bytes = jsonText.bytes()
        var problem: JSONParseError?
        assert({
            problem = bytes.withUnsafeBytes { raw -> JSONParseError? in
                do throws(JSONParseError) {
                    try JSONParser.validate(raw, maxDepth: JSONParser.defaultMaxDepth - 1)
                    return nil
                } catch {
                    return error
                }
            }
            return true
        }())
        if let problem {
            Log.error("an answer written as JSON text is not valid JSON: \(problem)")
            self.init(status: 500, body: .object(JSONObject([("status", .int(1)), ("msg", .string("the service wrote an invalid answer"))])))
        } else {
            self.init(id: 0, status: status, validatedBody: bytes, headers: headers)
        }
    }
}
