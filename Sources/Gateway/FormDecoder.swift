import WireProtocol

/// `application/x-www-form-urlencoded` and query strings, and how they become request parameters.
enum FormDecoder {
    /// Name/value pairs in order; `+` is a space; bad percent escapes are kept as typed.
    static func pairs(_ text: Substring.UTF8View) -> [(String, String)] {
        var result: [(String, String)] = []
        for part in text.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let eq = part.firstIndex(of: UInt8(ascii: "=")) {
                result.append((decode(part[..<eq]), decode(part[part.index(after: eq)...])))
            } else {
                result.append((decode(part[...]), ""))
            }
        }
        return result
    }

    static func pairs(_ text: String) -> [(String, String)] {
        pairs(Substring(text).utf8)
    }

    static func decode(_ bytes: Substring.UTF8View.SubSequence) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"),
                      let h1 = bytes.index(i, offsetBy: 1, limitedBy: bytes.endIndex), h1 < bytes.endIndex,
                      let h2 = bytes.index(i, offsetBy: 2, limitedBy: bytes.endIndex), h2 < bytes.endIndex,
                      let hi = hex(bytes[h1]), let lo = hex(bytes[h2]) {
                out.append(hi << 4 | lo)
                i = h2
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Adds pairs to `params`: a repeated key or one spelled `key[]` becomes an array of strings.
    static func merge(_ pairs: [(String, String)], into params: inout JSONObject) {
        // The usual query (`page=1&count=20`): a few names, none repeated or spelled `key[]`,
        // each one string, as below without the sets and dictionaries.
        if pairs.count <= 8, pairs.indices.allSatisfy({ i in
            let name = pairs[i].0
            return !name.isEmpty && !name.hasSuffix("[]") && !pairs[..<i].contains { $0.0 == name }
        }) {
            for (name, value) in pairs { params[name] = .string(value) }
            return
        }
        var seen: Set<String> = []
        var arrays: [String: [JSON]] = [:]
        var order: [String] = []
        for (rawName, value) in pairs {
            var name = rawName
            var forcedArray = false
            if name.hasSuffix("[]") { name = String(name.dropLast(2)); forcedArray = true }
            guard !name.isEmpty else { continue }
            if arrays[name] == nil { order.append(name); arrays[name] = [] }
            arrays[name]?.append(.string(value))
            if forcedArray || !seen.insert(name).inserted { seen.insert(name + "[]") }
        }
        for name in order {
            guard let values = arrays[name] else { continue }
            if values.count == 1 && !seen.contains(name + "[]") {
                params[name] = values[0]
            } else {
                params[name] = .array(values)
            }
        }
    }
}
