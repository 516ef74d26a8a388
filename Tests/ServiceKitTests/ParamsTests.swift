import XCTest
@testable import ServiceKit
import WireProtocol

/// Parameter parsing as API.md §1 sets it out: pure, no sockets.
final class ParamsTests: XCTestCase {
    func params(_ pairs: [(String, JSON)]) -> Params { Params(JSONObject(pairs)) }

    func testIntegersAsNumbersOrDecimalStrings() throws {
        let p = params([("a", 3), ("b", "42"), ("c", " -7 "), ("d", "3.5"), ("e", 2.0), ("f", "12x"), ("g", ""), ("h", .null), ("i", "99999999999999999999")])
        XCTAssertEqual(try p.int("a"), 3)
        XCTAssertEqual(try p.int("b"), 42)
        XCTAssertEqual(try p.int("c"), -7)
        XCTAssertEqual(try p.int("e"), 2)
        XCTAssertNil(try p.int("g"), "empty is absent")
        XCTAssertNil(try p.int("h"), "null is absent")
        XCTAssertNil(try p.int("missing"))
        for bad in ["d", "f", "i"] {
            XCTAssertThrowsError(try p.int(bad)) { error in
                XCTAssertEqual((error as? APIError)?.status, 400)
                XCTAssertTrue((error as? APIError)?.message.contains(bad) ?? false, "names the parameter")
            }
        }
        XCTAssertThrowsError(try p.requireInt("missing")) { XCTAssertEqual(($0 as? APIError)?.message, "missing is required") }
        XCTAssertThrowsError(try params([("id", 0)]).id("id"))
        XCTAssertThrowsError(try params([("s", 4)]).int("s", oneOf: [1, 2, 3]))
    }

    /// A one-value parameter given twice (`page=1&page=2`, folded into an array by the
    /// gateway) is refused for that, not for its type; given once in an array, it is read.
    func testARepeatedOneValueParameterIsRefusedForBeingRepeated() throws {
        let p = params([("page", .array([.string("1"), .string("2")])), ("name", .array([.string("a"), .string("b"), .string("c")])),
                        ("one", .array([.string("7")])), ("nested", .array([.array([1, 2])]))])
        XCTAssertThrowsError(try p.int("page")) { XCTAssertEqual(($0 as? APIError)?.message, "page takes one value, not 2") }
        XCTAssertThrowsError(try p.string("name")) { XCTAssertEqual(($0 as? APIError)?.message, "name takes one value, not 3") }
        XCTAssertEqual(try p.int("one"), 7)
        XCTAssertEqual(try p.string("one"), "7")
        XCTAssertThrowsError(try p.int("nested")) { XCTAssertEqual(($0 as? APIError)?.message, "nested must be an integer") }
        let twice = params([("x", .array([.string("1"), .string("2")]))])
        XCTAssertThrowsError(try twice.time("x")) { XCTAssertEqual(($0 as? APIError)?.message, "x takes one value, not 2") }
        XCTAssertThrowsError(try twice.money("x")) { XCTAssertEqual(($0 as? APIError)?.message, "x takes one value, not 2") }
        XCTAssertThrowsError(try twice.statusFilter("x", allowed: [1, 2], default: nil)) {
            XCTAssertEqual(($0 as? APIError)?.message, "x takes one value, not 2")
        }
    }

    /// Plain digit strings are read by bytes: wherever that quick path answers, the general
    /// parser (trimming, overflow checks) answers the same.
    func testPlainDecimalsAgreeWithTheGeneralParser() {
        var texts = ["0", "-0", "00012", "-", "--1", "-5", "1-", "+1", " 1", "1 ", "", "12x", "١٢", "9223372036854775807", "-9223372036854775808",
                     "9223372036854775808", "99999999999999999999", "-99999999999999999999"]
        var state: UInt64 = 0x5EED
        for length in 1...22 {
            for _ in 0..<20 {
                let digits = String((0..<length).map { _ -> Character in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return Character(String((state >> 33) % 10))
                })
                texts += [digits, "-" + digits]
            }
        }
        var answered = 0
        for text in texts {
            guard let plain = Params.plainDecimal(text) else { continue }
            XCTAssertEqual(plain, Params.generalDecimal(text), text)
            answered += 1
        }
        XCTAssertGreaterThan(answered, 500)
        XCTAssertEqual(Params.parseDecimal(" -7 "), -7, "the general way still trims")
        XCTAssertNil(Params.parseDecimal("9223372036854775808"), "out of range")
        XCTAssertEqual(Params.parseDecimal("9223372036854775807"), Int64.max)
    }

