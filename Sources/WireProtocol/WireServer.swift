#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Answers one request. Safe to call from any thread, once.
public struct Responder: Sendable {
    let deliver: @Sendable (WireResponse) -> Void
    /// A responder that hands the answer to `deliver` (in tests and in-process callers).
    public init(_ deliver: @escaping @Sendable (WireResponse) -> Void) {
        self.deliver = deliver
    }
    public func respond(_ response: WireResponse) { deliver(response) }
}

/// Listens on an endpoint and hands each request to `handler` (on the loop's thread — the
/// handler must move real work elsewhere). Answers pings itself; `drain` implements the
/// shutdown handshake.
public final class WireServer: @unchecked Sendable {
    public typealias RequestHandler = @Sendable (WireRequest, Responder) -> Void

    public let loop: EventLoop
    public let endpoint: Endpoint
    private let hello: Hello
    private let handler: RequestHandler
    private let maxFrameLength: Int
    private var listener: Listener?
    private var connections: [ObjectIdentifier: ServerConnection] = [:]
    private var draining = false
    /// Where the server listens once started (for `tcp:host:0`, with the port the system chose).
    public private(set) var boundEndpoint: Endpoint?
    /// The socket file this server bound (Unix endpoints).
    private var socketFile: SocketFile?
    private var drainCompletion: (@Sendable () -> Void)?

    public init(loop: EventLoop, endpoint: Endpoint, hello: Hello, maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength, handler: @escaping RequestHandler) {
        self.loop = loop
        self.endpoint = endpoint
        self.hello = hello
        self.handler = handler
        self.maxFrameLength = maxFrameLength
    }

    /// Binds and starts accepting (call from any thread; blocks until bound or failed).
    public func start() throws {
        let fd = try Socket.listen(on: endpoint)
        switch endpoint {
        case .unix(let path):
            socketFile = SocketFile(path)
            boundEndpoint = endpoint
        case .tcp(let host, _):
            boundEndpoint = .tcp(host: host, port: Socket.localPort(fd))
        }
        let result = Mutex<Error?>(nil)
        let done = Atomic<Bool>(false)
        loop.execute { [self] in
            let listener = makeListener(fd)
            do {
                try listener.start()
                self.listener = listener
            } catch {
                result.withLock { $0 = error }
            }
            done.store(true, ordering: .releasing)
        }
        while !done.load(ordering: .acquiring) { usleep(200) }
        if let error = result.withLock({ $0 }) { throw error }
    }

    /// A listener on `fd` whose clients this server serves.
    private func makeListener(_ fd: Int32) -> Listener {
        Listener(fd: fd, loop: loop) { [weak self] client in
            guard let self else { close(client); return }
            self.accepted(client)
        }
    }

    private func accepted(_ fd: Int32) {
        let stream = StreamConnection(fd: fd, loop: loop)
        let connection = ServerConnection(server: self, wire: WireConnection(stream: stream, localHello: hello, maxFrameLength: maxFrameLength), maxFrameLength: maxFrameLength)
        do {
            try stream.start()
        } catch {
            stream.close()
            return
        }
        connections[ObjectIdentifier(connection)] = connection
        connection.wire.sendHello()
        if draining { connection.beginDrain() }
        // A peer that connects but never says hello does not keep a connection for ever.
        loop.schedule(afterMillis: helloTimeoutMillis) { [weak connection] in
            guard let connection, connection.wire.peer == nil, !connection.wire.isClosed else { return }
            connection.wire.close()
        }
    }

    /// How long an accepted peer has to send its hello (ms).
    public var helloTimeoutMillis: Int64 = 5_000

    fileprivate func handle(_ request: WireRequest, on connection: ServerConnection) {
        let route = AnswerRoute(loop: loop, id: request.id, connection: connection)
        handler(request, Responder { route.deliver($0) })
    }

    fileprivate func removed(_ connection: ServerConnection) {
        connections[ObjectIdentifier(connection)] = nil
        checkDrained()
    }

    fileprivate func checkDrained() {
        guard draining, connections.isEmpty, let completion = drainCompletion else { return }
        drainCompletion = nil
        completion()
    }

    /// Stops accepting (after taking what is already queued), tells every peer to send no more,
    /// answers what is in flight, closes each connection, then calls `completion` (on the loop).
    public func drain(completion: @escaping @Sendable () -> Void) {
        loop.execute { [self] in
            guard !draining else { return }
            draining = true
            drainCompletion = completion
            listener?.acceptQueued()
            listener?.close()
            // Remove the socket file only if it is still ours: a replacement started beside this
            // process has already bound the path anew, and its socket must stay.
            if case .unix(let path) = endpoint, let socketFile, SocketFile(path) == socketFile {
                unlink(path)
            }
            for connection in connections.values { connection.beginDrain() }
            checkDrained()
        }
    }

