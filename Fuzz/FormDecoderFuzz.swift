// libFuzzer target: FormDecoder (Sources/Gateway/FormDecoder.swift).
// Invariants beyond "no crash":
// - decoding never yields more pairs than '&'-separated parts;
// - a pair re-encoded (every byte percent-escaped) decodes back to itself;
// - merge: every value is a string or an array of strings, nothing is lost (the number of
//   values equals the number of pairs with a non-empty name), an array appears exactly when
//   a name repeats or is spelled `name[]`.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    let text = String(decoding: input, as: UTF8.self)
    let pairs = FormDecoder.pairs(text)
    invariant(pairs.count <= text.utf8.split(separator: UInt8(ascii: "&")).count, "\(pairs.count) pairs")

    func escaped(_ string: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in string.utf8 { out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }
    let reencoded = pairs.map { "\(escaped($0.0))=\(escaped($0.1))" }.joined(separator: "&")
    let again = FormDecoder.pairs(reencoded).filter { !($0.0.isEmpty && $0.1.isEmpty) }
    let expected = pairs.filter { !($0.0.isEmpty && $0.1.isEmpty) }
    invariant(again.count == expected.count && zip(again, expected).allSatisfy { $0 == $1 }, "re-encoded pairs differ")

    var params = JSONObject()
    FormDecoder.merge(pairs, into: &params)
    var nameCounts: [String: Int] = [:]
    var bracketed: Set<String> = []
    for (rawName, _) in pairs {
        var name = rawName
        if name.hasSuffix("[]") { name = String(name.dropLast(2)); bracketed.insert(name) }
        if !name.isEmpty { nameCounts[name, default: 0] += 1 }
    }
    var values = 0
    for (name, value) in params {
        invariant(!name.isEmpty && nameCounts[name] != nil, "unexpected name \(name)")
        switch value {
        case .string:
            values += 1
            invariant(nameCounts[name] == 1 && !bracketed.contains(name), "\(name) should be an array")
        case .array(let items):
            invariant(items.allSatisfy { $0.stringValue != nil }, "array of non-strings")
            invariant(items.count == nameCounts[name], "\(name): \(items.count) values of \(nameCounts[name]!)")
            invariant(items.count > 1 || bracketed.contains(name), "\(name) should be a string")
            values += items.count
        default:
            invariant(false, "value of \(name) is \(value)")
        }
    }
    invariant(params.count == nameCounts.count, "\(params.count) names, expected \(nameCounts.count)")
    invariant(values == nameCounts.values.reduce(0, +), "values lost")
    return 0
}
