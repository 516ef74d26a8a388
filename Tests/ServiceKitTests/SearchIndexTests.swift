#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ServiceKit
import WireProtocol

/// `SearchIndex` on real SQLite files: which rows a query matches, pages and totals against a
/// plain scan, and an exact answer for every snapshot — behind the index, ahead of it, inside a
/// write transaction, after another process's commit.
final class SearchIndexTests: SQLiteFileTestCase {
    override class var filePrefix: String { "search" }

    /// A table kept as a searched resource keeps it: a status and `name_fold` per row, and an
    /// event for every change.
    struct Names {
        let db: SQLiteConnection

        static func create(_ db: SQLiteConnection) throws -> Names {
            try db.execute("CREATE TABLE IF NOT EXISTS names(id INTEGER PRIMARY KEY AUTOINCREMENT, status INTEGER NOT NULL, name_fold TEXT NOT NULL);" + Outbox.schema)
            return Names(db: db)
        }

        static func fold(_ texts: [String]) -> String { Search.joined(texts.map(NgramIndex.fold)) }

        @discardableResult
        func add(_ texts: [String], status: Int64 = 1, id: Int64? = nil) throws -> Int64 {
            try db.run("INSERT INTO names(id, status, name_fold) VALUES (?, ?, ?)", [id.map { .int($0) } ?? .null, .int(status), .text(Names.fold(texts))])
            let id = try db.scalar("SELECT last_insert_rowid()")
            try Outbox.append(db, type: "name", entityID: id, stateText: "{}")
            return id
        }

        func rename(_ id: Int64, _ texts: [String]) throws {
            try db.run("UPDATE names SET name_fold = ? WHERE id = ?", [.text(Names.fold(texts)), .int(id)])
            try Outbox.append(db, type: "name", entityID: id, stateText: "{}")
        }

        func setStatus(_ id: Int64, _ status: Int64) throws {
            try db.run("UPDATE names SET status = ? WHERE id = ?", [.int(status), .int(id)])
            try Outbox.append(db, type: "name", entityID: id, stateText: "{}")
        }
    }

    func index(_ limits: SearchIndex.Limits = SearchIndex.Limits()) -> SearchIndex {
        SearchIndex(table: "names", eventType: "name", limits: limits)
    }

    /// Every id of `query` on `db` (newest first), checked against the scan of the same snapshot.
    func all(_ index: SearchIndex, _ db: SQLiteConnection, _ query: String, statuses: [Int64]? = [1],
             file: StaticString = #filePath, line: UInt = #line) throws -> [Int64] {
        let found = try index.search(db, folded: NgramIndex.fold(query), statuses: statuses, paging: nil)
        let scanned = try index.scan(db, SearchIndex.Query(NgramIndex.fold(query)), statuses: statuses, paging: nil)
        XCTAssertEqual(found.ids, scanned.ids, "index and scan agree on \(query)", file: file, line: line)
        XCTAssertEqual(found.total, Int64(found.ids.count), file: file, line: line)
        return found.ids
    }

    /// A name's grams: each run of one to four characters (not bytes or scalars: "é" written as
    /// e + combining accent is one; CR LF is one), never across two texts, told apart as bytes:
    /// "é" precomposed and decomposed are two grams (Swift's `==` calls them equal, and keeping
    /// one lost the other's rows: a query typed in that form found nothing).
    func testGramsAreRunsOfOneToFourCharacters() throws {
        func grams(_ texts: [String]) -> [[UInt8]] {
            var grams: [[UInt8]] = []
            NgramIndex.forEachGram(of: Names.fold(texts), lengths: 1...4) { gram in
                if !grams.contains(Array(gram)) { grams.append(Array(gram)) }
            }
            return grams
        }
        XCTAssertEqual(grams(["Ab\u{E9}AB", "e\u{301}x", "xab"]),
                       ["a", "ab", "ab\u{E9}", "ab\u{E9}a", "b", "b\u{E9}", "b\u{E9}a", "b\u{E9}ab", "\u{E9}", "\u{E9}a", "\u{E9}ab",
                        "e\u{301}", "e\u{301}x", "x", "xa", "xab"].map { Array($0.utf8) })
        XCTAssertEqual(grams(["a\r\nb"]), ["a", "a\r\n", "a\r\nb", "\r\n", "\r\nb", "b"].map { Array($0.utf8) }, "CR LF is one character")
        XCTAssertEqual(grams(["", ""]), [], "no text, no grams")
        // The ASCII shortcut and the general path agree with Swift's characters.
        var generator = SystemRandomNumberGenerator()
        let alphabet: [String] = ["a", "B", " ", "\r", "\n", "\r\n", "é", "e\u{301}", "张", "👍🏽", "%", "_", "\""]
        for _ in 0..<300 {
            let text = (0..<Int.random(in: 0...9, using: &generator)).map { _ in alphabet.randomElement(using: &generator) ?? "" }.joined()
            let characters = Array(NgramIndex.fold(text))
            var expected = Set<[UInt8]>()
            for i in characters.indices {
                for length in 1...4 where i + length <= characters.count {
                    expected.insert(Array(String(characters[i..<(i + length)]).utf8))
                }
            }
            XCTAssertEqual(Set(grams([text])), expected, text.debugDescription)
        }
    }

