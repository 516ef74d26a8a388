import Foundation
import XCTest

@testable import WireProtocol

final class JSONTests: XCTestCase {
    // MARK: Helpers

    private func parse(_ text: String, maxDepth: Int = 64) throws -> JSON {
        try JSONParser.parse(text, maxDepth: maxDepth)
    }

    /// Serializes, parses back, and checks the value survived unchanged.
    private func assertRoundTrip(_ value: JSON, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = value.serialized()
        do {
            let back = try JSONParser.parse(bytes)
            XCTAssertEqual(back, value, "round trip of \(value.jsonString)", file: file, line: line)
        } catch {
            XCTFail("re-parse of \(String(decoding: bytes, as: UTF8.self)) failed: \(error)", file: file, line: line)
        }
    }

    private func assertRejects(
        _ bytes: [UInt8], offset: Int, reason: String, maxDepth: Int = 64,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do throws(JSONParseError) {
            let value = try JSONParser.parse(bytes, maxDepth: maxDepth)
            XCTFail("accepted \(bytes) as \(value.jsonString)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.offset, offset, "offset for \(error)", file: file, line: line)
            XCTAssertTrue(error.reason.contains(reason), "'\(error.reason)' should contain '\(reason)'", file: file, line: line)
        }
    }

    private func assertRejects(
        _ text: String, offset: Int, reason: String, maxDepth: Int = 64,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        assertRejects(Array(text.utf8), offset: offset, reason: reason, maxDepth: maxDepth, file: file, line: line)
    }

    // MARK: Round trips

    /// `JSONSWAR.stringStopMask` finds the first byte a string scan must stop at (quote,
    /// backslash, control, non-ASCII) exactly, whatever the bytes above it: checked against a
    /// byte-by-byte scan over every position of each special byte and random neighbours.
    func testStringStopMaskFindsTheFirstSpecialByte() {
        var generator = SystemRandomNumberGenerator()
        let specials: [UInt8] = [0x22, 0x5C, 0x00, 0x01, 0x1F, 0x80, 0xE4, 0xFF]
        let plain: [UInt8] = Array(0x20...0x7E).filter { $0 != 0x22 && $0 != 0x5C }
        func isStop(_ byte: UInt8) -> Bool { byte == 0x22 || byte == 0x5C || byte < 0x20 || byte >= 0x80 }
        for _ in 0..<20_000 {
            var bytes = (0..<8).map { _ in Bool.random(using: &generator) && Bool.random(using: &generator) ? specials.randomElement(using: &generator) ?? 0 : plain.randomElement(using: &generator) ?? 0x41 }
            if Bool.random(using: &generator) { bytes[Int.random(in: 0..<8, using: &generator)] = specials.randomElement(using: &generator) ?? 0 }
            let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            let mask = JSONSWAR.stringStopMask(word)
            let expected = bytes.firstIndex(where: isStop)
            XCTAssertEqual(mask == 0 ? nil : mask.trailingZeroBitCount >> 3, expected, "\(bytes)")
        }
    }

    func testScalarsParse() throws {
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse("true"), .bool(true))
        XCTAssertEqual(try parse("false"), .bool(false))
        XCTAssertEqual(try parse("0"), .int(0))
        XCTAssertEqual(try parse("-0"), .int(0))
        XCTAssertEqual(try parse("42"), .int(42))
        XCTAssertEqual(try parse("-17"), .int(-17))
        XCTAssertEqual(try parse("1.25"), .double(1.25))
        XCTAssertEqual(try parse("1E+2"), .double(100))
        XCTAssertEqual(try parse("2e-3"), .double(0.002))
        XCTAssertEqual(try parse("1e05"), .double(100_000))
        XCTAssertEqual(try parse("\"hi\""), .string("hi"))
        XCTAssertEqual(try parse(" \t\r\n[ 1 , { } , [ ] ] \n"), .array([.int(1), .object(JSONObject()), .array([])]))
    }

    func testRoundTripScalarsAndContainers() {
        let values: [JSON] = [
            .null, true, false, 0, -1, 123_456_789, 0.5, -2.75, "", "plain",
            [], [1, "two", nil, false, [3.5]],
            .object(JSONObject()),
            ["a": 1, "b": ["c": [1, 2, ["d": nil]]], "e": []],
        ]
        for value in values { assertRoundTrip(value) }
    }

