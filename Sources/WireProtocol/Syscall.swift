#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The outcome of one non-blocking system call.
public enum IOResult<T>: Sendable where T: Sendable {
    case done(T)
    /// EAGAIN / EWOULDBLOCK (or EINPROGRESS on connect): try again when the descriptor is ready.
    case wouldBlock
}

/// A failed system call: the call's name and errno.
public struct SyscallError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
    public var description: String {
        "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The one place that runs a system call: retries EINTR, maps EAGAIN/EWOULDBLOCK/EINPROGRESS to
/// `.wouldBlock`, and turns every other failure into a `SyscallError`.
@inline(__always)
public func syscall<T: FixedWidthInteger & Sendable>(_ name: String, _ body: () -> T) throws(SyscallError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = errno
        switch code {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK, EINPROGRESS: return .wouldBlock
        default: throw SyscallError(call: name, errno: code)
        }
    }
}

/// Like `syscall` for calls that never block: `.wouldBlock` is an error too.
@inline(__always)
@discardableResult
public func syscallChecked<T: FixedWidthInteger & Sendable>(_ name: String, _ body: () -> T) throws(SyscallError) -> T {
    switch try syscall(name, body) {
    case .done(let value): return value
    case .wouldBlock: throw SyscallError(call: name, errno: EAGAIN)
    }
}

/// Milliseconds on the monotonic clock (for deadlines and timers).
@inline(__always)
public func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Milliseconds since the Unix epoch (for deadlines that cross processes).
@inline(__always)
public func wallClockMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Sets O_NONBLOCK and FD_CLOEXEC on a descriptor.
public func makeNonBlocking(_ fd: Int32) throws(SyscallError) {
    let flags = try syscallChecked("fcntl") { fcntl(fd, F_GETFL) }
    try syscallChecked("fcntl") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    let fdFlags = try syscallChecked("fcntl") { fcntl(fd, F_GETFD) }
    try syscallChecked("fcntl") { fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) }
}

/// Unbuffered writes to standard output and error (each call is one `write`, so lines from
/// several threads never interleave mid-line, and nothing waits in a stdio buffer).
public enum StdIO {
    public static func out(_ line: String) { put(1, line) }
    public static func error(_ line: String) { put(2, line) }

    private static func put(_ fd: Int32, _ line: String) {
        var bytes = Array(line.utf8)
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
