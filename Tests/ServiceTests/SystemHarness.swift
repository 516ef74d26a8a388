#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// The whole system started from the real executables (`crm up`) on a temporary data folder
/// and a free port, driven over real HTTP.
final class SystemHarness: @unchecked Sendable {
    let dataDir: String
    let port: UInt16
    let adminPassword = "admin-password-1"
    private let launcher: Process
    private let output: Pipe
    private let logLock = NSLock()
    private var logText = ""

    /// Where `swift build` put the executables: next to the test bundle.
    static var binDir: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The runner may be inside CRMPackageTests.xctest/…; walk up to the folder holding `crm`.
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("crm").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.path
    }

    /// `binDir`: where to run `crm` from (it starts the executables beside its own file);
    /// by default the build folder. `dataDir` and `port`: a fresh folder and a free port unless
    /// given (to start again where another harness ran).
    init(extraEnvironment: [String: String] = [:], binDir: String = SystemHarness.binDir,
         dataDir: String? = nil, port: UInt16? = nil) throws {
        self.dataDir = dataDir ?? SystemHarness.temporaryDataDir()
        self.port = port ?? SystemHarness.freePort()
        launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: binDir + "/crm")
        launcher.arguments = ["up"]
        var env = ProcessInfo.processInfo.environment
        env["CRM_DATA_DIR"] = self.dataDir
        env["CRM_PORT"] = String(self.port)
        env["CRM_HOST"] = "127.0.0.1"
        env["CRM_ADMIN_PASSWORD"] = adminPassword
        for (k, v) in extraEnvironment { env[k] = v }
        launcher.environment = env
        output = Pipe()
        launcher.standardOutput = output
        launcher.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.logLock.withLock { self.logText += String(decoding: data, as: UTF8.self) }
        }
        try launcher.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if (try? get("/healthz").status) == 200 && log.contains("CRM is up") { return }
            if !launcher.isRunning { break }
            usleep(100_000)
        }
        stop()
        throw HarnessError("the system did not become healthy within 60 s; output:\n\(log)")
    }

    var log: String { logLock.withLock { logText } }

    /// Stops reading the launcher's output and closes the pipe's read end: what `crm up | head`
    /// does once `head` has its lines. Later writes to stdout/stderr fail with EPIPE.
    func closeOutput() throws {
        output.fileHandleForReading.readabilityHandler = nil
        try output.fileHandleForReading.close()
    }

    /// Whether the `crm up` process is still running.
    var launcherIsRunning: Bool { launcher.isRunning }

    static let executables = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]

    /// Stops the launcher (SIGTERM; it stops its children), then kills whatever still runs on
    /// this data folder — children of a launcher that was killed or failed to stop them — so
    /// that no test leaves a process behind. Answers the pids it had to kill.
    @discardableResult
    func stop() -> [pid_t] {
        let children = launcher.isRunning ? SystemHarness.executables.flatMap { childPIDs($0) } : []
        if launcher.isRunning {
            launcher.terminate()
            launcher.waitUntilExit()
        }
        // The launcher waited for its children; once it is gone init reaps them.
        _ = eventually(timeout: 5) { children.allSatisfy(SystemHarness.isGone) }
        let strays = SystemHarness.processes(onDataFolder: dataDir)
        for pid in strays { kill(pid, SIGKILL) }
        _ = eventually(timeout: 5) { strays.allSatisfy(SystemHarness.isGone) }
        output.fileHandleForReading.readabilityHandler = nil
        try? FileManager.default.removeItem(atPath: dataDir)
        return strays
    }

    /// A data folder no test used yet.
    static func temporaryDataDir() -> String { "/tmp/crm-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// Every process (but this one) whose environment names `dataDir` as `CRM_DATA_DIR`: what
    /// a launcher on it started, whoever its parent is now.
    static func processes(onDataFolder dataDir: String) -> [pid_t] {
        let entry = Array("CRM_DATA_DIR=\(dataDir)".utf8)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid != getpid(), !isGone(pid),
                  let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
            return environ.split(separator: 0).contains { $0.elementsEqual(entry) } ? pid : nil
        }.sorted()
    }

    /// True when `pid` no longer runs (no such process, or a zombie not yet reaped).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Runs `crm up` on a fresh data folder and a free port with `environment` added, for a
    /// start that should fail: waits up to `timeoutSeconds` for it to exit, then kills it and
    /// anything on its data folder. Answers its exit status (nil: it was still running), its
    /// output, and the processes still running on its data folder when it had exited.
    static func failingUp(_ environment: [String: String], timeoutSeconds: Double) throws -> (status: Int32?, output: String, left: [pid_t]) {
        let dataDir = temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        // A file, not a pipe: children that outlived the launcher would keep a pipe open.
        let outputPath = dataDir + "/output.log"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binDir + "/crm")
        process.arguments = ["up"]
        var env = ProcessInfo.processInfo.environment
        env["CRM_DATA_DIR"] = dataDir
        env["CRM_PORT"] = String(freePort())
        env["CRM_HOST"] = "127.0.0.1"
        env["CRM_ADMIN_PASSWORD"] = "admin-password-1"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let exited = eventually(timeout: timeoutSeconds, interval: 0.05) { !process.isRunning }
        let left = exited ? processes(onDataFolder: dataDir) : []
        if !exited {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let strays = processes(onDataFolder: dataDir)
        for pid in strays { kill(pid, SIGKILL) }
        _ = eventually(timeout: 5) { strays.allSatisfy(isGone) }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (exited ? process.terminationStatus : nil, text, left)
    }

    /// Sends a signal to the launcher itself.
    func signalLauncher(_ signal: Int32) {
        kill(launcher.processIdentifier, signal)
    }

    /// The pid of a child process of the launcher by executable name (e.g. "UserService").
    func childPID(_ name: String) -> pid_t? { childPIDs(name).first }

    /// Runs `crm ARGUMENTS` (a control command) against this launcher; answers its exit status
    /// and output.
    func crm(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try SystemHarness.run("crm", arguments, environment: ["CRM_DATA_DIR": dataDir])
    }

    /// Runs an executable of the build folder to its end; answers its exit status and output
    /// (standard output and error; only the error when `stdout` names a file for the output).
    /// `environment` nil: this process's.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    stdout: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binDir + "/" + executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardError = pipe
        if let stdout {
            _ = FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        } else {
            process.standardOutput = pipe
        }
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// The pids of every child process of the launcher by executable name (every replica).
    func childPIDs(_ name: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [pid_t] = []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == launcher.processIdentifier else { continue }
            if let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmd.contains("/\(name)\u{0}") {
                found.append(pid)
            }
        }
        return found.sorted()
    }

    /// Waits until the kernel reports `state` (e.g. "T" for stopped) for `pid`.
    static func waitForState(_ pid: pid_t, _ state: String, timeoutSeconds: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
               stat[stat.index(after: close)...].split(separator: " ").first.map(String.init) == state {
                return true
            }
            usleep(10_000)
        }
        return false
    }

    /// Waits until a new process replaced `old` (the launcher restarted it).
    func waitForRestart(_ name: String, old: pid_t, timeoutSeconds: Double = 15) -> pid_t? {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let pid = childPID(name), pid != old { return pid }
            usleep(50_000)
        }
        return nil
    }

    /// A port that is free now, below Linux's ephemeral range (32768 and up), so that no
    /// outgoing connection can take it between this check and the gateway's bind.
    static func freePort() -> UInt16 {
        for _ in 0..<200 {
            let port = UInt16.random(in: 20000..<32768)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            Glibc.close(fd)
            if rc == 0 { return port }
        }
        return 29_015
    }

    /// The value of a gauge or counter without labels on `/metrics`.
    func metric(_ name: String) throws -> Int {
        let text = try get("/metrics").text
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int(line.split(separator: " ").last ?? "") ?? -1
        }
        throw HarnessError("no metric \(name)")
    }

    // MARK: HTTP helpers

    func client() throws -> HTTPTestClient { try HTTPTestClient(port: port) }

    func get(_ target: String, token: String? = nil) throws -> HTTPTestResponse {
        try client().request("GET", target, token: token)
    }

    func post(_ target: String, json: JSON, token: String? = nil, headers: [(String, String)] = []) throws -> HTTPTestResponse {
        try client().request("POST", target, body: json.serialized(), contentType: "application/json", token: token, headers: headers)
    }

    func postForm(_ target: String, _ form: String, token: String? = nil) throws -> HTTPTestResponse {
        try client().request("POST", target, body: Array(form.utf8), contentType: "application/x-www-form-urlencoded", token: token)
    }

    /// Logs in and answers the token.
    func login(_ phone: String = "admin", _ password: String? = nil) throws -> String {
        let response = try post("/api/user/login", json: ["phoneNumber": .string(phone), "password": .string(password ?? adminPassword)])
        guard response.status == 200, let token = response.json["data"]?["token"]?.stringValue else {
            throw HarnessError("login failed: \(response.status) \(response.text)")
        }
        return token
    }
}

