#if canImport(Glibc)
import Glibc
#endif
import Foundation
import APICatalog
import WireProtocol

/// Every process `crm up` runs: the replicas of each service and the gateway, and the operator
/// commands on them (`crm status`, `restart`, `scale`, SIGHUP). Replica `i` of service `S`
/// listens on `run/S/i.sock`; the gateway and the other services watch `run/S/`, so replicas
/// can come and go while the system runs. Operations run one at a time.
final class Fleet: @unchecked Sendable {
    let runDir: String
    let dataDir: String
    let binDir: String
    let environment: [String: String]
    let gateway: Child
    /// Every process gets its end (none outlives the launcher).
    let lifeline: Lifeline
    /// Called when a process refused its configuration (`Child`).
    private let refused: @Sendable (String) -> Void
    /// How long a new process may take to serve (`Child.readySeconds`).
    private let readySeconds: Int
    /// Most replicas of one service.
    static let maxReplicas = 16

    private let lock = NSLock()
    private var replicas: [String: [Child]] = [:]
    /// Set by `stopAll`: no replica is started after it.
    private var stopping = false
    /// Held for the whole of one operation (scale, restart, SIGHUP, shutdown).
    private let operation = NSLock()

    init(runDir: String, dataDir: String, binDir: String, environment: [String: String], gatewayArguments: [String], listenFD: Int32,
         lifeline: Lifeline, readySeconds: Int = Child.defaultReadySeconds, refused: @escaping @Sendable (String) -> Void) {
        self.runDir = runDir
        self.readySeconds = readySeconds
        self.lifeline = lifeline
        self.refused = refused
        self.dataDir = dataDir
        self.binDir = binDir
        self.environment = environment
        var arguments = gatewayArguments + ["--listen-fd", "0"]
        for service in Launcher.services { arguments += ["--service", "\(service.name)=unix:\(runDir)/\(service.name)/"] }
        gateway = Child(service: "gateway", replica: "1", executable: "\(binDir)/Gateway", arguments: arguments,
                        environment: environment, standardInput: listenFD, lifeline: lifeline, readySeconds: readySeconds, refused: refused)
    }

    /// The socket folder of a service.
    func folder(_ service: String) -> String { "\(runDir)/\(service)" }

    private func makeReplica(_ service: (name: String, executable: String), _ replica: String) -> Child {
        // Every service is told where the others listen, for the events it copies.
        let sources = Launcher.services.filter { $0.name != service.name }.flatMap { ["--source", "\($0.name)=unix:\(folder($0.name))/"] }
        return Child(service: service.name, replica: replica, executable: "\(binDir)/\(service.executable)",
                     arguments: ["--socket-dir", folder(service.name), "--replica", replica, "--db", "\(dataDir)/\(service.name).sqlite"] + sources,
                     environment: environment, lifeline: lifeline, readySeconds: readySeconds, listensOnSocketPath: true,
                     refused: refused)
    }

    /// Starts `counts[name]` replicas of every service (1 when not given), then the gateway.
    /// Stops starting once shutdown has begun (a first service may refuse its configuration
    /// while the others start): each child is listed before it starts, so `stopAll` stops it.
    func start(counts: [String: Int]) throws {
        for service in Launcher.services {
            for i in 1...max(1, counts[service.name] ?? 1) {
                let child = makeReplica(service, String(i))
                let listed = lock.withLock { () -> Bool in
                    guard !stopping else { return false }
                    replicas[service.name, default: []].append(child)
                    return true
                }
                guard listed else { return }
                try child.start()
            }
        }
        try gateway.start()
    }

    var services: [Child] { lock.withLock { Launcher.services.flatMap { replicas[$0.name] ?? [] } } }
    var all: [Child] { [gateway] + services }

    // MARK: Operations

    /// `crm status`: one line per process.
    func statusLines() -> [String] {
        var lines = ["SERVICE    REPLICA  PID       UPTIME     RESTARTS  STATE"]
        for child in all {
            let s = child.status
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            lines.append(pad(s.service, 11) + pad(s.replica, 9) + pad(s.pid.map(String.init) ?? "-", 10)
                         + pad(Fleet.duration(s.uptimeSeconds), 11) + pad(String(s.restarts), 10) + s.state)
        }
        return lines
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(String(format: "%02d", seconds % 60))s" }
        return "\(seconds / 3600)h\(String(format: "%02d", seconds % 3600 / 60))m"
    }

