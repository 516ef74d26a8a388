#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ServiceKit
import WireProtocol

/// `Backup.copy` on real files, with a writer committing throughout.
final class BackupTests: XCTestCase {
    var folder: String!

    override func setUp() {
        folder = "/tmp/crm-backup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(folder, 0o700)
    }

    override func tearDown() {
        _ = try? FileManager.default.removeItem(atPath: folder)
    }

    func testCopyIsOneConsistentSnapshotWhileAWriterCommits() throws {
        let source = folder + "/live.sqlite"
        let db = try Database(path: source, migrations: [Migration(name: "t", sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL);")])
        defer { db.close() }
        // Every transaction keeps a = b: a torn copy would show a row where they differ, or
        // a count between two commits.
        try db.sync { c in try c.writeTransaction { c in for i in 0..<2000 { try c.run("INSERT INTO t(a, b) VALUES (?, ?)", [.int(Int64(i)), .int(Int64(i))]) } } }
        let writer = Thread {
            for round in 0..<200 {
                try? db.sync { c in try c.writeTransaction { c in
                    try c.run("UPDATE t SET a = a + 1, b = b + 1 WHERE id % 7 = ?", [.int(Int64(round % 7))])
                    try c.run("INSERT INTO t(a, b) VALUES (?, ?)", [.int(Int64(round)), .int(Int64(round))])
                } }
            }
        }
        writer.start()
        var copies: [String] = []
        for i in 0..<5 {
            let target = folder + "/copy-\(i).sqlite"
            let pages = try Backup.copy(from: source, to: target)
            XCTAssertGreaterThan(pages, 0)
            copies.append(target)
        }
        while !writer.isFinished { usleep(10_000) }
        for target in copies {
            XCTAssertFalse(FileManager.default.fileExists(atPath: target + "-wal"), "the copy is one file")
            let copy = try SQLiteConnection(path: target)
            XCTAssertEqual(try copy.queryOne("PRAGMA quick_check")?.string("quick_check"), "ok")
            XCTAssertEqual(try copy.scalar("SELECT COUNT(*) FROM t WHERE a != b"), 0, "no transaction is cut in half")
            let count = try copy.scalar("SELECT COUNT(*) FROM t")
            XCTAssertGreaterThanOrEqual(count, 2000)
            XCTAssertLessThanOrEqual(count, 2200)
            copy.close()
        }
    }

    func testRefusesToOverwriteAndDoesNotCreateAMissingSource() throws {
        let source = folder + "/live.sqlite"
        let db = try SQLiteConnection(path: source)
        try db.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        db.close()
        let target = folder + "/copy.sqlite"
        try Backup.copy(from: source, to: target)
        XCTAssertThrowsError(try Backup.copy(from: source, to: target)) { error in
            XCTAssertTrue("\(error)".contains("exists"), "\(error)")
        }
        let missing = folder + "/none.sqlite"
        XCTAssertThrowsError(try Backup.copy(from: missing, to: folder + "/other.sqlite")) { error in
            XCTAssertTrue("\(error)".contains("no database at"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/other.sqlite"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".partial-") }
        XCTAssertEqual(leftovers, [], "no temporary file is left behind")
    }
}
