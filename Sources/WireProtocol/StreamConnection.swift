#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Receives what happens on a `StreamConnection`. Called on the loop's thread.
public protocol StreamConnectionDelegate: AnyObject {
    /// `bytes` lie in the loop's shared read buffer: valid only during this call.
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer)
    /// The connection is closed (by either side); `error` is nil for an orderly close.
    func connectionDidClose(_ connection: StreamConnection, error: SyscallError?)
    /// Everything queued has been written (used for back-pressure).
    func connectionDidDrainOutput(_ connection: StreamConnection)
}

extension StreamConnectionDelegate {
    public func connectionDidDrainOutput(_ connection: StreamConnection) {}
}

/// A non-blocking stream socket registered with one event loop: reads are handed to the
/// delegate, writes are queued and flushed as the socket allows. Loop-thread confined
/// (checked in debug builds: `EventLoop.assertInEventLoop`).
///
/// Writes are batched: what is queued during one loop iteration (every answer a service
/// finished, every request the gateway forwarded) leaves in one `sendmsg` with a gather list
/// at the end of that iteration, not one syscall per frame.
public final class StreamConnection: EventHandler, @unchecked Sendable {
    public let fd: Int32
    public let loop: EventLoop
    public weak var delegate: StreamConnectionDelegate?
    @exclusivity(unchecked) public private(set) var isClosed = false
    /// Queued output: whole buffers as they were written (no copying into one), the first
    /// `outboundHead` already sent, and `outboundStart` bytes of the next one.
    @exclusivity(unchecked) private var outbound: [[UInt8]] = []
    @exclusivity(unchecked) private var outboundHead = 0
    @exclusivity(unchecked) private var outboundStart = 0
    @exclusivity(unchecked) public private(set) var pendingOutputBytes = 0
    /// The last queued buffer came from the loop's spares (`write(reserving:_:)`): later small
    /// writes append to it, and it goes back to the loop once sent.
    @exclusivity(unchecked) private var tailIsLoopBuffer = false
    /// Queued output waits for the end of the loop iteration (`EventLoop.flushAtEndOfIteration`).
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var readingPaused = false
    /// The events last given to epoll, so unchanged interest costs no syscall.
    @exclusivity(unchecked) private var registeredEvents: UInt32 = 0
    @exclusivity(unchecked) private var closeWhenFlushed = false
    /// After the last byte is written: half-close and discard input for this long (ms) before
    /// closing, so a client still sending gets our answer instead of a reset (RFC 9112 §9.6).
    private var lingerMillis: Int64 = 0
    @exclusivity(unchecked) private var discardingInput = false
    private var closeDeadlineSet = false
    /// When bytes last left through the socket (or the output queue was last empty): a peer
    /// that stops reading is noticed by how long ago this was.
    @exclusivity(unchecked) public private(set) var lastWriteProgress: Int64 = monotonicMillis()
    @exclusivity(unchecked) private var connecting = false
    private var onConnect: ((SyscallError?) -> Void)?
    /// Queued output of at least this many bytes is written at once, not at the iteration's end.
    static let eagerFlushBytes = 64 * 1024

    public init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    deinit {
        if !isClosed { Glibc.close(fd) }
    }

    /// Registers with the loop and starts reading.
    public func start() throws(SyscallError) {
        registeredEvents = currentEvents()
        try loop.register(fd: fd, events: registeredEvents, handler: self)
    }

    /// Registers a socket whose connect is still in progress; `completion` runs once it resolves.
    public func startConnecting(completion: @escaping (SyscallError?) -> Void) throws(SyscallError) {
        connecting = true
        onConnect = completion
        registeredEvents = EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
        try loop.register(fd: fd, events: registeredEvents, handler: self)
    }

    /// Output from this size on is queued as a buffer of its own (one more `iovec` in the
    /// vectored write) rather than copied behind what comes before it: a list page's body, as
    /// the service wrote it, crosses both hops without a copy (`WireResponse.framePieces`,
    /// the gateway's `HTTPResponse.pieces`).
    public static let ownBufferBytes = 2048

