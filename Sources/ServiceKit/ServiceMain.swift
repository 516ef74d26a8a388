#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Synchronization
import WireProtocol

/// What makes a service: its name, its schema, its routes and what it does once at start.
public struct ServiceDefinition: Sendable {
    /// Short name: socket `<name>.sock`, database `<name>.sqlite`, peer name in hellos.
    public var name: String
    /// The routes `routes` must bind, no more and no less: the service's routes in the catalog.
    public var declared: [APIRoute]
    public var migrations: [Migration]
    public var routes: [Route]
    /// Runs once after migrations, before the socket opens (e.g. the bootstrap administrator).
    public var onStart: @Sendable (Database) throws -> Void
    /// Runs hourly in a write transaction (and once at start): forgets what has expired.
    public var hourly: @Sendable (SQLiteConnection) throws -> Void
    /// Other services' entities this one copies into its own tables (docs/EVENTS.md).
    public var projections: [Projection]

    /// The hourly clean-up (also run once at start): expired secrets of stored answers,
    /// superseded events (outbox compaction), then the service's own. Stored answers past the
    /// retention time are forgotten by a walk in steps after it (`AnswerPurge`).
    public var maintenance: @Sendable (SQLiteConnection) throws -> Void {
        let hourly = self.hourly
        return { db in
            try IdempotencyStore.forgetExpiredSecrets(db)
            try Outbox.compact(db)
            try hourly(db)
        }
    }

    /// Refuses (`ConfigurationError`) a configuration without the source of a projection.
    func checkSources(_ configuration: ServiceConfiguration) throws(ConfigurationError) {
        for projection in projections where configuration.sources[projection.source] == nil {
            throw ConfigurationError("\(name) copies events of \(projection.source): give --source \(projection.source)=ENDPOINT")
        }
    }

    /// Every route the service binds: its own and the event feed.
    public var allRoutes: [Route] { routes + [EventFeed.route] }

    /// Where the bound routes disagree with the declared ones (empty when they agree; the
    /// service does not start otherwise).
    public var routeProblems: [String] { ServiceRouter.problems(name: name, declared: declared, routes: allRoutes) }

    /// A service of the system: its routes are declared in the catalog.
    public init(service: ServiceName, migrations: [Migration], routes: [Route],
                onStart: @escaping @Sendable (Database) throws -> Void = { _ in },
                hourly: @escaping @Sendable (SQLiteConnection) throws -> Void = { _ in },
                projections: [Projection] = []) {
        self.init(name: service.rawValue, declaring: Catalog.routes(of: service), migrations: migrations, routes: routes,
                  onStart: onStart, hourly: hourly, projections: projections)
    }

    /// A service outside the catalog (tests, tools): `declaring` lists its routes; the event
    /// feed every service serves is declared for it.
    public init(name: String, declaring: [APIRoute], migrations: [Migration], routes: [Route],
                onStart: @escaping @Sendable (Database) throws -> Void = { _ in },
                hourly: @escaping @Sendable (SQLiteConnection) throws -> Void = { _ in },
                projections: [Projection] = []) {
        self.name = name
        var declared = declaring
        if !declared.contains(where: { $0.key == EventFeed.declaration.key }) { declared.append(EventFeed.declaration) }
        self.declared = declared
        self.migrations = migrations
        self.routes = routes
        self.onStart = onStart
        self.hourly = hourly
        self.projections = projections
    }
}

/// Where a service listens and keeps its data: flags first, then environment, then defaults.
public struct ServiceConfiguration: Sendable {
    public var endpoint: Endpoint
    public var databasePath: String
    public var replica: String
    /// Where other services listen, by name, for the projections.
    public var sources: [String: Endpoint]
    /// Read-only SQLite connections, each on its own queue: how many reads run at once.
    public var readers = ServiceConfiguration.defaultReaders
    /// `CRM_SCHED_BATCH` (`0`, the default, or `1`): run the process's threads under Linux's
    /// SCHED_BATCH policy (`ServiceMain.applyBatchScheduling`).
    public var batchScheduling = false

