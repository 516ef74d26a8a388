#if canImport(Glibc)
import Glibc
#endif

// A pure, incremental HTTP/1.1 request decoder (RFC 9112): bytes in, requests out.
// No sockets, no Foundation. The connection code feeds whatever it reads and then
// calls `next()` until it returns nil.
//
// Line terminators:
// - In the head (request line and header fields) a bare LF is accepted as a line
//   terminator (RFC 9112 §2.2 allows it), but a bare CR (CR not followed by LF) is
//   rejected with 400.
// - In a chunked body (chunk-size lines, the CRLF after chunk data, trailer fields and
//   the final empty line) CRLF is required; a bare LF there is a 400, because lenient
//   chunked framing is a known request-smuggling vector.

/// Size limits the parser enforces while decoding.
struct HTTPParserLimits: Sendable {
    /// Request line + all header lines + the final CRLF. Past it: 431.
    /// Also bounds the trailer section and a single chunk-size line (with extensions).
    var maxHeaderBytes: Int = 64 * 1024
    /// Decoded body size. Past it: 413 (Content-Length is checked up front, chunked totals as they arrive).
    var maxBodyBytes: Int = 8 * 1024 * 1024
    /// Number of header fields (and, separately, of trailer fields). Past it: 431.
    var maxHeaderCount: Int = 100
}

/// The request line and header fields of one request.
///
/// The target and the fields are kept as bytes in one array (names lowercased while copied),
/// with one small range per field: parsing makes no `String` per field, and `header(_:)`
/// makes one only for the value it returns.
struct HTTPRequestHead: Sendable {
    /// The method as sent (case-sensitive token), e.g. "GET".
    var method: String
    /// The target before the first '?', not percent-decoded.
    var path: String
    /// The target after the first '?', "" when there is none.
    var query: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var versionMinor: Int
    /// Whether the connection may stay open after this request: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
    var keepAlive: Bool

    /// Where one field lies in `bytes`: its name at `start..<valueStart`, its value at `valueStart..<end`.
    fileprivate struct Field: Sendable {
        var start: Int32
        var valueStart: Int32
        var end: Int32
    }

    /// The request-target's bytes (`0..<targetEnd`), then each field's name and value.
    /// Offsets fit in `Int32`: the parser's head is at most `maxHeaderBytes` (clamped to `Int32.max`).
    private var bytes: [UInt8]
    private var targetEnd: Int
    private var fields: [Field] = []

    /// A head from decoded parts (tests, and requests made in code): names are kept as given.
    init(method: String, target: String, path: String, query: String, versionMinor: Int,
         headers: [(name: String, value: String)], keepAlive: Bool) {
        self.init(method: method, path: path, query: query, versionMinor: versionMinor, keepAlive: keepAlive,
                  target: Array(target.utf8)[...], capacity: 0)
        for (name, value) in headers {
            let start = bytes.count
            bytes.append(contentsOf: name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: value.utf8)
            fields.append(Field(start: Int32(start), valueStart: Int32(valueStart), end: Int32(bytes.count)))
        }
    }

    /// A head with its target and no fields yet; `capacity` bytes are reserved for the fields to come.
    fileprivate init(method: String, path: String, query: String, versionMinor: Int, keepAlive: Bool,
                     target: ArraySlice<UInt8>, capacity: Int) {
        self.method = method
        self.path = path
        self.query = query
        self.versionMinor = versionMinor
        self.keepAlive = keepAlive
        bytes = []
        bytes.reserveCapacity(target.count + capacity)
        bytes.append(contentsOf: target)
        targetEnd = target.count
    }

    /// The request-target as sent, e.g. "/api/user/group?status=1", or "*" (OPTIONS only).
    var target: String { String(decoding: bytes[0..<targetEnd], as: UTF8.self) }

    /// Header fields in order: names lowercased, values with surrounding whitespace trimmed.
    /// Bytes are decoded as UTF-8 (invalid sequences become U+FFFD).
    var headers: [(name: String, value: String)] {
        fields.map { field in
            (name: String(decoding: bytes[Int(field.start)..<Int(field.valueStart)], as: UTF8.self),
             value: String(decoding: bytes[Int(field.valueStart)..<Int(field.end)], as: UTF8.self))
        }
    }

