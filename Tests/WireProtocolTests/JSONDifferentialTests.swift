import Foundation
import XCTest

@testable import WireProtocol

/// Differential check of `JSONParser` against Foundation's `JSONSerialization` on a generated
/// corpus (valid documents written with varied escapes, whitespace and tricky numbers; the same
/// with random byte mutations; hand-picked edge cases; the fuzzer's seed corpus).
///
/// What one accepts the other must accept with the same value, except where our documented
/// limits (JSONParser's doc comment) and Foundation's leniencies differ:
/// - nesting deeper than 64 (ours) but within Foundation's 512: only Foundation accepts;
/// - trailing commas `[1,]`, `{"a":1,}` and a leading UTF-8 BOM: Foundation accepts, we refuse;
/// - input starting with NUL bytes: Foundation guesses UTF-16/32; we read UTF-8 only and refuse;
/// - integers beyond `Int64`: we give the nearest `Double`, Foundation an exact (U)Int64 or
///   `NSDecimalNumber`; numbers with more digits than a `Double` holds: Foundation gives an
///   `NSDecimalNumber`, and some integers beyond 2^53 (large negative ones, `Int64.min`) a
///   `Double` where we keep the exact `Int64` — compared by the decimal's text, else within
///   1e-14 relative (its `doubleValue` is not correctly rounded);
/// - keys that differ only by Unicode normalization (é vs e + U+0301) are one key to
///   Foundation (`String` equality) and two to us (bytes); the generator avoids them.
/// Both refuse numbers beyond `Double` (1e400), lone surrogates, invalid UTF-8; both let the
/// last of duplicate keys win.
final class JSONDifferentialTests: XCTestCase {
    func testAgreesWithJSONSerialization() throws {
        var generator = DocumentGenerator(seed: 0x5EED_1234)
        var inputs: [[UInt8]] = Self.edgeCases
        for _ in 0..<1500 {
            let document = generator.document()
            inputs.append(document)
            inputs.append(generator.mutated(document))
        }
        inputs += Self.seedCorpus()

        var agreedAccept = 0, agreedReject = 0, documentedDifferences = 0
        for input in inputs {
            let ours: JSON?
            var ourError: JSONParseError?
            do { ours = try JSONParser.parse(input) } catch { ours = nil; ourError = error }
            let theirs = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
            let text = String(decoding: input.prefix(200), as: UTF8.self).debugDescription

            if input.prefix(4).contains(0) || input.starts(with: [0xEF, 0xBB, 0xBF]) || input.starts(with: [0xFE, 0xFF]) || input.starts(with: [0xFF, 0xFE]) {
                XCTAssertNil(ours, "UTF-8 only, no BOM: \(text)")
                documentedDifferences += 1
                continue
            }
            switch (ours, theirs) {
            case (let ours?, let theirs?):
                XCTAssertTrue(Self.matches(ours, theirs), "different values for \(text): \(ours.jsonString) vs \(theirs)")
                agreedAccept += 1
            case (let ours?, nil):
                XCTFail("only we accept \(text) as \(ours.jsonString)")
            case (nil, _?):
                let reason = ourError?.reason ?? ""
                let documented = reason.contains("nesting depth") || reason.contains("trailing comma")
                XCTAssertTrue(documented, "only Foundation accepts \(text) (we said: \(reason))")
                documentedDifferences += 1
            case (nil, nil):
                agreedReject += 1
            }
        }
        // The corpus must exercise both sides, or the comparison proves nothing.
        XCTAssertGreaterThan(agreedAccept, 1000)
        XCTAssertGreaterThan(agreedReject, 500)
        print("JSON differential: \(inputs.count) inputs, \(agreedAccept) accepted by both, \(agreedReject) refused by both, \(documentedDifferences) documented differences")
    }

    /// Same value: numbers by value (integers exactly), strings by Unicode scalars (not by
    /// `String`'s canonical equivalence), objects by key.
    static func matches(_ ours: JSON, _ theirs: Any) -> Bool {
        switch ours {
        case .null:
            return theirs is NSNull
        case .bool(let value):
            return (theirs as? Bool) == value
        case .int(let value):
            guard let number = theirs as? NSNumber else { return false }
            if !(number is NSDecimalNumber), number.int64Value == value, number.doubleValue == Double(value) { return true }
            // Foundation reads some integers beyond 2^53 (large negative ones, Int64.min) as a
            // Double or an NSDecimalNumber: the same number, not the same bits.
            return value.magnitude > 1 << 53 && abs(number.doubleValue - Double(value)) <= 1e-15 * abs(Double(value))
        case .double(let value):
            guard let number = theirs as? NSNumber else { return false }
            if number is NSDecimalNumber {
                // Its text is exact (up to 38 digits); its `doubleValue` can be off by a few ulps.
                if let exact = Double(number.stringValue), exact == value { return true }
                return abs(number.doubleValue - value) <= 1e-14 * abs(value)
            }
            return number.doubleValue == value
        case .string(let value):
            guard let string = theirs as? String else { return false }
            return Array(string.unicodeScalars) == Array(value.unicodeScalars)
        case .array(let elements):
            guard let array = theirs as? [Any], array.count == elements.count else { return false }
            return zip(elements, array).allSatisfy { matches($0, $1) }
        case .object(let object):
            guard let dictionary = theirs as? [String: Any], dictionary.count == object.count else { return false }
            return object.allSatisfy { key, value in dictionary[key].map { matches(value, $0) } ?? false }
        }
    }

