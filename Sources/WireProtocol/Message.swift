/// The protocol version spoken in `hello`; a peer with another version is refused.
public let wireProtocolVersion: Int64 = 1

/// Who is calling: set only by the gateway from a validated session.
public struct Caller: Sendable, Equatable {
    public var id: Int64
    public var role: Int64
    public init(id: Int64, role: Int64) {
        self.id = id
        self.role = role
    }
}

/// A request travelling from the gateway (or another peer) to a service.
public struct WireRequest: Sendable {
    /// Unique per connection and direction; assigned by the sending connection.
    public var id: UInt64
    public var method: String
    public var path: String
    public var params: JSONObject
    public var caller: Caller?
    /// Stays the same across retries: what makes resending a mutation safe.
    public var requestID: String
    /// How a request id made from a client's `Idempotency-Key` starts (`key:<caller>:<key>`):
    /// ids a client sends again on purpose, unlike the gateway's own, which repeat only when the
    /// gateway resends after a lost connection.
    public static let clientKeyPrefix = "key:"
    /// Wall-clock milliseconds after which the answer is no longer wanted (0: none).
    public var deadline: Int64
    /// The session token as the client presented it; the gateway sends it only to the service
    /// that owns sessions (for logout).
    public var session: String?
    /// The request id of the logs (`X-Request-Id`): the gateway's and the service's lines of
    /// one request carry the same.
    public var trace: String?

    public init(id: UInt64 = 0, method: String, path: String, params: JSONObject, caller: Caller?, requestID: String, deadline: Int64,
                session: String? = nil, trace: String? = nil) {
        self.id = id
        self.method = method
        self.path = path
        self.params = params
        self.caller = caller
        self.requestID = requestID
        self.deadline = deadline
        self.session = session
        self.trace = trace
    }
}