    /// Queues bytes; they are written at the end of the loop iteration, together with
    /// whatever else this connection queued in it.
    public func write(_ bytes: [UInt8]) {
        loop.assertInEventLoop()
        guard !isClosed, !bytes.isEmpty else { return }
        // The write-progress clock counts from when the queue stopped being empty.
        if pendingOutputBytes == 0 { lastWriteProgress = loop.now }
        outbound.append(bytes)
        tailIsLoopBuffer = false
        pendingOutputBytes += bytes.count
        queued()
    }

    /// Queues what `fill` appends, written straight into the output: the small writes of one
    /// iteration (an answer's head, pipelined answers) share one buffer, taken from the loop's
    /// spares and handed back once sent (`EventLoop.takeOutputBuffer`), so they cost no
    /// allocation of their own. `capacity` is about what `fill` appends.
    public func write(reserving capacity: Int, _ fill: (inout [UInt8]) -> Void) {
        loop.assertInEventLoop()
        guard !isClosed else { return }
        if pendingOutputBytes == 0 { lastWriteProgress = loop.now }
        let last = outbound.count - 1
        if tailIsLoopBuffer && last >= outboundHead && outbound[last].count + capacity <= StreamConnection.sharedBufferBytes {
            let before = outbound[last].count
            fill(&outbound[last])
            pendingOutputBytes += outbound[last].count - before
        } else {
            var buffer = loop.takeOutputBuffer(minimumCapacity: capacity)
            fill(&buffer)
            guard !buffer.isEmpty else { loop.recycleOutputBuffer(&buffer); return }
            pendingOutputBytes += buffer.count
            outbound.append(buffer)
            tailIsLoopBuffer = true
        }
        queued()
    }

    /// Small writes share a buffer up to this size (`write(reserving:_:)`).
    static let sharedBufferBytes = 16 * 1024

    /// Output was queued: written now when large, else at the end of the iteration.
    private func queued() {
        // Large output gains nothing from waiting: write now, so the socket's buffer fills
        // first and `pendingOutputBytes` (what callers bound) counts only what it did not take.
        if pendingOutputBytes >= StreamConnection.eagerFlushBytes && !connecting && registeredEvents & EPOLLOUT.rawValue == 0 {
            flush()
            return
        }
        if !flushScheduled && !connecting {
            flushScheduled = true
            loop.flushAtEndOfIteration(self)
        }
    }

    /// The end-of-iteration flush (`EventLoop`).
    func flushDeferred() {
        loop.assertInEventLoop()
        flushScheduled = false
        guard !isClosed, !connecting else { return }
        // Waiting for EPOLLOUT already: the socket is full, writing now would only fail.
        if registeredEvents & EPOLLOUT.rawValue != 0 { return }
        flush()
    }

    /// Closes once the queued output has been written. With `lingerMillis` > 0 the socket is
    /// half-closed first and unread input is discarded for up to that long.
    /// `deadlineMillis` bounds the whole wait: a peer that never reads is closed then anyway.
    public func closeAfterFlush(lingerMillis: Int64 = 0, deadlineMillis: Int64 = 10_000) {
        loop.assertInEventLoop()
        guard !isClosed else { return }
        self.lingerMillis = lingerMillis
        if !closeDeadlineSet {
            closeDeadlineSet = true
            loop.schedule(afterMillis: max(deadlineMillis, lingerMillis)) { [weak self] in self?.close() }
        }
        if pendingOutputBytes == 0 { closeOrLinger() } else { closeWhenFlushed = true; pauseReading() }
    }

    private func closeOrLinger() {
        guard lingerMillis > 0 else { close(); return }
        shutdown(fd, Int32(SHUT_WR))
        discardingInput = true
        readingPaused = false
        updateInterest()
        loop.schedule(afterMillis: lingerMillis) { [weak self] in self?.close() }
    }