    /// The first value of the header named `lowercasedName` (which must already be lowercase).
    func header(_ lowercasedName: String) -> String? {
        withHeader(lowercasedName) { String(decoding: $0, as: UTF8.self) }
    }

    /// `body` applied to the bytes of the first value of the header named `lowercasedName`
    /// (lowercase) without making a `String` of it; nil when there is no such header.
    func withHeader<R>(_ lowercasedName: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        var name = lowercasedName
        return name.withUTF8 { key in
            bytes.withUnsafeBufferPointer { all in
                for field in fields where Self.field(field, in: all, isNamed: key) {
                    return body(UnsafeBufferPointer(rebasing: all[Int(field.valueStart)..<Int(field.end)]))
                }
                return nil
            }
        }
    }

    /// All values of the header named `lowercasedName`, in order.
    func headerValues(_ lowercasedName: String) -> [String] {
        var name = lowercasedName
        return name.withUTF8 { key in
            bytes.withUnsafeBufferPointer { all in
                fields.compactMap { field in
                    Self.field(field, in: all, isNamed: key)
                        ? String(decoding: UnsafeBufferPointer(rebasing: all[Int(field.valueStart)..<Int(field.end)]), as: UTF8.self)
                        : nil
                }
            }
        }
    }

    /// Whether `field`'s name is exactly `name`'s bytes.
    private static func field(_ field: Field, in all: UnsafeBufferPointer<UInt8>, isNamed name: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(field.start)
        guard Int(field.valueStart) - start == name.count else { return false }
        for i in 0..<name.count where all[start + i] != name[i] { return false }
        return true
    }

    /// Appends a field from the parser's buffer, its name (ASCII token characters) lowercased.
    fileprivate mutating func appendField(from source: [UInt8], name: Range<Int>, value: Range<Int>) {
        if fields.capacity == 0 { fields.reserveCapacity(8) }
        let start = bytes.count
        source.withUnsafeBufferPointer { all in
            for i in name { bytes.append(HTTPByte.lowercased(all[i])) }
        }
        let valueStart = bytes.count
        source.withUnsafeBufferPointer { all in
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: all[value]))
        }
        fields.append(Field(start: Int32(truncatingIfNeeded: start), valueStart: Int32(truncatingIfNeeded: valueStart),
                            end: Int32(truncatingIfNeeded: bytes.count)))
    }

    /// The values of the fields that frame the message, in order (one pass over the names;
    /// the arrays stay empty, unallocated, in the common case).
    fileprivate func framingValues() -> (contentLength: [ArraySlice<UInt8>], transferEncoding: [ArraySlice<UInt8>], connection: [ArraySlice<UInt8>]) {
        var contentLength: [ArraySlice<UInt8>] = [], transferEncoding: [ArraySlice<UInt8>] = [], connection: [ArraySlice<UInt8>] = []
        for field in fields {
            let start = Int(field.start), valueStart = Int(field.valueStart)
            // Slices only for the matches (each retains the array).
            switch valueStart - start {
            case 14 where bytes[start..<valueStart].elementsEqual("content-length".utf8):
                contentLength.append(bytes[valueStart..<Int(field.end)])
            case 17 where bytes[start..<valueStart].elementsEqual("transfer-encoding".utf8):
                transferEncoding.append(bytes[valueStart..<Int(field.end)])
            case 10 where bytes[start..<valueStart].elementsEqual("connection".utf8):
                connection.append(bytes[valueStart..<Int(field.end)])
            default: break
            }
        }
        return (contentLength, transferEncoding, connection)
    }
}

/// One complete request with its decoded body.
struct HTTPRequest: Sendable {
    var head: HTTPRequestHead
    var body: [UInt8]
}