    /// A gram's ids stay ascending and exact through inserts and removals, inline (up to two)
    /// and spilled, for short and long grams alike.
    func testGramTableKeepsEachGramsIDsInOrder() {
        var table = GramTable()
        var expected: [[UInt8]: Set<UInt32>] = [:]
        var generator = SystemRandomNumberGenerator()
        let grams: [[UInt8]] = ["a", "ab", "张三丰", "e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}", "👍🏽👍🏽"].map { Array($0.utf8) }
        for _ in 0..<4_000 {
            let gram = grams.randomElement(using: &generator) ?? []
            let id = UInt32.random(in: 1...6, using: &generator)
            gram.withUnsafeBufferPointer { bytes in
                if Bool.random(using: &generator) {
                    table.insert(id, bytes)
                    expected[gram, default: []].insert(id)
                } else {
                    table.remove(id, bytes)
                    expected[gram]?.remove(id)
                }
            }
            for gram in grams {
                let ids = table.postings(GramTable.Key(gram))?.ids ?? []
                XCTAssertEqual(ids, (expected[gram] ?? []).sorted())
                if let postings = table.postings(GramTable.Key(gram)) { XCTAssertFalse(postings.isEmpty, "an empty gram is dropped") }
            }
        }
        XCTAssertLessThanOrEqual(table.count, grams.count)
        XCTAssertNotEqual(GramTable.Key(Array("ab".utf8)), GramTable.Key(Array("ab\0".utf8)), "the length is part of the key")
    }

    func testQueriesMatchSubstringsLiterally() throws {
        let db = try SQLiteConnection(path: path)
        let names = try Names.create(db)
        for name in [["张三丰"], ["Li Si"], ["50%_off"], ["王五", "Zhong"]] { try names.add(name) }
        let index = index()
        XCTAssertEqual(try all(index, db, "三"), [1])
        XCTAssertEqual(try all(index, db, "张三"), [1])
        XCTAssertEqual(try all(index, db, "三丰"), [1])
        XCTAssertEqual(try all(index, db, "张丰"), [], "not a substring")
        XCTAssertEqual(try all(index, db, "LI S"), [2])
        XCTAssertEqual(try all(index, db, "li si"), [2], "five characters: its grams, then its bytes")
        XCTAssertEqual(try all(index, db, "li sx"), [])
        XCTAssertEqual(try all(index, db, "%_"), [3])
        XCTAssertEqual(try all(index, db, "50%_off"), [3])
        XCTAssertEqual(try all(index, db, "5_"), [], "'_' is not a wildcard (it would match \"50\")")
        XCTAssertEqual(try all(index, db, "5%"), [], "'%' is not a wildcard")
        XCTAssertEqual(try all(index, db, "i"), [2])
        XCTAssertEqual(try all(index, db, "zhong"), [4], "the second text")
        XCTAssertEqual(try all(index, db, "五\u{1F}z"), [], "never across two texts")
        XCTAssertEqual(try all(index, db, "五zh"), [])
    }