    /// One reader per core, at least two (a slow read never holds up all the others) and at
    /// most 16.
    public static var defaultReaders: Int { min(max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), 16) }

    public init(endpoint: Endpoint, databasePath: String, replica: String, sources: [String: Endpoint] = [:]) {
        self.endpoint = endpoint
        self.databasePath = databasePath
        self.replica = replica
        self.sources = sources
    }

    /// `--socket ENDPOINT` / `CRM_SOCKET` (default `unix:./data/run/<name>.sock`), or
    /// `--socket-dir DIR` / `CRM_SOCKET_DIR`: listen on `DIR/<replica>.sock` beside the other
    /// replicas of the service (the folder is created when missing); `--db PATH` / `CRM_DB`
    /// (default `./data/<name>.sqlite`), `--replica ID` / `CRM_REPLICA` (default the host
    /// name: a container's id under Docker),
    /// one `--source NAME=ENDPOINT` / `CRM_SOURCE_<NAME>` per service whose events this
    /// one copies (an endpoint ending in `/` is a folder of replica sockets), and `--readers N`
    /// / `CRM_SQLITE_READERS` (1 to 16; default `defaultReaders`). A flag or variable it cannot
    /// use throws `ConfigurationError`; a socket folder it cannot create, `SyscallError`.
    public static func fromCommandLine(name: String, arguments: [String] = CommandLine.arguments) throws -> ServiceConfiguration {
        do {
            return try parse(name: name, arguments: arguments)
        } catch let error as EndpointError {
            throw ConfigurationError(error.description)
        }
    }

    private static func parse(name: String, arguments: [String]) throws -> ServiceConfiguration {
        func flag(_ key: String) -> String? {
            guard let i = arguments.firstIndex(of: key), i + 1 < arguments.count else { return nil }
            return arguments[i + 1]
        }
        func env(_ key: String) -> String? {
            guard let v = getenv(key) else { return nil }
            let s = String(cString: v)
            return s.isEmpty ? nil : s
        }
        let folder = flag("--socket-dir") ?? env("CRM_SOCKET_DIR")
        let db = flag("--db") ?? env("CRM_DB") ?? "./data/\(name).sqlite"
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let replica = flag("--replica") ?? env("CRM_REPLICA") ?? hostName
        let socket: String
        if let folder {
            guard !replica.isEmpty, replica.utf8.allSatisfy({ $0 != UInt8(ascii: "/") && $0 > 32 }), !replica.hasPrefix(".") else {
                throw EndpointError(reason: "--replica '\(replica)' cannot name a socket file")
            }
            // Private to the user, like the launcher's run folder: services trust the caller in an envelope.
            if mkdir(folder, 0o700) != 0 && errno != EEXIST { throw SyscallError(call: "mkdir \(folder) (the socket folder)", errno: errno) }
            socket = "unix:" + Endpoint.replicaSocketPath(folder: folder, replica: replica)
        } else {
            socket = flag("--socket") ?? env("CRM_SOCKET") ?? "unix:./data/run/\(name).sock"
        }
        var sources: [String: Endpoint] = [:]
        for (i, argument) in arguments.enumerated() where argument == "--source" && i + 1 < arguments.count {
            let parts = arguments[i + 1].split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw EndpointError(reason: "--source takes NAME=ENDPOINT") }
            sources[String(parts[0])] = try Endpoint(parsing: String(parts[1]))
        }
        for service in ServiceName.allCases where sources[service.rawValue] == nil {
            if let value = env("CRM_SOURCE_\(service.rawValue.uppercased())") { sources[service.rawValue] = try Endpoint(parsing: value) }
        }
        var configuration = ServiceConfiguration(endpoint: try Endpoint(parsing: socket), databasePath: db, replica: replica, sources: sources)
        configuration.replicaDefaulted = folder != nil && flag("--replica") == nil && env("CRM_REPLICA") == nil
        if let text = flag("--readers") ?? env("CRM_SQLITE_READERS") {
            guard let readers = Int(text), (1...16).contains(readers) else {
                throw ConfigurationError("readers '\(text)' (--readers, CRM_SQLITE_READERS) is not a number from 1 to 16")
            }
            configuration.readers = readers
        }
        if let text = env("CRM_SCHED_BATCH") {
            guard text == "0" || text == "1" else { throw ConfigurationError("CRM_SCHED_BATCH '\(text)' is not 0 or 1") }
            configuration.batchScheduling = text == "1"
        }
        return configuration
    }

    /// True when the replica id is the host name by default (not given): a live process on
    /// that socket is then another replica that forgot `--replica`, not one being replaced.
    public var replicaDefaulted = false

    /// Whether a service answers a ping on this configuration's socket within `timeoutMillis`
    /// (the health check of a container: `<Service> --ping`).
    public func pingSelf(timeoutMillis: Int64 = 2_000) -> Bool {
        guard let loop = try? EventLoop.start(name: "ping") else { return false }
        defer { loop.stop() }
        let client = WireClient(loop: loop, endpoint: endpoint, serviceName: "self", hello: Hello(peer: "ping", replica: replica))
        client.start()
        defer { client.stop() }
        let deadline = monotonicMillis() + timeoutMillis
        // Not connected yet answers false at once: ask again until the deadline.
        while monotonicMillis() < deadline {
            let outcome = PingOutcome()
            client.ping(timeoutMillis: max(1, min(500, deadline - monotonicMillis()))) { up in outcome.state.withLock { $0 = up ? 1 : 2 } }
            while outcome.state.withLock({ $0 }) == 0 { usleep(2_000) }
            if outcome.state.withLock({ $0 }) == 1 { return true }
            usleep(20_000)
        }
        return false
    }
}

