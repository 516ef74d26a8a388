#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// A service opened in process for tests: its definition on a temporary SQLite file (a real
/// file; `close()` deletes its folder), answering `call` with the dispatch a running service uses
/// (route, access, handler, errors → envelope) — no sockets, no processes.
public final class ServiceTester: Sendable {
    public let definition: ServiceDefinition
    public let database: Database
    public let router: ServiceRouter
    /// The temporary folder holding the database.
    public let directory: String
    private let closed = ManagedFlag()

    /// Opens `definition` as `ServiceRuntime` does: migrations, `onStart`, one maintenance run,
    /// and the routes plus the event feed.
    public init(_ definition: ServiceDefinition) throws {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/crm-tester-\(definition.name)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw APIError.internal("cannot create a temporary folder in \(base): errno \(errno)")
        }
        directory = String(cString: made)
        self.definition = definition
        do {
            database = try Database(path: "\(directory)/\(definition.name).sqlite", migrations: definition.migrations)
        } catch {
            rmdir(directory)
            throw error
        }
        do {
            router = try ServiceRouter(name: definition.name, declared: definition.declared, routes: definition.allRoutes)
        } catch {
            database.close()
            ServiceTester.remove(directory)
            throw error
        }
        do {
            try definition.onStart(database)
            try runMaintenance()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Answers one request the way the service would; `deadline` 0 means none.
    public func call(method: String = "GET", path: String, params: JSONObject = JSONObject(), caller: Caller? = nil,
                     requestID: String = "", session: String? = nil, deadline: Int64 = 0) async -> WireResponse {
        let request = WireRequest(method: method, path: path, params: params, caller: caller,
                                  requestID: requestID, deadline: deadline, session: session)
        return await ServiceRuntime.dispatch(request, router: router, database: database)
    }

    /// Runs the hourly maintenance now, and forgets the stored answers past retention in the
    /// same transaction (the service walks them in steps: `AnswerPurge`).
    public func runMaintenance() throws {
        let maintenance = definition.maintenance
        try database.sync { db in try db.writeTransaction { db in
            try maintenance(db)
            try IdempotencyStore.purge(db)
        } }
    }

    /// Closes the database and deletes its files and folder; later calls do nothing.
    public func close() {
        guard closed.setOnce() else { return }
        database.close()
        ServiceTester.remove(directory)
    }

    /// Deletes the folder with every file in it: the database's and any a test put beside it
    /// (`directory` is the place for a test's scratch files), so no run leaves folders behind.
    private static func remove(_ directory: String) {
        if let folder = opendir(directory) {
            var names: [String] = []
            while let entry = readdir(folder) {
                let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if entryName != "." && entryName != ".." { names.append(entryName) }
            }
            closedir(folder)
            for entryName in names { unlink("\(directory)/\(entryName)") }
        }
        rmdir(directory)
    }
}