    /// Trimming with the shortcut answers what walking the Characters answers, at the edges of
    /// the shortcut too: combining marks after a space, CJK and ideographic spaces, CR LF.
    func testTrimmingAgreesWithWalkingTheCharacters() {
        func walked(_ text: String) -> String {
            guard let first = text.firstIndex(where: { !$0.isWhitespace }) else { return "" }
            guard let last = text.lastIndex(where: { !$0.isWhitespace }) else { return "" }
            return String(text[first...last])
        }
        let texts = ["", "a", "abc", " abc", "abc ", "\tabc\n", "张三", " 张三", "张三 ", "\u{3000}张三\u{3000}", "张三\u{3000}",
                     "a\u{301}", " \u{301}x", "x \u{301}", "x\u{301}", "\r\n", "a\r\n", "\r\na", "ab\u{200B}", "\u{85}a",
                     "a\u{A0}", "\u{0600}a", "x\u{2028}", "😀", "a😀", " ", "\u{3000}", "x\u{20}\u{301}"]
        for text in texts {
            XCTAssertEqual(text.trimmingWhitespace, walked(text), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        XCTAssertTrue("张三".hasNoSurroundingWhitespace)
        XCTAssertTrue("wrk-1".hasNoSurroundingWhitespace)
        XCTAssertFalse("x \u{301}".hasNoSurroundingWhitespace, "a mark may continue a space: the walk decides")
    }

    func testEveryArrayForm() throws {
        let forms: [JSON] = [[1, 2, 3], "[1,2,3]", "1,2,3", ["1", "2", "3"], " 1 , 2,3 ", ["1,2", "3"]]
        for form in forms {
            XCTAssertEqual(try params([("ids", form)]).intArray("ids"), [1, 2, 3], form.jsonString)
        }
        XCTAssertEqual(try params([("ids", 5)]).intArray("ids"), [5], "a single integer")
        XCTAssertEqual(try params([("ids", "5")]).intArray("ids"), [5])
        XCTAssertEqual(try params([("ids", [])]).intArray("ids"), [])
        XCTAssertNil(try params([("ids", "")]).intArray("ids"))
        XCTAssertEqual(try params([("ids", [3, 1, 3])]).idArray("ids"), [3, 1], "duplicates removed, first place kept")
        for bad: JSON in ["[1,", "a,b", [["x": 1]], [1.5], "[\"a\"]", ["x"], true] {
            XCTAssertThrowsError(try params([("ids", bad)]).intArray("ids"), bad.jsonString)
        }
        XCTAssertThrowsError(try params([("ids", [0])]).idArray("ids"))
        XCTAssertThrowsError(try params([("ids", .array((1...1001).map { .int(Int64($0)) }))]).idArray("ids"))
    }

    func testTimesAndDates() throws {
        let p = params([("t", "2020-12-11 00:00:02"), ("d", "2020-12-12"), ("leap", "2020-02-29"), ("noleap", "2021-02-29"),
                        ("hour", "2020-01-01 24:00:00"), ("iso", "2020-01-01T00:00:00"), ("short", "2020-1-1")])
        XCTAssertEqual(try p.time("t"), "2020-12-11 00:00:02")
        XCTAssertEqual(try p.time("d"), "2020-12-12 00:00:00")
        XCTAssertEqual(try p.date("d"), "2020-12-12")
        XCTAssertEqual(try p.date("t"), "2020-12-11")
        XCTAssertEqual(try p.time("leap"), "2020-02-29 00:00:00")
        for bad in ["noleap", "hour", "iso", "short"] {
            XCTAssertThrowsError(try p.time(bad)) { XCTAssertTrue(($0 as? APIError)?.message.contains(bad) ?? false) }
        }
    }

    func testTimeWindowDefaultsAndOrder() throws {
        let window = try params([("end_time", "2021-01-08 12:00:00")]).timeWindow()
        XCTAssertEqual(window.start, "2021-01-01 12:00:00", "a week before end_time")
        XCTAssertEqual(window.end, "2021-01-08 12:00:00")
        let year = try params([("end_time", "2021-06-01")]).timeWindow(defaultSpanSeconds: 365 * 86_400)
        XCTAssertEqual(year.start, "2020-06-01 00:00:00")
        XCTAssertThrowsError(try params([("start_time", "2021-02-01"), ("end_time", "2021-01-01")]).timeWindow()) {
            XCTAssertEqual(($0 as? APIError)?.status, 400)
        }
        let now = try params([]).timeWindow()
        XCTAssertLessThan(now.start, now.end)
    }

    func testPagingDefaultsAndClamp() throws {
        XCTAssertEqual(try params([]).paging(), Paging(page: 1, count: 20))
        XCTAssertEqual(try params([("page", "3"), ("count", 500)]).paging(), Paging(page: 3, count: 100))
        XCTAssertEqual(try params([("page", "3"), ("count", 10)]).paging().offset, 20)
        XCTAssertThrowsError(try params([("page", 0)]).paging())
        XCTAssertThrowsError(try params([("count", 0)]).paging())
        XCTAssertThrowsError(try params([("page", "x")]).paging())
        XCTAssertThrowsError(try params([("page", 9_000_000_000_000)]).paging(), "offset overflow is refused")
    }

    func testStringsAreTrimmedAndBounded() throws {
        let p = params([("a", "  hi  "), ("n", 12), ("long", .string(String(repeating: "字", count: 1001))), ("obj", ["x": 1])])
        XCTAssertEqual(try p.string("a"), "hi")
        XCTAssertEqual(try p.string("n"), "12")
        XCTAssertThrowsError(try p.string("long"))
        XCTAssertEqual(try p.string("long", maxLength: 4000)?.count, 1001)
        XCTAssertThrowsError(try p.string("obj"))
        XCTAssertThrowsError(try params([("a", "   ")]).requireString("a"))
    }

    /// Limits count Unicode scalars: combining marks cannot hide megabytes inside one `Character`.
    func testLengthLimitsCountUnicodeScalars() throws {
        let stacked = "a" + String(repeating: "\u{0301}", count: 1_000_000)
        XCTAssertEqual(stacked.count, 1, "one grapheme cluster")
        XCTAssertThrowsError(try params([("name", .string(stacked))]).string("name")) { error in
            XCTAssertEqual((error as? APIError)?.status, 400)
            XCTAssertEqual((error as? APIError)?.message, "name is longer than 1000 characters")
        }
        // A few marks on a letter are fine: each counts once.
        XCTAssertEqual(try params([("name", "e\u{0301}\u{0301}")]).string("name"), "e\u{0301}\u{0301}")

        // Four UTF-8 bytes each: the limit is in scalars, not bytes.
        let emoji = String(repeating: "\u{1F600}", count: Params.maxTextLength)
        XCTAssertEqual(try params([("name", .string(emoji))]).string("name"), emoji)
        XCTAssertThrowsError(try params([("name", .string(emoji + "\u{1F600}"))]).string("name")) { error in
            XCTAssertEqual((error as? APIError)?.message, "name is longer than 1000 characters")
        }
        // Every field limit goes the same way (Fields), long texts included.
        let note = String(repeating: "\u{1F600}", count: Params.maxLongTextLength)
        XCTAssertEqual(try params([("note", .string(note))]).values(for: [.longText("note")]).first?.value, .text(note))
        XCTAssertThrowsError(try params([("note", .string("x" + String(repeating: "\u{0301}", count: Params.maxLongTextLength)))]).values(for: [.longText("note")]))
    }

    func testStatusFilter() throws {
        let allowed: [Int64] = [1, 0, -1]
        XCTAssertEqual(try params([]).statusFilter(allowed: allowed, default: [1]), [1])
        XCTAssertNil(try params([("status", "all")]).statusFilter(allowed: allowed, default: [1]))
        XCTAssertNil(try params([("status", "ALL")]).statusFilter(allowed: allowed, default: [1]))
        XCTAssertEqual(try params([("status", "-1")]).statusFilter(allowed: allowed, default: [1]), [-1])
        XCTAssertEqual(try params([("status", "normal")]).statusFilter(allowed: allowed, aliases: ["normal": [1, 0]], default: [1]), [1, 0])
        XCTAssertThrowsError(try params([("status", 5)]).statusFilter(allowed: allowed, default: [1])) {
            XCTAssertTrue(($0 as? APIError)?.message.contains("status") ?? false)
        }
    }

    func testFieldsClearAndDefaults() throws {
        let fields = [Field.text("note"), Field("sex", .int(oneOf: [1, 2, 3]), cleared: 3), Field("at", .time)]
        let values = try params([("note", ""), ("sex", .null), ("at", "2020-01-01")]).values(for: fields)
        XCTAssertEqual(values.map(\.column), ["note", "sex", "at"])
        XCTAssertEqual(values.map(\.value), [.null, .int(3), .text("2020-01-01 00:00:00")])
        XCTAssertTrue(try params([]).values(for: fields).isEmpty, "absent fields are left out")
        XCTAssertThrowsError(try params([("sex", 9)]).values(for: fields))
    }

    /// Money: integer cents from a JSON number or a decimal string with at most two decimals.
    func testMoneyIsExactCents() throws {
        let accepted: [(JSON, Int64)] = [
            (112, 11200), ("112", 11200), (112.5, 11250), ("112.5", 11250), ("0.10", 10), (0.1, 10), (0.29, 29), (" 7.05 ", 705),
            (1000.0, 100000), (0, 0), ("0.00", 0), (10_000_000_000_000, 1_000_000_000_000_000), ("10000000000000.00", 1_000_000_000_000_000),
            (9_999_999_999_999.99, 999_999_999_999_999), ("9999999999999.99", 999_999_999_999_999), ([JSON.string("3.20")], 320),
        ]
        for (value, cents) in accepted {
            XCTAssertEqual(try params([("amount", value)]).money("amount"), cents, "\(value)")
        }
        XCTAssertNil(try params([("amount", "")]).money("amount"))
        XCTAssertNil(try params([("amount", .null)]).money("amount"))
        let refused: [JSON] = [
            "1.005", 1.005, 10_000_000.001, "-1", -1, -0.5, "1e3", "1E3", 1e300, "1,000", "1 000", "NaN", "Infinity", "-Infinity", "+1",
            ".5", "5.", "0x10", "10000000000000.01", 10_000_000_000_001, "100000000000000", true, ["a": 1], "１２", "1.2.3",
        ]
        for value in refused {
            XCTAssertThrowsError(try params([("amount", value)]).money("amount"), "\(value)") { error in
                XCTAssertEqual((error as? APIError)?.status, 400)
                XCTAssertTrue((error as? APIError)?.message.hasPrefix("amount ") ?? false)
            }
        }
        XCTAssertEqual(Params.moneyText(0), "0.00")
        XCTAssertEqual(Params.moneyText(5), "0.05")
        XCTAssertEqual(Params.moneyText(11250), "112.50")
        XCTAssertEqual(Params.moneyText(1_000_000_000_000_000), "10000000000000.00")
    }

    /// List pages write money straight into the JSON text: the same characters as `moneyText`
    /// in a string, whatever the stored integer (negative ones too, which the API never writes).
    func testMoneyWrittenAsTextMatchesMoneyText() {
        for cents: Int64 in [0, 5, 10, 99, 100, 101, 11250, 1_000_000_000_000_000, -1, -5, -10, -150, -10001, .max, .min] {
            var direct = JSONText()
            Resource.writeMoney(cents, into: &direct)
            var viaString = JSONText()
            viaString.string(Params.moneyText(cents))
            let written = direct.bytes()
            let expected = viaString.bytes()
            XCTAssertEqual(String(decoding: written, as: UTF8.self), String(decoding: expected, as: UTF8.self), "\(cents)")
        }
    }
}
