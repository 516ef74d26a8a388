import WireProtocol

/// An HTTP/1.1 response, serialized by hand (always JSON bodies, except /metrics).
struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType = "application/json; charset=utf-8"
    var headers: [(name: String, value: String)] = []
    /// Sent as `X-Request-Id`, after `headers`.
    var requestID: String?
    var close = false

    init(status: Int, body: [UInt8], contentType: String = "application/json; charset=utf-8", headers: [(name: String, value: String)] = [], close: Bool = false) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.headers = headers
        self.close = close
    }

    init(status: Int, json: JSON, headers: [(name: String, value: String)] = []) {
        self.init(status: status, body: json.serialized(), headers: headers)
    }

    /// `{"status":1,"msg":…}` with the given HTTP status.
    static func error(_ status: Int, _ message: String, close: Bool = false) -> HTTPResponse {
        var r = HTTPResponse(status: status, json: .object(JSONObject([("status", .int(1)), ("msg", .string(message))])))
        r.close = close
        return r
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }

    static let defaultContentType = "application/json; charset=utf-8"
    // The constant pieces of the head, as bytes (copied, not transcoded, per answer).
    private static let okJSONStart = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ".utf8)
    private static let statusStart = Array("HTTP/1.1 ".utf8)
    private static let contentTypeStart = Array("\r\nContent-Type: ".utf8)
    private static let contentLengthStart = Array("\r\nContent-Length: ".utf8)
    // Answers are data for one client, never a page to sniff or a copy to keep.
    private static let fixedHeaders = Array("\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n".utf8)
    private static let requestIDStart = Array("X-Request-Id: ".utf8)
    private static let keepAliveEnd = Array("Connection: keep-alive\r\n\r\n".utf8)
    private static let closeEnd = Array("Connection: close\r\n\r\n".utf8)
    private static let separator = Array(": ".utf8)
    private static let lineEnd = Array("\r\n".utf8)

    /// The bytes on the wire; `headOnly` omits the body (HEAD). Written straight into one
    /// buffer sized for the head and the body (no intermediate strings).
    func serialized(keepAlive: Bool, headOnly: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headCapacity + (headOnly ? 0 : body.count))
        appendHead(to: &out, keepAlive: keepAlive)
        if !headOnly { out.append(contentsOf: body) }
        return out
    }

    /// Queues the answer on `stream`: the head, and a small body behind it, written straight
    /// into the stream's shared output buffer. A large body (a list page, as the service sent
    /// it) goes as a buffer of its own instead of a copy, behind a head of its own: a lent
    /// buffer goes back to the loop only when it is the last one queued.
    func write(to stream: StreamConnection, keepAlive: Bool, headOnly: Bool) {
        guard headOnly || body.count < StreamConnection.ownBufferBytes else {
            stream.write(serialized(keepAlive: keepAlive, headOnly: true))
            stream.write(body)
            return
        }
        stream.write(reserving: headCapacity + (headOnly ? 0 : body.count)) { out in
            appendHead(to: &out, keepAlive: keepAlive)
            if !headOnly { out.append(contentsOf: body) }
        }
    }

    /// About how many bytes the status line and headers take.
    private var headCapacity: Int {
        var extra = requestID.map { $0.utf8.count + 16 } ?? 0
        for (name, value) in headers { extra += name.utf8.count + value.utf8.count + 4 }
        return 192 + extra
    }

    /// Appends the status line and headers.
    private func appendHead(to out: inout [UInt8], keepAlive: Bool) {
        if status == 200 && contentType == HTTPResponse.defaultContentType {
            out.append(contentsOf: HTTPResponse.okJSONStart)
        } else {
            out.append(contentsOf: HTTPResponse.statusStart)
            HTTPResponse.appendDecimal(status, to: &out)
            out.append(UInt8(ascii: " "))
            HTTPResponse.append(HTTPResponse.reason(status), to: &out)
            out.append(contentsOf: HTTPResponse.contentTypeStart)
            HTTPResponse.append(contentType, to: &out)
            out.append(contentsOf: HTTPResponse.contentLengthStart)
        }
        HTTPResponse.appendDecimal(body.count, to: &out)
        out.append(contentsOf: HTTPResponse.fixedHeaders)
        for (name, value) in headers {
            HTTPResponse.append(name, to: &out)
            out.append(contentsOf: HTTPResponse.separator)
            HTTPResponse.append(value, to: &out)
            out.append(contentsOf: HTTPResponse.lineEnd)
        }
        if let requestID {
            out.append(contentsOf: HTTPResponse.requestIDStart)
            HTTPResponse.append(requestID, to: &out)
            out.append(contentsOf: HTTPResponse.lineEnd)
        }
        out.append(contentsOf: keepAlive && !close ? HTTPResponse.keepAliveEnd : HTTPResponse.closeEnd)
    }

    /// Appends the UTF-8 of `text` as one copy (appending a `String.UTF8View` goes byte by byte).
    static func append(_ text: String, to out: inout [UInt8]) {
        if text.utf8.withContiguousStorageIfAvailable({ out.append(contentsOf: $0) }) == nil {
            out.append(contentsOf: Array(text.utf8))
        }
    }

    /// Appends the decimal digits of a non-negative `value`.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        guard value > 0 else { out.append(UInt8(ascii: "0")); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while remaining > 0 {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
