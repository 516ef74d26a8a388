#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Synchronization

/// The tie between `crm up` (or `crm gateway`) and the processes it starts, so that none of them
/// outlives it (docs/ARCHITECTURE.md, "Restarts").
///
/// The launcher makes a Unix socket pair and keeps one end (`held`: close-on-exec, so no child
/// inherits it); every child it starts gets the other end (`given`) as descriptor 3, named by
/// `CRM_LIFELINE_FD`. Nothing is ever sent to the children on it: a child reads end of file
/// exactly when no process holds the launcher's end any more — the launcher exited, crashed or
/// was killed with SIGKILL — and then drains as on SIGTERM (`watch`). The kernel closes the end
/// with the process, whichever thread started the child (`PR_SET_PDEATHSIG` follows the thread).
/// A process started without the variable (by hand, in a container) has no lifeline and runs
/// as before.
///
/// A socket pair (SOCK_SEQPACKET) rather than a pipe for messages the other way, one record per
/// send (`<pid> <kind>\n<text>`): a child that refuses its configuration sends the reason
/// before it exits (`report`), so the launcher can say why it stops (`reason(of:)`), and a
/// child that serves says so (`ready`), so that a replacement takes over only once it does
/// (`isReady(_:)`).
public final class Lifeline: Sendable {
    public static let environmentKey = "CRM_LIFELINE_FD"
    /// The descriptor a child gets its end on.
    public static let childDescriptor: Int32 = 3
    /// Longest reason a child sends.
    static let maxReason = 1024

    /// The launcher's end.
    let held: Int32
    /// The children's end, for `dup2` onto `childDescriptor` when one is started.
    public let given: Int32
    /// What children sent, read from `held`, by sender pid.
    private struct Received {
        /// Refusal reasons, until asked for.
        var reasons: [Int32: String] = [:]
        /// Children that said they serve, until they exit (`forget`).
        var ready: Set<Int32> = []
    }
    private let received = Mutex(Received())
    /// Most pids remembered of each kind: a record from a child the launcher never asks about
    /// (one started at `crm up`, then forgotten at its exit) cannot pile up.
    static let maxRemembered = 1024

    public init() throws(SyscallError) {
        var pair: [Int32] = [0, 0]
        try syscallChecked("socketpair") { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) }
        // Moved above the descriptors a child is given (0 to 3), so that none is overwritten
        // by another's `dup2` while a child is set up.
        held = try syscallChecked("fcntl") { fcntl(pair[0], F_DUPFD_CLOEXEC, 10) }
        given = try syscallChecked("fcntl") { fcntl(pair[1], F_DUPFD_CLOEXEC, 10) }
        close(pair[0])
        close(pair[1])
    }

    /// The reason child `pid` sent before it exited, if it sent one (answered once).
    public func reason(of pid: Int32) -> String? {
        received.withLock { received in
            readPending(into: &received)
            return received.reasons.removeValue(forKey: pid)
        }
    }

    /// Whether child `pid` said it serves (`ready`).
    public func isReady(_ pid: Int32) -> Bool {
        received.withLock { received in
            readPending(into: &received)
            return received.ready.contains(pid)
        }
    }

    /// Drops what child `pid` sent (it exited; its pid may be reused).
    public func forget(_ pid: Int32) {
        received.withLock { received in
            readPending(into: &received)
            received.ready.remove(pid)
        }
    }

    /// Reads every record waiting on `held`, never waiting for one.
    private func readPending(into received: inout Received) {
        var buffer = [UInt8](repeating: 0, count: Lifeline.maxReason + 32)
        while true {
            let n = recv(held, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { break }
            let record = buffer[0..<n]
            guard let newline = record.firstIndex(of: UInt8(ascii: "\n")) else { continue }
            let head = String(decoding: record[..<newline], as: UTF8.self).split(separator: " ")
            guard head.count == 2, let sender = Int32(head[0]), sender > 0 else { continue }
            switch head[1] {
            case "ready":
                if received.ready.count < Lifeline.maxRemembered { received.ready.insert(sender) }
            case "refused":
                if received.reasons.count < Lifeline.maxRemembered {
                    received.reasons[sender] = String(decoding: record[(newline + 1)...], as: UTF8.self)
                }
            default:
                continue
            }
        }
    }

    // MARK: In the child

    /// The descriptor `CRM_LIFELINE_FD` names (made close-on-exec); nil without the variable.
    public static func inherited() throws(ConfigurationError) -> Int32? {
        guard let value = getenv(environmentKey) else { return nil }
        let text = String(cString: value)
        if text.isEmpty { return nil }
        guard let fd = Int32(text), fd >= 0, fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
            throw ConfigurationError("\(environmentKey) '\(text)' is not an open descriptor")
        }
        return fd
    }

    /// Calls `lost` once, on `queue`, when the launcher is gone (end of file on `fd`). Keep the
    /// returned source for as long as it should fire.
    public static func watch(_ fd: Int32, queue: DispatchQueue, lost: @escaping @Sendable () -> Void) -> DispatchSourceRead {
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [source] in
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            // The launcher sends nothing; only end of file (or a reset, when it died with a
            // reason unread) means it is gone.
            guard n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) else { return }
            // Level-triggered: it would fire again and again at end of file.
            source.cancel()
            lost()
        }
        source.resume()
        return source
    }

    /// Calls `stop` once, on the main queue, for the first of `signals` (ignored as signals from
    /// here on) or the launcher's end (`lifeline`, when there is one), with why: what every
    /// process the launcher starts does to drain. Keep the returned sources for as long as
    /// they should fire.
    public static func onStop(signals: [Int32], lifeline: Int32?, _ stop: @escaping @Sendable (String) -> Void) -> [DispatchSourceProtocol] {
        let stopped = Atomic<Bool>(false)
        let once: @Sendable (String) -> Void = { why in
            guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
            stop(why)
        }
        var sources: [DispatchSourceProtocol] = []
        for sig in signals {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            source.setEventHandler { once("signal \(sig)") }
            source.resume()
            sources.append(source)
        }
        if let lifeline { sources.append(watch(lifeline, queue: .main) { once("the launcher is gone") }) }
        return sources
    }

    /// Tells the launcher why this process stops (a configuration it refuses), if it has a
    /// lifeline; never waits.
    public static func report(_ reason: String) {
        send("refused", Array(reason.utf8.prefix(maxReason)))
    }

    /// Tells the launcher that this process serves (its socket or listener accepts), if it has
    /// a lifeline; never waits. A replacement takes over only then (`Child.replace`).
    public static func ready() {
        send("ready", [])
    }

    private static func send(_ kind: String, _ text: [UInt8]) {
        guard let fd = try? inherited() else { return }
        let message = Array("\(getpid()) \(kind)\n".utf8) + text
        _ = message.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }
}
