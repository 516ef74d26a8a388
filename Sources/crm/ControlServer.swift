#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

/// The launcher's control socket (`<data>/crm.sock`, mode 0600): one command line per
/// connection — `status`, `restart NAME`, `scale NAME=N` — answered with text lines, the last
/// one `ok` or `error: …`. Each connection runs on its own thread (the launcher has no event
/// loop); a command line must arrive within 5 s and be at most 1 KiB.
final class ControlServer: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let fleet: Fleet
    static let maxLine = 1024

    init(path: String, fleet: Fleet) throws {
        guard path.utf8.count <= Endpoint.maxUnixPathLength else {
            throw LaunchError("control socket path \(path) is longer than 107 bytes; choose a shorter CRM_DATA_DIR")
        }
        self.path = path
        self.fleet = fleet
        do {
            let listener = try Socket.listen(on: .unix(path: path), backlog: 16)
            // Accepted on a thread of its own: blocking.
            _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) & ~O_NONBLOCK)
            fd = listener
        } catch {
            throw LaunchError("cannot open the control socket \(path): \(error)")
        }
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    if errno == EBADF || errno == EINVAL { return }
                    usleep(100_000)
                    continue
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                DispatchQueue.global().async { [self] in serve(client) }
            }
        }
        thread.name = "crm-control"
        thread.start()
    }

    /// Removes the socket (shutdown): `crm status` then says no launcher runs.
    func close() {
        unlink(path)
    }

    private func serve(_ client: Int32) {
        defer { Glibc.close(client) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while line.count <= ControlServer.maxLine, !line.contains(UInt8(ascii: "\n")) {
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            line += buffer[0..<n]
        }
        let send: (String) -> Void = { text in
            let bytes = Array((text + "\n").utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        guard let end = line.firstIndex(of: UInt8(ascii: "\n")) else {
            send("error: send one command line (status, restart NAME, scale NAME=N)")
            return
        }
        let words = String(decoding: line[..<end], as: UTF8.self).split(separator: " ").map(String.init)
        do {
            switch (words.first, words.count) {
            case ("status", 1):
                for text in fleet.statusLines() { send(text) }
            case ("restart", 2):
                let kept = try fleet.restart(words[1], progress: send)
                guard kept.isEmpty else { throw LaunchError("still the old \(kept.joined(separator: ", ")) (see above)") }
            case ("scale", 2):
                let parts = words[1].split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let count = Int(parts[1]) else { throw LaunchError("scale takes NAME=N") }
                try fleet.scale(parts[0], to: count, progress: send)
            default:
                throw LaunchError("unknown command '\(words.joined(separator: " "))'; one of status, restart NAME, scale NAME=N")
            }
            send("ok")
        } catch {
            send("error: \(error)")
        }
    }
}

/// `crm status|restart|scale`: sends one command to the launcher on `CRM_DATA_DIR` and prints
/// its answer.
enum ControlClient {
    static func run(_ command: String, dataDir: String) -> Int32 {
        let path = Launcher.controlPath(dataDir)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { StdIO.error("crm: socket: errno \(errno)"); return 1 }
        defer { close(fd) }
        var addr = Socket.unixAddress(path)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            let reason = errno == ENOENT || errno == ECONNREFUSED ? "no launcher runs on \(dataDir) (no control socket at \(path)); start one with `crm up`"
                : "cannot reach the launcher at \(path): \(String(cString: strerror(errno)))"
            StdIO.error("crm: \(reason)")
            return 1
        }
        // A rolling restart takes a while per process; bounded all the same.
        var timeout = timeval(tv_sec: 300, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array((command + "\n").utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { StdIO.error("crm: the launcher closed the control socket"); return 1 }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var status: Int32 = 1
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            answer += buffer[0..<n]
            while let newline = answer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: answer[..<newline], as: UTF8.self)
                answer.removeFirst(newline + 1)
                if line == "ok" { status = 0 } else if line.hasPrefix("error: ") { StdIO.error("crm: " + line.dropFirst(7)) } else { StdIO.out(line) }
            }
        }
        return status
    }
}
