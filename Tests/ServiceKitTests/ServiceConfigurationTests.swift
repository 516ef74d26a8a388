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

    /// `CRM_SCHED_BATCH`: off unless `1`; anything but `0` or `1` is refused by name (78).
    func testBatchSchedulingIsOffUnlessTurnedOn() throws {
        defer { unsetenv("CRM_SCHED_BATCH") }
        unsetenv("CRM_SCHED_BATCH")
        XCTAssertFalse(try configuration([]).batchScheduling)
        setenv("CRM_SCHED_BATCH", "0", 1)
        XCTAssertFalse(try configuration([]).batchScheduling)
        setenv("CRM_SCHED_BATCH", "1", 1)
        XCTAssertTrue(try configuration([]).batchScheduling)
        for bad in ["yes", "2", "off"] {
            setenv("CRM_SCHED_BATCH", bad, 1)
            XCTAssertThrowsError(try configuration([]), bad) { error in
                XCTAssertEqual(ConfigurationError.exitStatus(for: error), 78, bad)
                XCTAssertTrue("\(error)".contains("CRM_SCHED_BATCH '\(bad)'"), "\(error)")
            }
        }
    }

    /// A setting the service cannot use exits 78 (EX_CONFIG: the launcher stops the system
    /// instead of restarting it); a failure at run time — here a database it cannot open —
    /// exits 1 and is restarted.
    func testASettingItCannotUseExitsWithEX_CONFIGAndARuntimeFailureWith1() throws {
        for bad in [["--readers", "0"], ["--source", "users"], ["--source", "users=tcp:nowhere"], ["--socket-dir", "/tmp/crm-never-made", "--replica", ".hidden"]] {
            XCTAssertThrowsError(try configuration(bad), "\(bad)") { error in
                XCTAssertTrue(error is ConfigurationError, "\(bad): \(type(of: error)) \(error)")
                XCTAssertEqual(ConfigurationError.exitStatus(for: error), 78, "\(bad)")
            }
        }
        setenv(Lifeline.environmentKey, "987", 1)
        defer { unsetenv(Lifeline.environmentKey) }
        XCTAssertThrowsError(try Lifeline.inherited()) { error in
            XCTAssertEqual(ConfigurationError.exitStatus(for: error), 78)
            XCTAssertTrue("\(error)".contains("CRM_LIFELINE_FD '987'"), "\(error)")
        }
        unsetenv(Lifeline.environmentKey)
        XCTAssertNil(try Lifeline.inherited(), "started by hand: no lifeline")

        var unopenable = try configuration([])
        unopenable.databasePath = "/nonexistent-\(UInt32.random(in: 0...UInt32.max))/notes.sqlite"
        XCTAssertThrowsError(try ServiceRuntime(definition: NotesService.definition, configuration: unopenable)) { error in
            XCTAssertFalse(error is ConfigurationError, "\(error)")
            XCTAssertEqual(ConfigurationError.exitStatus(for: error), 1, "\(error)")
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
