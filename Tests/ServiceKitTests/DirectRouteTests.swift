import Synchronization
import XCTest
@testable import ServiceKit
import WireProtocol

/// Writes answered through a callback (`Database.write(_:completion:)`, `Route.direct`): from
/// the writer's queue once committed, with no task in between.
final class DirectRouteTests: XCTestCase {
    /// A direct create that fails its check before writing when `text` is "bad", and a task
    /// route doing the same write, to tell the two paths apart.
    static let definition = ServiceDefinition(
        name: "direct",
        declaring: [
            APIRoute("POST", "/direct", nil, .staff, "Create through a callback", [APIParameter("text", required: true)], answer: .mutation),
            APIRoute("POST", "/tasked", nil, .staff, "Create in a task", [APIParameter("text", required: true)], answer: .mutation),
        ],
        migrations: [Migration(name: "001-notes", sql: "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);")],
        routes: [
            .direct("POST", "/direct") { ctx, done in
                let text: String
                do {
                    text = try ctx.params.requireString("text")
                    if text == "bad" { throw APIError.badRequest("text must not be bad") }
                } catch {
                    return done(.failure(error))
                }
                ctx.mutate({ db in try insert(db, text) }, completion: done)
            },
            .post("/tasked") { ctx in
                let text = try ctx.params.requireString("text")
                return try await ctx.mutate { db in try insert(db, text) }
            },
        ])

    static func insert(_ db: SQLiteConnection, _ text: String) throws -> WireResponse {
        try db.run("INSERT INTO notes(text) VALUES (?)", [.text(text)])
        return Reply.mutation(id: db.lastInsertRowID)
    }

    /// What a responder saw: the answer, whether a task delivered it, and how many notes another
    /// connection to the file saw at that moment (committed ones only).
    struct Delivery: Sendable {
        var response: WireResponse
        var fromTask: Bool
        var committedNotes: Int64
    }

    func serve(_ tester: ServiceTester, _ path: String, text: String, requestID: String) async throws -> Delivery {
        let file = tester.database.path
        let request = WireRequest(method: "POST", path: path, params: ["text": .string(text)], caller: Caller(id: 1, role: Role.admin.rawValue),
                                  requestID: requestID, deadline: 0, session: nil)
        return try await withCheckedThrowingContinuation { continuation in
            ServiceRuntime.serve(request, router: tester.router, database: tester.database, responder: Responder { response in
                let fromTask = withUnsafeCurrentTask { $0 != nil }
                continuation.resume(with: Result {
                    let other = try SQLiteConnection(path: file)
                    let count = try other.query("SELECT count(*) FROM notes").first?.int(0) ?? -1
                    return Delivery(response: response, fromTask: fromTask, committedNotes: count)
                })
            })
        }
    }

    func testADirectWriteIsAnsweredByTheWriterAfterItsCommitWithoutATask() async throws {
        let tester = try ServiceTester(Self.definition)
        defer { tester.close() }
        let direct = try await serve(tester, "/direct", text: "one", requestID: "gw-1-a1")
        XCTAssertEqual(direct.response.status, 200)
        XCTAssertEqual(direct.response.body["data"]?["id"], .int(1))
        XCTAssertFalse(direct.fromTask, "a direct route's answer comes from the writer, not a task")
        XCTAssertEqual(direct.committedNotes, 1, "answered only once its change is committed")
        // The contrast that makes the check above mean something: a task route answers from its task.
        let tasked = try await serve(tester, "/tasked", text: "two", requestID: "gw-1-a2")
        XCTAssertEqual(tasked.response.status, 200)
        XCTAssertTrue(tasked.fromTask)
    }

    func testADirectRoutesCheckFailsWithoutTheWriterAndItsResendIsAnsweredAsStored() async throws {
        let tester = try ServiceTester(Self.definition)
        defer { tester.close() }
        let bad = try await serve(tester, "/direct", text: "bad", requestID: "gw-1-b1")
        XCTAssertEqual(bad.response.status, 400)
        XCTAssertEqual(bad.response.message, "text must not be bad")
        XCTAssertEqual(bad.committedNotes, 0)
        // A gateway id's resend: the insert fails the UNIQUE text, the id is found stored, the
        // request runs again from the writer's own completion and gets the first answer.
        let first = try await serve(tester, "/direct", text: "same", requestID: "gw-1-b2")
        let again = try await serve(tester, "/direct", text: "same", requestID: "gw-1-b2")
        XCTAssertEqual(first.response.status, 200)
        XCTAssertEqual(again.response.status, 200)
        XCTAssertEqual(again.response.body["data"], first.response.body["data"])
        XCTAssertFalse(again.fromTask)
        XCTAssertEqual(again.committedNotes, 1)
        // Another id with the same text is the constraint's conflict, not a stored answer.
        let other = try await serve(tester, "/direct", text: "same", requestID: "gw-1-b3")
        XCTAssertEqual(other.response.status, 409)
    }

    func testAWriteCompletionMayQueueTheNextWrite() async throws {
        let tester = try ServiceTester(Self.definition)
        defer { tester.close() }
        let database = tester.database
        let ids: [Int64] = try await withCheckedThrowingContinuation { continuation in
            database.write({ db in _ = try Self.insert(db, "first"); return db.lastInsertRowID }) { first in
                database.write({ db in _ = try Self.insert(db, "second"); return db.lastInsertRowID }) { second in
                    continuation.resume(with: Result { [try first.get(), try second.get()] })
                }
            }
        }
        XCTAssertEqual(ids, [1, 2])
    }
}
