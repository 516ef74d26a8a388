/// Compact serialization: no whitespace, object keys in order, strings escaped per
/// RFC 8259 (`"`, `\` and control characters below 0x20; `/` and non-ASCII stay raw),
/// doubles in Swift's shortest round-trip form, non-finite doubles as `null`.
extension JSON {
    /// Appends the compact UTF-8 encoding of this value to `buffer`.
    public func serialize(into buffer: inout [UInt8]) {
        var writer = JSONByteWriter()
        writer.write(self)
        writer.append(to: &buffer)
    }

    /// The compact UTF-8 encoding of this value.
    public func serialized() -> [UInt8] {
        var buffer: [UInt8] = []
        serialize(into: &buffer)
        return buffer
    }

    /// The compact encoding as a `String` (for logs and tests).
    public var jsonString: String {
        String(decoding: serialized(), as: UTF8.self)
    }
}

extension JSON: CustomStringConvertible {
    /// The compact JSON text.
    public var description: String { jsonString }
}

extension JSONObject {
    /// Appends the compact UTF-8 encoding of this object to `buffer`.
    public func serialize(into buffer: inout [UInt8]) {
        var writer = JSONByteWriter()
        writer.write(self)
        writer.append(to: &buffer)
    }

    /// The compact UTF-8 encoding of this object.
    public func serialized() -> [UInt8] {
        var buffer: [UInt8] = []
        serialize(into: &buffer)
        return buffer
    }
}

