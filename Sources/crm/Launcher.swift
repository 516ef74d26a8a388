#if canImport(Glibc)
import Glibc
#endif
import Foundation
import APICatalog
import WireProtocol

/// `crm up`: the whole system on one machine.
struct Launcher {
    /// Every service, from the catalog: name (socket, database) and executable.
    static let services: [(name: String, executable: String)] = ServiceName.allCases.map { ($0.rawValue, $0.executable) }

    let host: String
    let port: UInt16
    let dataDir: String
    let binDir: String
    /// Replicas per service (`--replicas NAME=N,…`, `CRM_REPLICAS_<NAME>`; 1 when not given).
    var replicas: [String: Int] = [:]
    /// How long a replacement or a replica `crm scale` adds may take to serve (`CRM_READY_SECONDS`).
    var readySeconds = Child.defaultReadySeconds

    /// Where the gateway listens: `CRM_HOST` (default 127.0.0.1) and `CRM_PORT` (default 9015).
    static func address(_ env: [String: String]) throws -> (host: String, port: UInt16) {
        let host = env["CRM_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let portText = env["CRM_PORT"].flatMap { $0.isEmpty ? nil : $0 } ?? "9015"
        guard let port = UInt16(portText) else { throw ConfigurationError("CRM_PORT '\(portText)' is not a port number") }
        return (host, port)
    }

    /// `CRM_READY_SECONDS` (`Child.readySecondsRange`; default `Child.defaultReadySeconds`).
    static func readySeconds(_ env: [String: String]) throws -> Int {
        guard let text = env["CRM_READY_SECONDS"], !text.isEmpty else { return Child.defaultReadySeconds }
        guard let seconds = Int(text), Child.readySecondsRange.contains(seconds) else {
            throw ConfigurationError("CRM_READY_SECONDS '\(text)' is not a number of seconds from \(Child.readySecondsRange.lowerBound) to \(Child.readySecondsRange.upperBound)")
        }
        return seconds
    }

    static func fromEnvironment(arguments: [String] = []) throws -> Launcher {
        let env = ProcessInfo.processInfo.environment
        let (host, port) = try address(env)
        let readySeconds = try readySeconds(env)
        let data = env["CRM_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./data"
        let fm = FileManager.default
        try fm.createDirectory(atPath: data, withIntermediateDirectories: true)
        let absolute = URL(fileURLWithPath: data).standardizedFileURL.path
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let binDir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        var launcher = Launcher(host: host, port: port, dataDir: absolute, binDir: binDir)
        launcher.readySeconds = readySeconds
        for service in services {
            if let text = env["CRM_REPLICAS_\(service.name.uppercased())"], !text.isEmpty {
                launcher.replicas[service.name] = try replicaCount(text, of: service.name)
            }
        }
        var i = 0
        while i < arguments.count {
            guard arguments[i] == "--replicas", i + 1 < arguments.count else {
                throw ConfigurationError("unknown argument \(arguments[i]); crm up takes --replicas NAME=N[,NAME=N…]")
            }
            for item in arguments[i + 1].split(separator: ",") {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, services.contains(where: { $0.name == parts[0] }) else {
                    throw ConfigurationError("--replicas takes NAME=N with NAME one of \(services.map(\.name).joined(separator: ", "))")
                }
                launcher.replicas[parts[0]] = try replicaCount(parts[1], of: parts[0])
            }
            i += 2
        }
        return launcher
    }

    static func replicaCount(_ text: String, of service: String) throws -> Int {
        guard let n = Int(text), (1...Fleet.maxReplicas).contains(n) else {
            throw ConfigurationError("replicas of \(service) must be a number from 1 to \(Fleet.maxReplicas), not '\(text)'")
        }
        return n
    }

    /// The control socket of the launcher running on `dataDir`.
    static func controlPath(_ dataDir: String) -> String { dataDir + "/crm.sock" }

    func run() throws -> Never {
        // Databases hold password hashes and session digests: files are the owner's alone.
        umask(0o077)
        // One launcher per data folder: a second one would replace the first one's sockets.
        let lockPath = dataDir + "/crm.lock"
        let lockFD = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockFD >= 0, flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            throw LaunchError("another crm is already running on \(dataDir) (\(lockPath) is locked)")
        }
        // The launcher holds the HTTP port for as long as it runs and hands the listener to each
        // gateway it starts: while none runs (crashed, restarting), connections wait in the
        // kernel's queue instead of being refused.
        let listenFD = try bindPort()
        let runDir = dataDir + "/run"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        // Services trust the caller identity in an envelope: only this user may reach the sockets.
        guard chmod(runDir, 0o700) == 0 else { throw LaunchError("cannot make \(runDir) private (chmod 0700)") }
        for service in Launcher.services {
            let folder = "\(runDir)/\(service.name)"
            let longest = Endpoint.replicaSocketPath(folder: folder, replica: String(Fleet.maxReplicas))
            guard longest.utf8.count <= Endpoint.maxUnixPathLength else {
                throw LaunchError("socket path \(longest) is longer than 107 bytes; choose a shorter CRM_DATA_DIR")
            }
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            guard chmod(folder, 0o700) == 0 else { throw LaunchError("cannot make \(folder) private (chmod 0700)") }
            // Sockets left by a launcher that was killed: no process of ours listens on them (the
            // lock above), and the gateway would count them as replicas that do not answer.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".sock") {
                unlink("\(folder)/\(name)")
            }
            unlink("\(runDir)/\(service.name).sock")
        }
        var environment = ProcessInfo.processInfo.environment
        if let tz = environment["CRM_TZ"], !tz.isEmpty { environment["TZ"] = tz }
        environment["CRM_LISTEN_FD"] = nil

        // Every child gets its end: should this process die without stopping them (SIGKILL, a
        // crash), they drain and exit instead of holding the port and the sockets.
        let lifeline: Lifeline
        do { lifeline = try Lifeline() } catch { throw LaunchError("cannot make the children's lifeline: \(error)") }
        // A child that refuses its configuration would refuse it at every restart: the whole
        // system stops, with EX_CONFIG (only the first refusal is reported).
        let shutdown = Shutdown()
        let fleet = Fleet(runDir: runDir, dataDir: dataDir, binDir: binDir, environment: environment,
                          gatewayArguments: ["--host", host, "--port", String(port)], listenFD: listenFD,
                          lifeline: lifeline, readySeconds: readySeconds) { message in
            let (first, control) = shutdown.begin()
            guard first else { return }
            StdIO.error("crm: \(message); stopping")
            control?.close()
            shutdown.fleet?.stopAll()
            exit(ConfigurationError.exitStatus)
        }
        shutdown.fleet = fleet
        try fleet.start(counts: replicas)
        let control = try ControlServer(path: Launcher.controlPath(dataDir), fleet: fleet)
        guard shutdown.started(control) else {
            // Refused while starting: the refusal's handler exits.
            control.close()
            withExtendedLifetime(fleet) { dispatchMain() }
        }
        control.start()

        // SIGHUP: restart every process in turn without refusing a request (services first,
        // then the gateway) — e.g. after installing new binaries.
        let sources = Signals.install(stop: {
            StdIO.error("crm: stopping")
            control.close()
            // No restarts from here on, even for a child that a terminal's Ctrl-C reached first.
            fleet.stopAll()
        }, reload: {
            StdIO.error("crm: restarting every process in turn")
            let kept = fleet.restartAll { _ in }
            StdIO.error("crm: restart done" + (kept.isEmpty ? "" : "; still the old \(kept.joined(separator: ", "))"))
        })

        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if HealthProbe.get(host: host, port: port, path: "/healthz") == 200 {
                StdIO.out("CRM is up: http://\(host):\(port) (data in \(dataDir)); Ctrl-C stops it")
                break
            }
            usleep(100_000)
        }
        if HealthProbe.get(host: host, port: port, path: "/healthz") != 200 {
            StdIO.error("crm: the system did not become healthy within 120 s; still trying\n")
        }
        withExtendedLifetime((sources, fleet, control)) { dispatchMain() }
    }
}

