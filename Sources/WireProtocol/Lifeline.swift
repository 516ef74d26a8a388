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
/// A socket pair (SOCK_SEQPACKET) rather than a pipe for one message the other way: a child
/// that refuses its configuration sends its pid and the reason before it exits (`report`), one
/// record per send, so the launcher can say why it stops (`reason(of:)`).
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
    /// Reasons read from `held`, by sender pid, until asked for.
    private let reasons = Mutex<[Int32: String]>([:])

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
        reasons.withLock { reasons in
            var buffer = [UInt8](repeating: 0, count: Lifeline.maxReason + 16)
            while true {
                let n = recv(held, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                guard n > 0 else { break }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                guard let newline = text.firstIndex(of: "\n"), let sender = Int32(text[..<newline]) else { continue }
                // Each child sends at most once, before it exits; bounded all the same.
                if reasons.count < 256 { reasons[sender] = String(text[text.index(after: newline)...]) }
            }
            return reasons.removeValue(forKey: pid)
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

    /// Tells the launcher why this process stops (a configuration it refuses), if it has a
    /// lifeline; never waits.
    public static func report(_ reason: String) {
        guard let fd = try? inherited() else { return }
        let message = Array("\(getpid())\n".utf8) + Array(reason.utf8.prefix(maxReason))
        _ = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }
}
