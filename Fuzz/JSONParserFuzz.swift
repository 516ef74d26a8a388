// libFuzzer target: JSONParser + JSON + JSONSerializer (Sources/WireProtocol/JSON*.swift).
// Invariants beyond "no crash":
// - parse → serialize → parse gives the same value, and serializing that gives the same bytes;
// - the serialized form is ASCII-clean of raw control characters;
// - the [UInt8], raw-pointer and String entry points agree;
// - a document accepted with a lower depth limit is accepted with the default one, same value;
// - an error's offset lies within the input.

private func parsed(_ bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) -> Result<JSON, JSONParseError> {
    do throws(JSONParseError) {
        return .success(try JSONParser.parse(bytes, maxDepth: maxDepth))
    } catch {
        return .failure(error)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    let result = parsed(input)

    let viaPointer: Result<JSON, JSONParseError> = input.withUnsafeBytes { raw in
        do throws(JSONParseError) { return .success(try JSONParser.parse(raw)) } catch { return .failure(error) }
    }
    invariant(viaPointer == result, "raw-pointer entry point differs")
    // The String entry point sees the same bytes only when they are valid UTF-8.
    let text = String(decoding: input, as: UTF8.self)
    if Array(text.utf8) == input {
        let viaString: Result<JSON, JSONParseError>
        do throws(JSONParseError) { viaString = .success(try JSONParser.parse(text)) } catch { viaString = .failure(error) }
        invariant(viaString == result, "String entry point differs")
    }

    switch result {
    case .failure(let error):
        invariant(error.offset >= 0 && error.offset <= input.count, "offset \(error.offset) outside 0…\(input.count)")
    case .success(let value):
        let serialized = value.serialized()
        invariant(!serialized.contains { $0 < 0x20 }, "raw control byte in \(String(decoding: serialized, as: UTF8.self))")
        switch parsed(serialized) {
        case .failure(let error):
            invariant(false, "re-parse of \(String(decoding: serialized, as: UTF8.self)) failed: \(error)")
        case .success(let again):
            invariant(again == value, "round trip changed \(value) into \(again)")
            invariant(again.serialized() == serialized, "serialization is not stable")
        }
        let shallow = Int(fuzzHash(input) % 8)
        if case .success(let limited) = parsed(input, maxDepth: shallow) {
            invariant(limited == value, "depth limit \(shallow) changed the value")
        }
    }
    return 0
}