/// Polls `condition` every `interval` seconds until it holds or `timeout` seconds pass;
/// answers whether it held.
func eventually(timeout: Double, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(useconds_t(interval * 1_000_000))
    }
    return try condition()
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct HTTPTestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON { (try? JSONParser.parse(body)) ?? .null }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// A blocking HTTP/1.1 client on one keep-alive connection; also sends raw bytes.
final class HTTPTestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, configure: (Int32) -> Void = { _ in }) throws {
        fd = try HTTPTestClient.connectLoopback(port: port, configure: configure)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A TCP socket connected to 127.0.0.1:`port`; `configure` runs before the connect (for
    /// options such as SO_RCVBUF that must be set before it).
    static func connectLoopback(port: UInt16, configure: (Int32) -> Void = { _ in }) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        configure(fd)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { Glibc.close(fd); throw HarnessError("connect failed: errno \(errno)") }
        return fd
    }

    deinit { Glibc.close(fd) }

    func sendRaw(_ bytes: [UInt8]) { HTTPTestClient.sendAll(fd, bytes) }

    /// Sends until done, the peer is gone or the socket's send timeout passes.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress.map { $0 + offset }, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func sendRaw(_ text: String) { sendRaw(Array(text.utf8)) }

    func request(_ method: String, _ target: String, body: [UInt8] = [], contentType: String? = nil, token: String? = nil, headers: [(String, String)] = []) throws -> HTTPTestResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        sendRaw(Array(head.utf8) + body)
        return try readResponse()
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw HarnessError(n == 0 ? "connection closed" : "recv failed: errno \(errno)") }
        buffer.append(contentsOf: chunk[0..<n])
    }

    /// True when the server closed the connection (reads until EOF or timeout).
    func isClosedByServer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }

    func readResponse() throws -> HTTPTestResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where Array(buffer[i..<i + 4]) == separator { headEnd = i; break }
            }
            if headEnd == nil { try fill() }
        }
        guard let end = headEnd else { throw HarnessError("no head") }
        let headText = String(decoding: buffer[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw HarnessError("bad status line \(statusLine)") }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        let bodyStart = end + 4
        while buffer.count < bodyStart + length { try fill() }
        let body = Array(buffer[bodyStart..<bodyStart + length])
        buffer.removeFirst(bodyStart + length)
        return HTTPTestResponse(status: status, headers: headers, body: body)
    }
}

/// A list several threads append to (test bookkeeping).
final class LockedList<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    func append(_ item: Element) { lock.withLock { items.append(item) } }
    var values: [Element] { lock.withLock { items } }
}
