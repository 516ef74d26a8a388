@testable import WireProtocol
import XCTest

/// `IDTable` against a `Dictionary` doing the same: a client's requests in flight (mostly
/// sequential ids answered in any order), row ids of every shape, removal by condition.
final class IDTableTests: XCTestCase {
    private final class Box {}

    func testRequestsInFlightAgreeWithADictionary() {
        var generator = SystemRandomNumberGenerator()
        var table = IDTable<Box>()
        var reference: [UInt64: Box] = [:]
        var nextID: UInt64 = 1
        for step in 0..<20_000 {
            // Mostly sequential ids answered in any order, as a client's are; sometimes ids far
            // apart, or one already there, or one never sent.
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll < 5 || reference.isEmpty {
                let id = roll == 0 ? UInt64.random(in: 1...UInt64.max, using: &generator) : nextID
                nextID += 1
                let box = Box()
                table.set(box, for: id)
                reference[id] = box
            } else if roll < 9 {
                let id = roll == 8 ? nextID + 7 : reference.keys.randomElement(using: &generator) ?? 0
                XCTAssertTrue(table.remove(id) === reference.removeValue(forKey: id), "step \(step): id \(id)")
            } else {
                let limit = nextID - min(nextID, UInt64.random(in: 0...20, using: &generator))
                let taken = table.removeAll { id, _ in id > limit }
                let expected = reference.filter { $0.key > limit }
                for id in expected.keys { reference[id] = nil }
                XCTAssertEqual(Set(taken.map(ObjectIdentifier.init)), Set(expected.values.map(ObjectIdentifier.init)), "step \(step)")
            }
            XCTAssertEqual(table.count, reference.count)
        }
        // Everything left is still found, then nothing is.
        for (id, box) in reference { XCTAssertTrue(table[id] === box) }
        for (id, box) in reference { XCTAssertTrue(table.remove(id) === box) }
        XCTAssertTrue(table.isEmpty)
        XCTAssertTrue(table.removeAll().isEmpty)
    }

    func testRowIdsOfEveryShapeAgreeWithADictionary() {
        var generator = SystemRandomNumberGenerator()
        for pattern in 0..<4 {
            var table = IDTable<Int32>()
            var model: [Int64: Int32] = [:]
            for step in 0..<5_000 {
                let id: Int64
                switch pattern {
                case 0: id = Int64(step)                                   // consecutive, as SQLite assigns them
                case 1: id = Int64(step) << 20                             // only high bits differ
                case 2: id = Int64.random(in: -50...50, using: &generator) // few, repeated, negative
                default: id = Int64.random(in: .min ... .max, using: &generator)
                }
                let value = Int32(truncatingIfNeeded: step)
                table.set(value, forRow: id)
                model[id] = value
            }
            XCTAssertEqual(table.count, model.count, "pattern \(pattern)")
            for (id, value) in model { XCTAssertEqual(table[row: id], value, "pattern \(pattern), id \(id)") }
            for _ in 0..<1_000 {
                let probe = Int64.random(in: .min ... .max, using: &generator)
                XCTAssertEqual(table[row: probe], model[probe])
            }
        }
        var extremes = IDTable<Int32>()
        for (value, id) in [Int64.min, -1, 0, 1, .max].enumerated() { extremes.set(Int32(value), forRow: id) }
        XCTAssertEqual([Int64.min, -1, 0, 1, .max].map { extremes[row: $0] }, [0, 1, 2, 3, 4])
    }

    func testRemoveAllTakesEverything() {
        var table = IDTable<Box>()
        let boxes = (1...100).map { _ in Box() }
        for (offset, box) in boxes.enumerated() { table.set(box, for: UInt64(offset + 1) * 16) }
        XCTAssertEqual(table.count, 100)
        XCTAssertEqual(Set(table.removeAll().map(ObjectIdentifier.init)), Set(boxes.map(ObjectIdentifier.init)))
        XCTAssertTrue(table.isEmpty)
        XCTAssertNil(table.remove(16))
    }
}
