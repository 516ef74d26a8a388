#if canImport(Glibc)
import Glibc
#endif
import Foundation
import APICatalog
import WireProtocol

/// One supervised child process: restarted with backoff when it dies unexpectedly.
///
/// During `replace()` a `candidate` runs beside `process`, the current one (restarted when it
/// dies), and becomes current only once it has settled; the old one is then `retiring` until
/// it has drained. A candidate that dies before is reported and dropped, never restarted, and
/// the current one keeps serving. `stop()` ends all three.
final class Child: @unchecked Sendable {
    let name: String
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    private let lock = NSLock()
    private var process: Process?
    private var candidate: Process?
    private var retiring: Process?
    private var stopping = false
    private var backoffMillis = 100
    private var startedAt = Date()

    init(name: String, executable: String, arguments: [String], environment: [String: String]) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    private func makeProcess() -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.terminationHandler = { [weak self] finished in self?.exited(finished) }
        return process
    }

    func start() throws {
        try launch(replacing: nil)
    }

    /// Runs a new current process unless shutdown has begun or `expected` is no longer the
    /// current one (a replacement took over meanwhile). Runs under the lock, so that `stop()`
    /// either sees the new process or prevents it: none is left behind at exit.
    private func launch(replacing expected: Process?) throws {
        let process = makeProcess()
        try lock.withLock {
            guard !stopping, self.process === expected else { return }
            try process.run()
            self.process = process
            startedAt = Date()
        }
    }

    private func exited(_ finished: Process) {
        // Only the current process is restarted: a replaced one was asked to stop, and a
        // candidate's early death is reported by `replace()`.
        let delay: Int? = lock.withLock {
            guard self.process === finished, !stopping else { return nil }
            // A child that ran a while is restarted quickly again; one that keeps dying waits longer.
            if Date().timeIntervalSince(startedAt) > 30 { backoffMillis = 100 }
            let delay = backoffMillis
            backoffMillis = min(backoffMillis * 2, 5000)
            return delay
        }
        guard let delay else { return }
        StdIO.error("crm: \(name) exited (\(Child.describeExit(finished))); restarting in \(delay) ms\n")
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) { [self] in
            do { try launch(replacing: finished) } catch { StdIO.error("crm: cannot restart \(name): \(error)") }
        }
    }

    /// Restarts without a gap: starts a candidate beside the running process (a service binds
    /// its socket path anew, the gateway shares the port through SO_REUSEPORT); once it is
    /// still running after `settleMillis` it becomes the current process and the old one is
    /// stopped, draining what it has. Answers false when the old process stays current.
    @discardableResult
    func replace(settleMillis: Int = 500) throws -> Bool {
        let fresh = makeProcess()
        let old: Process? = try lock.withLock {
            guard !stopping, candidate == nil, let current = process else { return nil }
            try fresh.run()
            candidate = fresh
            return current
        }
        guard let old else { return false }
        let deadline = Date().addingTimeInterval(Double(settleMillis) / 1000)
        while fresh.isRunning && Date() < deadline { usleep(10_000) }

        enum Outcome { case promoted, failed, superseded, stopping }
        let outcome: Outcome = lock.withLock {
            // Shutdown has begun: `stop()` ends the candidate with the current process.
            if stopping { return .stopping }
            candidate = nil
            guard fresh.isRunning else { return .failed }
            // The old process died meanwhile and its restart is already current (and owns the
            // socket path, bound after the candidate's): keep it.
            guard process === old else { return .superseded }
            process = fresh
            retiring = old
            startedAt = Date()
            return .promoted
        }
        switch outcome {
        case .promoted:
            old.terminate()
            old.waitUntilExit()
            lock.withLock { retiring = nil }
            return true
        case .failed:
            StdIO.error("crm: the new \(name) exited (\(Child.describeExit(fresh))) before it settled; the old one keeps running")
            return false
        case .superseded:
            StdIO.error("crm: \(name) was restarted meanwhile; stopping the new one")
            fresh.terminate()
            fresh.waitUntilExit()
            return false
        case .stopping:
            return false
        }
    }

    /// "status N" or "signal N" of a process that has exited.
    private static func describeExit(_ process: Process) -> String {
        process.terminationReason == .uncaughtSignal ? "signal \(process.terminationStatus)" : "status \(process.terminationStatus)"
    }

    /// From now on an exit is not restarted (shutdown has begun).
    func markStopping() {
        lock.withLock { stopping = true }
    }

    /// SIGTERM now, to the current process and any replacement in progress (new or old);
    /// SIGKILL to those still running after `graceSeconds`.
    func stop(graceSeconds: Double = 15) {
        let processes: [Process] = lock.withLock {
            stopping = true
            return [process, candidate, retiring].compactMap { $0 }
        }
        let running = processes.filter(\.isRunning)
        for process in running { process.terminate() }
        let deadline = Date().addingTimeInterval(graceSeconds)
        while running.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        for process in running where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        // Polled rather than waitUntilExit(): `replace()` may be waiting on the old one already.
        while running.contains(where: \.isRunning) { usleep(10_000) }
    }
}