    /// Every page, past the end, and every status filter agree with a plain filter of the rows,
    /// for short and long queries, before and after renames and status changes.
    func testPagesAndTotalsAgreeWithTheRows() throws {
        let db = try SQLiteConnection(path: path)
        let names = try Names.create(db)
        var rows: [Int64: (status: Int64, fold: String)] = [:]
        for i in 1...90 {
            let name = ["Zhong \(i)", "zhongHua", "张三\(i % 7)", "li \(i)", "ZHO"][i % 5] + (i % 3 == 0 ? " 张三丰" : "")
            let status: Int64 = i % 4 == 0 ? -1 : 1
            let id = try names.add([name], status: status)
            rows[id] = (status, NgramIndex.fold(name))
        }
        let index = index()
        func check() throws {
            for query in ["zhon", "zho", "z", "张三", "张三丰", "三丰", "li 1", "nope", "zhonghua", "zhong 1", "hong 2"] {
                for statuses in [[1], [-1], [1, -1], nil] as [[Int64]?] {
                    let expected = rows.filter { $0.value.fold.contains(query) && (statuses?.contains($0.value.status) ?? true) }.keys.sorted(by: >)
                    for (page, count) in [(1, 7), (2, 7), (3, 7), (1, 100), (13, 7), (99, 7), (2, 1)] as [(Int64, Int64)] {
                        let result = try index.search(db, folded: query, statuses: statuses, paging: Paging(page: page, count: count))
                        let label = "\(query) \(statuses ?? []) page \(page) count \(count)"
                        XCTAssertEqual(result.total, Int64(expected.count), label)
                        XCTAssertEqual(result.ids, Array(expected.dropFirst(Int((page - 1) * count)).prefix(Int(count))), label)
                    }
                    XCTAssertEqual(try all(index, db, query, statuses: statuses), expected)
                }
            }
        }
        try check()
        for (id, name) in [(2, "李四"), (3, "王五 zhong"), (4, ""), (4, "赵六 zho"), (5, "zhong 5")] as [(Int64, String)] {
            try names.rename(id, [name])
            rows[id]?.fold = NgramIndex.fold(name)
        }
        for (id, status) in [(2, -1), (3, -1), (2, 1), (8, 1), (9, -1)] as [(Int64, Int64)] {
            try names.setStatus(id, status)
            rows[id]?.status = status
        }
        try check()
    }

    func testCanonicallyEquivalentQueriesKeepTheirOwnRows() throws {
        let db = try SQLiteConnection(path: path)
        let names = try Names.create(db)
        for name in ["caf\u{E9} one", "cafe\u{301} two", "cafe\u{301} three"] { try names.add([name]) }
        let index = index()
        for (query, expected) in [("caf\u{E9}", [Int64(1)]), ("cafe\u{301}", [3, 2]), ("\u{E9}", [1]), ("e\u{301}", [3, 2]),
                                  ("cafe\u{301} t", [3, 2]), ("caf\u{E9} o", [1])] {
            XCTAssertEqual(try all(index, db, query), expected, Array(query.utf8).description)
        }
    }

    /// Each read transaction gets what its snapshot holds, whether the index is behind it
    /// (another process's commit), ahead of it (another reader moved it on) or its own
    /// uncommitted rows (a write transaction, which never moves the index).
    func testEachSnapshotGetsItsOwnRows() throws {
        let writer = try SQLiteConnection(path: path)
        let names = try Names.create(writer)
        let old = try SQLiteConnection(path: path), fresh = try SQLiteConnection(path: path)
        let shared = SearchIndexes()
        for connection in [writer, old, fresh] { connection.searchIndexes = shared }
        let index = shared.index(table: "names", eventType: "name")
        for i in 1...5 { try names.add(["Zhong \(i)"]) }

        try old.run("BEGIN")
        XCTAssertEqual(try all(index, old, "zhon"), [5, 4, 3, 2, 1])
        try names.add(["Zhong 6"])
        try names.rename(2, ["Li"])
        try names.setStatus(3, -1)
        XCTAssertEqual(try all(index, fresh, "zhon"), [6, 5, 4, 1], "a new snapshot moves the index on")
        XCTAssertEqual(try all(index, old, "zhon"), [5, 4, 3, 2, 1], "an older snapshot: its own rows")
        XCTAssertEqual(try all(index, old, "zhong 2"), [2])
        XCTAssertEqual(try all(index, old, "li"), [])
        try old.run("COMMIT")
        XCTAssertEqual(try all(index, old, "zhon"), [6, 5, 4, 1])
        XCTAssertEqual(try all(index, old, "li"), [2])

        try writer.run("BEGIN IMMEDIATE")
        try names.add(["Zhong 7"])
        try names.setStatus(6, -1)
        XCTAssertEqual(try all(index, writer, "zhon"), [7, 5, 4, 1], "a write transaction: its own rows")
        XCTAssertEqual(try all(index, fresh, "zhon"), [6, 5, 4, 1], "others do not see them")
        try writer.run("ROLLBACK")
        XCTAssertEqual(try all(index, fresh, "zhon"), [6, 5, 4, 1], "rolled back: never in the index")
        XCTAssertEqual(try all(index, writer, "zhon"), [6, 5, 4, 1])

        // Another process (its own connections and index) writes: seen at the next snapshot.
        let replica = try SQLiteConnection(path: path)
        let added = try Names(db: replica).add(["Zhong 8"])
        try Names(db: replica).rename(1, ["Wang"])
        XCTAssertEqual(try all(index, fresh, "zhon"), [added, 6, 5, 4])
    }