    public func pauseReading() {
        loop.assertInEventLoop()
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        loop.assertInEventLoop()
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    /// Closes now, dropping unsent output.
    public func close() {
        loop.assertInEventLoop()
        finish(error: nil)
    }

    private func fail(_ error: SyscallError) {
        finish(error: error)
    }

    private func finish(error: SyscallError?) {
        guard !isClosed else { return }
        // Output queued in this iteration (e.g. a refusal written just before `close()`) gets
        // the one non-blocking attempt it would have had before writes were batched.
        if error == nil && flushScheduled && !connecting && registeredEvents & EPOLLOUT.rawValue == 0 { _ = send(batchLimit: 64) }
        isClosed = true
        loop.unregister(fd: fd)
        Glibc.close(fd)
        outbound = []
        tailIsLoopBuffer = false
        outboundHead = 0
        outboundStart = 0
        pendingOutputBytes = 0
        if connecting, let onConnect {
            connecting = false
            self.onConnect = nil
            onConnect(error ?? SyscallError(call: "connect", errno: ECONNRESET))
        }
        delegate?.connectionDidClose(self, error: error)
        delegate = nil
    }

    private func currentEvents() -> UInt32 {
        // EPOLLRDHUP only while reading: it is level-triggered, and a half-closed peer would
        // otherwise wake a paused connection on every epoll_wait (a busy loop).
        var events: UInt32 = 0
        if !readingPaused { events |= EPOLLIN.rawValue | EPOLLRDHUP.rawValue }
        if pendingOutputBytes > 0 || connecting { events |= EPOLLOUT.rawValue }
        return events
    }

    private func updateInterest() {
        guard !isClosed else { return }
        let events = currentEvents()
        guard events != registeredEvents else { return }
        registeredEvents = events
        loop.modify(fd: fd, events: events)
    }

    public func handleEvents(_ events: UInt32) {
        loop.assertInEventLoop()
        if connecting {
            let error = Socket.pendingError(fd)
            connecting = false
            let completion = onConnect
            onConnect = nil
            if error != 0 {
                isClosed = true
                loop.unregister(fd: fd)
                Glibc.close(fd)
                completion?(SyscallError(call: "connect", errno: error))
                return
            }
            updateInterest()
            completion?(nil)
            if pendingOutputBytes > 0 && !flushScheduled && !isClosed {
                flushScheduled = true
                loop.flushAtEndOfIteration(self)
            }
            return
        }
        if events & EPOLLOUT.rawValue != 0 { flush() }
        if isClosed { return }
        if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 && !readingPaused {
            readOnce()
        } else if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            finish(error: nil)
        }
    }

