import XCTest
@testable import ServiceKit

/// The rows a reader keeps for its snapshot stay within `SnapshotRows.maxBytes`, counted by
/// everything a row holds: its text, cuts, targets and link ids.
final class SnapshotRowsTests: XCTestCase {
    private let version = SnapshotCounts.Version(data: 1, changes: 1, file: 1)

    private func row(textBytes: Int, linkIDs: Int) -> SnapshotRows.Row {
        SnapshotRows.Row(text: Array(repeating: UInt8(ascii: "x"), count: textBytes), cuts: [0], targets: [nil],
                         links: [Array(repeating: 7, count: linkIDs)])
    }

    func testLinkIdsCountAgainstTheBound() {
        let rows = SnapshotRows()
        // Small text, link ids worth more than the bound: not kept.
        let heavy = row(textBytes: 100, linkIDs: SnapshotRows.maxBytes / 8)
        XCTAssertGreaterThan(heavy.cost, SnapshotRows.maxBytes)
        rows.keep("shape", [(id: 1, row: heavy)], version: version)
        XCTAssertEqual(rows.count, 0)
        XCTAssertTrue(rows.rows("shape", of: [1], version: version) == nil)
        // Rows whose ids together pass the bound start the kept rows over.
        let half = row(textBytes: 100, linkIDs: SnapshotRows.maxBytes / 16 + 10)
        XCTAssertGreaterThan(2 * half.cost, SnapshotRows.maxBytes)
        rows.keep("shape", [(id: 1, row: half)], version: version)
        XCTAssertEqual(rows.count, 1)
        rows.keep("shape", [(id: 2, row: half)], version: version)
        XCTAssertEqual(rows.count, 1, "the second would pass the bound: the first was forgotten")
        XCTAssertTrue(rows.rows("shape", of: [1], version: version) == nil)
        XCTAssertEqual(rows.rows("shape", of: [2], version: version)?.first?.links.first?.count, half.links.first?.count)
        // Light rows are kept side by side.
        let light = row(textBytes: 300, linkIDs: 3)
        rows.keep("other", [(id: 3, row: light), (id: 4, row: light)], version: version)
        XCTAssertEqual(rows.rows("other", of: [4, 3], version: version)?.count, 2)
    }
}