    /// A snapshot older than the changes the index remembers is answered by a scan (still
    /// exact); an index far behind is rebuilt.
    func testOldSnapshotsAreScannedAndAFarBehindIndexRebuilt() throws {
        let writer = try SQLiteConnection(path: path)
        let names = try Names.create(writer)
        let old = try SQLiteConnection(path: path), fresh = try SQLiteConnection(path: path)
        var limits = SearchIndex.Limits()
        limits.recent = 4
        limits.rebuildAfter = 6
        let index = index(limits)
        for i in 1...3 { try names.add(["Zhong \(i)"]) }
        XCTAssertEqual(try all(index, fresh, "zhon"), [3, 2, 1])
        try old.run("BEGIN")
        XCTAssertEqual(try all(index, old, "zhon"), [3, 2, 1])
        for i in 4...8 {
            try names.add(["Zhong \(i)"])
            XCTAssertEqual(try all(index, fresh, "zhon"), Array((1...Int64(i)).reversed()), "one event at a time")
        }
        XCTAssertEqual(try all(index, old, "zhon"), [3, 2, 1], "past what is remembered: scanned")
        try old.run("COMMIT")
        for i in 9...20 { try names.add(["Zhong \(i)"]) }
        try names.rename(4, ["Li"])
        XCTAssertEqual(try all(index, fresh, "zhon"), Array((1...20).reversed()).filter { $0 != 4 }, "13 events behind: rebuilt")
        XCTAssertEqual(try all(index, fresh, "li"), [4])
    }

    /// A filtered search narrows the index's matches in SQL: as a list of ids when there are
    /// few, else by keeping the filter's rows that match; both give the same pages.
    func testFilteredSearchesNarrowTheMatchesInSQL() throws {
        let db = try SQLiteConnection(path: path)
        let names = try Names.create(db)
        for i in 1...40 { try names.add([i % 2 == 0 ? "Zhong \(i)" : "Li \(i)"], status: i % 5 == 0 ? -1 : 1) }
        var filter = SQLFilter()
        filter.add("t.id > ?", [.int(10)])
        for idList in [1_000, 3] {
            var limits = SearchIndex.Limits()
            limits.idList = idList
            let index = index(limits)
            let expected: [Int64] = (11...40).reversed().filter { $0 % 2 == 0 && $0 % 5 != 0 }
            for (page, count) in [(1, 5), (2, 5), (3, 5), (9, 5)] as [(Int64, Int64)] {
                let result = try index.searchPage(db, folded: "zhon", statuses: [1], filter: filter, paging: Paging(page: page, count: count))
                XCTAssertEqual(result.total, Int64(expected.count), "idList \(idList)")
                XCTAssertEqual(result.ids, Array(expected.dropFirst(Int((page - 1) * count)).prefix(Int(count))), "idList \(idList) page \(page)")
            }
            let condition = try index.condition(db, idColumn: "id", folded: "li 3")
            XCTAssertEqual(try db.queryIDs("SELECT id FROM names WHERE \(condition.sql) ORDER BY id", condition.binds), [3, 31, 33, 35, 37, 39],
                           "every status")
        }
    }

    /// A row the index would need a huge array for (an id far past AUTOINCREMENT's) leaves
    /// every search to a scan.
    func testAnIDFarPastTheRowsIsScanned() throws {
        let db = try SQLiteConnection(path: path)
        let names = try Names.create(db)
        try names.add(["Zhong 1"])
        let index = index()
        XCTAssertEqual(try all(index, db, "zhon"), [1])
        let far = Int64(SearchIndex.idSlack) * 4
        try names.add(["Zhong far"], id: far)
        XCTAssertEqual(try all(index, db, "zhon"), [far, 1])
        XCTAssertEqual(try all(index, db, "zhong far"), [far])
        XCTAssertEqual(try all(index, db, "zhong 1"), [1])
    }
}