/// A framing or limit violation. The connection must answer with `status`,
/// `Connection: close`, and then close.
struct HTTPParseError: Error, Sendable, Equatable {
    /// 400, 413, 431, 501 or 505.
    var status: Int
    /// A short human-readable explanation (safe to send to the client).
    var reason: String

    static func badRequest(_ reason: String) -> HTTPParseError { HTTPParseError(status: 400, reason: reason) }
    static func contentTooLarge(_ reason: String) -> HTTPParseError { HTTPParseError(status: 413, reason: reason) }
    static func headerTooLarge(_ reason: String) -> HTTPParseError { HTTPParseError(status: 431, reason: reason) }
    static func notImplemented(_ reason: String) -> HTTPParseError { HTTPParseError(status: 501, reason: reason) }
    static func versionNotSupported(_ reason: String) -> HTTPParseError { HTTPParseError(status: 505, reason: reason) }
}

/// Incremental HTTP/1.x request decoder.
///
/// Feed bytes with `feed(_:)`, then call `next()` until it returns nil. Pipelined
/// requests come out one at a time, in order; leftover bytes stay buffered.
/// Once `next()` throws, the parser stays failed and every further call throws the same error.
struct HTTPRequestParser: Sendable {
    /// Where the decoder is within the current request.
    private enum State: Sendable {
        /// Waiting for the request line (skipping a few leading empty lines).
        case requestLine
        /// Reading header fields up to the empty line.
        case headerLines
        /// Reading a Content-Length body.
        case fixedBody(remaining: Int)
        /// Waiting for a chunk-size line.
        case chunkSizeLine
        /// Reading chunk data.
        case chunkData(remaining: Int)
        /// Waiting for the CRLF that ends chunk data.
        case chunkDataEnd
        /// Reading trailer fields up to the final empty line.
        case trailerLines
        /// A framing error happened; the parser stays here.
        case failed(HTTPParseError)
    }

    /// A complete line found in the buffer: content is `buffer[start..<end]`,
    /// `length` includes the terminator.
    private struct Line {
        var start: Int
        var end: Int
        var length: Int
        var endsWithCRLF: Bool
        var isEmpty: Bool { start == end }
    }

    /// Empty lines tolerated before a request line (RFC 9112 §2.2); more is a 400.
    static let maxLeadingEmptyLines = 4

    let limits: HTTPParserLimits

    private var state: State = .requestLine
    /// Received bytes; `buffer[readIndex...]` is not consumed yet.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Bytes after `readIndex` already scanned for a line terminator (so a long line fed
    /// byte by byte is scanned once, not quadratically).
    private var lineScanOffset = 0

    // The request being decoded.
    private var leadingEmptyLines = 0
    /// Bytes of the head (or of the trailer section) consumed so far.
    private var sectionBytes = 0
    /// Header (or trailer) fields seen so far.
    private var fieldCount = 0
    /// The head being read (from its request line on), then the head whose body is arriving.
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(limits: HTTPParserLimits = HTTPParserLimits()) {
        var limits = limits
        // A head's offsets are stored as Int32 (see HTTPRequestHead).
        limits.maxHeaderBytes = min(limits.maxHeaderBytes, Int(Int32.max))
        self.limits = limits
    }

    /// True when no partial request is buffered (nothing received since the last complete request).
    var isIdle: Bool {
        if case .requestLine = state { return readIndex == buffer.count }
        return false
    }

    /// True once at least one byte of the next request has arrived (or the parser has failed).
    var hasStartedRequest: Bool { !isIdle }

    /// The head of the request whose body is still arriving (to answer `Expect: 100-continue`).
    var headAwaitingBody: HTTPRequestHead? {
        switch state {
        case .fixedBody, .chunkSizeLine, .chunkData, .chunkDataEnd: return head
        default: return nil
        }
    }

    /// True while a started request's head (request line and fields) is still incomplete.
    var isReadingHead: Bool {
        switch state {
        case .requestLine: return readIndex < buffer.count
        case .headerLines: return true
        default: return false
        }
    }

    /// Bytes received but not yet decoded (complete lines of a partial head are already decoded
    /// and not counted; use `hasStartedRequest` to know whether a request is in progress).
    var bufferedByteCount: Int { buffer.count - readIndex }