/// A running service: database, router and wire server, wired together.
public final class ServiceRuntime: Sendable {
    public let definition: ServiceDefinition
    public let database: Database
    public let router: ServiceRouter
    public let server: WireServer
    public let loop: EventLoop
    let consumers: [EventConsumer]

    public init(definition: ServiceDefinition, configuration: ServiceConfiguration) throws {
        self.definition = definition
        database = try Database(path: configuration.databasePath, migrations: definition.migrations, readerCount: configuration.readers)
        try definition.onStart(database)
        let maintenance = definition.maintenance
        try database.sync { db in try db.writeTransaction(maintenance) }
        let purge = AnswerPurge()
        purge.start(database)
        database.every(seconds: 3600) { [weak database] db in
            // Queued first (it runs after this transaction), so a failing maintenance does not
            // keep the answers from being purged.
            if let database { purge.start(database) }
            try maintenance(db)
        }
        router = try ServiceRouter(name: definition.name, declared: definition.declared, routes: definition.allRoutes)
        loop = try EventLoop.start(name: "\(definition.name)-io")
        var consumers: [EventConsumer] = []
        guard Set(definition.projections.map(\.name)).count == definition.projections.count else {
            throw ProjectionError(reason: "\(definition.name) declares two projections of one name")
        }
        for projection in definition.projections {
            guard let source = configuration.sources[projection.source] else {
                throw EndpointError(reason: "\(definition.name) copies events of \(projection.source): give --source \(projection.source)=ENDPOINT")
            }
            let client = ReplicaPool(loop: loop, endpoint: source, serviceName: projection.source,
                                     hello: Hello(peer: definition.name, replica: configuration.replica))
            consumers.append(try EventConsumer(projection: projection, client: client, database: database))
        }
        self.consumers = consumers
        let router = self.router
        let database = self.database
        server = WireServer(loop: loop, endpoint: configuration.endpoint,
                            hello: Hello(peer: definition.name, replica: configuration.replica)) { request, responder in
            ServiceRuntime.serve(request, router: router, database: database, responder: responder)
        }
    }

    public func start() throws {
        try server.start()
        database.startCheckpointing()
        database.watchOtherWriters()
        for consumer in consumers { consumer.start() }
    }

    /// Answers one request (through `dispatch` in tests, as the service does).
    static func dispatch(_ request: WireRequest, router: ServiceRouter, database: Database) async -> WireResponse {
        await withCheckedContinuation { continuation in
            serve(request, router: router, database: database, responder: Responder { continuation.resume(returning: $0) })
        }
    }

