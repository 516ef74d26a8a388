import XCTest

@testable import WireProtocol

/// The response path that passes a service's body bytes through: `JSONParser.validate` (checks
/// without building), `JSONParser.parseEnvelope` (builds the envelope, slices the body) and
/// `Message.decode` on top of them. Each must accept and refuse exactly what the full parser
/// does, on generated documents, their random mutations, hand-picked edge cases and the
/// fuzzer's corpus.
final class EnvelopeTests: XCTestCase {
    /// Every input of the JSON differential test, plus the same at small depth limits.
    private func corpus() -> [[UInt8]] {
        var generator = DocumentGenerator(seed: 0xB0D7_5EED)
        var inputs = JSONDifferentialTests.edgeCases
        for _ in 0..<1500 {
            let document = generator.document()
            inputs.append(document)
            inputs.append(generator.mutated(document))
        }
        return inputs + JSONDifferentialTests.seedCorpus()
    }

    func testValidateAgreesWithTheParser() {
        var accepted = 0, refused = 0
        for input in corpus() {
            for depth in [JSONParser.defaultMaxDepth, 2] {
                let text = String(decoding: input.prefix(200), as: UTF8.self).debugDescription
                let parsed = Result { () throws(JSONParseError) -> JSON in try JSONParser.parse(input, maxDepth: depth) }
                let validated = input.withUnsafeBytes { raw in
                    Result { () throws(JSONParseError) in try JSONParser.validate(raw, maxDepth: depth) }
                }
                switch (parsed, validated) {
                case (.success, .success): accepted += 1
                case (.failure(let expected), .failure(let got)):
                    XCTAssertEqual(got, expected, "same error for \(text)")
                    refused += 1
                case (.success, .failure(let got)): XCTFail("validate refuses what parse accepts: \(text): \(got)")
                case (.failure(let expected), .success): XCTFail("validate accepts what parse refuses: \(text): \(expected)")
                }
            }
        }
        XCTAssertGreaterThan(accepted, 1000)
        XCTAssertGreaterThan(refused, 500)
    }