    /// Receives into the loop's shared buffer (`EventLoop.readBuffer`): a connection holds no
    /// read buffer while idle, and what the delegate keeps it copies.
    private func readOnce() {
        let readBuffer = loop.readBuffer
        while true {
            let n = Glibc.recv(fd, readBuffer.baseAddress, readBuffer.count, 0)
            if n > 0 {
                if discardingInput { return }
                delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
                return
            }
            if n == 0 { finish(error: nil); return }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return }
            finish(error: SyscallError(call: "recv", errno: e))
            return
        }
    }

    /// Sends queued buffers with one `sendmsg` per up to `batchLimit` of them until the socket
    /// is full or the queue empty. Returns the errno that stopped it (0: done or would block).
    private func send(batchLimit: Int) -> Int32 {
        while pendingOutputBytes > 0 {
            let count = min(batchLimit, outbound.count - outboundHead)
            let n = withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors -> Int in
                for i in 0..<count {
                    let skip = i == 0 ? outboundStart : 0
                    // The buffers stay alive and unmodified until sendmsg returns.
                    outbound[outboundHead + i].withUnsafeBytes { raw in
                        vectors[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress.map { $0 + skip }), iov_len: raw.count - skip)
                    }
                }
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = count
                return Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                consume(n)
                lastWriteProgress = loop.now
                continue
            }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { return 0 }
            return n < 0 ? e : EIO
        }
        return 0
    }

    /// Drops `sent` bytes from the front of the queue.
    private func consume(_ sent: Int) {
        var left = sent
        pendingOutputBytes -= sent
        while left > 0 {
            let remaining = outbound[outboundHead].count - outboundStart
            if left < remaining {
                outboundStart += left
                return
            }
            left -= remaining
            outboundHead += 1
            outboundStart = 0
        }
        if outboundHead == outbound.count {
            if tailIsLoopBuffer, var buffer = outbound.popLast() {
                loop.recycleOutputBuffer(&buffer)
                tailIsLoopBuffer = false
            }
            outbound.removeAll(keepingCapacity: outbound.capacity <= 256)
            outboundHead = 0
        } else if outboundHead >= 64 && outboundHead * 2 >= outbound.count {
            outbound.removeFirst(outboundHead)
            outboundHead = 0
        }
    }

    private func flush() {
        let error = send(batchLimit: 64)
        if error != 0 {
            fail(SyscallError(call: "sendmsg", errno: error))
            return
        }
        if pendingOutputBytes == 0 {
            if closeWhenFlushed { closeOrLinger(); return }
            updateInterest()
            delegate?.connectionDidDrainOutput(self)
        } else {
            updateInterest()  // wait for EPOLLOUT
        }
    }
}

/// A listening socket on a loop: accepts every queued connection when readable.
public final class Listener: EventHandler, @unchecked Sendable {
    public let fd: Int32
    public let loop: EventLoop
    private let onAccept: (Int32) -> Void
    public private(set) var isClosed = false

    public init(fd: Int32, loop: EventLoop, onAccept: @escaping (Int32) -> Void) {
        self.fd = fd
        self.loop = loop
        self.onAccept = onAccept
    }

    public func start() throws(SyscallError) {
        try loop.register(fd: fd, events: EPOLLIN.rawValue, handler: self)
    }

    public func handleEvents(_ events: UInt32) {
        acceptQueued()
    }

    /// Accepts everything already queued (also used before closing, so queued clients are served).
    public func acceptQueued() {
        while !isClosed {
            do {
                guard let client = try Socket.accept(fd) else { return }
                onAccept(client)
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO, EPERM:
                    continue  // that one client is gone; the next may be fine
                default:
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the listener stays readable, so keep it
                    // out of epoll for a moment instead of spinning on it.
                    pauseAccepting()
                    return
                }
            }
        }
    }

    /// How long accepting pauses after running out of descriptors or memory (ms).
    public static let acceptPauseMillis: Int64 = 100
    private var acceptPaused = false

    private func pauseAccepting() {
        guard !acceptPaused, !isClosed else { return }
        acceptPaused = true
        loop.modify(fd: fd, events: 0)
        loop.schedule(afterMillis: Listener.acceptPauseMillis) { [weak self] in
            guard let self, !self.isClosed else { return }
            self.acceptPaused = false
            self.loop.modify(fd: self.fd, events: EPOLLIN.rawValue)
        }
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        loop.unregister(fd: fd)
        Glibc.close(fd)
    }
}

extension WireResponse {
    /// The frame as three buffers for a vectored write — its head (length prefix and envelope up
    /// to `"body":`), `bodyBytes` itself (not copied) and the closing brace — when the body is
    /// large enough for the copy to cost more than another buffer (`StreamConnection.ownBufferBytes`);
    /// else one buffer. (Here, beside that size, so `Message.swift` builds without the streams:
    /// the fuzz targets compile it alone.)
    func framePieces() -> [[UInt8]] {
        guard bodyBytes.count >= StreamConnection.ownBufferBytes else { return [frame()] }
        return [frameHead(reserving: 0), bodyBytes, WireResponse.frameTail]
    }

    private static let frameTail: [UInt8] = [UInt8(ascii: "}")]
}