    /// `crm scale SERVICE=N`: starts the missing replicas, or stops the newest ones gracefully
    /// (each drains; the gateway moves what it did not take to the others).
    func scale(_ name: String, to count: Int, progress: (String) -> Void) throws {
        guard let service = Launcher.services.first(where: { $0.name == name }) else {
            throw LaunchError("no service \(name); one of \(Launcher.services.map(\.name).joined(separator: ", "))")
        }
        guard (1...Fleet.maxReplicas).contains(count) else { throw LaunchError("replicas must be 1 to \(Fleet.maxReplicas)") }
        try operation.withLock {
            guard !lock.withLock({ stopping }) else { throw LaunchError("the launcher is stopping") }
            let current = lock.withLock { replicas[name] ?? [] }
            if count > current.count {
                var used = Set(current.map(\.replica))
                var added: [Child] = []
                var next = 1
                while current.count + added.count < count {
                    while used.contains(String(next)) { next += 1 }
                    let child = makeReplica(service, String(next))
                    used.insert(child.replica)
                    try child.start(onTrial: true)
                    added.append(child)
                    progress("started \(child.name)")
                }
                let stopped = lock.withLock { () -> Bool in
                    replicas[name] = current + added
                    return stopping
                }
                // Shutdown began while they started: `stopAll` may have missed them.
                if stopped { for child in added { child.stop() } }
                // A new replica that refuses its configuration (a new build, say) or does not
                // serve in time fails the operation and is dropped; the system keeps running.
                let deadline = Date().addingTimeInterval(Double(readySeconds))
                let failures = added.compactMap { child in child.endTrial(deadline: deadline).map { (child, $0) } }
                if !failures.isEmpty {
                    lock.withLock { replicas[name] = (replicas[name] ?? []).filter { child in !failures.contains { $0.0 === child } } }
                    for (child, _) in failures {
                        child.stop()
                        removeSocket(of: child)
                    }
                    throw LaunchError(failures.map(\.1).joined(separator: "; ") + "; not kept")
                }
            } else if count < current.count {
                let kept = Array(current.prefix(count))
                let removed = Array(current.dropFirst(count))
                lock.withLock { replicas[name] = kept }
                for child in removed { child.markStopping() }
                DispatchQueue.concurrentPerform(iterations: removed.count) { removed[$0].stop() }
                for child in removed {
                    removeSocket(of: child)
                    progress("stopped \(child.name)")
                }
            }
            progress("\(name): \(count) replica\(count == 1 ? "" : "s")")
        }
    }

    /// Removes the socket file of a replica that no longer runs (stopped, none of its processes
    /// left): one that drained removed it itself, but one that crashed or was killed left it,
    /// and the gateway would count it as a replica that does not answer. Its id is free until
    /// the launcher gives it out again, so no other process listens there.
    private func removeSocket(of child: Child) {
        unlink(Endpoint.replicaSocketPath(folder: folder(child.service), replica: child.replica))
    }

    /// `crm restart SERVICE` (or `gateway`): replaces each process in turn, the next one only
    /// once the previous replacement serves. Answers the names kept old.
    @discardableResult
    func restart(_ name: String, progress: (String) -> Void) throws -> [String] {
        let children: [Child]
        if name == "gateway" {
            children = [gateway]
        } else {
            guard Launcher.services.contains(where: { $0.name == name }) else {
                throw LaunchError("no service \(name); one of gateway, \(Launcher.services.map(\.name).joined(separator: ", "))")
            }
            children = lock.withLock { replicas[name] ?? [] }
        }
        return operation.withLock { replace(children, progress: progress) }
    }

    /// SIGHUP: every process in turn, services first, then the gateway.
    func restartAll(progress: (String) -> Void) -> [String] {
        operation.withLock { replace(services + [gateway], progress: progress) }
    }

    private func replace(_ children: [Child], progress: (String) -> Void) -> [String] {
        var kept: [String] = []
        for child in children {
            do {
                if let why = try child.replace() {
                    progress("kept the old \(child.name): \(why)")
                    kept.append(child.name)
                } else {
                    progress("restarted \(child.name)")
                }
            } catch {
                StdIO.error("crm: cannot restart \(child.name): \(error)")
                kept.append(child.name)
            }
        }
        return kept
    }

    /// Shutdown: the gateway first (no new requests), then the services drain in parallel.
    func stopAll() {
        lock.withLock { stopping = true }
        for child in all { child.markStopping() }
        gateway.stop()
        let children = services
        DispatchQueue.concurrentPerform(iterations: children.count) { children[$0].stop() }
    }
}