    func testUnicodeRoundTrip() throws {
        let chinese: JSON = "客户关系管理系统：合同与记录"
        let emoji: JSON = "emoji 😀👍🏽 and 👨‍👩‍👧 family"
        let mixed: JSON = ["名字": "张三", "note": "café ñ Ω", "😀": "key emoji"]
        for value in [chinese, emoji, mixed] { assertRoundTrip(value) }
        // Non-ASCII is written as raw UTF-8, not escaped.
        XCTAssertEqual(JSON.string("张三").serialized(), Array("\"张三\"".utf8))
        XCTAssertEqual(try parse("\"张三😀\""), .string("张三😀"))
    }

    func testEscapeDecoding() throws {
        XCTAssertEqual(try parse(#""\"\\\/\b\f\n\r\t""#), .string("\"\\/\u{8}\u{C}\n\r\t"))
        XCTAssertEqual(try parse(#""\u0041\u00e9\u4E2D""#), .string("Aé中"))
        XCTAssertEqual(try parse(#""\u0000""#), .string("\u{0}"))
        XCTAssertEqual(try parse(#""a\u0020b""#), .string("a b"))
        // Surrogate pair decodes to one scalar.
        let pair = try parse(#""\uD83D\uDE00""#)
        XCTAssertEqual(pair, .string("😀"))
        XCTAssertEqual(pair.stringValue?.unicodeScalars.count, 1)
        XCTAssertEqual(try parse(#""x\ud83d\ude00y""#), .string("x😀y"))
        // Escapes mixed with raw multi-byte text.
        XCTAssertEqual(try parse(#""中\n文\t😀""#), .string("中\n文\t😀"))
    }

    func testControlCharactersRoundTrip() throws {
        let all = String(String.UnicodeScalarView((0..<0x20).compactMap(Unicode.Scalar.init)))
        let value = JSON.string(all + "\"\\/\u{7F}end")
        assertRoundTrip(value)
        let text = value.jsonString
        XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 }, "control characters must be escaped: \(text)")
    }

    func testNestedRoundTrip() {
        var deep: JSON = ["leaf": "x"]
        for level in 0..<30 {
            deep = level.isMultiple(of: 2) ? [deep, .int(Int64(level))] : ["level": .int(Int64(level)), "child": deep]
        }
        assertRoundTrip(deep)
    }

    func testInt64Bounds() throws {
        XCTAssertEqual(try parse("9223372036854775807"), .int(Int64.max))
        XCTAssertEqual(try parse("-9223372036854775808"), .int(Int64.min))
        assertRoundTrip(.int(Int64.max))
        assertRoundTrip(.int(Int64.min))
        XCTAssertEqual(JSON.int(Int64.min).jsonString, "-9223372036854775808")
        XCTAssertEqual(JSON.int(Int64.max).jsonString, "9223372036854775807")

        // Just past the range: becomes a double.
        XCTAssertEqual(try parse("9223372036854775808"), .double(9_223_372_036_854_775_808.0))
        XCTAssertEqual(try parse("-9223372036854775809"), .double(-9_223_372_036_854_775_809.0))
        XCTAssertEqual(try parse("18446744073709551616"), .double(18_446_744_073_709_551_616.0))
        XCTAssertEqual(try parse("123456789012345678901234567890"), .double(1.2345678901234568e29))
        // An integral value written with a fraction or exponent is still a double.
        XCTAssertEqual(try parse("1.0"), .double(1))
        XCTAssertEqual(try parse("1e2"), .double(100))
    }

    func testDoubles() throws {
        XCTAssertEqual(try parse("1.5e300"), .double(1.5e300))
        assertRoundTrip(.double(1.5e300))

        guard case .double(let negativeZero) = try parse("-0.0") else { return XCTFail("-0.0 is a double") }
        XCTAssertEqual(negativeZero, 0)
        XCTAssertEqual(negativeZero.sign, .minus)
        XCTAssertEqual(JSON.double(-0.0).jsonString, "-0.0")
        guard case .double(let reparsed) = try JSONParser.parse(JSON.double(-0.0).serialized()) else {
            return XCTFail("-0.0 round trip")
        }
        XCTAssertEqual(reparsed.sign, .minus)

        let samples: [Double] = [
            0.1, 0.2, 1.0 / 3.0, 2.5, -1234.5678, 1e-7, .leastNonzeroMagnitude, .leastNormalMagnitude,
            1.7976931348623157e308, 123456789.123456789, 1e21, 1e22, 1e23, 4.35e-5, 9_007_199_254_740_992, 9_007_199_254_740_994,
            100, -3, 0.000001, 6.02214076e23,
        ]
        for sample in samples {
            assertRoundTrip(.double(sample))
            XCTAssertEqual(try parse(String(sample)), .double(sample), "parsing \(sample)")
        }
        XCTAssertEqual(JSON.double(2).jsonString, "2.0")
        XCTAssertEqual(JSON.double(0.1).jsonString, "0.1")
        // Long mantissas and exponents beyond the fast path are still correctly rounded.
        XCTAssertEqual(try parse("0.30000000000000004"), .double(0.30000000000000004))
        XCTAssertEqual(try parse("2.2250738585072011e-308"), .double(Double("2.2250738585072011e-308") ?? 0))
        XCTAssertEqual(try parse("9007199254740993"), .int(9_007_199_254_740_993))
        XCTAssertEqual(try parse("9007199254740993.0"), .double(9_007_199_254_740_992))
        XCTAssertEqual(try parse("1e-400"), .double(0))
    }

    func testNonFiniteDoublesSerializeAsNull() {
        XCTAssertEqual(JSON.double(.infinity).jsonString, "null")
        XCTAssertEqual(JSON.double(-.infinity).jsonString, "null")
        XCTAssertEqual(JSON.double(.nan).jsonString, "null")
        XCTAssertEqual(JSON.array([.double(.nan), 1]).jsonString, "[null,1]")
    }

    // MARK: Rejections

    func testRejectsTrailingGarbage() {
        assertRejects("[1] x", offset: 4, reason: "after the JSON value")
        assertRejects("1 2", offset: 2, reason: "after the JSON value")
        assertRejects("{}}", offset: 2, reason: "after the JSON value")
        assertRejects("nullx", offset: 4, reason: "after the JSON value")
        assertRejects("", offset: 0, reason: "unexpected end of input")
        assertRejects("   ", offset: 3, reason: "unexpected end of input")
    }

    func testRejectsBadNumbers() {
        assertRejects("01", offset: 0, reason: "leading zeros")
        assertRejects("-012", offset: 0, reason: "leading zeros")
        assertRejects("[00]", offset: 1, reason: "leading zeros")
        assertRejects("+1", offset: 0, reason: "leading '+'")
        assertRejects(".5", offset: 0, reason: "digit is required before '.'")
        assertRejects("-.5", offset: 1, reason: "expected a digit after '-'")
        assertRejects("1.", offset: 2, reason: "expected a digit after '.'")
        assertRejects("1.e5", offset: 2, reason: "expected a digit after '.'")
        assertRejects("1e", offset: 2, reason: "digit in the exponent")
        assertRejects("1e+", offset: 3, reason: "digit in the exponent")
        assertRejects("-", offset: 1, reason: "expected a digit after '-'")
        assertRejects("0x10", offset: 1, reason: "after the JSON value")
        assertRejects("NaN", offset: 0, reason: "NaN and Infinity")
        assertRejects("Infinity", offset: 0, reason: "NaN and Infinity")
        assertRejects("-Infinity", offset: 0, reason: "NaN and Infinity")
        assertRejects("[1, NaN]", offset: 4, reason: "NaN and Infinity")
        assertRejects("1e400", offset: 0, reason: "number out of range")
        assertRejects("-1e400", offset: 0, reason: "number out of range")
    }

    func testRejectsBadLiteralsAndStructure() {
        assertRejects("nul", offset: 0, reason: "expected 'null'")
        assertRejects("nan", offset: 0, reason: "expected 'null'")
        assertRejects("True", offset: 0, reason: "unexpected character 'T'")
        assertRejects("[1,]", offset: 3, reason: "trailing comma in array")
        assertRejects("{\"a\":1,}", offset: 7, reason: "trailing comma in object")
        assertRejects("[1 2]", offset: 3, reason: "expected ',' or ']'")
        assertRejects("[1", offset: 2, reason: "unexpected end of input")
        assertRejects("[", offset: 1, reason: "unexpected end of input")
        assertRejects("{\"a\" 1}", offset: 5, reason: "expected ':'")
        assertRejects("{\"a\":1 \"b\":2}", offset: 7, reason: "expected ',' or '}'")
        assertRejects("{1:2}", offset: 1, reason: "expected a string key")
        assertRejects("{'a':1}", offset: 1, reason: "expected a string key")
        assertRejects("[,1]", offset: 1, reason: "unexpected character ','")
        assertRejects([0xEF, 0xBB, 0xBF, 0x31], offset: 0, reason: "unexpected byte 0xEF")
    }

    func testRejectsBadStrings() {
        assertRejects("\"abc", offset: 0, reason: "unterminated string")
        assertRejects("[\"a\\", offset: 3, reason: "unterminated string")
        assertRejects("\"a\nb\"", offset: 2, reason: "unescaped control character 0x0A")
        assertRejects("\"a\tb\"", offset: 2, reason: "unescaped control character 0x09")
        assertRejects([0x22, 0x00, 0x22], offset: 1, reason: "unescaped control character 0x00")
        assertRejects("\"\\n\u{1F}\"", offset: 3, reason: "unescaped control character 0x1F")
        assertRejects(#""\x""#, offset: 1, reason: "invalid escape")
        assertRejects(#""ok\'""#, offset: 3, reason: "invalid escape")
        assertRejects(#""\U0041""#, offset: 1, reason: "invalid escape")
        assertRejects(#""\u12G4""#, offset: 1, reason: "expected 4 hex digits")
        assertRejects(#""\u12""#, offset: 1, reason: "expected 4 hex digits")
    }

    func testRejectsLoneSurrogates() {
        assertRejects(#""\uD83D""#, offset: 1, reason: "lone high surrogate \\uD83D")
        assertRejects(#""ab\uD83Dx""#, offset: 3, reason: "lone high surrogate")
        assertRejects(#""\uD83D\u0041""#, offset: 1, reason: "lone high surrogate")
        assertRejects(#""\uD83D\uD83D""#, offset: 1, reason: "lone high surrogate")
        assertRejects(#""\uDE00""#, offset: 1, reason: "lone low surrogate \\uDE00")
        assertRejects(#""\uDE00\uD83D""#, offset: 1, reason: "lone low surrogate")
    }

    func testRejectsInvalidUTF8() {
        assertRejects([0x22, 0xFF, 0x22], offset: 1, reason: "invalid UTF-8")
        assertRejects([0x22, 0x80, 0x22], offset: 1, reason: "invalid UTF-8")  // stray continuation
        assertRejects([0x22, 0xC0, 0x80, 0x22], offset: 1, reason: "invalid UTF-8")  // overlong NUL
        assertRejects([0x22, 0xE0, 0x80, 0x80, 0x22], offset: 2, reason: "invalid UTF-8")  // overlong
        assertRejects([0x22, 0xED, 0xA0, 0x80, 0x22], offset: 2, reason: "invalid UTF-8")  // encoded surrogate
        assertRejects([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], offset: 2, reason: "invalid UTF-8")  // > U+10FFFF
        assertRejects([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], offset: 1, reason: "invalid UTF-8")
        assertRejects([0x22, 0xE4, 0xB8, 0x22], offset: 3, reason: "invalid UTF-8")  // truncated before quote
        assertRejects([0x22, 0xE4, 0xB8], offset: 1, reason: "truncated")
        assertRejects([0x22, 0x5C, 0x6E, 0xFF, 0x22], offset: 3, reason: "invalid UTF-8")  // after an escape
        assertRejects([0xFF], offset: 0, reason: "unexpected byte 0xFF")
        // Valid four-byte sequence at the top of the range is accepted.
        XCTAssertEqual(try JSONParser.parse([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]), .string("\u{10FFFF}"))
    }

    func testDepthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        XCTAssertNoThrow(try parse(ok))
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        assertRejects(tooDeep, offset: 64, reason: "maximum nesting depth 64 exceeded")

        let objects = String(repeating: "{\"a\":", count: 3) + "1" + String(repeating: "}", count: 3)
        XCTAssertNoThrow(try parse(objects, maxDepth: 3))
        assertRejects(objects, offset: 10, reason: "maximum nesting depth 2 exceeded", maxDepth: 2)
        assertRejects("[1]", offset: 0, reason: "maximum nesting depth 0 exceeded", maxDepth: 0)
        XCTAssertEqual(try parse("7", maxDepth: 0), .int(7))
    }

    func testErrorDescription() {
        XCTAssertThrowsError(try parse("[1,]")) { error in
            XCTAssertEqual("\(error)", "trailing comma in array at byte offset 3")
        }
        XCTAssertEqual(
            JSONParseError(offset: 3, reason: "trailing comma in array"),
            JSONParseError(offset: 3, reason: "trailing comma in array"))
    }

    // MARK: Objects

    func testKeyOrderPreserved() throws {
        let value = try parse(#"{"zeta":1,"alpha":2,"mid":3,"beta":{"y":1,"x":2}}"#)
        guard let object = value.objectValue else { return XCTFail("not an object") }
        XCTAssertEqual(object.keys, ["zeta", "alpha", "mid", "beta"])
        XCTAssertEqual(object["beta"]?.objectValue?.keys, ["y", "x"])
        XCTAssertEqual(value.jsonString, #"{"zeta":1,"alpha":2,"mid":3,"beta":{"y":1,"x":2}}"#)
        XCTAssertEqual(object.map(\.key), ["zeta", "alpha", "mid", "beta"])
    }

    func testDuplicateKeysLastWinsFirstPosition() throws {
        let value = try parse(#"{"a":1,"b":2,"a":3}"#)
        XCTAssertEqual(value.objectValue?.keys, ["a", "b"])
        XCTAssertEqual(value["a"], .int(3))
        XCTAssertEqual(value.jsonString, #"{"a":3,"b":2}"#)
        // An escaped spelling of the same key is the same key.
        XCTAssertEqual(try parse(#"{"ab":1,"\u0061b":2}"#).jsonString, #"{"ab":2}"#)

        // Large objects take the hashed path.
        var text = "{"
        for index in 0..<100 { text += "\"k\(index)\":\(index)," }
        text += #""k5":"five","k99":"last","new":true}"#
        let large = try parse(text)
        guard let object = large.objectValue else { return XCTFail("not an object") }
        XCTAssertEqual(object.count, 101)
        XCTAssertEqual(object.keys.first, "k0")
        XCTAssertEqual(object.keys[5], "k5")
        XCTAssertEqual(object.keys.last, "new")
        XCTAssertEqual(object["k5"], "five")
        XCTAssertEqual(object["k99"], "last")
        XCTAssertEqual(object["k98"], 98)
    }

    func testJSONObjectAPI() {
        var object = JSONObject()
        XCTAssertTrue(object.isEmpty)
        object["b"] = 1
        object["a"] = "x"
        object["c"] = nil
        XCTAssertEqual(object.keys, ["b", "a"])
        object["b"] = 2  // replace in place
        XCTAssertEqual(object.keys, ["b", "a"])
        XCTAssertEqual(object["b"], 2)
        object["b"] = nil  // remove
        XCTAssertEqual(object.keys, ["a"])
        object.append("z", .null)
        object.append("y", [1, 2])
        XCTAssertEqual(object.count, 3)
        XCTAssertEqual(object.keys, ["a", "z", "y"])
        XCTAssertEqual(object.values, ["x", .null, [1, 2]])
        XCTAssertEqual(object["missing"], nil)
        XCTAssertEqual(object["z"], .null)

        let literal: JSONObject = ["a": 1, "b": 2, "a": 3]
        XCTAssertEqual(literal.keys, ["a", "b"])
        XCTAssertEqual(literal["a"], 3)
        let pairs = JSONObject([("x", 1), ("y", 2)])
        XCTAssertEqual(Array(pairs.map(\.value)), [1, 2])

        // Ordered equality vs. order-insensitive equivalence.
        let forward: JSON = ["a": 1, "b": ["c": true, "d": nil]]
        let backward: JSON = ["b": ["d": nil, "c": true], "a": 1]
        XCTAssertNotEqual(forward, backward)
        XCTAssertTrue(forward.isEquivalent(to: backward))
        XCTAssertFalse(forward.isEquivalent(to: ["a": 1, "b": ["c": true]]))
        XCTAssertFalse(JSON.int(1).isEquivalent(to: .double(1)))
        XCTAssertTrue(JSON.array([["a": 1, "b": 2]]).isEquivalent(to: [["b": 2, "a": 1]]))
    }

    func testAccessorsAndLiterals() {
        let value: JSON = ["s": "text", "i": 5, "d": 2.0, "f": 2.5, "b": true, "n": nil, "a": [1], "o": ["k": "v"]]
        XCTAssertEqual(value["s"]?.stringValue, "text")
        XCTAssertEqual(value["i"]?.intValue, 5)
        XCTAssertEqual(value["d"]?.intValue, 2)
        XCTAssertNil(value["f"]?.intValue)
        XCTAssertNil(JSON.double(1e19).intValue)
        XCTAssertNil(JSON.double(.nan).intValue)
        XCTAssertEqual(JSON.double(-9.223372036854775808e18).intValue, Int64.min)
        XCTAssertNil(JSON.double(9.223372036854775808e18).intValue)  // 2^63, just past Int64.max
        XCTAssertEqual(JSON.double(-0.0).intValue, 0)
        XCTAssertNil(JSON.double(.infinity).intValue)
        XCTAssertEqual(value["b"]?.boolValue, true)
        XCTAssertEqual(value["n"]?.isNull, true)
        XCTAssertEqual(value["a"]?.arrayValue, [1])
        XCTAssertEqual(value["o"]?.objectValue?["k"], "v")
        XCTAssertNil(value["s"]?.intValue)
        XCTAssertNil(value["i"]?.stringValue)
        XCTAssertNil(value["missing"])
        XCTAssertNil(JSON.array([1])["k"])
        XCTAssertNil(JSON.string("x").boolValue)
        XCTAssertNil(JSON.string("x").objectValue)
        XCTAssertNil(JSON.string("x").arrayValue)
    }

    // MARK: Serializer

    func testSerializerEscapingExactBytes() {
        let value = JSON.string("a\"b\\c\n\u{01}")
        XCTAssertEqual(value.serialized(), Array(#""a\"b\\c\n\u0001""#.utf8))
        XCTAssertEqual(JSON.string("\r\t\u{8}\u{C}\u{1F}/\u{7F}").jsonString, #""\r\t\b\f\u001f/\#u{7F}""#)
        XCTAssertEqual(JSON.object(["k\"ey": "v"]).jsonString, #"{"k\"ey":"v"}"#)
    }

    /// Reference escaper: one byte at a time, no shortcuts.
    private func naiveQuoted(_ string: String) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for byte in string.utf8 {
            switch byte {
            case 0x22: out += Array(#"\""#.utf8)
            case 0x5C: out += Array(#"\\"#.utf8)
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0x08: out += Array(#"\b"#.utf8)
            case 0x0C: out += Array(#"\f"#.utf8)
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                out += Array(("\\u00" + (hex.count == 1 ? "0" + hex : hex)).utf8)
            default: out.append(byte)
            }
        }
        out.append(0x22)
        return out
    }

    func testSpecialCharacterAtEveryPosition() throws {
        // Exercises the eight-bytes-at-a-time scans in both directions.
        let specials: [String] = ["\"", "\\", "\n", "\u{1}", "\u{1F}", "é", "中", "😀", "\u{7F}", "/"]
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 25] {
            for position in 0...length {
                for special in specials {
                    let base = String(repeating: "a", count: length)
                    let index = base.index(base.startIndex, offsetBy: position)
                    let text = String(base[..<index]) + special + String(base[index...])
                    let bytes = JSON.string(text).serialized()
                    XCTAssertEqual(bytes, naiveQuoted(text), "serializing \(text.debugDescription)")
                    XCTAssertEqual(try JSONParser.parse(bytes), .string(text), "parsing \(text.debugDescription)")
                    // Raw (unescaped) non-ASCII and DEL directly in the input.
                    if special.utf8.first.map({ $0 >= 0x7F || $0 == 0x2F }) == true {
                        XCTAssertEqual(try JSONParser.parse("\"" + text + "\""), .string(text))
                    }
                }
            }
        }
        // A raw control character or invalid byte after a long clean run is still caught.
        assertRejects(Array("\"abcdefghijklmnop".utf8) + [0x01, 0x22], offset: 17, reason: "control character 0x01")
        assertRejects(Array("\"abcdefghijklmnop".utf8) + [0xFF, 0x22], offset: 17, reason: "invalid UTF-8")
        assertRejects(Array("\"abcdefgh".utf8), offset: 0, reason: "unterminated string")
    }

    func testStringsOfEveryShortLengthSerializeExactly() throws {
        // The word-at-a-time copy of strings without escapes (the last word overlapping, short
        // ones as two halves) and its fallback to the escaping path, at every length to 40.
        let fillers: [String] = ["a", "é", "中", "😀", "\u{7F}", "/"]
        let specials: [String] = ["\"", "\\", "\n", "\u{0}", "\u{1F}"]
        for length in 0...40 {
            for filler in fillers {
                var clean = ""
                while clean.utf8.count < length { clean += clean.utf8.count % 3 == 1 ? filler : "b" }
                var cases = [clean]
                if !clean.isEmpty {
                    for special in specials {
                        for position in Set([0, clean.count / 2, clean.count - 1]) {
                            var text = clean
                            text.insert(contentsOf: special, at: text.index(text.startIndex, offsetBy: position))
                            cases.append(text)
                        }
                    }
                }
                for text in cases {
                    XCTAssertEqual(JSON.string(text).serialized(), naiveQuoted(text), "serializing \(text.debugDescription)")
                    XCTAssertEqual(try JSONParser.parse(JSON.string(text).serialized()), .string(text))
                }
                // Several in one buffer that starts small: each lands after the previous one, growing it.
                var buffer = JSONText(capacity: 16)
                buffer.openArray()
                for (index, item) in cases.enumerated() {
                    if index > 0 { buffer.comma() }
                    buffer.string(item)
                }
                buffer.closeArray()
                let written = buffer.bytes()
                let expected = [UInt8(ascii: "[")] + Array(cases.map(naiveQuoted).joined(separator: [UInt8(ascii: ",")])) + [UInt8(ascii: "]")]
                XCTAssertEqual(written, expected, "strings of length \(length) with \(filler.debugDescription)")
            }
        }
    }

    func testSerializerCompactOutput() {
        let value: JSON = ["id": 7, "name": "张三", "tags": ["a", "b"], "score": 1.5, "ok": false, "none": nil, "empty": [:]]
        XCTAssertEqual(value.jsonString, #"{"id":7,"name":"张三","tags":["a","b"],"score":1.5,"ok":false,"none":null,"empty":{}}"#)
        XCTAssertEqual(value.objectValue?.serialized(), value.serialized())
        var buffer: [UInt8] = Array("prefix:".utf8)
        JSON.int(-12).serialize(into: &buffer)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), "prefix:-12")
        XCTAssertEqual("\(JSON.array([1, "x"]))", #"[1,"x"]"#)
    }

    func testParseEntryPointsAgree() throws {
        let text = #"{"name":"李四","values":[1,2.5,"x\n"]}"#
        let bytes = Array(text.utf8)
        let fromString = try JSONParser.parse(text)
        let fromBytes = try JSONParser.parse(bytes)
        let fromRaw = try bytes.withUnsafeBytes { try JSONParser.parse($0) }
        XCTAssertEqual(fromString, fromBytes)
        XCTAssertEqual(fromString, fromRaw)
        // A bridged / non-contiguous string is handled as well.
        let substringText = String(("  " + text + "  ").dropFirst(2).dropLast(2))
        XCTAssertEqual(try JSONParser.parse(substringText), fromString)
        // Empty raw buffer.
        XCTAssertThrowsError(try JSONParser.parse(UnsafeRawBufferPointer(start: nil, count: 0))) { error in
            XCTAssertEqual((error as? JSONParseError)?.offset, 0)
        }
    }

    // MARK: Cross-check with Foundation

    /// Compares our parse result with Foundation's, guided by our value's case.
    private func matches(_ ours: JSON, _ theirs: Any) -> Bool {
        switch ours {
        case .null:
            return theirs is NSNull
        case .bool(let value):
            if let bool = theirs as? Bool { return bool == value }
            return (theirs as? NSNumber)?.boolValue == value
        case .int(let value):
            return (theirs as? NSNumber)?.int64Value == value
        case .double(let value):
            guard let number = theirs as? NSNumber else { return false }
            return number.doubleValue == value
        case .string(let value):
            return (theirs as? String) == value
        case .array(let elements):
            guard let array = theirs as? [Any], array.count == elements.count else { return false }
            return zip(elements, array).allSatisfy { matches($0, $1) }
        case .object(let object):
            guard let dictionary = theirs as? [String: Any], dictionary.count == object.count else { return false }
            return object.allSatisfy { key, value in dictionary[key].map { matches(value, $0) } ?? false }
        }
    }

    func testCrossCheckWithFoundation() throws {
        let documents = [
            #"{"id":1,"name":"王五","active":true,"balance":-1234.5,"tags":["vip","华东"],"manager":null}"#,
            #"[1,-2,3.25,1e10,-0.5,9223372036854775807,-9223372036854775808,"a\"b\\c\/d\u00e9\ud83d\ude00"]"#,
            #"{"nested":{"deeper":{"deepest":[[],[{}],[[1]]]}},"empty":"","unicode":"\u4e2d\u6587"}"#,
            #" { "spaced" : [ true , false , null ] , "n" : 0 } "#,
            #"{"rows":[{"a":1,"b":"x"},{"a":2,"b":"y"},{"a":3,"b":"z\t"}],"total":3,"ratio":0.333}"#,
        ]
        for document in documents {
            let ours = try JSONParser.parse(document)
            let theirs = try JSONSerialization.jsonObject(with: Data(document.utf8), options: [.fragmentsAllowed])
            XCTAssertTrue(matches(ours, theirs), "mismatch for \(document): \(ours.jsonString) vs \(theirs)")
            // Foundation also accepts our serialization and reads the same values.
            let reread = try JSONSerialization.jsonObject(with: Data(ours.serialized()), options: [.fragmentsAllowed])
            XCTAssertTrue(matches(ours, reread), "Foundation re-read mismatch for \(ours.jsonString)")
        }
    }

    /// `JSONText.string(utf8:)` writes bytes read in place exactly as the `String` they decode
    /// to would be written: valid UTF-8 as is, anything else repaired the way `String` repairs it.
    func testJSONTextStringFromUTF8BytesMatchesTheDecodedString() {
        var cases: [[UInt8]] = [
            [], Array("plain ascii, longer than eight bytes".utf8), Array("合同 \"q\"\n\\ é\u{1}\u{7f} 😀".utf8),
            [0xff], [0x61, 0x62, 0xff, 0x63], [0xc0, 0xaf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
            [0xf4, 0x8f, 0xbf, 0xbf], [0xe2, 0x82], [0xe6, 0xb7, 0xb1, 0xc3], [0xf0, 0x9f, 0x98], [0x80, 0x41], [0xc2, 0x41],
            // Escapes written before an invalid sequence is met (what was written is dropped).
            Array("x\"y\n1234567890\u{1}".utf8) + [0xe6, 0xb7, 0xb1, 0xff] + Array("\"z".utf8),
        ]
        // Every two-byte sequence after eight ASCII bytes (the word-at-a-time path, then the tail).
        for lead in stride(from: 0x80, through: 0xff, by: 3) {
            for next in [0x00, 0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc0] { cases.append(Array("12345678".utf8) + [UInt8(lead), UInt8(next)]) }
        }
        for bytes in cases {
            var fromBytes = JSONText()
            bytes.withUnsafeBufferPointer { fromBytes.string(utf8: $0) }
            var fromString = JSONText()
            fromString.string(String(decoding: bytes, as: UTF8.self))
            let written = fromBytes.bytes()
            let expected = fromString.bytes()
            XCTAssertEqual(written, expected, "\(bytes)")
        }
    }
}
