#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinux
import WireProtocol

/// One run of a child's executable, started with `posix_spawn` (Foundation's `Process` closes
/// every descriptor above 2 in the child, so it cannot hand over the lifeline).
///
/// The child gets: standard input `Command.standardInput` (else /dev/null), the launcher's standard
/// output and error, the lifeline's end as descriptor 3 (`Lifeline`), and nothing else — every
/// other descriptor is closed, whatever its close-on-exec flag. It starts in a process group of
/// its own (a terminal's Ctrl-C reaches the launcher, which stops the children in order) with
/// default signal handling and no blocked signal. A thread of its own waits for its exit; the
/// process is reaped only after it is marked exited, so `signal` never reaches a reused pid.
final class ChildProcess: @unchecked Sendable {
    enum Exit: Equatable, CustomStringConvertible {
        case status(Int32)
        case signal(Int32)

        var description: String {
            switch self {
            case .status(let status): "status \(status)"
            case .signal(let signal): "signal \(signal)"
            }
        }
    }

    /// What to run, and what the process gets besides its arguments.
    struct Command: Sendable {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        /// Its standard input (else /dev/null).
        var standardInput: Int32?
        /// Its end of the lifeline, as descriptor 3.
        var lifeline: Lifeline?
    }

    let command: Command
    /// Runs once, on the waiting thread, when the process has exited.
    private let terminationHandler: @Sendable (ChildProcess) -> Void
    private let condition = NSCondition()
    private var pid: pid_t = 0
    private var ended: Exit?

    init(_ command: Command, terminationHandler: @escaping @Sendable (ChildProcess) -> Void) {
        self.command = command
        self.terminationHandler = terminationHandler
    }

    var processIdentifier: pid_t { condition.withLock { pid } }
    /// Started and not exited yet.
    var isRunning: Bool { condition.withLock { pid > 0 && ended == nil } }
    /// How it ended, once it has.
    var exitState: Exit? { condition.withLock { ended } }

    func run() throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        if let standardInput = command.standardInput {
            try check(posix_spawn_file_actions_adddup2(&actions, standardInput, 0), "dup2")
        } else {
            try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "open /dev/null")
        }
        var environment = command.environment
        let lifeline = command.lifeline
        if let lifeline {
            try check(posix_spawn_file_actions_adddup2(&actions, lifeline.given, Lifeline.childDescriptor), "dup2")
            environment[Lifeline.environmentKey] = String(Lifeline.childDescriptor)
        } else {
            environment[Lifeline.environmentKey] = nil
        }
        try check(posix_spawn_file_actions_addclosefrom_np(&actions, lifeline == nil ? 3 : Lifeline.childDescriptor + 1), "closefrom")

        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal: Int32 in 1..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        var none = sigset_t()
        sigemptyset(&none)
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "sigdefault")
        try check(posix_spawnattr_setsigmask(&attributes, &none), "sigmask")
        try check(posix_spawnattr_setpgroup(&attributes, 0), "pgroup")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP)), "flags")

        let argv = ([command.executable] + command.arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var spawned: pid_t = 0
        let rc = posix_spawn(&spawned, command.executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw LaunchError("cannot start \(command.executable): \(String(cString: strerror(rc)))") }
        condition.withLock { pid = spawned }

        let child = spawned
        let waiter = Thread { [self] in waitForExit(child) }
        waiter.stackSize = 64 << 10
        waiter.name = "crm-wait-\(child)"
        waiter.start()
    }

    private func check(_ rc: Int32, _ step: String) throws {
        guard rc == 0 else { throw LaunchError("cannot start \(command.executable) (\(step)): \(String(cString: strerror(rc)))") }
    }

    private func waitForExit(_ pid: pid_t) {
        var info = siginfo_t()
        // WNOWAIT: the process stays a zombie, its pid not reusable, until it is marked exited.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        var status: Int32 = 0
        condition.withLock {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // WIFSIGNALED / WTERMSIG / WEXITSTATUS (macros Swift does not import).
            ended = status & 0x7f != 0 ? .signal(status & 0x7f) : .status((status >> 8) & 0xff)
            condition.broadcast()
        }
        terminationHandler(self)
    }

    /// Sends `signal` unless the process has exited.
    func signal(_ signal: Int32) {
        condition.withLock { if pid > 0 && ended == nil { _ = kill(pid, signal) } }
    }

    func terminate() { signal(SIGTERM) }

    func waitUntilExit() {
        condition.withLock { while pid > 0 && ended == nil { condition.wait() } }
    }
}
