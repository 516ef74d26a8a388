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
