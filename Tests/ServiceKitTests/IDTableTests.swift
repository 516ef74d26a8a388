@testable import ServiceKit
import XCTest

/// `IDTable` answers what a `Dictionary` answers, for the ids rows get and for any other.
final class IDTableTests: XCTestCase {
    func testAgreesWithADictionary() {
        var generator = SystemRandomNumberGenerator()
        for pattern in 0..<4 {
            var table = IDTable()
            var model: [Int64: Int32] = [:]
            for step in 0..<5_000 {
                let id: Int64
                switch pattern {
                case 0: id = Int64(step)                                  // consecutive, as SQLite assigns them
                case 1: id = Int64(step) << 20                            // only high bits differ
                case 2: id = Int64.random(in: -50...50, using: &generator) // few, repeated, negative
                default: id = Int64.random(in: .min ... .max, using: &generator)
                }
                let value = Int32(truncatingIfNeeded: step)
                table.set(id, value)
                if id != .min { model[id] = value }
                if step % 97 == 0 {
                    for probe in model.keys.prefix(50) { XCTAssertEqual(table[probe], model[probe], "pattern \(pattern)") }
                }
            }
            XCTAssertEqual(table.count, model.count, "pattern \(pattern)")
            for (id, value) in model { XCTAssertEqual(table[id], value, "pattern \(pattern), id \(id)") }
            for _ in 0..<1_000 {
                let probe = Int64.random(in: .min ... .max, using: &generator)
                XCTAssertEqual(table[probe], model[probe])
            }
        }
    }

    func testTheEmptyMarkerIsNeverKept() {
        var table = IDTable()
        table.set(.min, 1)
        XCTAssertNil(table[.min])
        XCTAssertEqual(table.count, 0)
        table.set(.max, 2)
        table.set(0, 3)
        XCTAssertEqual(table[.max], 2)
        XCTAssertEqual(table[0], 3)
        XCTAssertNil(table[.min])
    }
}
