@testable import ServiceKit
import XCTest

/// The WHERE clauses lists build on every request, and the keys their remembered totals are
/// kept under.
final class SQLFilterTests: XCTestCase {
    func testMarksForEveryCount() {
        for count in 0...80 {
            XCTAssertEqual(SQLFilter.marks(count), Array(repeating: "?", count: count).joined(separator: ", "), "\(count)")
        }
        XCTAssertEqual(SQLFilter.marks(-1), "")
    }

    func testConditionsJoinWithTheirBindsInOrder() {
        var filter = SQLFilter()
        XCTAssertEqual(filter.clause, "")
        filter.add("t.\"a\" = ?", [.int(1)])
        XCTAssertEqual(filter.clause, "WHERE t.\"a\" = ?")
        filter.in("t.status", [0, 1, -1])
        filter.in("t.id", [])
        XCTAssertEqual(filter.clause, "WHERE t.\"a\" = ? AND t.status IN (?, ?, ?) AND t.id IN ()")
        XCTAssertEqual(filter.binds, [.int(1), .int(0), .int(1), .int(-1)])
        var other = SQLFilter()
        other.add("x BETWEEN ? AND ?", [.text("a"), .text("b")])
        filter.add(other)
        XCTAssertEqual(filter.conditions.count, 4)
        XCTAssertEqual(filter.binds.count, 6)
    }

    /// Keys tell apart what SQLite tells apart: types, lengths, byte-different but canonically
    /// equal text, where one value ends and the next begins.
    func testCountKeysAreUnambiguous() {
        let cases: [[SQLValue]] = [
            [], [.null], [.int(1)], [.int(11)], [.int(1), .int(1)], [.double(1)], [.text("1")], [.text("")], [.text("1"), .text("")],
            [.text(""), .text("1")], [.text("caf\u{E9}")], [.text("cafe\u{301}")], [.blob([1])], [.blob([1, 0])], [.blob([])],
            [.text("a\u{1F}i1")], [.text("a"), .int(1)], [.int(-1)], [.double(-0.0)], [.double(0)],
        ]
        var seen: [SnapshotCounts.Key: [SQLValue]] = [:]
        for binds in cases {
            let key = SnapshotCounts.key("SELECT COUNT(*) FROM t WHERE x = ?", binds)
            XCTAssertNil(seen[key], "\(binds) and \(seen[key] ?? []) share a key")
            seen[key] = binds
            XCTAssertEqual(key, SnapshotCounts.key("SELECT COUNT(*) FROM t WHERE x = ?", binds), "stable")
            XCTAssertNotEqual(key, SnapshotCounts.key("SELECT COUNT(*) FROM u WHERE x = ?", binds), "the SQL is part of it")
        }
    }
}
