#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// A test case whose every test gets a fresh SQLite file name (`path`, under /tmp, named by
/// `filePrefix`); the file, its WAL and its shared memory are removed after the test.
class SQLiteFileTestCase: XCTestCase {
    var path: String!

    class var filePrefix: String { "sqlite" }

    override func setUp() {
        super.setUp()
        path = "/tmp/crm-\(Self.filePrefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
    }

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        super.tearDown()
    }
}