    /// Appends received bytes. Bytes fed after a failure are dropped.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if case .failed = state { return }
        guard !bytes.isEmpty else { return }
        compactIfNeeded()
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Appends received bytes. Bytes fed after a failure are dropped.
    mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// The next complete request, nil when more bytes are needed.
    ///
    /// After it throws, the parser stays failed (every further call throws the same error):
    /// the connection must answer the error with `Connection: close` and close.
    mutating func next() throws(HTTPParseError) -> HTTPRequest? {
        if case .failed(let error) = state { throw error }
        do throws(HTTPParseError) {
            let request = try advance()
            if request != nil { releaseIfDrained() }
            return request
        } catch {
            state = .failed(error)
            throw error
        }
    }

    // MARK: - State machine

    /// Runs the state machine until a request completes or more bytes are needed.
    private mutating func advance() throws(HTTPParseError) -> HTTPRequest? {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .requestLine:
                guard let line = try nextLine(limit: limits.maxHeaderBytes, tooLong: .headerTooLarge("request line too long")) else {
                    return nil
                }
                if line.isEmpty {
                    leadingEmptyLines += 1
                    guard leadingEmptyLines <= Self.maxLeadingEmptyLines else {
                        throw .badRequest("too many empty lines before request line")
                    }
                    consume(line.length)
                    continue
                }
                try parseRequestLine(line)
                sectionBytes = line.length
                consume(line.length)
                state = .headerLines

            case .headerLines:
                guard let line = try nextLine(limit: limits.maxHeaderBytes - sectionBytes, tooLong: .headerTooLarge("request header too large")) else {
                    return nil
                }
                sectionBytes += line.length
                if line.isEmpty {
                    consume(line.length)
                    if let request = try finishHead() { return request }
                    continue
                }
                fieldCount += 1
                guard fieldCount <= limits.maxHeaderCount else {
                    throw .headerTooLarge("too many header fields")
                }
                let field = try parseField(line)
                head?.appendField(from: buffer, name: field.name, value: field.value)
                consume(line.length)

            case .fixedBody(let remaining):
                let available = buffer.count - readIndex
                guard available > 0 else { return nil }
                let count = min(available, remaining)
                body.append(contentsOf: buffer[readIndex..<(readIndex + count)])
                consume(count)
                if count == remaining { return finishRequest() }
                state = .fixedBody(remaining: remaining - count)
                return nil

            case .chunkSizeLine:
                guard let line = try nextLine(limit: limits.maxHeaderBytes, tooLong: .headerTooLarge("chunk size line too long")) else {
                    return nil
                }
                guard line.endsWithCRLF else { throw .badRequest("chunk size line must end with CRLF") }
                let size = try parseChunkSize(line)
                consume(line.length)
                if size == 0 {
                    sectionBytes = 0
                    fieldCount = 0
                    state = .trailerLines
                } else {
                    guard size <= limits.maxBodyBytes - body.count else {
                        throw .contentTooLarge("request body too large")
                    }
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                let available = buffer.count - readIndex
                guard available > 0 else { return nil }
                let count = min(available, remaining)
                body.append(contentsOf: buffer[readIndex..<(readIndex + count)])
                consume(count)
                state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)

            case .chunkDataEnd:
                let available = buffer.count - readIndex
                guard available > 0 else { return nil }
                guard buffer[readIndex] == HTTPByte.cr else { throw .badRequest("missing CRLF after chunk data") }
                guard available > 1 else { return nil }
                guard buffer[readIndex + 1] == HTTPByte.lf else { throw .badRequest("missing CRLF after chunk data") }
                consume(2)
                state = .chunkSizeLine

            case .trailerLines:
                guard let line = try nextLine(limit: limits.maxHeaderBytes - sectionBytes, tooLong: .headerTooLarge("trailer section too large")) else {
                    return nil
                }
                guard line.endsWithCRLF else { throw .badRequest("trailer line must end with CRLF") }
                sectionBytes += line.length
                if line.isEmpty {
                    consume(line.length)
                    return finishRequest()
                }
                fieldCount += 1
                guard fieldCount <= limits.maxHeaderCount else {
                    throw .headerTooLarge("too many trailer fields")
                }
                _ = try parseField(line)  // validated, then discarded
                consume(line.length)
            }
        }
    }

    /// Validates the framing headers once the head is complete. Returns the request
    /// when it has no body, otherwise switches to a body state and returns nil.
    private mutating func finishHead() throws(HTTPParseError) -> HTTPRequest? {
        // Read in place (binding `head` would copy it).
        guard let versionMinor = head?.versionMinor, let framing = head?.framingValues() else {
            return nil  // unreachable: the request line made the head
        }
        let (contentLengthValues, transferEncodingValues, connectionValues) = framing

        let contentLength = try Self.parseContentLength(contentLengthValues)
        let isChunked: Bool
        if transferEncodingValues.isEmpty {
            isChunked = false
        } else {
            guard versionMinor == 1 else { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            guard contentLength == nil else { throw .badRequest("both Transfer-Encoding and Content-Length") }
            try Self.validateTransferEncoding(transferEncodingValues)
            isChunked = true
        }
        if let contentLength, contentLength > limits.maxBodyBytes {
            throw .contentTooLarge("request body too large")
        }

        let connection = connectionValues.isEmpty ? [] : Self.commaSeparatedTokens(connectionValues)
        let keepAlive = versionMinor == 1
            ? !connection.contains("close")
            : connection.contains("keep-alive") && !connection.contains("close")
        self.head?.keepAlive = keepAlive

        if isChunked {
            state = .chunkSizeLine
            return nil
        }
        if let contentLength, contentLength > 0 {
            body.reserveCapacity(min(contentLength, 64 * 1024))
            state = .fixedBody(remaining: contentLength)
            return nil
        }
        return finishRequest()
    }

    /// Hands out the decoded request and resets for the next one.
    private mutating func finishRequest() -> HTTPRequest? {
        guard let head = head.take() else { return nil }  // unreachable: body states always follow a head
        var body: [UInt8] = []
        swap(&body, &self.body)
        let request = HTTPRequest(head: head, body: body)
        leadingEmptyLines = 0
        sectionBytes = 0
        fieldCount = 0
        state = .requestLine
        return request
    }

    // MARK: - Buffer

    /// Marks `count` bytes at `readIndex` as consumed.
    private mutating func consume(_ count: Int) {
        readIndex += count
        lineScanOffset = 0
    }

    /// Most buffer capacity an idle connection keeps once every received byte is consumed: a
    /// large head (up to the header limit) is not held for the rest of a keep-alive connection
    /// (1,000 idle connections that each sent a 60 KB head held 77 MiB).
    static let keptCapacity = 16 * 1024

    /// The receive buffer's capacity (tests).
    var bufferCapacity: Int { buffer.capacity }

    /// Empties the buffer once every byte in it is consumed, giving a large one back.
    private mutating func releaseIfDrained() {
        guard readIndex > 0, readIndex == buffer.count else { return }
        buffer.removeAll(keepingCapacity: buffer.capacity <= HTTPRequestParser.keptCapacity)
        readIndex = 0
    }

    /// Drops consumed bytes when that is cheap relative to what was consumed (amortized O(n)).
    private mutating func compactIfNeeded() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            releaseIfDrained()
        } else if readIndex >= 4096 && readIndex >= buffer.count / 2 {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }

    /// Finds the line starting at `readIndex`, terminated by LF or CRLF, without consuming it.
    /// Returns nil when more bytes are needed. Throws 400 for a bare CR, and `tooLong` once
    /// `limit` bytes are buffered without a complete line (terminator included).
    private mutating func nextLine(limit: Int, tooLong: HTTPParseError) throws(HTTPParseError) -> Line? {
        let start = readIndex
        let bound = min(buffer.count, start + max(limit, 0))
        let from = start + lineScanOffset
        // memchr for the LF, then for a CR before it: the first CR not right before the LF is
        // bare (the same verdict as judging byte by byte, found in two vectorized scans).
        let (lf, cr) = buffer.withUnsafeBytes { raw -> (Int?, Int?) in
            guard let base = raw.baseAddress, from < bound else { return (nil, nil) }
            let lf = memchr(base + from, Int32(HTTPByte.lf), bound - from).map { $0 - UnsafeMutableRawPointer(mutating: base) }
            let crEnd = lf ?? bound
            let cr = memchr(base + from, Int32(HTTPByte.cr), crEnd - from).map { $0 - UnsafeMutableRawPointer(mutating: base) }
            return (lf, cr)
        }
        if let index = lf {
            if let cr, cr < index - 1 { throw .badRequest("bare CR") }
            let end = index > start && buffer[index - 1] == HTTPByte.cr ? index - 1 : index
            return Line(start: start, end: end, length: index + 1 - start, endsWithCRLF: end != index)
        }
        var index = max(from, bound)
        if let cr {
            // A CR as the last byte within `limit` leaves no room for its LF: the line is too
            // long whatever follows, so the byte past the limit is not judged (the answer must
            // not depend on how the bytes were split).
            if cr + 1 < bound { throw .badRequest("bare CR") }  // its next byte is here and not LF
            index = cr  // need the next byte to judge this CR
        }
        lineScanOffset = index - start
        if buffer.count - start >= limit { throw tooLong }
        return nil
    }

    // MARK: - Line parsing

    /// Parses `method SP request-target SP HTTP-version` into the pending request.
    private mutating func parseRequestLine(_ line: Line) throws(HTTPParseError) {
        // Three parts at the first two spaces (a third space lands in the version: malformed).
        guard let space1 = firstIndex(of: HTTPByte.space, in: line.start..<line.end),
              let space2 = firstIndex(of: HTTPByte.space, in: (space1 + 1)..<line.end) else {
            throw .badRequest("malformed request line")
        }
        let methodRange = line.start..<space1, targetRange = (space1 + 1)..<space2
        guard !methodRange.isEmpty, allBytes(in: methodRange, satisfy: HTTPByte.isTokenChar) else {
            throw .badRequest("invalid method")
        }
        // Visible ASCII, plus bytes >= 0x80: many clients send UTF-8 (e.g. Chinese search text)
        // unescaped in the query, and refusing it helps no one. Controls, space and DEL are refused.
        guard !targetRange.isEmpty, allBytes(in: targetRange, satisfy: { $0 > 0x20 && $0 != 0x7F }) else {
            throw .badRequest("invalid request target")
        }
        let minor = try parseVersion((space2 + 1)..<line.end)
        let method = methodString(methodRange)
        if buffer[targetRange.lowerBound] == HTTPByte.asterisk && targetRange.count == 1 {
            guard method == "OPTIONS" else { throw .badRequest("asterisk target is only allowed for OPTIONS") }
        } else {
            guard buffer[targetRange.lowerBound] == HTTPByte.slash else { throw .badRequest("request target must be in origin-form") }
        }
        // Path and query split at the first '?' (the target itself when there is none).
        let path: String, query: String
        if let mark = firstIndex(of: HTTPByte.question, in: targetRange) {
            path = String(decoding: buffer[targetRange.lowerBound..<mark], as: UTF8.self)
            query = String(decoding: buffer[(mark + 1)..<targetRange.upperBound], as: UTF8.self)
        } else {
            path = String(decoding: buffer[targetRange], as: UTF8.self)
            query = ""
        }
        // Room for the fields: what is buffered after this line, within reason (a head
        // rarely needs more, and a larger one just grows).
        let fieldCapacity = min(buffer.count - line.start - line.length, 1024)
        head = HTTPRequestHead(method: method, path: path, query: query, versionMinor: minor, keepAlive: true,
                               target: buffer[targetRange], capacity: fieldCapacity)
    }

    /// The method as a `String`; the common ones without decoding.
    private func methodString(_ range: Range<Int>) -> String {
        switch range.count {
        case 3 where buffer[range.lowerBound] == UInt8(ascii: "G") && buffer[range.lowerBound + 1] == UInt8(ascii: "E")
                && buffer[range.lowerBound + 2] == UInt8(ascii: "T"):
            return "GET"
        case 4 where buffer[range.lowerBound] == UInt8(ascii: "P") && buffer[range.lowerBound + 1] == UInt8(ascii: "O")
                && buffer[range.lowerBound + 2] == UInt8(ascii: "S") && buffer[range.lowerBound + 3] == UInt8(ascii: "T"):
            return "POST"
        default:
            return String(decoding: buffer[range], as: UTF8.self)
        }
    }

    /// The first index of `byte` in `range` of the buffer.
    private func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        var index = range.lowerBound
        while index < range.upperBound {
            if buffer[index] == byte { return index }
            index += 1
        }
        return nil
    }

    private func allBytes(in range: Range<Int>, satisfy predicate: (UInt8) -> Bool) -> Bool {
        var index = range.lowerBound
        while index < range.upperBound {
            if !predicate(buffer[index]) { return false }
            index += 1
        }
        return true
    }

    /// Parses `HTTP/1.0` or `HTTP/1.1`. Other well-formed versions: 505; malformed: 400.
    private func parseVersion(_ range: Range<Int>) throws(HTTPParseError) -> Int {
        let b = range.lowerBound
        guard range.count == 8, buffer[b] == UInt8(ascii: "H"), buffer[b + 1] == UInt8(ascii: "T"), buffer[b + 2] == UInt8(ascii: "T"),
              buffer[b + 3] == UInt8(ascii: "P"), buffer[b + 4] == HTTPByte.slash,
              HTTPByte.isDigit(buffer[b + 5]), buffer[b + 6] == HTTPByte.dot, HTTPByte.isDigit(buffer[b + 7])
        else { throw .badRequest("malformed HTTP version") }
        let major = Int(buffer[b + 5] - HTTPByte.zero)
        let minor = Int(buffer[b + 7] - HTTPByte.zero)
        guard major == 1, minor <= 1 else { throw .versionNotSupported("HTTP version not supported") }
        return minor
    }

    /// Parses `name ":" OWS value OWS`; returns where the name and the trimmed value are in the buffer.
    /// Read through one buffer pointer (the checks run once per byte, without bounds checks).
    private func parseField(_ line: Line) throws(HTTPParseError) -> (name: Range<Int>, value: Range<Int>) {
        let parsed = buffer.withUnsafeBufferPointer { all -> Result<(name: Range<Int>, value: Range<Int>), HTTPParseError> in
            let start = line.start, end = line.end
            guard start < end else { return .failure(.badRequest("empty header field")) }
            if HTTPByte.isWhitespace(all[start]) { return .failure(.badRequest("obsolete line folding")) }
            var colon = start
            while colon < end && all[colon] != HTTPByte.colon { colon += 1 }
            guard colon < end else { return .failure(.badRequest("header field without colon")) }
            guard colon > start else { return .failure(.badRequest("empty header field name")) }
            if HTTPByte.isWhitespace(all[colon - 1]) {
                return .failure(.badRequest("whitespace between header field name and colon"))
            }
            for i in start..<colon where !HTTPByte.isTokenChar(all[i]) { return .failure(.badRequest("invalid header field name")) }
            var valueStart = colon + 1, valueEnd = end
            while valueStart < valueEnd && HTTPByte.isWhitespace(all[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart && HTTPByte.isWhitespace(all[valueEnd - 1]) { valueEnd -= 1 }
            // No early exit: the loop vectorizes (a bearer token is a few hundred bytes).
            var invalid: UInt8 = 0
            for i in valueStart..<valueEnd {
                let byte = all[i]
                invalid |= (byte < 0x20 && byte != HTTPByte.tab) || byte == 0x7F ? 1 : 0
            }
            if invalid != 0 { return .failure(.badRequest("invalid character in header field value")) }
            return .success((start..<colon, valueStart..<valueEnd))
        }
        return try parsed.get()
    }

    /// Parses `chunk-size [ BWS ";" chunk-ext ]`; extensions are checked for control bytes and ignored.
    private func parseChunkSize(_ line: Line) throws(HTTPParseError) -> Int {
        var index = line.start
        var size = 0
        while index < line.end, let digit = HTTPByte.hexValue(buffer[index]) {
            guard index - line.start < 15 else { throw .badRequest("chunk size too large") }
            size = size << 4 | digit
            index += 1
        }
        guard index > line.start else { throw .badRequest("invalid chunk size") }
        let rest = buffer[index..<line.end]
        guard !rest.isEmpty else { return size }
        let extensions = rest.drop(while: HTTPByte.isWhitespace)
        guard extensions.first == HTTPByte.semicolon,
              extensions.allSatisfy({ $0 == HTTPByte.tab || ($0 >= 0x20 && $0 != 0x7F) })
        else { throw .badRequest("invalid chunk size line") }
        return size
    }

    // MARK: - Header value helpers

    /// The single Content-Length, or nil when absent. Accepts identical repeats
    /// (`5, 5` or repeated fields); differing or malformed values are a 400.
    private static func parseContentLength(_ values: [ArraySlice<UInt8>]) throws(HTTPParseError) -> Int? {
        var result: Int?
        for value in values {
            for element in value.split(separator: HTTPByte.comma, omittingEmptySubsequences: false) {
                let digits = HTTPByte.trimmingWhitespace(element)
                guard !digits.isEmpty, digits.allSatisfy(HTTPByte.isDigit) else {
                    throw .badRequest("invalid Content-Length")
                }
                var length = 0
                for digit in digits {
                    let (shifted, overflow1) = length.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = shifted.addingReportingOverflow(Int(digit - HTTPByte.zero))
                    guard !overflow1, !overflow2 else { throw .badRequest("invalid Content-Length") }
                    length = sum
                }
                if let result, result != length { throw .badRequest("conflicting Content-Length values") }
                result = length
            }
        }
        return result
    }

    /// Accepts only a coding list that ends in a single `chunked` with nothing else in it.
    private static func validateTransferEncoding(_ values: [ArraySlice<UInt8>]) throws(HTTPParseError) {
        let codings = commaSeparatedTokens(values)
        guard codings.last == "chunked" else { throw .badRequest("final transfer coding is not chunked") }
        guard codings.filter({ $0 == "chunked" }).count == 1 else { throw .badRequest("chunked applied more than once") }
        guard codings.count == 1 else { throw .notImplemented("unsupported transfer coding") }
    }

    /// Lowercased, trimmed, non-empty elements of comma-separated header values.
    private static func commaSeparatedTokens(_ values: [ArraySlice<UInt8>]) -> [String] {
        values.flatMap { value in
            value.split(separator: HTTPByte.comma).compactMap { element -> String? in
                let trimmed = HTTPByte.trimmingWhitespace(element)
                return trimmed.isEmpty ? nil : String(decoding: trimmed.map(HTTPByte.lowercased), as: UTF8.self)
            }
        }
    }

}

/// Byte constants and classifiers used by the parser.
private enum HTTPByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let asterisk: UInt8 = 0x2A
    static let question: UInt8 = 0x3F

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// SP or HTAB (OWS/BWS).
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// RFC 9110 tchar: `0-9 a-z A-Z ! # $ % & ' * + - . ^ _ ` | ~`, as a bit per ASCII byte.
    static func isTokenChar(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000, high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        return byte < 64 ? (low >> UInt64(byte)) & 1 != 0 : byte < 128 && (high >> UInt64(byte - 64)) & 1 != 0
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
    }

    /// The bytes with leading and trailing SP/HTAB removed.
    static func trimmingWhitespace<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
        let head = bytes.drop(while: isWhitespace)
        var end = head.endIndex
        while end > head.startIndex, isWhitespace(head[head.index(before: end)]) {
            end = head.index(before: end)
        }
        return head[head.startIndex..<end]
    }
}
