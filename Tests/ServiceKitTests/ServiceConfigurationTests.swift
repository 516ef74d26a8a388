#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import XCTest
@testable import ServiceKit
import WireProtocol

/// Reads in flight now and the most seen at once.
private final class Running: Sendable {
    let counts = Mutex((now: 0, most: 0))
}

/// How a service reads its settings from the command line (and the environment).
final class ServiceConfigurationTests: XCTestCase {
    func configuration(_ arguments: [String]) throws -> ServiceConfiguration {
        try ServiceConfiguration.fromCommandLine(name: "notes", arguments: ["service", "--socket", "unix:/tmp/notes.sock", "--db", "/tmp/notes.sqlite"] + arguments)
    }

    func testReadersDefaultToOnePerCoreAndAtLeastTwo() throws {
        let readers = try configuration([]).readers
        XCTAssertEqual(readers, ServiceConfiguration.defaultReaders)
        XCTAssertGreaterThanOrEqual(readers, 2)
        XCTAssertLessThanOrEqual(readers, 16)
        XCTAssertEqual(try configuration(["--readers", "1"]).readers, 1)
        XCTAssertEqual(try configuration(["--readers", "16"]).readers, 16)
    }

    func testAReaderCountOutOfRangeIsRefusedByName() {
        for bad in ["0", "17", "-2", "two", ""] {
            XCTAssertThrowsError(try configuration(["--readers", bad]), bad) { error in
                XCTAssertTrue("\(error)".contains("readers '\(bad)'"), "\(error)")
            }
        }
    }

    /// The count reaches the database: that many reads run at once.
    func testTheDatabaseOpensThatManyReaders() async throws {
        let path = "/tmp/crm-readers-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let database = try Database(path: path, migrations: [], readerCount: 3)
        defer { database.close() }
        // Three reads that each wait (up to 5 s) until three run at the same time: with fewer
        // readers the most seen at once stays below three.
        let running = Running()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await database.read { _ in
                        running.counts.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                        let deadline = monotonicMillis() + 5_000
                        while running.counts.withLock({ $0.most }) < 3 && monotonicMillis() < deadline { usleep(1_000) }
                        running.counts.withLock { $0.now -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(running.counts.withLock { $0.most }, 3)
    }
}
