// libFuzzer target: Message.decode (Sources/WireProtocol/Message.swift), the frames' envelope.
// Invariants beyond "no crash":
// - the quick paths for frames in their writer's layout (`quickRequest`, `quickResponse`)
//   change nothing: `decode(inPlace:)` gives what the general reader (`decodeScanning`) gives,
//   the same message (compared as its frame's bytes) or the same error, with bodies checked
//   and unchecked;
// - for the input itself, and for the input as a request's `params` and as a response's `body`
//   in frames laid out exactly as the writers lay them out (so the quick paths read it);
// - a message decoded from a frame is written back (`frame()`) to a frame that decodes to it.

private let requestHead = Array(#"{"kind":"request","id":7,"method":"GET","path":"/api/x","params":"#.utf8)
private let requestTail = Array(#","caller":{"id":1,"role":2},"rid":"gw-1","deadline":1700000000000,"session":"s","trace":"t"}"#.utf8)
private let responseHead = Array(#"{"kind":"response","id":7,"status":200,"body":"#.utf8)
private let responseTail = Array("}".utf8)

private func outcome(_ result: Result<Message, MessageError>) -> Result<[UInt8], MessageError> {
    result.map { $0.frame() }
}

private func check(_ frame: [UInt8]) {
    for checking in [true, false] {
        let (got, general) = frame.withUnsafeBufferPointer { payload in
            (outcome(Message.decode(inPlace: payload, checkingBody: checking)), outcome(Message.decodeScanning(payload, checkingBody: checking)))
        }
        switch (got, general) {
        case (.success(let a), .success(let b)):
            invariant(a == b, "quick and general paths built different messages (checking \(checking))")
            let again = Array(a.dropFirst(FrameEncoder.headerLength))
            let round = again.withUnsafeBufferPointer { outcome(Message.decode(inPlace: $0, checkingBody: checking)) }
            invariant((try? round.get()) == a, "a written frame does not decode to what was written")
        case (.failure(let a), .failure(let b)):
            invariant(a.reason == b.reason, "different errors: '\(a.reason)' / '\(b.reason)'")
        default:
            invariant(false, "one path accepted what the other refused (checking \(checking))")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    check(input)
    check(requestHead + input + requestTail)
    check(responseHead + input + responseTail)
    return 0
}
