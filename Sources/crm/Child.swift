#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

/// One supervised child process: restarted with backoff when it dies unexpectedly.
///
/// During `replace()` a `candidate` runs beside `process`, the current one (restarted when it
/// dies), and becomes current only once it serves (it says so over the lifeline,
/// `Lifeline.ready`); the old one is then `retiring` until it has drained. A candidate that
/// dies before, or does not serve within `readySeconds`, is reported and dropped, never
/// restarted, and the current one keeps serving. `stop()` ends all three.
///
/// A current process that exits with `ConfigurationError.exitStatus` (78) refused its
/// configuration: it is not restarted (it would fail the same way) and `refused` is called
/// with a message naming it and, when it sent one over the lifeline, its reason.
final class Child: @unchecked Sendable {
    /// How long a new process may take to serve (`replace`, and `crm scale`'s wait for each
    /// replica it adds) by default: time for the migrations of a new build on a large file.
    static let defaultReadySeconds = 120
    /// Bounds of `CRM_READY_SECONDS`: with the old process's drain (or the late one's stop) after
    /// it, within the control client's wait for the next line (300 s).
    static let readySecondsRange = 1...240
    /// How long a process told to stop may drain before it is killed.
    static let stopGraceSeconds = 15.0
    /// "customers#2": service and replica id, for messages.
    let name: String
    let service: String
    let replica: String
    /// What every process of this child runs: the gateway's gets the inherited listener as its
    /// standard input, and each gets the lifeline, so that none outlives the launcher.
    private let command: ChildProcess.Command
    private var lifeline: Lifeline? { command.lifeline }
    private let refused: @Sendable (String) -> Void
    /// How long a new process may take to serve (`awaitReady`).
    let readySeconds: Int
    /// A service replica: after a failed replacement the current process is sent SIGUSR1 to
    /// bind its socket path again, which the candidate may have taken (`WireServer.reclaimSocketPath`).
    let listensOnSocketPath: Bool
    private let lock = NSLock()
    /// Restarts after an unexpected exit (for `crm status`).
    private var restarts = 0
    private var process: ChildProcess?
    private var candidate: ChildProcess?
    private var retiring: ChildProcess?
    private var stopping = false
    /// The current process refused its configuration: nothing more is started.
    private var refusedConfiguration = false
    /// A replica `crm scale` just added and waits for (`start(onTrial:)`): its refusal fails
    /// the operation (`endTrial`), not the whole system.
    private var onTrial = false
    private var trialRefusal: String?
    private var backoffMillis = 100
    private var startedAt = Date()