extension WireRequest {
    /// The request frame, written straight to bytes: the same bytes as serializing
    /// `Message.request(self).encode()` (the envelope's members in that order), without
    /// building the envelope as a tree first.
    func frame() -> [UInt8] {
        var writer = JSONByteWriter(capacity: 256)
        for _ in 0..<FrameEncoder.headerLength { writer.write(byte: 0) }
        writer.write(ascii: #"{"kind":"request","id":"#)
        writer.write(integer: Int64(truncatingIfNeeded: id))
        writer.write(ascii: #","method":"#)
        writer.write(string: method)
        writer.write(ascii: #","path":"#)
        writer.write(string: path)
        writer.write(ascii: #","params":"#)
        writer.write(params)
        if let caller {
            writer.write(ascii: #","caller":{"id":"#)
            writer.write(integer: caller.id)
            writer.write(ascii: #","role":"#)
            writer.write(integer: caller.role)
            writer.write(byte: JSONASCII.closeBrace)
        }
        writer.write(ascii: #","rid":"#)
        writer.write(string: requestID)
        writer.write(ascii: #","deadline":"#)
        writer.write(integer: deadline)
        if let session {
            writer.write(ascii: #","session":"#)
            writer.write(string: session)
        }
        if let trace {
            writer.write(ascii: #","trace":"#)
            writer.write(string: trace)
        }
        writer.write(byte: JSONASCII.closeBrace)
        var frame: [UInt8] = []
        frame.reserveCapacity(writer.count)
        writer.append(to: &frame)
        FrameEncoder.patchPrefix(&frame)
        return frame
    }

    /// The deepest `params` a request frame can carry: the frame's object holds them one level
    /// down, and the receiver parses frames with `JSONParser.defaultMaxDepth`. The gateway
    /// parses request bodies with this limit, so whatever it accepts, the service accepts.
    public static let maxParamsDepth = JSONParser.defaultMaxDepth - 1
}

/// The answer to one request: an HTTP-like status, a JSON body and optional HTTP headers
/// (e.g. `set-cookie`) for the gateway to pass on.
///
/// The body is kept as its compact JSON text (`bodyBytes`): a service serializes it once, the
/// frame carries those bytes, and the gateway hands them to the HTTP client as they are, without
/// building a tree and serializing it again. `body` builds the tree for callers that read it.
public struct WireResponse: Sendable {
    public var id: UInt64
    public var status: Int
    /// One valid JSON document (compact when a service made it): made from a `JSON` value here,
    /// written as `JSONText`, or sliced from a frame that was validated.
    public private(set) var bodyBytes: [UInt8]
    public var headers: [(name: String, value: String)]

    public init(id: UInt64 = 0, status: Int, body: JSON, headers: [(name: String, value: String)] = []) {
        self.id = id
        self.status = status
        self.bodyBytes = body.serialized()
        self.headers = headers
    }

    /// Bytes already validated as one JSON document (a decoded frame's body).
    init(id: UInt64, status: Int, validatedBody: [UInt8], headers: [(name: String, value: String)]) {
        self.id = id
        self.status = status
        self.bodyBytes = validatedBody
        self.headers = headers
    }

    /// The body as a tree (parsed on every read: hot paths use `bodyBytes`).
    public var body: JSON {
        get { (try? JSONParser.parse(bodyBytes)) ?? .null }
        set { bodyBytes = newValue.serialized() }
    }

    /// The response frame, written directly: the envelope's members, then `body` last as its bytes.
    func frame() -> [UInt8] {
        var frame = frameHead(reserving: bodyBytes.count + 1)
        frame.append(contentsOf: bodyBytes)
        frame.append(JSONASCII.closeBrace)
        return frame
    }

    /// The length prefix (of the whole frame, body and closing brace included) and the envelope's
    /// members up to `"body":`, with room for `extra` more bytes.
    func frameHead(reserving extra: Int) -> [UInt8] {
        var writer = JSONByteWriter(capacity: 128)
        for _ in 0..<FrameEncoder.headerLength { writer.write(byte: 0) }
        writer.write(ascii: #"{"kind":"response","id":"#)
        writer.write(integer: Int64(truncatingIfNeeded: id))
        writer.write(ascii: #","status":"#)
        writer.write(integer: Int64(status))
        if !headers.isEmpty {
            writer.write(ascii: #","headers":{"#)
            for (index, (name, value)) in headers.enumerated() {
                if index > 0 { writer.write(byte: JSONASCII.comma) }
                writer.write(string: name)
                writer.write(byte: JSONASCII.colon)
                writer.write(string: value)
            }
            writer.write(byte: JSONASCII.closeBrace)
        }
        writer.write(ascii: #","body":"#)
        var head: [UInt8] = []
        head.reserveCapacity(writer.count + extra)
        writer.append(to: &head)
        FrameEncoder.patchPrefix(&head, payloadLength: head.count - FrameEncoder.headerLength + bodyBytes.count + 1)
        return head
    }
}

/// The first frame on every connection, in both directions.
public struct Hello: Sendable, Equatable {
    public var version: Int64
    public var peer: String
    public var replica: String
    public init(version: Int64 = wireProtocolVersion, peer: String, replica: String) {
        self.version = version
        self.peer = peer
        self.replica = replica
    }
}

/// Every frame's envelope. The JSON form is `{"kind": …, …}`; see docs/WIRE.md.
public enum Message: Sendable {
    case hello(Hello)
    case request(WireRequest)
    case response(WireResponse)
    case ping(id: UInt64)
    case pong(id: UInt64)
    /// The sender is shutting down: it still answers requests up to `lastID`; later ones were
    /// never processed and may be resent elsewhere.
    case drain(lastID: UInt64)
    /// A protocol error; the sender closes the connection after it.
    case error(reason: String)
}

public struct MessageError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension Message {
    /// Decodes a frame payload. Anything that is not a JSON object of a known kind is an error.
    /// A response's `body` is validated like the rest of the frame but not built: its bytes are
    /// sliced out (`WireResponse.bodyBytes`). The envelope is read member by member
    /// (`EnvelopeReader`): the members a frame kind uses are built, others only validated.
    public static func decode(_ payload: [UInt8]) throws(MessageError) -> Message {
        let decoded = payload.withUnsafeBufferPointer { decode(inPlace: $0) }
        return try decoded.get()
    }

    /// Whether receivers validate response bodies (`decode(inPlace:checkingBody:)`): in debug
    /// builds — every test, the contract fuzzing — yes, so a service that writes a broken body
    /// fails there with a 502; in release builds no. A body is made by the service's serializer
    /// (valid by construction: escaped strings from Swift strings, numbers, and fragments
    /// SQLite's JSON functions or that serializer made), and reading ~10 KB of it cost the
    /// gateway a fifth of its CPU per list page.
    #if DEBUG
    public static let checksBodies = true
    #else
    public static let checksBodies = false
    #endif

    /// `decode` of a payload read where it lies (a frame in the receive buffer): only the
    /// members built and the response body are copied out of it. With `checkingBody` false a
    /// response's `body`, the last member of every response frame written here, is taken as
    /// the rest of the frame up to its closing brace without being read (`EnvelopeReader.takeRest`);
    /// the members before it are read and checked as always.
    public static func decode(inPlace payload: UnsafeBufferPointer<UInt8>, checkingBody: Bool = true) -> Result<Message, MessageError> {
        if let request = quickRequest(payload) { return .success(.request(request)) }
        if let response = quickResponse(payload, checkingBody: checkingBody) { return .success(.response(response)) }
        return decodeScanning(payload, checkingBody: checkingBody)
    }

    /// `decode(inPlace:checkingBody:)` without the quick paths: the envelope read member by
    /// member, in any order.
    static func decodeScanning(_ payload: UnsafeBufferPointer<UInt8>, checkingBody: Bool) -> Result<Message, MessageError> {
        let scanned = scan(payload, checkingBody: checkingBody)
        switch scanned.failure {
        case .invalid(let error)?:
            return .failure(MessageError("frame is not valid JSON: \(error)"))
        case .notAnObject?:
            return .failure(MessageError("frame is not a JSON object"))
        case nil:
            return Result { () throws(MessageError) -> Message in
                try decode(scanned.fields, body: scanned.body.map { Array(UnsafeBufferPointer(rebasing: payload[$0])) })
            }
        }
    }

    /// A request frame exactly as `WireRequest.frame()` writes it (its members in that order,
    /// no whitespace, `params` an object, ids and the deadline non-negative), read in one pass
    /// without collecting the envelope's members as JSON values first; nil for anything else,
    /// which the general path (`scan`) then decodes or rejects. The same request as that path.
    static func quickRequest(_ payload: UnsafeBufferPointer<UInt8>) -> WireRequest? {
        var reader = EnvelopeReader(payload)
        do throws(JSONParseError) {
            guard reader.literal(#"{"kind":"request","id":"#), let id = reader.unsignedInteger(),
                  reader.literal(#","method":"#), let method = try reader.string(),
                  reader.literal(#","path":"#), let path = try reader.string(),
                  reader.literal(#","params":"#), case .object(let params) = try reader.builtValue() else { return nil }
            var caller: Caller?
            if reader.literal(#","caller":"#) {
                guard let pair = reader.callerPair() else { return nil }
                caller = Caller(id: pair.id, role: pair.role)
            }
            guard reader.literal(#","rid":"#), let rid = try reader.string(),
                  reader.literal(#","deadline":"#), let deadline = reader.unsignedInteger() else { return nil }
            var session: String?
            if reader.literal(#","session":"#) {
                guard let value = try reader.string() else { return nil }
                session = value
            }
            var trace: String?
            if reader.literal(#","trace":"#) {
                guard let value = try reader.string() else { return nil }
                trace = value
            }
            guard reader.literal("}"), reader.atEnd else { return nil }
            return WireRequest(id: UInt64(id), method: method, path: path, params: params, caller: caller, requestID: rid,
                               deadline: deadline, session: session, trace: trace)
        } catch {
            return nil
        }
    }

    /// A response frame exactly as `WireResponse.frame()` writes it when it has no headers
    /// (`{"kind":"response","id":N,"status":N,"body":…}`), its body taken as `scan` takes it;
    /// nil for anything else (the general path decodes or rejects it).
    static func quickResponse(_ payload: UnsafeBufferPointer<UInt8>, checkingBody: Bool) -> WireResponse? {
        var reader = EnvelopeReader(payload)
        guard reader.literal(#"{"kind":"response","id":"#), let id = reader.unsignedInteger(),
              reader.literal(#","status":"#), let status = reader.unsignedInteger(),
              reader.literal(#","body":"#) else { return nil }
        reader.skipWhitespace()
        let body: Range<Int>
        if !checkingBody, let rest = reader.takeRest() {
            body = rest
        } else {
            guard let validated = try? reader.skip(), reader.isFinished else { return nil }
            body = validated
        }
        return WireResponse(id: UInt64(id), status: Int(status), validatedBody: Array(UnsafeBufferPointer(rebasing: payload[body])), headers: [])
    }

    /// The envelope's members read up to the end of the frame or to what failed (`failure`).
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, checkingBody: Bool = true) -> (fields: EnvelopeFields, body: Range<Int>?, failure: JSONParser.EnvelopeError?) {
        var reader = EnvelopeReader(bytes)
        var fields = EnvelopeFields()
        var body: Range<Int>?
        do throws(JSONParseError) {
            guard try reader.open() else {
                // Not an object: the full parser says whether it is valid JSON at all.
                do throws(JSONParseError) { _ = try JSONParser.parse(UnsafeRawBufferPointer(bytes)) } catch { return (fields, nil, .invalid(error)) }
                return (fields, nil, .notAnObject)
            }
            while let key = try reader.nextKey(EnvelopeFields.packedNames) {
                if key == EnvelopeFields.bodyPosition {
                    if !checkingBody, let rest = reader.takeRest() { body = rest } else { body = try reader.skip() }
                } else if key >= 0 {
                    fields[key] = try reader.value()
                } else {
                    try reader.skip()
                }
            }
            return (fields, body, nil)
        } catch {
            return (fields, body, .invalid(error))
        }
    }

    /// For a frame `decode` refused: the answer its request gets instead, when the frame began
    /// as a response and named the request (`kind` and `id` come first, the body last, in every
    /// response frame written here). A service whose answer is broken — its body is what a
    /// frame carries that was not made from a tree — then fails that one request with a 502,
    /// and the connection, shared by every other request in flight, stays up: the frame's
    /// length prefix says where the next one starts. Nil for anything else (a protocol error).
    public static func answerInstead(ofUndecodable payload: [UInt8], reason: String) -> WireResponse? {
        payload.withUnsafeBufferPointer { answerInstead(ofUndecodable: $0, reason: reason) }
    }

    /// `answerInstead(ofUndecodable:reason:)` of a payload read where it lies.
    public static func answerInstead(ofUndecodable payload: UnsafeBufferPointer<UInt8>, reason: String) -> WireResponse? {
        let fields = scan(payload).fields
        guard fields.kind?.stringValue == "response", let id = fields.id?.intValue, id >= 0 else { return nil }
        let message = "the service answered a frame that is not valid: \(reason)"
        return WireResponse(id: UInt64(id), status: 502, body: .object(JSONObject([("status", .int(1)), ("msg", .string(message))])))
    }

    public static func decode(_ object: JSONObject) throws(MessageError) -> Message {
        var fields = EnvelopeFields()
        for (position, name) in EnvelopeFields.names.enumerated() where position != EnvelopeFields.bodyPosition {
            fields[position] = object[name.description]
        }
        return try decode(fields, body: object["body"].map { $0.serialized() })
    }

    /// `body` is the response body's JSON text (already validated), when the frame has one.
    static func decode(_ object: EnvelopeFields, body: [UInt8]?) throws(MessageError) -> Message {
        guard let kind = object.kind?.stringValue else { throw MessageError("frame has no 'kind'") }
        func id(_ value: JSON?, _ key: String = "id") throws(MessageError) -> UInt64 {
            guard let value = value?.intValue, value >= 0 else { throw MessageError("\(kind) frame has no valid '\(key)'") }
            return UInt64(value)
        }
        switch kind {
        case "hello":
            guard let version = object.version?.intValue else { throw MessageError("hello has no 'version'") }
            return .hello(Hello(version: version, peer: object.peer?.stringValue ?? "", replica: object.replica?.stringValue ?? ""))
        case "request":
            guard let method = object.method?.stringValue, let path = object.path?.stringValue else {
                throw MessageError("request has no 'method' or 'path'")
            }
            var caller: Caller?
            if let c = object.caller?.objectValue, let cid = c["id"]?.intValue, let role = c["role"]?.intValue {
                caller = Caller(id: cid, role: role)
            }
            return .request(WireRequest(
                id: try id(object.id), method: method, path: path,
                params: object.params?.objectValue ?? JSONObject(),
                caller: caller,
                requestID: object.rid?.stringValue ?? "",
                deadline: object.deadline?.intValue ?? 0,
                session: object.session?.stringValue, trace: object.trace?.stringValue))
        case "response":
            guard let status = object.status?.intValue else { throw MessageError("response has no 'status'") }
            var headers: [(name: String, value: String)] = []
            if let h = object.headers?.objectValue {
                for (name, value) in h { if let v = value.stringValue { headers.append((name, v)) } }
            }
            return .response(WireResponse(id: try id(object.id), status: Int(status), validatedBody: body ?? Array("null".utf8), headers: headers))
        case "ping": return .ping(id: try id(object.id))
        case "pong": return .pong(id: try id(object.id))
        case "drain": return .drain(lastID: try id(object.last, "last"))
        case "error": return .error(reason: object.reason?.stringValue ?? "unknown error")
        default: throw MessageError("unknown frame kind '\(kind)'")
        }
    }

    public func encode() -> JSON {
        var o = JSONObject()
        switch self {
        case .hello(let hello):
            o.append("kind", "hello")
            o.append("version", .int(hello.version))
            o.append("peer", .string(hello.peer))
            o.append("replica", .string(hello.replica))
        case .request(let r):
            o.append("kind", "request")
            o.append("id", .int(Int64(truncatingIfNeeded: r.id)))
            o.append("method", .string(r.method))
            o.append("path", .string(r.path))
            o.append("params", .object(r.params))
            if let caller = r.caller {
                o.append("caller", .object(JSONObject([("id", .int(caller.id)), ("role", .int(caller.role))])))
            }
            o.append("rid", .string(r.requestID))
            o.append("deadline", .int(r.deadline))
            if let session = r.session { o.append("session", .string(session)) }
            if let trace = r.trace { o.append("trace", .string(trace)) }
        case .response(let r):
            o.append("kind", "response")
            o.append("id", .int(Int64(truncatingIfNeeded: r.id)))
            o.append("status", .int(Int64(r.status)))
            o.append("body", r.body)
            if !r.headers.isEmpty {
                var h = JSONObject()
                for (name, value) in r.headers { h.append(name, .string(value)) }
                o.append("headers", .object(h))
            }
        case .ping(let id):
            o.append("kind", "ping")
            o.append("id", .int(Int64(truncatingIfNeeded: id)))
        case .pong(let id):
            o.append("kind", "pong")
            o.append("id", .int(Int64(truncatingIfNeeded: id)))
        case .drain(let last):
            o.append("kind", "drain")
            o.append("last", .int(Int64(truncatingIfNeeded: last)))
        case .error(let reason):
            o.append("kind", "error")
            o.append("reason", .string(reason))
        }
        return .object(o)
    }

    /// The full frame (length prefix + JSON).
    public func frame() -> [UInt8] {
        if case .response(let response) = self { return response.frame() }
        if case .request(let request) = self { return request.frame() }
        return FrameEncoder.encode(encode())
    }
}

/// The envelope members the frame kinds use (each the last value a frame gave it).
struct EnvelopeFields {
    /// Member names in `subscript` order; `body` is sliced, never built.
    static let names: [StaticString] = ["kind", "id", "version", "peer", "replica", "method", "path", "params", "caller", "rid",
                                        "deadline", "session", "trace", "status", "headers", "last", "reason", "body"]
    static let bodyPosition = 17
    static let packedNames = EnvelopeReader.packed(names)

    var kind, id, version, peer, replica, method, path, params, caller, rid: JSON?
    var deadline, session, trace, status, headers, last, reason: JSON?

    subscript(position: Int) -> JSON? {
        get {
            switch position {
            case 0: return kind
            case 1: return id
            case 2: return version
            case 3: return peer
            case 4: return replica
            case 5: return method
            case 6: return path
            case 7: return params
            case 8: return caller
            case 9: return rid
            case 10: return deadline
            case 11: return session
            case 12: return trace
            case 13: return status
            case 14: return headers
            case 15: return last
            case 16: return reason
            default: return nil
            }
        }
        set {
            switch position {
            case 0: kind = newValue
            case 1: id = newValue
            case 2: version = newValue
            case 3: peer = newValue
            case 4: replica = newValue
            case 5: method = newValue
            case 6: path = newValue
            case 7: params = newValue
            case 8: caller = newValue
            case 9: rid = newValue
            case 10: deadline = newValue
            case 11: session = newValue
            case 12: trace = newValue
            case 13: status = newValue
            case 14: headers = newValue
            case 15: last = newValue
            case 16: reason = newValue
            default: break
            }
        }
    }
}