    /// Answers one request: deadline, route and access here (on the caller's thread, the
    /// server's loop); a read route then runs on a reader's queue and answers from there, a
    /// direct one answers through its callback (a write: from the writer), any other in a task.
    /// Errors become the envelope.
    static func serve(_ request: WireRequest, router: ServiceRouter, database: Database, responder: Responder) {
        let route: ServiceRouter.Entry
        let context: RequestContext
        do {
            (route, context) = try admit(request, router: router, database: database)
        } catch {
            responder.respond(finished(request, .failure(error)))
            return
        }
        if let read = route.read {
            let call = ReadCall(request: request, context: context, read: read, responder: responder)
            database.enqueueRead { call.run($0) }
        } else if let direct = route.direct {
            direct(context) { responder.respond(finished(request, $0)) }
        } else {
            Task {
                do {
                    responder.respond(finished(request, .success(try await route.handler(context))))
                } catch {
                    responder.respond(finished(request, .failure(error)))
                }
            }
        }
    }

    /// A read route's request on a reader's queue: everything its job needs in one object, the
    /// job's closure's only capture (the read's body, its answer and the job would each
    /// allocate a closure context otherwise).
    private final class ReadCall: Sendable {
        let request: WireRequest
        let context: RequestContext
        let read: ReadHandler
        let responder: Responder

        init(request: WireRequest, context: RequestContext, read: @escaping ReadHandler, responder: Responder) {
            self.request = request
            self.context = context
            self.read = read
            self.responder = responder
        }

        func run(_ reader: Result<SQLiteConnection, Error>) -> Bool {
            let (result, endsTransaction) = Database.outcome(of: reader) { db in try read(context, db) }
            responder.respond(ServiceRuntime.finished(request, result))
            return endsTransaction
        }
    }

    /// The route and context of a request that may run (its deadline not passed, its caller
    /// allowed).
    static func admit(_ request: WireRequest, router: ServiceRouter, database: Database) throws -> (ServiceRouter.Entry, RequestContext) {
        if request.deadline > 0 && wallClockMillis() > request.deadline {
            throw APIError(status: 504, "the request's deadline passed before it was processed")
        }
        let route = try router.route(method: request.method, path: request.path)
        if case .roles(let allowed) = route.access {
            guard let caller = request.caller else { throw APIError.unauthorized() }
            guard let role = caller.roleValue, allowed.contains(role) else { throw APIError.forbidden() }
        }
        let context = RequestContext(method: request.method, path: request.path, params: Params(request.params),
                                     caller: request.caller, requestID: request.requestID, session: request.session, database: database)
        return (route, context)
    }

    /// A handler's outcome as the answer: errors become their envelope.
    static func finished(_ request: WireRequest, _ outcome: Result<WireResponse, Error>) -> WireResponse {
        let response: WireResponse
        switch outcome {
        case .success(let answer):
            response = answer
        case .failure(let error as APIError):
            response = error.response
        case .failure(let error as SQLiteError) where error.isConstraint:
            // Handlers check what they can; a constraint that still fails (two writers racing
            // for a unique value) is a conflict, not a crash.
            Log.warning("\(request.method) \(request.path): \(error)", request: request.trace)
            response = APIError.conflict("the change conflicts with existing data").response
        case .failure(let error):
            Log.error("\(request.method) \(request.path): \(error)", request: request.trace)
            response = APIError.internal().response
        }
        if Log.enabled(.debug) { Log.debug("\(request.method) \(request.path) \(response.status)", request: request.trace) }
        return response
    }

    /// Stops accepting, drains connections, closes the database. Calls `completion` when done
    /// (or after `timeoutSeconds` at the latest).
    public func shutdown(timeoutSeconds: Int = 10, completion: @escaping @Sendable () -> Void) {
        let finished = ManagedFlag()
        let database = self.database
        database.beginClosing()
        for consumer in consumers { consumer.stop() }
        let finish: @Sendable () -> Void = {
            guard finished.setOnce() else { return }
            database.close()
            completion()
        }
        server.drain { finish() }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(timeoutSeconds)) { finish() }
    }
}

