#if canImport(Glibc)
import Glibc
#endif

/// The connections to one service, which may run as several processes (replicas) on its one
/// database. The endpoint is either one socket (`unix:/run/users.sock`, `tcp:…`: one fixed
/// replica) or a folder of replica sockets (`unix:/run/users/`, trailing slash): every
/// `*.sock` in it is a replica, connected as it appears and dropped as it goes (inotify, and
/// a rescan every second).
///
/// A request goes to the ready replica with the fewest outstanding requests. While none is
/// ready it is held here (up to `holdMillis`, as `WireClient` holds); requests a replica
/// loses (its connection dropped, it drained, its socket went away) move to another one —
/// resending a write is safe, the request-id record is in the shared database. Same API as
/// `WireClient`; loop-thread confined, `send` may be called from any thread.
public final class ReplicaPool: @unchecked Sendable {
    public let loop: EventLoop
    public let endpoint: Endpoint
    public let serviceName: String
    private let hello: Hello
    private let config: WireClientConfiguration
    /// The folder when the endpoint names one.
    public let folder: String?

    private struct Member {
        let inode: UInt64
        let client: WireClient
    }
    /// By socket path (the endpoint's description for a fixed endpoint).
    private var members: [String: Member] = [:] {
        didSet { order = members.keys.sorted().compactMap { members[$0]?.client } }
    }
    /// The members' clients in a fixed order, for choosing without allocating per request.
    private var order: [WireClient] = []
    /// Replicas whose socket went away: answering what they took, then forgotten.
    private var retiring: [ObjectIdentifier: WireClient] = [:]
    private var held: [WireClient.Pending] = []
    private var watcher: FolderWatcher?
    private var sweepScheduled = false
    private var stopped = false
    private var rotation: UInt = 0
    private var retiredRetries = 0

    public init(loop: EventLoop, endpoint: Endpoint, serviceName: String, hello: Hello, configuration: WireClientConfiguration = WireClientConfiguration()) {
        self.loop = loop
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.hello = hello
        self.config = configuration
        folder = endpoint.replicaFolder
    }

    /// Starts connecting (and watching the folder).
    public func start() {
        loop.execute { [self] in
            guard !stopped else { return }
            if let folder {
                let watcher = FolderWatcher(path: folder, loop: loop) { [weak self] in self?.rescan() }
                self.watcher = watcher
                watcher.start()
            } else {
                add(key: endpoint.description, inode: 0, endpoint: endpoint)
            }
        }
    }

    public func stop() {
        loop.execute { [self] in
            stopped = true
            watcher?.stop()
            for member in members.values { member.client.stop() }
            for client in retiring.values { client.stop() }
            members.removeAll()
            retiring.removeAll()
            let failed = held
            held.removeAll()
            for item in failed { item.fail(.unavailable) }
        }
    }

    // MARK: Counts (loop thread)

    /// Replicas known (a socket in the folder, or the fixed endpoint).
    public var replicaCount: Int { members.count }
    /// Replicas connected and past their hello.
    public var readyCount: Int { members.values.filter { $0.client.isReady }.count }
    /// True when some replica is ready.
    public var isReady: Bool { members.values.contains { $0.client.isReady } }
    /// Requests waiting for a replica.
    public var waitingCount: Int { held.count + members.values.reduce(0) { $0 + $1.client.waitingCount } }
    /// Resends after lost connections, over every replica this pool had.
    public var retries: Int { retiredRetries + members.values.reduce(0) { $0 + $1.client.retries } + retiring.values.reduce(0) { $0 + $1.retries } }

    // MARK: Sending

    public func send(_ request: WireRequest, completion: @escaping WireClient.Completion) {
        if loop.inEventLoop {
            dispatch(request, completion)
        } else {
            loop.execute { [self] in dispatch(request, completion) }
        }
    }

    /// `send` for callers on the pool's loop thread: the completion never leaves the loop.
    public func sendOnLoop(_ request: WireRequest, completion: @escaping WireClient.LoopCompletion) {
        assert(loop.inEventLoop, "sendOnLoop must be called on the pool's loop")
        dispatch(request, completion)
    }

    public func send(_ request: WireRequest) async -> Result<WireResponse, WireClientError> {
        await withCheckedContinuation { continuation in
            send(request) { continuation.resume(returning: $0) }
        }
    }

    /// Pings every ready replica; `completion` gets how many answered within `timeoutMillis`
    /// and how many replicas are known. No ready replica answers `(0, known)` at once.
    public func probe(timeoutMillis: Int64 = 1000, completion: @escaping @Sendable (_ reachable: Int, _ known: Int) -> Void) {
        loop.execute { [self] in
            let known = members.count
            let ready = members.values.map(\.client).filter(\.isReady)
            guard !ready.isEmpty else { completion(0, known); return }
            let tally = ProbeTally(expected: ready.count) { completion($0, known) }
            for client in ready {
                client.ping(timeoutMillis: timeoutMillis) { [loop] up in loop.execute { tally.report(up) } }
            }
        }
    }

