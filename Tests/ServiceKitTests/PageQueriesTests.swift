@testable import ServiceKit
import XCTest

/// A filtered list's queries are made once per clause and kind, and the kept ones are bounded.
final class PageQueriesTests: XCTestCase {
    func testMadeOncePerClauseAndKind() {
        let queries = PageQueries()
        var made = 0
        func query(_ clause: String, paged: Bool) -> PageQuery {
            queries.query(clause: clause, paged: paged) {
                made += 1
                return PageQuery(table: "notes", selectList: "t.\"text\", t.id", clause: clause, ordering: "t.id DESC", paged: paged, binds: [])
            }
        }
        let first = query("WHERE t.\"owner\" = ?", paged: true)
        XCTAssertEqual(first.rows, "SELECT t.\"text\", t.id FROM notes t WHERE t.\"owner\" = ? ORDER BY t.id DESC LIMIT ? OFFSET ?")
        XCTAssertEqual(first.count, "SELECT COUNT(*) FROM notes t WHERE t.\"owner\" = ?")
        XCTAssertEqual(query("WHERE t.\"owner\" = ?", paged: true).rows, first.rows)
        XCTAssertEqual(made, 1, "the second page of the same shape made nothing")
        XCTAssertEqual(query("WHERE t.\"owner\" = ?", paged: false).rows, "SELECT t.\"text\", t.id FROM notes t WHERE t.\"owner\" = ? ORDER BY t.id DESC")
        XCTAssertEqual(query("", paged: true).rows, "SELECT t.\"text\", t.id FROM notes t  ORDER BY t.id DESC LIMIT ? OFFSET ?")
        XCTAssertEqual(made, 3, "another kind or clause is made")
    }

    /// A page's answer buffer starts at the size the resource's last page needed per row: a
    /// page like the last fits without growing, a much smaller one lowers the estimate, one
    /// within an eighth leaves it, a page without rows teaches nothing, and the up-front size is
    /// capped.
    func testAnswerBuffersAreSizedFromTheLastPage() {
        let plan = AnswerPlan(columns: [], references: [], links: [])
        let first = plan.answerCapacity(rows: 20)
        plan.noteRows(20, bytes: 30_000)
        let learned = plan.answerCapacity(rows: 20)
        XCTAssertGreaterThan(learned, first)
        XCTAssertGreaterThanOrEqual(learned, 30_000 + 1024, "the same page again fits with its envelope")
        plan.noteRows(20, bytes: 28_000)
        XCTAssertEqual(plan.answerCapacity(rows: 20), learned, "within an eighth: unchanged")
        plan.noteRows(0, bytes: 500)
        XCTAssertEqual(plan.answerCapacity(rows: 20), learned, "no rows: nothing learned")
        plan.noteRows(20, bytes: 2_000)
        XCTAssertLessThan(plan.answerCapacity(rows: 20), 4_000, "much smaller rows lower it")
        XCTAssertGreaterThanOrEqual(plan.answerCapacity(rows: 20), 2_000 + 1024)
        plan.noteRows(1, bytes: 10_000_000)
        XCTAssertEqual(plan.answerCapacity(rows: 1_000), 1 << 20, "at most 1 MiB up front")
    }

    func testBounded() {
        let queries = PageQueries()
        for n in 1...(PageQueries.capacity * 3) {
            let clause = "WHERE t.id IN (\(SQLFilter.marks(n)))"
            let query = queries.query(clause: clause, paged: true) {
                PageQuery(table: "notes", selectList: "t.id", clause: clause, ordering: "t.id", paged: true, binds: [])
            }
            XCTAssertTrue(query.ids.contains(clause))
            XCTAssertLessThanOrEqual(queries.count, PageQueries.capacity)
        }
    }
}