    /// Binds the socket path again when it is no longer this server's: a replacement started
    /// beside this process bound it anew, then died before it took over, and clients reach
    /// nothing there (docs/ARCHITECTURE.md, "Restarts"). Then a new listener on the path takes
    /// the place of the old one, whose file is gone; connections already open stay. Nothing
    /// while draining, for a TCP endpoint, or while the path is still this server's. Any thread.
    public func reclaimSocketPath() {
        loop.execute { [self] in
            guard !draining, listener != nil, case .unix(let path) = endpoint else { return }
            if let socketFile, SocketFile(path) == socketFile { return }
            do {
                let fresh = makeListener(try Socket.listen(on: endpoint))
                do { try fresh.start() } catch { fresh.close(); throw error }
                listener?.close()
                listener = fresh
                socketFile = SocketFile(path)
                Log.warning("\(path) was no longer this process's socket (a replacement bound it and stopped): bound it again")
            } catch {
                Log.error("cannot bind \(path) again: \(error)")
            }
        }
    }

    /// Number of open connections (loop thread).
    public var connectionCount: Int { connections.count }
}

/// One accepted peer: counts what is in flight so a drain knows when it may close.
final class ServerConnection: WireConnectionDelegate, @unchecked Sendable {
    /// Weak: a server released while a connection still closes must not be touched.
    weak var server: WireServer?
    let wire: WireConnection
    @exclusivity(unchecked) private var inFlight = 0
    @exclusivity(unchecked) private var lastReceived: UInt64 = 0
    private var draining = false
    private let maxFrameLength: Int

    init(server: WireServer, wire: WireConnection, maxFrameLength: Int) {
        self.server = server
        self.wire = wire
        self.maxFrameLength = maxFrameLength
        wire.delegate = self
    }

    func wireConnectionDidOpen(_ connection: WireConnection, peer: Hello) {}

    func wireConnection(_ connection: WireConnection, didReceive message: Message) {
        switch message {
        case .request(let request):
            // After a drain, requests are not processed: the peer resends them elsewhere.
            guard !draining else { return }
            lastReceived = max(lastReceived, request.id)
            inFlight += 1
            server?.handle(request, on: self)
        case .ping(let id):
            wire.send(.pong(id: id))
        default:
            break
        }
    }

    func finish(_ response: WireResponse) {
        inFlight -= 1
        if !wire.isClosed {
            for piece in ServerConnection.framePieces(for: response, maxFrameLength: maxFrameLength) { wire.sendFrames(piece) }
        }
        if draining && inFlight == 0 { wire.stream.closeAfterFlush() }
    }

    /// The response's frame, as `WireResponse.framePieces` (a large body is written from its own
    /// buffer); an answer too large for a frame becomes an error answer for that one request (the
    /// peer's decoder would otherwise fail the whole connection).
    static func framePieces(for response: WireResponse, maxFrameLength: Int) -> [[UInt8]] {
        let pieces = response.framePieces()
        let payload = pieces.reduce(0) { $0 + $1.count } - FrameEncoder.headerLength
        guard payload > maxFrameLength else { return pieces }
        let message = "the answer is \(payload) bytes, more than one frame carries (\(maxFrameLength)); ask for fewer rows"
        let error = WireResponse(id: response.id, status: 500,
                                 body: .object(JSONObject([("status", .int(1)), ("msg", .string(message))])))
        return [Message.response(error).frame()]
    }

    func beginDrain() {
        guard !draining else { return }
        draining = true
        wire.send(.drain(lastID: lastReceived))
        if inFlight == 0 { wire.stream.closeAfterFlush() }
    }

    func wireConnectionDidClose(_ connection: WireConnection, reason: String?) {
        server?.removed(self)
    }
}

/// One request's way back to the connection it came on. The request's responder and the loop
/// task that writes the answer each capture only this object, which is then their closure's
/// context: a request allocates one object for its answer's way, not three.
final class AnswerRoute: @unchecked Sendable {
    private let loop: EventLoop
    private let id: UInt64
    /// Dereferenced only on the loop (checked): the connection may be gone by the answer.
    private weak var connection: ServerConnection?
    /// The answer, from `deliver` (any thread) to the loop task it queues.
    private let reply = Mutex<WireResponse?>(nil)

    init(loop: EventLoop, id: UInt64, connection: ServerConnection) {
        self.loop = loop
        self.id = id
        self.connection = connection
    }

    func deliver(_ response: WireResponse) {
        var answer = response
        answer.id = id
        reply.withLock { $0 = answer }
        loop.execute { self.finish() }
    }

    private func finish() {
        loop.assertInEventLoop()
        guard let answer = reply.withLock({ slot in slot.take() }) else { return }
        connection?.finish(answer)
    }
}

/// Which file a path names: its inode and when that inode changed. The inode alone can name
/// another file: a socket file unlinked (a replacement bound the path anew) frees its inode
/// number, and the next file made may get it.
struct SocketFile: Equatable {
    let inode: ino_t
    let changedSeconds: Int
    let changedNanoseconds: Int

    init(inode: ino_t, changedSeconds: Int, changedNanoseconds: Int) {
        self.inode = inode
        self.changedSeconds = changedSeconds
        self.changedNanoseconds = changedNanoseconds
    }

    /// The file at `path` now; nil when there is none.
    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = info.st_ino
        changedSeconds = info.st_ctim.tv_sec
        changedNanoseconds = info.st_ctim.tv_nsec
    }
}
