#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Where a peer listens: `unix:/path/to.sock` (the default; a bare path means the same) or `tcp:host:port`.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL).
    public static let maxUnixPathLength = 107

    /// The socket file of replica `replica` in a service's socket folder: where the service
    /// listens (`--socket-dir`), what the launcher checks and removes, and what the gateway finds
    /// there (`ReplicaPool`, every `*.sock`).
    public static func replicaSocketPath(folder: String, replica: String) -> String {
        (folder.hasSuffix("/") ? folder : folder + "/") + replica + ".sock"
    }

    public init(parsing text: String) throws(EndpointError) {
        if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]),
                  colon > rest.startIndex else {
                throw EndpointError(reason: "endpoint '\(text)' is not tcp:host:port")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self = .tcp(host: host, port: port)
            return
        }
        let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
        guard !path.isEmpty else { throw EndpointError(reason: "endpoint '\(text)' has an empty path") }
        guard path.utf8.count <= Endpoint.maxUnixPathLength else {
            throw EndpointError(reason: "socket path '\(path)' is \(path.utf8.count) bytes; Unix socket paths must stay under 108 bytes")
        }
        self = .unix(path: path)
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Socket creation for both endpoint kinds. Every descriptor is non-blocking and close-on-exec.
public enum Socket {
    /// Binds and listens. A stale Unix socket file at the path is removed first (the caller owns the path).
    public static func listen(on endpoint: Endpoint, backlog: Int32 = 1024, reusePort: Bool = false) throws(SyscallError) -> Int32 {
        switch endpoint {
        case .unix(let path):
            let fd = try syscallChecked("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
            unlink(path)
            var addr = unixAddress(path)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc != 0 { let e = errno; close(fd); throw SyscallError(call: "bind \(path)", errno: e) }
            chmod(path, 0o600)
            if Glibc.listen(fd, backlog) != 0 { let e = errno; close(fd); throw SyscallError(call: "listen", errno: e) }
            return fd
        case .tcp(let host, let port):
            var storage = sockaddr_storage()
            let (family, length) = try inetAddress(host: host, port: port, into: &storage)
            let fd = try syscallChecked("socket") { socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
            let rc = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            if rc != 0 { let e = errno; close(fd); throw SyscallError(call: "bind \(host):\(port)", errno: e) }
            if Glibc.listen(fd, backlog) != 0 { let e = errno; close(fd); throw SyscallError(call: "listen", errno: e) }
            return fd
        }
    }

    /// Takes over a listening socket inherited from the parent process (the launcher keeps the
    /// port bound across gateway restarts): checks that `fd` is a listening stream socket and
    /// makes it non-blocking and close-on-exec. Descriptor 0 (how the launcher hands it over)
    /// is moved to a new number and 0 becomes /dev/null again.
    public static func adoptListener(_ inherited: Int32) throws(SyscallError) -> Int32 {
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(inherited, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 else {
            throw SyscallError(call: "getsockopt \(inherited) (not a socket)", errno: errno)
        }
        guard listening != 0 else { throw SyscallError(call: "listen-fd \(inherited) is not listening", errno: EINVAL) }
        var fd = inherited
        if inherited == 0 {
            fd = try syscallChecked("fcntl") { fcntl(inherited, F_DUPFD_CLOEXEC, 3) }
            let null = open("/dev/null", O_RDONLY)
            if null >= 0 { dup2(null, 0); if null != 0 { close(null) } }
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// Starts a non-blocking connect. `.done(fd)`: connected; `.wouldBlock`: in progress on
    /// `pendingFD` — wait for writability, then check `pendingError`.
    /// ENOENT, ECONNREFUSED and EAGAIN (a full backlog) are thrown: "not reachable yet".
    public static func connect(to endpoint: Endpoint) throws(SyscallError) -> (fd: Int32, inProgress: Bool) {
        switch endpoint {
        case .unix(let path):
            let fd = try syscallChecked("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
            var addr = unixAddress(path)
            while true {
                let rc = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                if rc == 0 { return (fd, false) }
                let e = errno
                if e == EINTR { continue }
                if e == EINPROGRESS { return (fd, true) }
                close(fd)
                throw SyscallError(call: "connect \(path)", errno: e)
            }
        case .tcp(let host, let port):
            var storage = sockaddr_storage()
            let (family, length) = try inetAddress(host: host, port: port, into: &storage)
            let fd = try syscallChecked("socket") { socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            while true {
                let rc = withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
                }
                if rc == 0 { return (fd, false) }
                let e = errno
                if e == EINTR { continue }
                if e == EINPROGRESS { return (fd, true) }
                close(fd)
                throw SyscallError(call: "connect \(host):\(port)", errno: e)
            }
        }
    }

    /// The result of a non-blocking connect once the socket became writable (0 = connected).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { return errno }
        return error
    }

    /// The local port of a bound TCP socket (0 when unknown).
    public static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard rc == 0 else { return 0 }
        switch Int32(storage.ss_family) {
        case AF_INET: return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        case AF_INET6: return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        default: return 0
        }
    }

    /// Accepts one connection: `nil` when none is queued.
    public static func accept(_ listener: Int32) throws(SyscallError) -> Int32? {
        switch try syscall("accept4", { accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)) }) {
        case .done(let fd): return fd
        case .wouldBlock: return nil
        }
    }

    /// The address of a Unix socket path (cut to what `sun_path` holds, NUL-terminated).
    public static func unixAddress(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    static func inetAddress(host: String, port: UInt16, into storage: inout sockaddr_storage) throws(SyscallError) -> (Int32, socklen_t) {
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_port = port.bigEndian
        if inet_pton(AF_INET, name, &v4.sin_addr) == 1 {
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v4) { dst.copyMemory(from: $0) } }
            return (AF_INET, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = port.bigEndian
        if inet_pton(AF_INET6, name, &v6.sin6_addr) == 1 {
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v6) { dst.copyMemory(from: $0) } }
            return (AF_INET6, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
        throw SyscallError(call: "address '\(host)' is not a numeric IPv4/IPv6 address", errno: EINVAL)
    }
}
