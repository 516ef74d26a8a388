import ServiceKit
import WireProtocol

/// A service declared for the tests: one table, a list for anyone and a create for staff.
enum NotesService {
    static let definition = ServiceDefinition(
        name: "notes",
        declaring: [
            APIRoute("GET", "/notes", nil, .anyone, "Notes", answer: .list),
            APIRoute("POST", "/notes", nil, .staff, "Create a note", [APIParameter("text", required: true)], answer: .mutation),
        ],
        migrations: [Migration(name: "001-notes", sql: "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE, created_by INTEGER NOT NULL);")],
        routes: [
            .get("/notes") { ctx in
                let notes = try await ctx.database.read { db in
                    try db.query("SELECT id, text, created_by FROM notes ORDER BY id").map { row -> JSON in
                        ["id": .int(row.int(0) ?? 0), "text": .string(row.string(1) ?? ""), "created_by": .int(row.int(2) ?? 0)]
                    }
                }
                return Reply.ok(data: .array(notes))
            },
            // No check for a duplicate text: the UNIQUE constraint answers it (409).
            .post("/notes") { ctx in
                let caller = try ctx.requireCaller()
                let text = try ctx.params.requireString("text")
                if text == "crash" { throw NotesError() }
                return try await ctx.mutate { db in
                    try db.run("INSERT INTO notes(text, created_by) VALUES (?, ?)", [.text(text), .int(caller.id)])
                    return Reply.mutation(id: db.lastInsertRowID)
                }
            },
        ])

    /// An error no handler should leak: the client sees a plain 500.
    struct NotesError: Error {}
}

/// Callers of every role.
enum Callers {
    static let admin = Caller(id: 1, role: Role.admin.rawValue)
    static let employee = Caller(id: 2, role: Role.employee.rawValue)
    static let otherEmployee = Caller(id: 3, role: Role.employee.rawValue)
    static let courier = Caller(id: 4, role: Role.courier.rawValue)
}

extension WireResponse {
    /// `msg` of the envelope.
    var message: String? { body["msg"]?.stringValue }
}