    /// Each generated document as a response body, the whole frame mutated too: the envelope
    /// scan accepts exactly what the parser accepts, and gives the same members and body.
    func testEnvelopeAgreesWithTheParser() throws {
        var generator = DocumentGenerator(seed: 0xE4E1_0BE5)
        var frames: [[UInt8]] = []
        for input in corpus() {
            let frame = Array(#"{"kind":"response","id":7,"status":200,"body":"#.utf8) + input + Array("}".utf8)
            frames.append(frame)
            frames.append(generator.mutated(frame))
            // The body first, and a repeated body key (the last one wins, as in the parser).
            frames.append(Array(#" {"body": "#.utf8) + input + Array(#" , "kind":"response","body":[1,{"a":"\u00e9"}],"id":7,"status":200}"#.utf8))
        }
        frames += [Array("[1]".utf8), Array("\"body\"".utf8), Array("".utf8), Array("  ".utf8), Array("{".utf8), Array("{}".utf8), Array(#"{"body":1}x"#.utf8)]
        var accepted = 0, refused = 0
        for frame in frames {
            let text = String(decoding: frame.prefix(200), as: UTF8.self).debugDescription
            let parsed = try? JSONParser.parse(frame)
            let scanned = frame.withUnsafeBytes { raw in
                Result { () throws(JSONParser.EnvelopeError) in try JSONParser.parseEnvelope(raw, rawKey: "body") }
            }
            switch (parsed, scanned) {
            case (.object(var expected)?, .success(let (members, body))):
                let expectedBody = expected["body"]
                expected["body"] = nil
                XCTAssertEqual(members, expected, "members of \(text)")
                XCTAssertEqual(body.map { try? JSONParser.parse(Array(frame[$0])) } ?? nil, expectedBody, "body of \(text)")
                accepted += 1
            case (_?, .failure(.notAnObject)): refused += 1
            case (nil, .failure(.invalid)): refused += 1
            default: XCTFail("parse gave \(parsed?.jsonString ?? "an error"), the envelope scan \(scanned) for \(text)")
            }
        }
        XCTAssertGreaterThan(accepted, 1000)
        XCTAssertGreaterThan(refused, 500)
    }

    /// `Message.decode` reads the envelope member by member; it must decide every frame as
    /// parsing the whole frame into a tree and decoding that would: the same message, or the
    /// same error text. Generated documents as bodies and params, mutated frames, escaped and
    /// repeated keys, trailing commas, frames of every kind.
    /// What decoding `frame` gives when it is parsed into a tree first (the reference).
    private func treeDecoded(_ frame: [UInt8]) -> Result<JSON, MessageError> {
        do {
            let tree = try JSONParser.parse(frame)
            guard let object = tree.objectValue else { return .failure(MessageError("frame is not a JSON object")) }
            return Result { () throws(MessageError) -> JSON in try Message.decode(object).encode() }
        } catch {
            return .failure(MessageError("frame is not valid JSON: \(error)"))
        }
    }

    func testMessageDecodeAgreesWithTheTree() throws {
        var generator = DocumentGenerator(seed: 0xDEC0_DE55)
        var frames: [[UInt8]] = []
        for input in corpus() {
            let response = Array(#"{"kind":"response","id":7,"status":200,"headers":{"set-cookie":"a=b"},"body":"#.utf8) + input + Array("}".utf8)
            let request = Array(#"{"kind":"request","id":9,"method":"GET","path":"/p","caller":{"id":1,"role":2},"rid":"r","params":"#.utf8) + input
                + Array(#","session":"s","trace":"t","deadline":5}"#.utf8)
            frames += [response, generator.mutated(response), request, generator.mutated(request)]
        }
        frames += [
            #"{"kind":"ping","id":1}"#, #"{"kind":"ping","id":1,}"#, #"{"body":1,}"#, #"{"body":1,"kind":"pong","id":2}"#,
            #"{"\u006bind":"drain","last":3}"#, #"{"kind":"drain","kind":"error","reason":"x"}"#,
            #"{"kind":"pong","id":1,"kind\u0000":"ping"}"#, #"{"kind":"pong","i\u0064":2,"id\u0000":1}"#, #"{"":1,"kind":"ping","id":3,"deadlines":1}"#,
            #"{"kind":"response","id":1,"status":200,"b\u006fdy":[1],"body":{"x":"\u00e9"}}"#, #"{"kind":"hello","version":1,"peer":"p"}"#,
            #"{"kind":"request","id":1.0,"method":"GET","path":"/","params":[]}"#, #"{"kind":"request","id":-1,"method":"GET","path":"/"}"#,
            #"{"kind":"response","status":200,"id":1,"body":{"a":1},"body":[2]}"#, #"{"kind":"nope"}"#, #"{}"#, #"[]"#, #"1"#, #""#,
            #"{"kind":"ping" "id":1}"#, #"{"kind":"ping","id":1} x"#, #"{"kind"}"#, #"{,"kind":"ping"}"#, #"  {"kind" : "pong" , "id" : 4 }  "#,
        ].map { Array($0.utf8) }
        // Keys around the quick path of short plain keys: raw control bytes, non-ASCII, 8 and 9
        // bytes, unterminated.
        frames += ["{\"kind\":\"ping\",\"id\":1,\"a\u{01}\":2}", "{\"k\u{ef}nd\":\"ping\",\"id\":1}", "{\"kïnd\":\"ping\",\"kind\":\"pong\",\"id\":1}",
                   #"{"kind":"ping","id":1,"deadline":2,"deadline1":3}"#, #"{"kind":"ping","id":1,"#, #"{"kind"#, #"{"kindkind":1}"#]
            .map { Array($0.utf8) }
        // `caller` as request frames carry it (read by a quick path) and its near misses.
        let callers = [
            #"{"id":1,"role":2}"#, #"{"id":-0,"role":0}"#, #"{"id":-7,"role":123456789012345678}"#, #"{"id":1234567890123456789,"role":1}"#,
            #"{"id":01,"role":1}"#, #"{"id":1.5,"role":1}"#, #"{"id":1e2,"role":1}"#, #"{"id":1,"role":2,"id":3}"#, #"{"id":1 ,"role":2}"#,
            #"{"role":2,"id":1}"#, #"{"id":1,"role":}"#, #"{"id":-,"role":1}"#, #"{"id":1,"role":2"#, #"{"id":"1","role":2}"#,
            #"{"id":1,"role":2}}"#, #"{"id":1,"role":2} "#, #"{"id":99999999999999999999,"role":1}"#, #"{"id":1,"role":-}"#,
        ]
        for caller in callers {
            for tail in [#","rid":"r"}"#, "}", ""] {
                frames.append(Array(#"{"kind":"request","id":3,"method":"GET","path":"/","caller":"#.utf8) + Array(caller.utf8) + Array(tail.utf8))
            }
        }
        var accepted = 0, refused = 0
        for frame in frames {
            let text = String(decoding: frame.prefix(200), as: UTF8.self).debugDescription
            let expected = treeDecoded(frame)
            let got = Result { () throws(MessageError) -> JSON in try Message.decode(frame).encode() }
            switch (expected, got) {
            case (.success(let a), .success(let b)):
                XCTAssertEqual(a, b, text)
                accepted += 1
            case (.failure(let a), .failure(let b)):
                XCTAssertEqual(a.reason, b.reason, text)
                refused += 1
            default:
                XCTFail("the tree gave \(expected), the reader \(got) for \(text)")
            }
        }
        XCTAssertGreaterThan(accepted, 1000)
        XCTAssertGreaterThan(refused, 500)
    }

    /// Request and response frames as their writers lay them out are read by the quick paths
    /// (`Message.quickRequest`, `quickResponse`); the frames, every one-byte change of them and
    /// the generator's mutations decode exactly as the tree says (the quick path took them, or
    /// it declined and the general path did).
    func testQuickPathsTakeTheWritersFramesAndAgreeWithTheTree() throws {
        let params: JSONObject = ["name": "a\"b\\c\u{1}/é", "ids": [1, 2.5, nil, true], "nested": ["k": ["x": "y"]]]
        let requests = [
            WireRequest(id: 7, method: "GET", path: "/api/user/group", params: JSONObject(), caller: Caller(id: 1, role: 2), requestID: "gw-1",
                        deadline: 1_700_000_000_000, session: "tok\"en", trace: "trace-1"),
            WireRequest(id: 12, method: "POST", path: "/api/x?\u{7F}", params: params, caller: nil, requestID: "", deadline: 0),
            WireRequest(id: 0, method: "PUT", path: "/中文", params: params, caller: Caller(id: -3, role: 0), requestID: "key:1:k",
                        deadline: 5, session: nil, trace: "t"),
            WireRequest(id: 3, method: "GET", path: "/", params: ["a": 1], caller: nil, requestID: "r", deadline: 9, session: "s", trace: nil),
        ]
        let responses = [
            WireResponse(id: 4, status: 200, body: ["status": 0, "data": ["x", 1, nil]]),
            WireResponse(id: 0, status: 0, body: nil),
            WireResponse(id: 123_456_789, status: 502, body: "é\u{0}"),
        ]
        var frames: [[UInt8]] = []
        for request in requests {
            let payload = Array(Message.request(request).frame().dropFirst(FrameEncoder.headerLength))
            let quick = payload.withUnsafeBufferPointer { Message.quickRequest($0) }
            XCTAssertNotNil(quick, String(decoding: payload, as: UTF8.self))
            XCTAssertEqual(quick.map { Message.request($0).frame() }, Message.request(request).frame())
            frames.append(payload)
        }
        for response in responses {
            let payload = Array(Message.response(response).frame().dropFirst(FrameEncoder.headerLength))
            for checking in [true, false] {
                let quick = payload.withUnsafeBufferPointer { Message.quickResponse($0, checkingBody: checking) }
                XCTAssertEqual(quick?.bodyBytes, response.bodyBytes, String(decoding: payload, as: UTF8.self))
                XCTAssertEqual(quick?.status, response.status)
                XCTAssertEqual(quick?.id, response.id)
            }
            frames.append(payload)
        }
        // Near misses: each byte replaced by bytes that matter to the layout, one byte dropped,
        // whitespace inserted; and random mutations.
        var generator = DocumentGenerator(seed: 0x0B1C_C0DE)
        var variants: [[UInt8]] = []
        for frame in frames {
            for position in frame.indices {
                for byte in Array(#" "\{}-0.e,:"#.utf8) + [0x80, 0x00] where frame[position] != byte {
                    var changed = frame
                    changed[position] = byte
                    variants.append(changed)
                }
                var shorter = frame
                shorter.remove(at: position)
                variants.append(shorter)
                var spaced = frame
                spaced.insert(0x20, at: position)
                variants.append(spaced)
            }
            for _ in 0..<200 { variants.append(generator.mutated(frame)) }
        }
        var quickAccepted = 0
        for frame in frames + variants {
            let text = String(decoding: frame.prefix(300), as: UTF8.self).debugDescription
            let expected = treeDecoded(frame)
            // Checked: the tree is the reference; and the body's bytes (which `encode` reads into a
            // tree) are the general path's. Unchecked bodies are not read (release builds): there
            // the general path is the reference.
            for checking in [true, false] {
                let got = frame.withUnsafeBufferPointer { Message.decode(inPlace: $0, checkingBody: checking) }
                let general = frame.withUnsafeBufferPointer { Message.decodeScanning($0, checkingBody: checking) }
                XCTAssertEqual(try? got.get().frame(), try? general.get().frame(), text)
                let reference = checking ? expected : general.map { $0.encode() }
                switch (reference, got.map { $0.encode() }) {
                case (.success(let a), .success(let b)):
                    XCTAssertEqual(a, b, text)
                case (.failure(let a), .failure(let b)):
                    XCTAssertEqual(a.reason, b.reason, text)
                default:
                    XCTFail("checking bodies \(checking): expected \(reference), the reader gave \(got) for \(text)")
                }
            }
            if frame.withUnsafeBufferPointer({ Message.quickRequest($0) }) != nil { quickAccepted += 1 }
        }
        XCTAssertGreaterThan(quickAccepted, 100, "near misses that are still the writer's layout (a changed letter in a string)")
    }

    /// A response frame fed to the frame decoder one byte at a time decodes to the body bytes
    /// the service wrote, whatever its position among the members.
    func testResponseBodyBytesSurviveOneByteAtATime() throws {
        let body: JSON = ["status": 0, "msg": "查询成功", "data": [["id": 1, "name": "a\"b\\c\u{1}"], ["id": 2, "name": nil]], "page_info": ["total": 2]]
        let response = WireResponse(id: 42, status: 200, body: body, headers: [(name: "set-cookie", value: "a=b")])
        let written = Message.response(response).frame()
        let bodyFirst = FrameEncoder.encode(Array(#"{"body":"#.utf8) + body.serialized() + Array(#","status":200,"kind":"response","id":42,"headers":{"set-cookie":"a=b"}}"#.utf8))
        for stream in [written, bodyFirst] {
            var decoder = FrameDecoder()
            var payloads: [[UInt8]] = []
            for byte in stream {
                decoder.feed([byte])
                while let payload = try decoder.nextFrame() { payloads.append(payload) }
            }
            XCTAssertEqual(payloads.count, 1)
            guard case .response(let decoded) = try Message.decode(payloads[0]) else { return XCTFail("not a response") }
            XCTAssertEqual(decoded.id, 42)
            XCTAssertEqual(decoded.status, 200)
            XCTAssertEqual(decoded.bodyBytes, body.serialized())
            XCTAssertEqual(decoded.body, body)
            XCTAssertEqual(decoded.headers.map(\.name), ["set-cookie"])
            XCTAssertEqual(decoded.headers.map(\.value), ["a=b"])
        }
        // What the service writes is the envelope with the body last, as one JSON object.
        let payload = Array(written.dropFirst(FrameEncoder.headerLength))
        XCTAssertTrue(String(decoding: payload, as: UTF8.self).hasPrefix(#"{"kind":"response","id":42,"status":200,"headers":{"set-cookie":"a=b"},"body":{"#))
        XCTAssertEqual(try JSONParser.parse(payload)["body"], body)
    }

    func testAResponseWithoutBodyHasANullBody() throws {
        guard case .response(let decoded) = try Message.decode(Array(#"{"kind":"response","id":1,"status":204}"#.utf8)) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(decoded.bodyBytes, Array("null".utf8))
        XCTAssertEqual(decoded.body, .null)
    }

    /// A malformed body fails the frame exactly as before (a protocol error for the connection),
    /// with the parser's reason; nesting counts from the frame, as for the full parser.
    func testMalformedBodiesFailTheFrame() throws {
        let bad = [#"{"a":}"#, #"[1,]"#, #""\ud800""#, "\"\u{01}\"", #"{"a":1"#, "1e400", #"[01]"#, "tru", #""\x""#]
        for body in bad {
            let payload = Array(#"{"kind":"response","id":1,"status":200,"body":"#.utf8) + Array(body.utf8) + Array("}".utf8)
            XCTAssertThrowsError(try Message.decode(payload), body) { error in
                XCTAssertTrue("\(error)".hasPrefix("frame is not valid JSON: "), "\(error)")
            }
        }
        let invalidUTF8 = Array(#"{"kind":"response","id":1,"status":200,"body":""#.utf8) + [0xC0, 0x80] + Array("\"}".utf8)
        XCTAssertThrowsError(try Message.decode(invalidUTF8))
        XCTAssertThrowsError(try Message.decode(Array("[]".utf8))) { XCTAssertEqual("\($0)", "frame is not a JSON object") }
        // Depth: the frame is level 1, so the body may open 63 more containers, not 64.
        let deep = { (n: Int) in Array(#"{"kind":"response","id":1,"status":200,"body":"#.utf8) + Array(repeating: UInt8(ascii: "["), count: n) + Array(repeating: UInt8(ascii: "]"), count: n) + Array("}".utf8) }
        XCTAssertNoThrow(try Message.decode(deep(JSONParser.defaultMaxDepth - 1)))
        XCTAssertThrowsError(try Message.decode(deep(JSONParser.defaultMaxDepth)))
        XCTAssertThrowsError(try JSONParser.parse(deep(JSONParser.defaultMaxDepth)), "the full parser agrees")
    }

    /// Release builds take a response's body, the last member, as the rest of the frame without
    /// reading it (`Message.checksBodies`): the same message as the checked decode for every
    /// frame a service writes; the members before it are still checked; an object or array
    /// body cut short is still refused; what is inside is passed on as written.
    func testUncheckedBodiesAreTheBytesTheServiceWrote() throws {
        let bodies: [JSON] = [["status": 0, "msg": "查询成功", "data": [["id": 1, "name": "a\"b\\c\u{1}}"], ["id": 2, "name": nil]]],
                              [1, "]", [true]], "}", 0, -2.5, .null, true, [:], []]
        for body in bodies {
            for headers in [[], [(name: "set-cookie", value: "a=b}")]] {
                let payload = Array(Message.response(WireResponse(id: 9, status: 201, body: body, headers: headers)).frame().dropFirst(FrameEncoder.headerLength))
                let checked = payload.withUnsafeBufferPointer { Message.decode(inPlace: $0, checkingBody: true) }
                let unchecked = payload.withUnsafeBufferPointer { Message.decode(inPlace: $0, checkingBody: false) }
                guard case .success(.response(let a)) = checked, case .success(.response(let b)) = unchecked else {
                    return XCTFail("\(body): \(checked) / \(unchecked)")
                }
                XCTAssertEqual(b.bodyBytes, body.serialized(), "\(body)")
                XCTAssertEqual(a.bodyBytes, b.bodyBytes)
                XCTAssertEqual([a.id, UInt64(a.status)], [b.id, UInt64(b.status)])
                XCTAssertEqual(a.headers.map(\.value), b.headers.map(\.value))
            }
        }
        func unchecked(_ text: String) -> Result<Message, MessageError> {
            Array(text.utf8).withUnsafeBufferPointer { Message.decode(inPlace: $0, checkingBody: false) }
        }
        // Whitespace around the body and after the frame.
        guard case .success(.response(let spaced)) = unchecked(#"{"kind":"response","id":1,"status":200,"body": {"a":1} } "#) else { return XCTFail("spaced") }
        XCTAssertEqual(spaced.bodyBytes, Array(#"{"a":1}"#.utf8))
        // Broken members before the body, or an object or array cut short: refused as checked.
        for broken in [#"{"kind":"response","id":1,"status":,"body":{}}"#, #"{"kind":"response","id":1,"status":200,"body":{"a":1}"#,
                       #"{"kind":"response","id":1,"status":200,"body":[1,2}"#, #"{"kind":"response","id":1,"status":200,"body":}"#] {
            guard case .failure(let error) = unchecked(broken) else { XCTFail("accepted \(broken)"); continue }
            XCTAssertTrue(error.reason.hasPrefix("frame is not valid JSON: "), "\(broken): \(error)")
        }
        // What is inside is not read: the service's serializer is what makes it valid.
        guard case .success(.response(let passed)) = unchecked(#"{"kind":"response","id":1,"status":200,"body":{"a":}}"#) else { return XCTFail("inside") }
        XCTAssertEqual(passed.bodyBytes, Array(#"{"a":}"#.utf8))
    }

    /// Request frames are written straight to bytes: the same bytes as the envelope built as a
    /// tree and serialized, with and without the optional members, escapes and nested params.
    func testRequestFramesAreTheTreesBytes() throws {
        let params: JSONObject = ["name": "a\"b\\c\u{1}/é", "ids": [1, 2.5, nil, true], "nested": ["k": ["x": "y"]]]
        let requests = [
            WireRequest(id: 7, method: "GET", path: "/api/user/group", params: JSONObject(), caller: Caller(id: 1, role: -2), requestID: "gw-1",
                        deadline: 1_700_000_000_000, session: "tok\"en", trace: "trace-1"),
            WireRequest(id: 1 << 62, method: "POST", path: "/api/x?\u{7F}", params: params, caller: nil, requestID: "", deadline: 0),
            WireRequest(id: 0, method: "P\u{0}T", path: "/中文", params: params, caller: Caller(id: Int64.min, role: Int64.max), requestID: "key:1:k",
                        deadline: -1, session: nil, trace: "t"),
        ]
        for request in requests {
            let written = Message.request(request).frame()
            XCTAssertEqual(written, FrameEncoder.encode(Message.request(request).encode()))
            guard case .request(let decoded) = try Message.decode(Array(written.dropFirst(FrameEncoder.headerLength))) else {
                return XCTFail("not a request")
            }
            XCTAssertEqual(decoded.id, request.id)
            XCTAssertEqual(decoded.params, request.params)
            XCTAssertEqual(decoded.caller, request.caller)
            XCTAssertEqual(decoded.session, request.session)
            XCTAssertEqual(decoded.trace, request.trace)
        }
    }

    /// Response frames without headers (their head written straight into the frame) are the
    /// envelope built as a tree and serialized, for every kind of id and status, small and large
    /// bodies.
    func testResponseFramesWithoutHeadersAreTheTreesBytes() throws {
        let ids: [UInt64] = [0, 1, 9, 10, 99, 100, 12_345, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max, 1 << 62]
        let statuses = [0, 1, 200, 404, 502, 1_000_000, -1, Int(Int64.min)]
        for id in ids {
            for status in statuses {
                for body: JSON in [nil, ["data": "x"], ["data": .string(String(repeating: "a", count: StreamConnection.ownBufferBytes))]] {
                    let response = WireResponse(id: id, status: status, body: body)
                    let expected = FrameEncoder.encode(Message.response(response).encode())
                    XCTAssertEqual(Message.response(response).frame(), expected, "id \(id), status \(status)")
                    XCTAssertEqual(Array(response.framePieces().joined()), expected, "id \(id), status \(status), pieces")
                }
            }
        }
    }

    /// Response frames with several headers (a repeated name stays repeated, as before).
    func testResponseFrameHeadersAreWrittenInOrder() throws {
        let response = WireResponse(id: 3, status: 409, body: ["status": 1],
                                    headers: [(name: "set-cookie", value: "a=\"1\""), (name: "event-seq", value: "12"), (name: "set-cookie", value: "b=2")])
        let payload = String(decoding: Message.response(response).frame().dropFirst(FrameEncoder.headerLength), as: UTF8.self)
        XCTAssertEqual(payload, #"{"kind":"response","id":3,"status":409,"headers":{"set-cookie":"a=\"1\"","event-seq":"12","set-cookie":"b=2"},"body":{"status":1}}"#)
    }

    /// A large body is written from its own buffer: the pieces are the one frame's bytes, which
    /// decode to the same answer; a small one stays one buffer.
    func testFramePiecesAreTheFrame() throws {
        for size in [10, StreamConnection.ownBufferBytes - 1, StreamConnection.ownBufferBytes, 50_000] {
            let text = String(repeating: "é", count: size / 2)
            let response = WireResponse(id: 9, status: 200, body: ["data": .string(text)], headers: [(name: "set-cookie", value: "a=1")])
            let pieces = response.framePieces()
            XCTAssertEqual(pieces.count, response.bodyBytes.count >= StreamConnection.ownBufferBytes ? 3 : 1, "body of \(response.bodyBytes.count) bytes")
            let joined = Array(pieces.joined())
            XCTAssertEqual(joined, Message.response(response).frame())
            var decoder = FrameDecoder()
            decoder.feed(joined)
            guard case .response(let decoded)? = try decoder.nextFrame().map({ try Message.decode($0) }) else { return XCTFail("not a response") }
            XCTAssertEqual(decoded.bodyBytes, response.bodyBytes)
            XCTAssertEqual(decoded.id, 9)
        }
    }

    /// The tree API still works on a response: reading and replacing `body`.
    func testBodyCanBeReadAndReplaced() {
        var response = WireResponse(status: 200, body: ["a": 1])
        XCTAssertEqual(response.body["a"], 1)
        response.body = ["b": "x"]
        XCTAssertEqual(response.bodyBytes, Array(#"{"b":"x"}"#.utf8))
        XCTAssertEqual(Message.response(response).encode()["body"], ["b": "x"])
    }
}
