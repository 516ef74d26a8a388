import WireProtocol

/// A request whose parameters cannot be read.
struct ParamError: Error {
    var reason: String
}

/// How an HTTP request becomes the parameter object of a service request: query string first,
/// then the body (JSON object or form) on top — the body wins.
enum RequestParams {
    static func build(_ request: HTTPRequest) throws(ParamError) -> JSONObject {
        var params = JSONObject()
        if !request.head.query.isEmpty {
            FormDecoder.merge(FormDecoder.pairs(request.head.query), into: &params)
        }
        guard !request.body.isEmpty else { return params }
        let contentType = (request.head.header("content-type") ?? "").lowercased()
        let firstByte = request.body.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        let isJSON = contentType.hasPrefix("application/json") || contentType.contains("+json")
            || (!contentType.hasPrefix("application/x-www-form-urlencoded") && firstByte == UInt8(ascii: "{"))
        if isJSON {
            let json: JSON
            do {
                json = try JSONParser.parse(request.body, maxDepth: WireRequest.maxParamsDepth)
            } catch {
                throw ParamError(reason: "request body is not valid JSON: \(error)")
            }
            guard case .object(let object) = json else {
                throw ParamError(reason: "request body must be a JSON object")
            }
            for (key, value) in object { params[key] = value }
        } else if contentType.isEmpty || contentType.hasPrefix("application/x-www-form-urlencoded") || contentType.hasPrefix("text/plain") {
            var form = JSONObject()
            FormDecoder.merge(FormDecoder.pairs(String(decoding: request.body, as: UTF8.self)), into: &form)
            for (key, value) in form { params[key] = value }
        } else {
            throw ParamError(reason: "unsupported Content-Type '\(contentType)'; send application/json or application/x-www-form-urlencoded")
        }
        return params
    }

    /// The session token — `Authorization: Bearer <token>`, else the `crm_session` cookie — and
    /// whether it came from the cookie (which browsers send on their own).
    static func credential(_ head: HTTPRequestHead) -> (token: String, fromCookie: Bool)? {
        if let token = head.withHeader("authorization", bearerToken) ?? nil {
            return (token, false)
        }
        for cookieHeader in head.headerValues("cookie") {
            for cookie in cookieHeader.split(separator: ";") {
                let pair = cookie.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].trimmingCharacters(in: " ") == "crm_session" {
                    let token = pair[1].trimmingCharacters(in: " ")
                    if !token.isEmpty { return (token, true) }
                }
            }
        }
        return nil
    }
}

extension RequestParams {
    /// `Bearer <token>` (scheme case-insensitive, spaces around the token dropped), read from
    /// the header's bytes: the scheme runs to the first space, the token is the rest.
    static func bearerToken(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let space = UInt8(ascii: " ")
        var start = 0
        while start < bytes.count && bytes[start] == space { start += 1 }
        var schemeEnd = start
        while schemeEnd < bytes.count && bytes[schemeEnd] != space { schemeEnd += 1 }
        let scheme = UnsafeBufferPointer(rebasing: bytes[start..<schemeEnd])
        guard scheme.count == 6, (scheme[0] | 0x20) == UInt8(ascii: "b"), (scheme[1] | 0x20) == UInt8(ascii: "e"),
              (scheme[2] | 0x20) == UInt8(ascii: "a"), (scheme[3] | 0x20) == UInt8(ascii: "r"), (scheme[4] | 0x20) == UInt8(ascii: "e"),
              (scheme[5] | 0x20) == UInt8(ascii: "r") else { return nil }
        var tokenStart = schemeEnd, tokenEnd = bytes.count
        while tokenStart < tokenEnd && bytes[tokenStart] == space { tokenStart += 1 }
        while tokenEnd > tokenStart && bytes[tokenEnd - 1] == space { tokenEnd -= 1 }
        guard tokenStart < tokenEnd else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[tokenStart..<tokenEnd]), as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var s = self[...]
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
