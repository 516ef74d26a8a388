// libFuzzer target: HTTPRequestParser (Sources/Gateway/HTTPRequestParser.swift).
// Invariants beyond "no crash":
// - no request body is longer than `maxBodyBytes`, no request has more than `maxHeaderCount`
//   fields, the method is a non-empty token, the version is 1.0 or 1.1, path + query = target;
// - the same bytes fed at once, in two parts, in random chunks and byte by byte give the
//   same requests and the same error;
// - a failure stays failed: later calls throw the same error, even after more bytes.

private struct Snapshot: Equatable {
    var method, target, path, query: String
    var versionMinor: Int
    var headers: [String]
    var keepAlive: Bool
    var body: [UInt8]
}

private struct Outcome: Equatable {
    var requests: [Snapshot] = []
    var error: HTTPParseError?
}

private func decode(_ input: [UInt8], in ranges: [Range<Int>], limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    feeding: for range in ranges {
        if range.count.isMultiple(of: 2) {
            parser.feed(Array(input[range]))
        } else {
            input[range].withUnsafeBytes { parser.feed($0) }
        }
        do {
            while let request = try parser.next() {
                let head = request.head
                invariant(request.body.count <= limits.maxBodyBytes, "body \(request.body.count) > \(limits.maxBodyBytes)")
                invariant(head.headers.count <= limits.maxHeaderCount, "\(head.headers.count) header fields")
                invariant(!head.method.isEmpty && !head.method.contains(" "), "method '\(head.method)'")
                invariant(head.versionMinor == 0 || head.versionMinor == 1, "version 1.\(head.versionMinor)")
                invariant(head.target.contains("?") ? head.target == head.path + "?" + head.query : head.target == head.path && head.query.isEmpty,
                          "target \(head.target) vs path \(head.path) query \(head.query)")
                invariant(head.headers.allSatisfy { $0.name == $0.name.lowercased() && !$0.name.isEmpty }, "header names")
                outcome.requests.append(Snapshot(
                    method: head.method, target: head.target, path: head.path, query: head.query,
                    versionMinor: head.versionMinor, headers: head.headers.map { "\($0.name): \($0.value)" },
                    keepAlive: head.keepAlive, body: request.body))
            }
        } catch {
            outcome.error = error
            break feeding
        }
    }
    if let error = outcome.error {
        invariant([400, 413, 431, 501, 505].contains(error.status), "status \(error.status)")
        invariant(!parser.isIdle && parser.hasStartedRequest, "a failed parser is not idle")
        for _ in 0..<2 {
            parser.feed(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            do {
                _ = try parser.next()
                invariant(false, "a failed parser returned a request")
            } catch {
                invariant(error == outcome.error, "a failed parser threw \(error), not \(outcome.error!)")
            }
        }
    } else if parser.isIdle {
        invariant(parser.bufferedByteCount == 0 && !parser.isReadingHead && parser.headAwaitingBody == nil, "idle with pending bytes")
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequestParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    let seed = fuzzHash(input)
    let all = [0..<input.count]
    let small = HTTPParserLimits(maxHeaderBytes: 256, maxBodyBytes: 64, maxHeaderCount: 6)

    for limits in [small, HTTPParserLimits()] {
        let whole = decode(input, in: all, limits: limits)
        let split = input.isEmpty ? 0 : Int(seed % UInt64(input.count + 1))
        let halves = decode(input, in: [0..<split, split..<input.count], limits: limits)
        invariant(halves == whole, "split at \(split): \(halves) vs \(whole)")
        let chunked = decode(input, in: fuzzChunks(count: input.count, seed: seed), limits: limits)
        invariant(chunked == whole, "random chunks: \(chunked) vs \(whole)")
        if input.count <= 1024 {
            let bytewise = decode(input, in: input.indices.map { $0..<($0 + 1) }, limits: limits)
            invariant(bytewise == whole, "byte by byte: \(bytewise) vs \(whole)")
        }
    }
    return 0
}