    static let edgeCases: [[UInt8]] = [
        "1e400", "-1e400", "1e-400", "1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "2.4703282292062327e-324",
        "-0", "-0.0", "0e0", "0E-0", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
        "0.1", "1e22", "1e23", "9007199254740993", "0.30000000000000004", "1E+2", "01", "1.", ".5", "+1", "-", "1e", "1e+",
        "NaN", "Infinity", "-Infinity", "[1,]", "{\"a\":1,}", "[,1]", "{,}", "[1 2]", "{\"a\" 1}", "{1:2}", "{\"a\":1,\"a\":2}",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud83d\\ude00\"", "\"\\u0000\"", "\"\\x41\"", "\"\\'\"", "\"a\tb\"",
        "\"\\/\"", "\"\u{7F}\"", "\u{C}1", "\u{A0}1", "1 ", " 1", "[] []", "", " ", "nul", "truee", "[true,false,null]",
        String(repeating: "[", count: 64) + String(repeating: "]", count: 64),
        String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
        String(repeating: "{\"a\":", count: 64) + "1" + String(repeating: "}", count: 64),
        String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65),
    ].map { Array($0.utf8) } + [
        [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xFF, 0x22],
        [0x22, 0xE4, 0xB8, 0x22], [0xEF, 0xBB, 0xBF, 0x31], [0x31, 0x00], [0x00, 0x31], [0x5B, 0x00, 0x5D], [0x22, 0x00, 0x22],
    ]

    /// The fuzzer's seed corpus for the JSON parser (Fuzz/corpus/JSONParser), when present.
    static func seedCorpus() -> [[UInt8]] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/JSONParser").standardized
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().compactMap { FileManager.default.contents(atPath: folder.appendingPathComponent($0).path).map { Array($0) } }
    }
}

/// Random JSON texts written by hand (not by our serializer), so the spellings vary.
struct DocumentGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func document() -> [UInt8] {
        var out: [UInt8] = []
        space(&out)
        value(&out, depth: 0)
        space(&out)
        return out
    }

    mutating func space(_ out: inout [UInt8]) {
        if below(3) == 0 { out += Array(pick([" ", "\n", "\t", "\r\n", "  "]).utf8) }
    }

    mutating func value(_ out: inout [UInt8], depth: Int) {
        switch below(depth > 4 ? 6 : 9) {
        case 0: out += Array(pick(["null", "true", "false"]).utf8)
        case 1, 2: number(&out)
        case 3, 4, 5: string(&out)
        case 6, 7:
            out.append(UInt8(ascii: "["))
            let count = below(5)
            for index in 0..<count {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                space(&out); value(&out, depth: depth + 1); space(&out)
            }
            out.append(UInt8(ascii: "]"))
        default:
            out.append(UInt8(ascii: "{"))
            let count = below(5)
            for index in 0..<count {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                space(&out)
                // Few distinct keys, so duplicates happen; none differ only by normalization.
                if below(2) == 0 { out += Array("\"\(pick(["id", "name", "a", "名字", "😀", "a\\u0062"]))\"".utf8) } else { string(&out) }
                space(&out); out.append(UInt8(ascii: ":")); space(&out)
                value(&out, depth: depth + 1)
                space(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    mutating func number(_ out: inout [UInt8]) {
        if below(3) == 0 {
            out += Array(pick(["0", "-0", "1", "-1", "0.5", "1e-7", "2.5E+3", "9223372036854775807", "-9223372036854775808",
                               "9223372036854775808", "1.7976931348623157e308", "5e-324", "123456789.123456789",
                               "0.1", "100000000000000000000", "1e21", "3.141592653589793238462643383279"]).utf8)
            return
        }
        var text = below(4) == 0 ? "-" : ""
        let digits = below(20) + 1
        text += String(below(9) + 1)
        for _ in 1..<digits { text += String(below(10)) }
        if below(2) == 0 { text += "."; for _ in 0...below(17) { text += String(below(10)) } }
        if below(3) == 0 { text += pick(["e", "E"]) + pick(["", "+", "-"]) + String(below(320)) }
        out += Array(text.utf8)
    }

    mutating func string(_ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for _ in 0..<below(8) {
            switch below(12) {
            case 0: out += Array(pick(["\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r"]).utf8)
            case 1: out += Array(String(format: "\\u%04x", below(0xD800)).utf8)
            case 2: out += Array(String(format: "\\u%04X\\u%04x", 0xD800 + below(0x400), 0xDC00 + below(0x400)).utf8)
            case 3: out += Array(pick(["张三", "客户", "😀", "é", "Ω", "\u{FFFD}", "\u{10FFFF}", "\u{2028}"]).utf8)
            default: out.append(UInt8(ascii: "a") + UInt8(below(26)))
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// One to three random byte edits: delete, insert or replace (with bytes JSON cares about), or truncate.
    mutating func mutated(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        let interesting: [UInt8] = Array("{}[],:\"\\-+.0eE1 \tnu".utf8) + [0x00, 0x0A, 0x1F, 0x7F, 0x80, 0xC0, 0xED, 0xF4, 0xFF]
        for _ in 0...below(3) {
            guard !bytes.isEmpty else { break }
            let at = below(bytes.count)
            switch below(4) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(pick(interesting), at: at)
            case 2: bytes[at] = pick(interesting)
            default: bytes.removeLast(below(min(bytes.count, 4)) + 1)
            }
        }
        return bytes
    }
}