/// The `main` of every service executable.
public enum ServiceMain {
    public static func run(_ definition: ServiceDefinition) -> Never {
        Log.name = definition.name
        /// Logs why it cannot start and exits: 78 for a setting to change (not restarted), else 1.
        func refuseToStart(_ error: Error) -> Never {
            Log.error("cannot start: \(error)")
            ConfigurationError.exit(startFailure: error)
        }
        if !Log.configureFromEnvironment(getenv("CRM_LOG_LEVEL").map { String(cString: $0) }) {
            refuseToStart(ConfigurationError("CRM_LOG_LEVEL is not one of debug, info, warn, error"))
        }
        signal(SIGPIPE, SIG_IGN)
        // SIGUSR1 asks to bind the socket path again (below); until then it must not end the process.
        signal(SIGUSR1, SIG_IGN)
        // The database holds what only this service may read (hashes, digests): owner-only files.
        umask(0o077)
        if CommandLine.arguments.dropFirst().first == "backup" {
            exit(Backup.command(name: definition.name, arguments: CommandLine.arguments))
        }
        let runtime: ServiceRuntime
        if CommandLine.arguments.contains("--ping") {
            do {
                let configuration = try ServiceConfiguration.fromCommandLine(name: definition.name)
                let up = configuration.pingSelf()
                StdIO.out("\(definition.name) \(configuration.endpoint): \(up ? "up" : "down")")
                exit(up ? 0 : 1)
            } catch {
                StdIO.error("\(definition.name): \(error)")
                exit(1)
            }
        }
        // Settings first: one it cannot use exits with EX_CONFIG, which the launcher does not
        // restart; whatever fails after (socket, database, migrations) exits 1 and is restarted.
        let configuration: ServiceConfiguration
        let lifeline: Int32?
        do {
            configuration = try ServiceConfiguration.fromCommandLine(name: definition.name)
            try definition.checkSources(configuration)
            lifeline = try Lifeline.inherited()
        } catch {
            refuseToStart(error)
        }
        if configuration.batchScheduling { applyBatchScheduling() }
        do {
            if configuration.replicaDefaulted, case .unix(let path) = configuration.endpoint, access(path, F_OK) == 0,
               configuration.pingSelf(timeoutMillis: 500) {
                // A setting to change (the same start fails the same way): not restarted.
                refuseToStart(ConfigurationError("another replica answers on \(configuration.endpoint): give each replica its own --replica (CRM_REPLICA)"))
            }
            runtime = try ServiceRuntime(definition: definition, configuration: configuration)
            try runtime.start()
            Log.info("listening on \(configuration.endpoint), database \(configuration.databasePath)")
            // A replacement takes over from the process it replaces only from here (`Child.replace`).
            Lifeline.ready()
        } catch {
            refuseToStart(error)
        }
        // SIGTERM, SIGINT and the launcher's end (it died without stopping this process) all drain, once.
        var sources = Lifeline.onStop(signals: [SIGTERM, SIGINT], lifeline: lifeline) { why in
            Log.info("\(why): draining")
            runtime.shutdown { exit(0) }
        }
        // SIGUSR1 (the launcher, after a replacement that bound this replica's socket path
        // failed): bind the path again if it is no longer ours.
        let reclaim = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .main)
        reclaim.setEventHandler { runtime.server.reclaimSocketPath() }
        reclaim.resume()
        sources.append(reclaim)
        withExtendedLifetime(sources) { dispatchMain() }
    }
}

extension ServiceMain {
    /// Puts this thread, and so every thread the process starts after it (they inherit the
    /// policy), under SCHED_BATCH (`CRM_SCHED_BATCH=1`): a thread it wakes no longer preempts the
    /// running one at once but waits for the tick or for it to block. It gained 7 % creates a
    /// second while each group commit resumed its writes' tasks (their threads preempted the
    /// writer mid-batch); since writes answer from the writer (`Route.direct`) it gains nothing,
    /// and a read's hop to a reader waits too (follow-page's p99 about 2 ms higher), so it is
    /// off by default (docs/BENCHMARKS.md). Needs no privilege; where the policy is refused the
    /// process runs as before (logged).
    static func applyBatchScheduling() {
        if crm_sched_batch() != 0 { Log.warning("SCHED_BATCH refused (errno \(errno)); running under the default policy") }
    }
}

/// The answer to one ping: 0 waiting, 1 up, 2 down.
final class PingOutcome: Sendable {
    let state = Mutex<Int>(0)
}

/// A flag that can be set once from any thread.
final class ManagedFlag: Sendable {
    private let state = Mutex<Bool>(false)
    /// True for the first caller only.
    func setOnce() -> Bool {
        state.withLock { set in
            if set { return false }
            set = true
            return true
        }
    }
}