/// `crm up`: the whole system on one machine.
struct Launcher {
    /// Every service, from the catalog: name (socket, database) and executable.
    static let services: [(name: String, executable: String)] = ServiceName.allCases.map { ($0.rawValue, $0.executable) }

    let host: String
    let port: UInt16
    let dataDir: String
    let binDir: String

    static func fromEnvironment() throws -> Launcher {
        let env = ProcessInfo.processInfo.environment
        let host = env["CRM_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let portText = env["CRM_PORT"].flatMap { $0.isEmpty ? nil : $0 } ?? "9015"
        guard let port = UInt16(portText) else { throw LaunchError("CRM_PORT '\(portText)' is not a port number") }
        let data = env["CRM_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./data"
        let fm = FileManager.default
        try fm.createDirectory(atPath: data, withIntermediateDirectories: true)
        let absolute = URL(fileURLWithPath: data).standardizedFileURL.path
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let binDir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        return Launcher(host: host, port: port, dataDir: absolute, binDir: binDir)
    }

    func run() throws -> Never {
        // Databases hold password hashes and session digests: files are the owner's alone.
        umask(0o077)
        // One launcher per data folder: a second one would replace the first one's sockets.
        let lockPath = dataDir + "/crm.lock"
        let lockFD = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockFD >= 0, flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            throw LaunchError("another crm is already running on \(dataDir) (\(lockPath) is locked)")
        }
        try checkPortFree()
        let runDir = dataDir + "/run"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        // Services trust the caller identity in an envelope: only this user may reach the sockets.
        guard chmod(runDir, 0o700) == 0 else { throw LaunchError("cannot make \(runDir) private (chmod 0700)") }
        var environment = ProcessInfo.processInfo.environment
        if let tz = environment["CRM_TZ"], !tz.isEmpty { environment["TZ"] = tz }

        var childList: [Child] = []
        var gatewayArgs = ["--host", host, "--port", String(port)]
        for service in Launcher.services {
            let socket = "\(runDir)/\(service.name).sock"
            guard socket.utf8.count <= Endpoint.maxUnixPathLength else {
                throw LaunchError("socket path \(socket) is longer than 107 bytes; choose a shorter CRM_DATA_DIR")
            }
            // Every service is told where the others listen, for the events it copies.
            let sources = Launcher.services.filter { $0.name != service.name }.flatMap { ["--source", "\($0.name)=unix:\(runDir)/\($0.name).sock"] }
            let child = Child(name: service.name, executable: "\(binDir)/\(service.executable)",
                              arguments: ["--socket", "unix:\(socket)", "--db", "\(dataDir)/\(service.name).sqlite"] + sources,
                              environment: environment)
            childList.append(child)
            gatewayArgs += ["--service", "\(service.name)=unix:\(socket)"]
        }
        let children = childList
        let gateway = Child(name: "gateway", executable: "\(binDir)/Gateway", arguments: gatewayArgs, environment: environment)
        for child in children { try child.start() }
        try gateway.start()

        let all = [gateway] + children
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                StdIO.error("crm: stopping")
                // No restarts from here on, even for a child that a terminal's Ctrl-C reached first.
                for child in all { child.markStopping() }
                // The gateway first (no new requests), then the services drain in parallel.
                gateway.stop()
                DispatchQueue.concurrentPerform(iterations: children.count) { children[$0].stop() }
                exit(0)
            }
            source.resume()
            sources.append(source)
        }

        // SIGHUP: restart every process in turn without refusing a request (services first,
        // then the gateway) — e.g. after installing new binaries.
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "crm.reload"))
        reload.setEventHandler {
            StdIO.error("crm: restarting every process in turn")
            var kept: [String] = []
            for child in children + [gateway] {
                do {
                    if try !child.replace() { kept.append(child.name) }
                } catch {
                    StdIO.error("crm: cannot restart \(child.name): \(error)")
                    kept.append(child.name)
                }
            }
            StdIO.error("crm: restart done" + (kept.isEmpty ? "" : "; still the old \(kept.joined(separator: ", "))"))
        }
        reload.resume()
        sources.append(reload)

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
        withExtendedLifetime((sources, all)) { dispatchMain() }
    }
}

extension Launcher {
    /// Fails clearly when something already listens on the HTTP port (the gateway itself
    /// binds with SO_REUSEPORT for restarts, which would otherwise share the port silently).
    func checkPortFree() throws {
        let probeHost = host == "localhost" ? "127.0.0.1" : host
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, probeHost, &addr.sin_addr) == 1 else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 {
            throw LaunchError("cannot use \(host):\(port): \(String(cString: strerror(errno))); set CRM_PORT to a free port")
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
