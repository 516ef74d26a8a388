#if canImport(Glibc)
import Glibc
#endif
import XCTest
import ServiceKit
import WireProtocol

/// A service definition run in process by `ServiceTester`: the dispatch of a running service
/// (route, access, handler, errors → envelope) on a real, temporary SQLite file.
final class ServiceTesterTests: XCTestCase {
    var tester: ServiceTester!

    override func setUpWithError() throws {
        tester = try ServiceTester(NotesService.definition)
    }

    override func tearDown() {
        tester?.close()
        tester = nil
    }

    func testCreateThenList() async throws {
        let created = await tester.call(method: "POST", path: "/notes", params: ["text": "  first  "], caller: Callers.employee)
        XCTAssertEqual(created.status, 200, "\(created.body)")
        XCTAssertEqual(created.body["status"]?.intValue, 0)
        XCTAssertEqual(created.message, Reply.mutationMessage)
        let id = try XCTUnwrap(created.body["data"]?["id"]?.intValue)

        let list = await tester.call(path: "/notes/", caller: Callers.courier)
        XCTAssertEqual(list.status, 200, "\(list.body)")
        let notes = try XCTUnwrap(list.body["data"]?.arrayValue)
        XCTAssertEqual(notes.count, 1)
        XCTAssertEqual(notes.first?["id"]?.intValue, id)
        XCTAssertEqual(notes.first?["text"]?.stringValue, "first", "parameters are trimmed as Params reads them")
        XCTAssertEqual(notes.first?["created_by"]?.intValue, Callers.employee.id)
    }

    func testRoutingAndAccessErrorsAreEnvelopes() async {
        let unknown = await tester.call(path: "/nope", caller: Callers.admin)
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.body["status"]?.intValue, 1)
        XCTAssertEqual(unknown.message, "no such endpoint: /nope")

        let wrongMethod = await tester.call(method: "DELETE", path: "/notes", caller: Callers.admin)
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.message, "/notes does not accept DELETE; use GET or POST")

        let anonymous = await tester.call(path: "/notes")
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.message, "not logged in")

        let courier = await tester.call(method: "POST", path: "/notes", params: ["text": "x"], caller: Callers.courier)
        XCTAssertEqual(courier.status, 403)
        let unknownRole = await tester.call(path: "/notes", caller: Caller(id: 9, role: 7))
        XCTAssertEqual(unknownRole.status, 403, "a role the service does not know is no role")

        let count = try? tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM notes") }
        XCTAssertEqual(count, 0, "nothing refused was written")
    }

    func testHandlerErrorsBecomeTheirStatus() async {
        let missing = await tester.call(method: "POST", path: "/notes", params: [:], caller: Callers.admin)
        XCTAssertEqual(missing.status, 400)
        XCTAssertEqual(missing.message, "text is required")

        let first = await tester.call(method: "POST", path: "/notes", params: ["text": "twice"], caller: Callers.admin)
        XCTAssertEqual(first.status, 200)
        let duplicate = await tester.call(method: "POST", path: "/notes", params: ["text": "twice"], caller: Callers.admin)
        XCTAssertEqual(duplicate.status, 409, "a constraint the handler did not check is a conflict")
        XCTAssertEqual(duplicate.message, "the change conflicts with existing data")

        let crash = await tester.call(method: "POST", path: "/notes", params: ["text": "crash"], caller: Callers.admin)
        XCTAssertEqual(crash.status, 500)
        XCTAssertEqual(crash.message, "internal error", "an unexpected error's details stay in the log")
    }

    func testAPassedDeadlineIsAnswered504WithoutRunningTheHandler() async throws {
        let late = await tester.call(method: "POST", path: "/notes", params: ["text": "late"], caller: Callers.admin,
                                     deadline: wallClockMillis() - 1)
        XCTAssertEqual(late.status, 504)
        let count = try tester.database.sync { try $0.scalar("SELECT COUNT(*) FROM notes") }
        XCTAssertEqual(count, 0)
        let inTime = await tester.call(method: "POST", path: "/notes", params: ["text": "in time"], caller: Callers.admin,
                                       deadline: wallClockMillis() + 60_000)
        XCTAssertEqual(inTime.status, 200)
    }

    func testTheEventFeedIsServedLikeInEveryService() async {
        let tail = await tester.call(path: "/internal/events", params: ["after": -1])
        XCTAssertEqual(tail.status, 200, "\(tail.body)")
        XCTAssertEqual(tail.body["data"]?["last"]?.intValue, 0)
    }

    func testCloseDeletesTheFileAndItsFolder() throws {
        let path = tester.database.path
        XCTAssertEqual(access(path, F_OK), 0, "a real file while open")
        XCTAssertTrue(path.hasPrefix(tester.directory + "/"))
        // A test's own scratch file beside the database goes with the folder.
        let scratch = try SQLiteConnection(path: tester.directory + "/scratch.sqlite")
        try scratch.execute("CREATE TABLE a(id INTEGER PRIMARY KEY)")
        scratch.close()
        tester.close()
        XCTAssertNotEqual(access(path, F_OK), 0)
        XCTAssertNotEqual(access(tester.directory, F_OK), 0)
        tester.close() // a second close does nothing
    }

    func testEachTesterHasItsOwnFile() async throws {
        let other = try ServiceTester(NotesService.definition)
        defer { other.close() }
        XCTAssertNotEqual(other.database.path, tester.database.path)
        let created = await other.call(method: "POST", path: "/notes", params: ["text": "a"], caller: Callers.admin)
        XCTAssertEqual(created.status, 200)
        let ownList = await tester.call(path: "/notes", caller: Callers.admin)
        XCTAssertEqual(ownList.body["data"]?.arrayValue?.count, 0)
    }
}