extension Launcher {
    /// Binds the HTTP port (without SO_REUSEPORT: a port already in use is an error here, not
    /// silently shared) and listens, keeping the descriptor out of every other child.
    func bindPort() throws -> Int32 {
        let probeHost = host == "localhost" ? "127.0.0.1" : host
        do {
            return try Socket.listen(on: .tcp(host: probeHost, port: port), backlog: 4096)
        } catch {
            throw LaunchError("cannot use \(host):\(port): \(error); set CRM_PORT to a free port")
        }
    }
}

/// Whether the launcher is stopping because a child refused its configuration, and the control
/// socket to remove then (it may not exist yet).
final class Shutdown: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private var control: ControlServer?
    /// Set once, before any child starts.
    var fleet: Fleet?

    /// Whether this is the first call (only the first one stops the launcher), and the control
    /// socket, if open yet.
    func begin() -> (first: Bool, control: ControlServer?) {
        lock.withLock {
            if stopping { return (false, nil) }
            stopping = true
            return (true, control)
        }
    }

    /// Registers the control socket; false when the stop has begun already.
    func started(_ control: ControlServer) -> Bool {
        lock.withLock {
            if stopping { return false }
            self.control = control
            return true
        }
    }
}

struct LaunchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A minimal blocking HTTP GET for the health check (the launcher's own thread, not the cooperative pool).
enum HealthProbe {
    static func get(host: String, port: UInt16, path: String) -> Int? {
        let connectHost = host == "0.0.0.0" ? "127.0.0.1" : host
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, connectHost, &addr.sin_addr) == 1 else { return nil }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(connectHost)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n >= 12 else { return nil }
        return Int(String(decoding: buffer[9..<12], as: UTF8.self))
    }
}
