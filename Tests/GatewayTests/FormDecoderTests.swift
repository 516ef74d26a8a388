@testable import Gateway
import WireProtocol
import XCTest

/// Query strings and form bodies: decoding and how names become parameters.
final class FormDecoderTests: XCTestCase {
    func pairs(_ text: String) -> [String] {
        FormDecoder.pairs(text).map { "\($0.0)=\($0.1)" }
    }

    func merged(_ text: String) -> String {
        var params = JSONObject()
        FormDecoder.merge(FormDecoder.pairs(text), into: &params)
        return JSON.object(params).jsonString
    }

    func testDecoding() {
        XCTAssertEqual(pairs("a=1&b=two+words&c=%E5%BC%A0%e4%b8%89"), ["a=1", "b=two words", "c=张三"])
        XCTAssertEqual(pairs("a=%2B%26%3D&b=1%2b1"), ["a=+&=", "b=1+1"], "escaped + & = are data")
        XCTAssertEqual(pairs("flag&=v&&x="), ["flag=", "=v", "x="], "empty parts are skipped, missing values are empty")
        XCTAssertEqual(pairs("a=b=c"), ["a=b=c"], "only the first = splits")
        XCTAssertEqual(pairs(""), [])
    }

    func testBadEscapesAreKeptAsTyped() {
        XCTAssertEqual(pairs("a=100%&b=%zz&c=%4&d=%%41"), ["a=100%", "b=%zz", "c=%4", "d=%A"])
        XCTAssertEqual(pairs("a=%FF"), ["a=\u{FFFD}"], "bytes that are not UTF-8 become U+FFFD")
    }

    /// Text is read as UTF-8 first, then percent-decoded: a raw byte that is not UTF-8 is one
    /// U+FFFD, and so is each escaped byte that does not make UTF-8.
    func testRawAndEscapedBytesThatAreNotUTF8() {
        let body: [UInt8] = Array("n=".utf8) + [0xE5] + Array("%BC%A0+%E4%B8%89&bad=".utf8) + [0xFF] + Array("x&&=v".utf8)
        let decoded = FormDecoder.pairs(String(decoding: body, as: UTF8.self)).map { "\($0.0)=\($0.1)" }
        XCTAssertEqual(decoded, ["n=\u{FFFD}\u{FFFD}\u{FFFD} 三", "bad=\u{FFFD}x", "=v"])
    }

    func testRepeatedKeysAndBracketsBecomeArrays() {
        XCTAssertEqual(merged("a=1&b=2"), #"{"a":"1","b":"2"}"#)
        XCTAssertEqual(merged("ids=1&ids=2&x=3&ids=4"), #"{"ids":["1","2","4"],"x":"3"}"#, "in order, at the first key's place")
        XCTAssertEqual(merged("ids[]=1"), #"{"ids":["1"]}"#, "key[] is an array even with one value")
        XCTAssertEqual(merged("ids[]=1&ids=2"), #"{"ids":["1","2"]}"#, "key[] and key are one parameter")
        XCTAssertEqual(merged("ids%5B%5D=1"), #"{"ids":["1"]}"#, "escaped brackets count too")
        XCTAssertEqual(merged("[]=1&=2"), "{}", "no name, no parameter")
        XCTAssertEqual(merged("a=1&=2&b=3"), #"{"a":"1","b":"3"}"#)
    }

    /// A few distinct names take a shorter way than repeated ones or many: the same parameters.
    func testShortAndLongQueriesMergeAlike() {
        XCTAssertEqual(merged("page=1&count=20&page=2"), #"{"page":["1","2"],"count":"20"}"#)
        XCTAssertEqual(merged("page=1&count=20&ids[]=3"), #"{"page":"1","count":"20","ids":["3"]}"#)
        let nine = (1...9).map { "k\($0)=\($0)" }.joined(separator: "&")
        XCTAssertEqual(merged(nine), "{" + (1...9).map { "\"k\($0)\":\"\($0)\"" }.joined(separator: ",") + "}")
        XCTAssertEqual(merged(nine + "&k1=x"), "{\"k1\":[\"1\",\"x\"]," + (2...9).map { "\"k\($0)\":\"\($0)\"" }.joined(separator: ",") + "}")
    }

    func testMergeReplacesWhatIsAlreadyThere() {
        var params: JSONObject = ["a": 1, "keep": true]
        FormDecoder.merge(FormDecoder.pairs("a=x"), into: &params)
        XCTAssertEqual(JSON.object(params).jsonString, #"{"a":"x","keep":true}"#)
    }
}
