import Foundation
import XCTest
@testable import ServiceKit

/// `ReadCache` on its own: what it keeps, when it reads, when it forgets.
final class ReadCacheTests: XCTestCase {
    let employees = ReadCache.Source(table: "employee_copies", nameSQL: "x.realName")
    let groups = ReadCache.Source(table: "groups", nameSQL: "x.groupName")

    /// A read that answers `"name<id>"` for ids below 100 (others name no row) and counts what it
    /// was asked for.
    final class Reads: @unchecked Sendable {
        var asked: [[Int64]] = []
        func read(_ ids: [Int64]) -> [(id: Int64, name: [UInt8])] {
            asked.append(ids.sorted())
            return ids.filter { $0 < 100 }.map { ($0, Array("\"name\($0)\"".utf8)) }
        }
    }

    func text(_ found: [[UInt8]?]) -> [String?] { found.map { $0.map { String(decoding: $0, as: UTF8.self) } } }

    func testKeptNamesAreNotReadAgainAndMissingRowsStayMissing() {
        let cache = ReadCache()
        let reads = Reads()
        let first = cache.names(employees, of: [1, 2, 500, 1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(text(first), ["\"name1\"", "\"name2\"", nil, "\"name1\""], "in the order asked; nil: no such row")
        let second = cache.names(employees, of: [2, 3, 500, 3], generation: cache.generation, read: reads.read)
        XCTAssertEqual(text(second), ["\"name2\"", "\"name3\"", nil, "\"name3\""])
        XCTAssertEqual(reads.asked, [[1, 2, 500], [3]], "each id read once; kept names (and kept absences) are not read again")
        XCTAssertEqual(cache.count, 4)
        // Another source is kept apart, even for the same ids.
        _ = cache.names(groups, of: [1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(reads.asked.last, [1])
    }

    func testNamesReadInAnOlderGenerationAreNotKept() {
        let cache = ReadCache()
        let reads = Reads()
        let before = cache.generation
        // A commit (and its new generation) lands while the reader's older snapshot reads.
        let found = cache.names(employees, of: [1], generation: before) { ids in
            cache.invalidateAll()
            return reads.read(ids)
        }
        XCTAssertEqual(text(found), ["\"name1\""], "the reader still gets what its snapshot holds")
        XCTAssertEqual(cache.count, 0, "but does not keep it for readers of the new generation")
        _ = cache.names(employees, of: [1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(cache.count, 1)
        // A reader of an older snapshot may use what is kept (never older than the last change),
        // but keeps nothing it reads itself.
        _ = cache.names(employees, of: [1, 2], generation: before, read: reads.read)
        XCTAssertEqual(reads.asked.last, [2])
        XCTAssertEqual(cache.count, 1)
    }

    /// The commit lands before any name of its table was kept (nothing to forget yet); a reader
    /// whose snapshot may predate it must still not keep what it read.
    func testACommitBeforeAnyNameWasKeptStillStopsAnOlderSnapshot() {
        let cache = ReadCache()
        let reads = Reads()
        let before = cache.generation
        cache.invalidate(tables: ["employee_copies"])
        _ = cache.names(employees, of: [1], generation: before, read: reads.read)
        XCTAssertEqual(cache.count, 0, "read from a snapshot that may not have the commit: not kept")
        _ = cache.names(groups, of: [1], generation: before, read: reads.read)
        XCTAssertEqual(cache.count, 1, "another table's names are kept")
        _ = cache.names(employees, of: [1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(cache.count, 2, "a snapshot taken after the commit keeps them")
    }

    func testInvalidationOnlyForTablesNamesComeFrom() {
        let cache = ReadCache()
        let reads = Reads()
        _ = cache.names(employees, of: [1], generation: cache.generation, read: reads.read)
        _ = cache.names(groups, of: [1], generation: cache.generation, read: reads.read)
        cache.invalidate(tables: ["follows", "outbox"])
        XCTAssertEqual(cache.count, 2, "a write to other tables keeps the names")
        _ = cache.names(employees, of: [1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(reads.asked.count, 2, "not read again")
        cache.invalidate(tables: ["follows", "employee_copies"])
        XCTAssertEqual(cache.count, 1, "only the changed table's names are forgotten")
        _ = cache.names(employees, of: [1], generation: cache.generation, read: reads.read)
        XCTAssertEqual(reads.asked.count, 3, "read again after the change")
    }

    func testCapacityIsABound() {
        let cache = ReadCache(capacity: 10)
        let reads = Reads()
        _ = cache.names(employees, of: Array(1...8), generation: cache.generation, read: reads.read)
        XCTAssertEqual(cache.count, 8)
        _ = cache.names(employees, of: Array(11...15), generation: cache.generation, read: reads.read)
        XCTAssertLessThanOrEqual(cache.count, 10, "past the capacity the cache starts over")
        XCTAssertEqual(cache.count, 5)
    }

    /// Changes to a `WITHOUT ROWID` table are not reported by SQLite's update hook: values from
    /// one are never kept.
    func testValuesFromTablesWhoseChangesAreNotReportedAreNotKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("readcache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let db = try SQLiteConnection(path: directory + "/t.sqlite")
        try db.execute("CREATE TABLE plain(id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE keyed(id INTEGER PRIMARY KEY, name TEXT) WITHOUT ROWID;")
        let cache = ReadCache()
        XCTAssertTrue(try cache.reports("plain", db))
        XCTAssertFalse(try cache.reports("keyed", db))
        XCTAssertFalse(try cache.reports("no_such_table", db))
        db.close()
    }
}
