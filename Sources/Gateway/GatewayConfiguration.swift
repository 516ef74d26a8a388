import APICatalog
import WireProtocol

/// Every limit and timing of the gateway, in one place. Defaults are the documented ones.
struct GatewayConfiguration: Sendable {
    /// Where HTTP is served (`CRM_HOST`, `CRM_PORT`).
    var host = "127.0.0.1"
    var port: UInt16 = 9015
    /// A listening socket inherited from the launcher (`--listen-fd N`, `CRM_LISTEN_FD`): served
    /// instead of binding `host:port`, so the port stays bound while the gateway restarts.
    var listenFD: Int32?
    /// Event loop threads, each serving its share of the connections (`CRM_GATEWAY_LOOPS`;
    /// default one per core, at most 16). One loop is one thread: when the load generator (or
    /// the services) share the cores with it, the scheduler gives it a thread's share, so a
    /// single loop caps the gateway below what the cores could do.
    var loops = 1
    /// Header block and body limits (431 / 413).
    var parserLimits = HTTPParserLimits()
    /// A request's head must arrive within this (ms) once its first byte did; else 408 and close.
    var headerReadTimeoutMillis: Int64 = 10_000
    /// A request's body must arrive within this (ms) once its head did; else 408 and close.
    var bodyReadTimeoutMillis: Int64 = 30_000
    /// A keep-alive connection with nothing in flight is closed after this (ms).
    var idleTimeoutMillis: Int64 = 60_000
    /// Open HTTP connections at most; past it new ones are closed at once.
    var maxConnections = 4096
    /// Requests read ahead on one connection before reading pauses (pipelining depth).
    var maxPipelinedRequests = 16
    /// Unsent answer bytes on one connection past which no further request is read until the
    /// client has read them.
    var maxBufferedOutputBytes = 1 << 20
    /// A connection whose queued answers make no progress for this long (ms) is closed.
    var writeTimeoutMillis: Int64 = 30_000
    /// How long a request waits for an unreachable or restarting service (ms) before 503.
    var holdMillis: Int64 = 10_000
    /// How long a service may take to answer (ms) before 504.
    var requestTimeoutMillis: Int64 = 30_000
    /// How long a validated session is trusted without asking UserService again (ms);
    /// kept under 2 s so a revoked session is refused within 2 s.
    var sessionCacheMillis: Int64 = 1_000
    /// While UserService cannot be reached, a session validated this recently (ms) is still
    /// accepted; revocations cannot happen meanwhile, since they go through UserService.
    var sessionStaleMillis: Int64 = 5 * 60_000
    /// How long a session check may take (ms) before the stale entry (or a 503) is used.
    var sessionCheckTimeoutMillis: Int64 = 3_000
    /// Where the API's own pages are served from: a change authenticated by the session cookie
    /// whose `Origin`/`Referer` names another origin is refused (`CRM_PUBLIC_ORIGIN`; default
    /// the gateway's own `http://host:port`).
    var publicOrigin = ""
    /// Adds `Secure` to the session cookie (`CRM_COOKIE_SECURE=1`, behind HTTPS).
    var cookieSecure = false
    /// Longest `Idempotency-Key` accepted.
    var maxIdempotencyKeyLength = 255
    /// Service endpoints by service name. Which service owns a path, and which paths need no
    /// session, come from the catalog (`Catalog.service(forPath:)`, `Catalog.publicPaths`).
    var services: [ServiceName: Endpoint] = [:]
}