    init(service: String, replica: String, executable: String, arguments: [String], environment: [String: String],
         standardInput: Int32? = nil, lifeline: Lifeline?, readySeconds: Int = Child.defaultReadySeconds,
         listensOnSocketPath: Bool = false, refused: @escaping @Sendable (String) -> Void) {
        self.service = service
        self.replica = replica
        self.name = "\(service)#\(replica)"
        command = ChildProcess.Command(executable: executable, arguments: arguments, environment: environment,
                                       standardInput: standardInput, lifeline: lifeline)
        self.refused = refused
        self.readySeconds = readySeconds
        self.listensOnSocketPath = listensOnSocketPath
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
            if refusedConfiguration { state = "refused" }
            else if stopping { state = running ? "stopping" : "stopped" }
            else if candidate != nil { state = "replacing" }
            else { state = running ? "running" : "restarting" }
            return Status(service: service, replica: replica, pid: running ? process?.processIdentifier : nil,
                          uptimeSeconds: running ? Int(Date().timeIntervalSince(startedAt)) : 0, restarts: restarts, state: state)
        }
    }

    /// The current process's id, if it runs.
    var pid: Int32? { lock.withLock { process?.isRunning == true ? process?.processIdentifier : nil } }

    private func makeProcess() -> ChildProcess {
        ChildProcess(command) { [weak self] finished in self?.exited(finished) }
    }

    func start(onTrial: Bool = false) throws {
        lock.withLock { self.onTrial = onTrial }
        try launch(replacing: nil)
    }

    /// Ends the trial of `start(onTrial: true)` once the process serves, refused its
    /// configuration, or `deadline` passed (a crash meanwhile is restarted as usual, and its
    /// restart waited for): nil when it serves, else why it is not to be kept — then the caller
    /// stops it. A refusal from now on stops the system like any other. One deadline for the
    /// replicas started together: they start at once, so none waits `readySeconds` twice.
    func endTrial(deadline: Date) -> String? {
        Child.poll(until: deadline) {
            let (current, over) = lock.withLock { (process, trialRefusal != nil || stopping) }
            return over || serves(current)
        }
        return lock.withLock {
            onTrial = false
            if let trialRefusal { return trialRefusal }
            if stopping { return "the launcher is stopping" }
            return serves(process) ? nil : "\(name) did not serve within \(readySeconds) s (CRM_READY_SECONDS)"
        }
    }

    /// Runs a new current process unless shutdown has begun or `expected` is no longer the
    /// current one (a replacement took over meanwhile). Runs under the lock, so that `stop()`
    /// either sees the new process or prevents it: none is left behind at exit.
    private func launch(replacing expected: ChildProcess?) throws {
        let process = makeProcess()
        try lock.withLock {
            guard !stopping, self.process === expected else { return }
            try process.run()
            self.process = process
            startedAt = Date()
        }
    }

    private func exited(_ finished: ChildProcess) {
        lifeline?.forget(finished.processIdentifier)
        enum Next { case nothing, refused(String, onTrial: Bool), restart(afterMillis: Int) }
        // Only the current process is restarted: a replaced one was asked to stop, and a
        // candidate's early death is reported by `replace()`.
        let next: Next = lock.withLock {
            guard self.process === finished, !stopping else { return .nothing }
            if finished.exitState == .status(ConfigurationError.exitStatus) {
                refusedConfiguration = true
                stopping = true
                // With `stopping`, in one step: `endTrial` never sees the one without the other.
                let message = "\(name) refused its configuration\(reason(finished))"
                if onTrial { trialRefusal = message }
                return .refused(message, onTrial: onTrial)
            }
            // A child that ran a while is restarted quickly again; one that keeps dying waits longer.
            if Date().timeIntervalSince(startedAt) > 30 { backoffMillis = 100 }
            let delay = backoffMillis
            backoffMillis = min(backoffMillis * 2, 5000)
            restarts += 1
            return .restart(afterMillis: delay)
        }
        switch next {
        case .nothing:
            return
        case .refused(let message, let onTrial):
            if onTrial {
                StdIO.error("crm: \(message); not kept")
            } else {
                refused(message)
            }
        case .restart(let delay):
            StdIO.error("crm: \(name) exited (\(Child.describeExit(finished))); restarting in \(delay) ms\n")
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) { [self] in
                do { try launch(replacing: finished) } catch { StdIO.error("crm: cannot restart \(name): \(error)") }
            }
        }
    }

    /// Restarts without a gap: starts a candidate beside the running process (a service binds
    /// its socket path anew, the gateway shares the port through SO_REUSEPORT); once it serves
    /// (`awaitReady`) it becomes the current process and the old one is stopped, draining what
    /// it has. Answers nil once the new process took over, else why the old one stays current.
    func replace() throws -> String? {
        let fresh = makeProcess()
        let old: ChildProcess? = try lock.withLock {
            guard !stopping, candidate == nil, let current = process else { return nil }
            try fresh.run()
            candidate = fresh
            return current
        }
        guard let old else { return "\(name) is stopping or already being replaced" }
        let serves = awaitReady(fresh)

        enum Outcome { case promoted, failed, late, superseded, stopping }
        let outcome: Outcome = lock.withLock {
            // Shutdown has begun: `stop()` ends the candidate with the current process.
            if stopping { return .stopping }
            candidate = nil
            guard fresh.isRunning else { return .failed }
            guard serves else { return .late }
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
            // Drains and exits (a service within its 10 s bound); one that does not — wedged,
            // or ignoring SIGTERM — is killed after the grace, so that it cannot hold up this
            // operation and every later one.
            Child.end([old])
            lock.withLock { retiring = nil }
            return nil
        case .failed:
            // A new build that refuses the configuration the old one runs with (or any other
            // early exit): the system stays as it is, and the operation reports it.
            let why = fresh.exitState == .status(ConfigurationError.exitStatus)
                ? "the new \(name) refused its configuration\(reason(fresh))"
                : "the new \(name) exited (\(Child.describeExit(fresh))) before it served"
            StdIO.error("crm: \(why); the old one keeps running")
            reclaimSocketPath()
            return why
        case .late:
            // Still starting (a migration that takes longer than allowed, a hang): the old one
            // serves on, and the new one is ended without having served a request.
            let why = "the new \(name) did not serve within \(readySeconds) s (CRM_READY_SECONDS)"
            StdIO.error("crm: \(why); stopping it, the old one keeps running")
            Child.end([fresh])
            reclaimSocketPath()
            return why
        case .superseded:
            StdIO.error("crm: \(name) was restarted meanwhile; stopping the new one")
            Child.end([fresh])
            reclaimSocketPath()
            return "\(name) was restarted meanwhile"
        case .stopping:
            return "the launcher is stopping"
        }
    }

    /// A candidate that is not kept may have bound the socket path before it died (or was
    /// stopped): the current process — the old one, or its restart if it died meanwhile —
    /// binds it again unless it is still its own.
    private func reclaimSocketPath() {
        guard listensOnSocketPath, let current = lock.withLock({ stopping ? nil : process }) else { return }
        current.signal(SIGUSR1)
    }

    /// Waits until `process` serves, exits, shutdown begins or `readySeconds` pass; true when
    /// it serves.
    private func awaitReady(_ process: ChildProcess) -> Bool {
        Child.poll(until: Date().addingTimeInterval(Double(readySeconds))) {
            !process.isRunning || lock.withLock { stopping } || serves(process)
        }
        return serves(process)
    }

    /// Whether `process` runs and said it serves (`Lifeline.ready`: its socket or listener
    /// accepts). Without a lifeline there is no telling: a running process counts as serving.
    private func serves(_ process: ChildProcess?) -> Bool {
        guard let process, process.isRunning else { return false }
        return lifeline?.isReady(process.processIdentifier) ?? true
    }

    /// Checks `done` every `intervalMicros` until it holds or `deadline` passes.
    private static func poll(until deadline: Date, intervalMicros: UInt32 = 10_000, _ done: () -> Bool) {
        while !done() && Date() < deadline { usleep(intervalMicros) }
    }

    /// "status N" or "signal N" of a process that has exited.
    private static func describeExit(_ process: ChildProcess) -> String {
        process.exitState?.description ?? "running"
    }

    /// ": REASON" as the process sent it over the lifeline before it exited, else its exit status.
    private func reason(_ process: ChildProcess) -> String {
        lifeline?.reason(of: process.processIdentifier).map { ": " + $0 } ?? " (exit \(Child.describeExit(process)))"
    }

    /// From now on an exit is not restarted (shutdown has begun).
    func markStopping() {
        lock.withLock { stopping = true }
    }

    /// SIGTERM now, to the current process and any replacement in progress (new or old);
    /// SIGKILL to those still running after `stopGraceSeconds`.
    func stop() {
        let processes: [ChildProcess] = lock.withLock {
            stopping = true
            return [process, candidate, retiring].compactMap { $0 }
        }
        Child.end(processes)
    }

    /// SIGTERM now to those of `processes` that run, SIGKILL to those still running after
    /// `stopGraceSeconds`; returns once all have exited.
    private static func end(_ processes: [ChildProcess]) {
        let running = processes.filter(\.isRunning)
        for process in running { process.terminate() }
        poll(until: Date().addingTimeInterval(stopGraceSeconds), intervalMicros: 20_000) { !running.contains(where: \.isRunning) }
        for process in running where process.isRunning { process.signal(SIGKILL) }
        // Polled rather than waitUntilExit(): `replace()` may be waiting on the old one already.
        while running.contains(where: \.isRunning) { usleep(10_000) }
    }
}
