#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import APICatalog
import WireProtocol

/// Gateway flags: `--host`, `--port` (or `CRM_HOST`, `CRM_PORT`), and one
/// `--service NAME=ENDPOINT` per service (or `CRM_SERVICE_<NAME>`), e.g.
/// `--service users=unix:./data/run/users.sock`, or a folder of replica sockets
/// (`unix:./data/run/users/`, trailing slash); `--listen-fd N` serves an inherited listener.
/// What it cannot use throws `ConfigurationError`.
func loadConfiguration() throws(ConfigurationError) -> GatewayConfiguration {
    do {
        return try parseConfiguration()
    } catch let error as ConfigurationError {
        throw error
    } catch {
        throw ConfigurationError("\(error)")
    }
}

private func parseConfiguration() throws -> GatewayConfiguration {
    var config = GatewayConfiguration()
    let args = CommandLine.arguments
    func env(_ key: String) -> String? {
        guard let v = getenv(key) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }
    if let host = env("CRM_HOST") { config.host = host }
    if let port = env("CRM_PORT") {
        guard let p = UInt16(port) else { throw EndpointError(reason: "CRM_PORT '\(port)' is not a port number") }
        config.port = p
    }
    // Limits (documented in GatewayConfiguration), mostly for tests and tuning.
    func number(_ key: String) throws -> Int64? {
        guard let text = env(key) else { return nil }
        guard let value = Int64(text), value > 0 else { throw EndpointError(reason: "\(key) '\(text)' is not a positive integer") }
        return value
    }
    if let v = try number("CRM_HEADER_TIMEOUT_MS") { config.headerReadTimeoutMillis = v }
    if let v = try number("CRM_BODY_TIMEOUT_MS") { config.bodyReadTimeoutMillis = v }
    if let v = try number("CRM_IDLE_TIMEOUT_MS") { config.idleTimeoutMillis = v }
    if let v = try number("CRM_WRITE_TIMEOUT_MS") { config.writeTimeoutMillis = v }
    if let origin = env("CRM_PUBLIC_ORIGIN") { config.publicOrigin = origin }
    config.cookieSecure = env("CRM_COOKIE_SECURE") == "1"
    guard Log.configureFromEnvironment(env("CRM_LOG_LEVEL")) else {
        throw EndpointError(reason: "CRM_LOG_LEVEL '\(env("CRM_LOG_LEVEL") ?? "")' is not one of debug, info, warn, error")
    }
    if let v = try number("CRM_HOLD_MS") { config.holdMillis = v }
    if let v = try number("CRM_REQUEST_TIMEOUT_MS") { config.requestTimeoutMillis = v }
    if let v = try number("CRM_MAX_CONNECTIONS") { config.maxConnections = Int(v) }
    config.loops = Int(min(try number("CRM_GATEWAY_LOOPS") ?? Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))), 16))
    if let text = env("CRM_LISTEN_FD") {
        guard let fd = Int32(text), fd >= 0 else { throw EndpointError(reason: "CRM_LISTEN_FD '\(text)' is not a descriptor number") }
        config.listenFD = fd
    }
    for name in ServiceName.allCases {
        if let endpoint = env("CRM_SERVICE_\(name.rawValue.uppercased())") { config.services[name] = try Endpoint(parsing: endpoint) }
    }
    var i = 1
    while i < args.count {
        let flag = args[i]
        let value = i + 1 < args.count ? args[i + 1] : ""
        switch flag {
        case "--host": config.host = value; i += 2
        case "--port":
            guard let p = UInt16(value) else { throw EndpointError(reason: "--port '\(value)' is not a port number") }
            config.port = p
            i += 2
        case "--listen-fd":
            guard let fd = Int32(value), fd >= 0 else { throw EndpointError(reason: "--listen-fd '\(value)' is not a descriptor number") }
            config.listenFD = fd
            i += 2
        case "--service":
            let parts = value.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let name = ServiceName(rawValue: String(parts[0])) else {
                throw EndpointError(reason: "--service takes NAME=ENDPOINT with NAME one of \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.services[name] = try Endpoint(parsing: String(parts[1]))
            i += 2
        default:
            throw EndpointError(reason: "unknown flag \(flag)")
        }
    }
    if config.publicOrigin.isEmpty { config.publicOrigin = "http://\(config.host):\(config.port)" }
    return config
}

signal(SIGPIPE, SIG_IGN)
Log.name = "gateway"
// Settings first: one it cannot use exits with EX_CONFIG, which the launcher does not restart;
// whatever fails after (the listener, random bytes) exits 1 and is restarted.
let config: GatewayConfiguration
let lifeline: Int32?
do {
    config = try loadConfiguration()
    lifeline = try Lifeline.inherited()
} catch {
    StdIO.error("gateway: cannot start: \(error)\n")
    ConfigurationError.exit(startFailure: error)
}
let gateways: [Gateway]
do {
    let descriptors = DescriptorLimit.raise(toAtLeast: config.maxConnections + DescriptorLimit.reserve)
    if descriptors < config.maxConnections + DescriptorLimit.reserve {
        Log.warning("the open-file limit (\(descriptors), hard limit reached) allows about \(max(descriptors - DescriptorLimit.reserve, 0)) client connections, fewer than CRM_MAX_CONNECTIONS (\(config.maxConnections)); raise it (ulimit -Hn, LimitNOFILE=) or lower CRM_MAX_CONNECTIONS")
    }
    let group = try GatewayGroup(configuration: config)
    let listener = try Gateway.openListener(config)
    var started: [Gateway] = []
    for index in 0..<config.loops {
        let loop = try EventLoop.start(name: config.loops == 1 ? "gateway-io" : "gateway-io-\(index)")
        let gateway = try Gateway(configuration: config, loop: loop, group: group)
        // Each loop accepts through its own descriptor of the one listening socket.
        let fd = index == 0 ? listener : fcntl(listener, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw SyscallError(call: "fcntl(F_DUPFD_CLOEXEC)", errno: errno) }
        gateway.start(listening: fd)
        started.append(gateway)
    }
    gateways = started
    StdIO.error("gateway listening on http://\(config.host):\(config.port) (\(config.loops) event loop\(config.loops == 1 ? "" : "s"))\n")
    // A replacement takes over from the gateway it replaces only from here (`Child.replace`).
    Lifeline.ready()
} catch {
    StdIO.error("gateway: cannot start: \(error)\n")
    exit(1)
}

/// Every loop drains (once, whatever asks first); the process exits when the last one is done.
/// SIGHUP too: a gateway told to restart drains like one told to stop (the launcher starts the
/// next one); the launcher's end stops it too, releasing the port.
let stopSources = Lifeline.onStop(signals: [SIGTERM, SIGINT, SIGHUP], lifeline: lifeline) { _ in
    let left = Atomic<Int>(gateways.count)
    for gateway in gateways {
        gateway.drain {
            if left.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 { exit(0) }
        }
    }
}
withExtendedLifetime(stopSources) { dispatchMain() }