/// A growable byte buffer in manually managed memory: each write is a capacity check
/// and a store, without the uniqueness checks of `Array`. The result is copied into
/// the caller's array once at the end. The raw writes are `@inlinable` (`@usableFromInline`
/// storage): `JSONText`'s punctuation and copies, called per value from the services' list
/// pages, inline there instead of costing a call each.
@usableFromInline
struct JSONByteWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var count = 0

    private static let hexDigits: StaticString = "0123456789abcdef"

    init(capacity: Int = 1024) {
        self.capacity = max(capacity, 16)
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
    }

    // `@inlinable`: Swift 6.3.1's optimizer asserts ("inlining a resilient function into a
    // fragile function") inlining a plain deinit into `JSONText.writer`'s setter.
    @inlinable deinit { base.deallocate() }

    /// Copies the written bytes to the end of `buffer`.
    func append(to buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }

    // MARK: Raw bytes

    @inlinable @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(minimum: count + extra) }
    }

    @usableFromInline
    mutating func grow(minimum: Int) {
        let newCapacity = max(capacity * 2, minimum)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    mutating func write(byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    /// Short runs (keys, punctuation, small values: most writes of a list page) are copied as
    /// two overlapping words instead of through a `memcpy` call.
    @inlinable @inline(__always)
    mutating func write(bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        let n = bytes.count
        reserve(n)
        let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(base + count)
        switch n {
        case 17...32:
            let a = from.loadUnaligned(as: UInt64.self), b = from.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            let c = from.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self), d = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            to.storeBytes(of: a, as: UInt64.self)
            to.storeBytes(of: b, toByteOffset: 8, as: UInt64.self)
            to.storeBytes(of: c, toByteOffset: n - 16, as: UInt64.self)
            to.storeBytes(of: d, toByteOffset: n - 8, as: UInt64.self)
        case 8...16:
            to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), toByteOffset: n - 8, as: UInt64.self)
        case 4..<8:
            to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self), toByteOffset: n - 4, as: UInt32.self)
        case 0:
            return
        case 1..<4:
            for i in 0..<n { to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
        default:
            (base + count).update(from: source, count: n)
        }
        count += n
    }

    /// `null`, as one four-byte store.
    @inlinable @inline(__always)
    mutating func writeNull() {
        reserve(4)
        UnsafeMutableRawPointer(base + count).storeBytes(of: UInt32(0x6C6C_756E).littleEndian, as: UInt32.self)   // "null"
        count += 4
    }

    @inlinable
    mutating func write(ascii text: StaticString) {
        text.withUTF8Buffer { write(bytes: $0) }
    }

    // MARK: JSON

    mutating func write(_ value: JSON) {
        switch value {
        case .null:
            writeNull()
        case .bool(let flag):
            write(ascii: flag ? "true" : "false")
        case .int(let number):
            write(integer: number)
        case .double(let number):
            write(double: number)
        case .string(let string):
            write(string: string)
        case .array(let elements):
            write(byte: JSONASCII.openBracket)
            var first = true
            for element in elements {
                if !first { write(byte: JSONASCII.comma) }
                first = false
                write(element)
            }
            write(byte: JSONASCII.closeBracket)
        case .object(let object):
            write(object)
        }
    }

    mutating func write(_ object: JSONObject) {
        write(byte: JSONASCII.openBrace)
        var first = true
        for entry in object.entries {
            if !first { write(byte: JSONASCII.comma) }
            first = false
            write(string: entry.key)
            write(byte: JSONASCII.colon)
            write(entry.value)
        }
        write(byte: JSONASCII.closeBrace)
    }

    mutating func write(integer value: Int64) {
        if value < 0 { write(byte: JSONASCII.minus) }
        var remaining = value.magnitude
        // UInt64.max has 20 digits: count them, then fill backwards in place.
        var digits = 1
        var threshold: UInt64 = 10
        while digits < 20 && remaining >= threshold {
            digits += 1
            threshold &*= 10
        }
        reserve(digits)
        var position = count + digits
        repeat {
            position -= 1
            base[position] = JSONASCII.zero + UInt8(truncatingIfNeeded: remaining % 10)
            remaining /= 10
        } while remaining > 0
        count += digits
    }

    mutating func write(double value: Double) {
        guard value.isFinite else {
            write(ascii: "null")
            return
        }
        // Integral values below 2^53 print exactly as "<integer>.0" without a String.
        // (Checked by converting, not `rounded()`, which would need libm.)
        if value.magnitude < 9_007_199_254_740_992, value != 0, Double(Int64(value)) == value {
            write(integer: Int64(value))
            write(ascii: ".0")
            return
        }
        // Swift's description is the shortest round-trip form: "0.1", "1e-07",
        // "1.5e+300", "-0.0" — all valid JSON numbers.
        write(string: value.description, escaping: false)
    }

    /// Writes `string` quoted and escaped (or raw when `escaping` is false).
    mutating func write(string: String, escaping: Bool = true) {
        // In place when the string's bytes are contiguous (always, for native strings): no copy
        // of the string (a retain and a release) as `withUTF8` needs.
        let written: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            escaping ? write(quoted: utf8) : write(bytes: utf8)
        }
        guard written == nil else { return }
        var string = string
        string.withUTF8 { utf8 in
            escaping ? write(quoted: utf8) : write(bytes: utf8)
        }
    }

    /// Writes UTF-8 bytes as a quoted, escaped string: the same bytes as writing
    /// `String(decoding: utf8, as: UTF8.self)`, whose repairs (U+FFFD for invalid sequences)
    /// are made only when the bytes are not valid UTF-8.
    mutating func write(utf8String utf8: UnsafeBufferPointer<UInt8>) {
        // One pass: escapes as `write(quoted:)`, checking multi-byte sequences on the way
        // (ASCII runs without escapes skipped eight bytes at a time); on an invalid sequence
        // what was written is dropped and the repaired string written instead.
        let start = count
        reserve(utf8.count + 2)
        write(byte: JSONASCII.quote)
        let raw = UnsafeRawBufferPointer(utf8)
        var runStart = 0
        var position = 0
        let end = utf8.count
        while position < end {
            if position + 8 <= end {
                let word = raw.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 && !JSONSWAR.hasQuoteBackslashOrControl(word) {
                    position += 8
                    continue
                }
            }
            let byte = utf8[position]
            if byte < 0x80 {
                if byte < 0x20 || byte == JSONASCII.quote || byte == JSONASCII.backslash {
                    if runStart < position { write(bytes: UnsafeBufferPointer(rebasing: utf8[runStart..<position])) }
                    writeEscape(for: byte)
                    runStart = position + 1
                }
                position += 1
                continue
            }
            guard let length = JSONByteWriter.utf8SequenceLength(utf8, at: position) else {
                count = start
                write(string: String(decoding: utf8, as: UTF8.self))
                return
            }
            position += length
        }
        if runStart < end { write(bytes: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        write(byte: JSONASCII.quote)
    }

    /// The length of the well-formed multi-byte UTF-8 sequence whose lead byte (>= 0x80) is at
    /// `position`; nil when it is not one (`UTF8Sequence.check` says why).
    @inline(__always)
    static func utf8SequenceLength(_ utf8: UnsafeBufferPointer<UInt8>, at position: Int) -> Int? {
        if case .valid(let length) = UTF8Sequence.check(utf8, at: position) { return length }
        return nil
    }

    /// Calls `body` with the bytes written so far.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    /// Forgets the written bytes, keeping the memory.
    mutating func removeAll() { count = 0 }

    /// Writes `utf8` in quotes, escaping what RFC 8259 requires and copying unescaped
    /// runs in bulk.
    private mutating func write(quoted utf8: UnsafeBufferPointer<UInt8>) {
        reserve(utf8.count + 2)
        if writeQuotedWithoutEscapes(utf8) { return }
        write(byte: JSONASCII.quote)
        let raw = UnsafeRawBufferPointer(utf8)
        var runStart = 0
        var position = 0
        while position < utf8.count {
            // Skip eight bytes at a time while none of them needs escaping.
            if position + 8 <= utf8.count,
                !JSONSWAR.hasQuoteBackslashOrControl(raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            {
                position += 8
                continue
            }
            let byte = utf8[position]
            if byte < 0x20 || byte == JSONASCII.quote || byte == JSONASCII.backslash {
                if runStart < position {
                    write(bytes: UnsafeBufferPointer(rebasing: utf8[runStart..<position]))
                }
                writeEscape(for: byte)
                runStart = position + 1
            }
            position += 1
        }
        if runStart < utf8.count {
            write(bytes: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        write(byte: JSONASCII.quote)
    }

    /// `write(quoted:)` for bytes of which none needs escaping (nearly every string): copied a
    /// word at a time while checking it, the last partial word loaded overlapping the one before
    /// (short strings as two overlapping halves). False, with nothing written, when some byte
    /// needs escaping. Needs `utf8.count + 2` bytes reserved.
    @inline(__always)
    private mutating func writeQuotedWithoutEscapes(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = utf8.count
        let to = UnsafeMutableRawPointer(base + count + 1)
        if let source = utf8.baseAddress {
            let from = UnsafeRawPointer(source)
            if n >= 8 {
                var position = 0
                while position + 8 <= n {
                    let word = from.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                    guard !JSONSWAR.hasQuoteBackslashOrControl(word) else { return false }
                    to.storeBytes(of: word, toByteOffset: position, as: UInt64.self)
                    position += 8
                }
                if position < n {
                    let word = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                    guard !JSONSWAR.hasQuoteBackslashOrControl(word) else { return false }
                    to.storeBytes(of: word, toByteOffset: n - 8, as: UInt64.self)
                }
            } else if n >= 4 {
                let low = from.loadUnaligned(as: UInt32.self), high = from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
                guard !JSONSWAR.hasQuoteBackslashOrControl(UInt64(low) | UInt64(high) << 32) else { return false }
                to.storeBytes(of: low, as: UInt32.self)
                to.storeBytes(of: high, toByteOffset: n - 4, as: UInt32.self)
            } else {
                for i in 0..<n {
                    let byte = source[i]
                    guard byte >= 0x20 && byte != JSONASCII.quote && byte != JSONASCII.backslash else { return false }
                    to.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
                }
            }
        }
        base[count] = JSONASCII.quote
        base[count + 1 + n] = JSONASCII.quote
        count += n + 2
        return true
    }

    private mutating func writeEscape(for byte: UInt8) {
        write(byte: JSONASCII.backslash)
        switch byte {
        case JSONASCII.quote: write(byte: JSONASCII.quote)
        case JSONASCII.backslash: write(byte: JSONASCII.backslash)
        case 0x0A: write(byte: UInt8(ascii: "n"))
        case 0x0D: write(byte: UInt8(ascii: "r"))
        case 0x09: write(byte: UInt8(ascii: "t"))
        case 0x08: write(byte: UInt8(ascii: "b"))
        case 0x0C: write(byte: UInt8(ascii: "f"))
        default:
            write(ascii: "u00")
            Self.hexDigits.withUTF8Buffer { digits in
                write(byte: digits[Int(byte >> 4)])
                write(byte: digits[Int(byte & 0x0F)])
            }
        }
    }
}

/// Word-at-a-time byte tests (eight bytes of a string at once).
enum JSONSWAR {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether any byte of `word` is below `limit` (`limit` <= 0x80).
    @inline(__always)
    static func hasByte(lessThan limit: UInt8, in word: UInt64) -> Bool {
        (word &- ones &* UInt64(limit)) & ~word & highBits != 0
    }

    /// Whether any byte of `word` equals `byte`.
    @inline(__always)
    static func hasByte(_ byte: UInt8, in word: UInt64) -> Bool {
        hasByte(lessThan: 1, in: word ^ (ones &* UInt64(byte)))
    }

    /// Whether any byte is `"`, `\` or a control character below 0x20 (one branch, not three).
    @inline(__always)
    static func hasQuoteBackslashOrControl(_ word: UInt64) -> Bool {
        let quotes = word ^ (ones &* UInt64(JSONASCII.quote))
        let backslashes = word ^ (ones &* UInt64(JSONASCII.backslash))
        let control = (word &- ones &* 0x20) & ~word
        let quote = (quotes &- ones) & ~quotes
        let backslash = (backslashes &- ones) & ~backslashes
        return (control | quote | backslash) & highBits != 0
    }

    /// The high bit of each byte that is `"`, `\`, below 0x20 or non-ASCII — exact for the
    /// lowest such byte (a borrow can mark bytes above it, never below), so
    /// `trailingZeroBitCount / 8` of a non-zero mask is the offset of the first one
    /// (little-endian loads).
    @inline(__always)
    static func stringStopMask(_ word: UInt64) -> UInt64 {
        let quotes = word ^ (ones &* UInt64(JSONASCII.quote))
        let backslashes = word ^ (ones &* UInt64(JSONASCII.backslash))
        let control = (word &- ones &* 0x20) & ~word
        let quote = (quotes &- ones) & ~quotes
        let backslash = (backslashes &- ones) & ~backslashes
        return (control | quote | backslash | word) & highBits
    }
}

/// The rules of one multi-byte UTF-8 sequence (Unicode Table 3-7: no overlongs, no surrogates,
/// nothing above U+10FFFF), written once for the parser (which names the problem) and the
/// serializer (which repairs it).
enum UTF8Sequence {
    enum Verdict {
        case valid(length: Int)
        /// The byte at `position` cannot start a sequence.
        case badLead
        /// The sequence runs past the end.
        case truncated
        /// The continuation byte at this position is wrong.
        case badContinuation(at: Int)
    }

    /// The sequence whose lead byte (>= 0x80) is at `position`.
    @inline(__always)
    static func check(_ utf8: UnsafeBufferPointer<UInt8>, at position: Int) -> Verdict {
        let lead = utf8[position]
        let length: Int
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondHigh = 0x9F
        case 0xF0: length = 4; secondLow = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondHigh = 0x8F
        default: return .badLead
        }
        guard position + length <= utf8.count else { return .truncated }
        let second = utf8[position + 1]
        guard second >= secondLow && second <= secondHigh else { return .badContinuation(at: position + 1) }
        for offset in 2..<length where utf8[position + offset] & 0xC0 != 0x80 { return .badContinuation(at: position + offset) }
        return .valid(length: length)
    }
}
