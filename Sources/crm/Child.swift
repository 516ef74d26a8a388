#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

/// One supervised child process: restarted with backoff when it dies unexpectedly.
///
/// During `replace()` a `candidate` runs beside `process`, the current one (restarted when it
/// dies), and becomes current only once it has settled; the old one is then `retiring` until
/// it has drained. A candidate that dies before is reported and dropped, never restarted, and
/// the current one keeps serving. `stop()` ends all three.
final class Child: @unchecked Sendable {
    /// "customers#2": service and replica id, for messages.
    let name: String
    let service: String
    let replica: String
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    /// Given to every process as its standard input: the gateway's inherited listener.
    private let standardInput: Int32?
    private let lock = NSLock()
    /// Restarts after an unexpected exit (for `crm status`).
    private var restarts = 0
    private var process: Process?
    private var candidate: Process?
    private var retiring: Process?
    private var stopping = false
    private var backoffMillis = 100
    private var startedAt = Date()

    init(service: String, replica: String, executable: String, arguments: [String], environment: [String: String], standardInput: Int32? = nil) {
        self.service = service
        self.replica = replica
        self.name = "\(service)#\(replica)"
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.standardInput = standardInput
    }

    /// What `crm status` shows of this child.
    struct Status {
        var service: String
        var replica: String
        var pid: Int32?
        var uptimeSeconds: Int
        var restarts: Int
        var state: String
    }

    var status: Status {
        lock.withLock {
            let running = process?.isRunning == true
            let state: String
            if stopping { state = running ? "stopping" : "stopped" }
            else if candidate != nil { state = "replacing" }
            else { state = running ? "running" : "restarting" }
            return Status(service: service, replica: replica, pid: running ? process?.processIdentifier : nil,
                          uptimeSeconds: running ? Int(Date().timeIntervalSince(startedAt)) : 0, restarts: restarts, state: state)
        }
    }

    /// The current process's id, if it runs.
    var pid: Int32? { lock.withLock { process?.isRunning == true ? process?.processIdentifier : nil } }

    private func makeProcess() -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let standardInput { process.standardInput = FileHandle(fileDescriptor: standardInput, closeOnDealloc: false) }
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
            restarts += 1
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