    /// Pings the service: true when some replica answers.
    public func ping(timeoutMillis: Int64 = 1000, completion: @escaping @Sendable (Bool) -> Void) {
        probe(timeoutMillis: timeoutMillis) { reachable, _ in completion(reachable > 0) }
    }

    private func dispatch(_ request: WireRequest, _ completion: @escaping WireClient.LoopCompletion) {
        guard !stopped else { completion(.failure(.unavailable)); return }
        if let client = leastLoaded() {
            client.sendOnLoop(request, completion: completion)
        } else {
            held.append(WireClient.Pending(request, holdMillis: config.holdMillis, defaultTimeoutMillis: config.defaultTimeoutMillis, completion: completion))
            scheduleSweep()
        }
    }

    /// The ready replica with the fewest outstanding requests; ties go round.
    private func leastLoaded() -> WireClient? {
        let count = order.count
        guard count > 1 else { return order.first.flatMap { $0.isReady ? $0 : nil } }
        rotation &+= 1
        var best: WireClient?
        var bestLoad = Int.max
        for offset in 0..<count {
            let client = order[Int((rotation &+ UInt(offset)) % UInt(count))]
            guard client.isReady, !client.isRetired, client.outstanding < bestLoad else { continue }
            best = client
            bestLoad = client.outstanding
        }
        return best
    }

    // MARK: Replicas coming and going

    private func add(key: String, inode: UInt64, endpoint: Endpoint) {
        let client = WireClient(loop: loop, endpoint: endpoint, serviceName: serviceName, hello: hello, configuration: config)
        client.onChange = { [weak self, weak client] in
            guard let self, let client else { return }
            self.changed(client)
        }
        members[key] = Member(inode: inode, client: client)
        client.start()
    }

    private func retire(_ client: WireClient) {
        retiring[ObjectIdentifier(client)] = client
        client.retire()
        changed(client)
    }

    /// A replica became ready, lost its connection or finished retiring: requests it holds
    /// without a connection go to a ready replica (or are held here); the pool's held
    /// requests go out when one is ready.
    private func changed(_ client: WireClient) {
        guard !stopped else { return }
        if !client.isReady || client.isRetired {
            let moved = client.takeWaiting()
            if !moved.isEmpty {
                if client.isRetired || leastLoaded() != nil {
                    redistribute(moved)
                } else {
                    // No other replica is ready: the client keeps them while it reconnects.
                    client.adopt(moved)
                }
            }
        }
        if client.isRetired, client.isIdle {
            retiredRetries += client.retries
            retiring[ObjectIdentifier(client)] = nil
        }
        if !held.isEmpty, leastLoaded() != nil {
            let waiting = held
            held.removeAll()
            redistribute(waiting)
        }
    }

    private func redistribute(_ items: [WireClient.Pending]) {
        for item in items {
            if let client = leastLoaded() {
                client.adopt([item])
            } else {
                held.append(item)
                scheduleSweep()
            }
        }
    }

    /// Brings the members in line with the folder's `*.sock` files: new (or replaced, by
    /// inode) sockets get a client, vanished ones are retired.
    private func rescan() {
        guard !stopped, let folder else { return }
        var found: [String: UInt64] = [:]
        if let dir = opendir(folder) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard name.hasSuffix(".sock"), !name.hasPrefix(".") else { continue }
                let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
                var info = stat()
                guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK, path.utf8.count <= Endpoint.maxUnixPathLength else { continue }
                found[path] = UInt64(info.st_ino)
            }
            closedir(dir)
        }
        for (path, member) in members where found[path] != member.inode {
            members[path] = nil
            retire(member.client)
        }
        for (path, inode) in found where members[path] == nil {
            add(key: path, inode: inode, endpoint: .unix(path: path))
        }
    }

    private func scheduleSweep() {
        guard !sweepScheduled else { return }
        sweepScheduled = true
        loop.schedule(afterMillis: 100) { [weak self] in self?.sweep() }
    }

    /// Fails held requests past their hold time or deadline.
    private func sweep() {
        sweepScheduled = false
        let now = monotonicMillis()
        let expired = held.removeExpired(now: now)
        for (item, error) in expired { item.fail(error) }
        if !held.isEmpty { scheduleSweep() }
    }
}

/// Counts the pongs of one probe (loop-thread confined).
final class ProbeTally: @unchecked Sendable {
    private var left: Int
    private var reachable = 0
    private let done: (Int) -> Void
    init(expected: Int, done: @escaping (Int) -> Void) {
        left = expected
        self.done = done
    }
    func report(_ up: Bool) {
        guard left > 0 else { return }
        if up { reachable += 1 }
        left -= 1
        if left == 0 { done(reachable) }
    }
}

extension Endpoint {
    /// The folder of replica sockets a `unix:` endpoint names with a trailing slash.
    public var replicaFolder: String? {
        guard case .unix(let path) = self, path.hasSuffix("/") else { return nil }
        return path
    }
}
