import WireProtocol

/// One client's HTTP/1.1 connection: parses requests as bytes arrive, hands them to the gateway,
/// and writes the answers strictly in request order (pipelining). Loop-thread confined.
final class HTTPConnection: StreamConnectionDelegate, @unchecked Sendable {
    /// One request's place in the answer order. It keeps its connection alive until its answer
    /// is in (at most the request timeout); the connection's `slots` refer back to it only until
    /// it is written or the connection closes.
    final class Slot {
        var response: HTTPResponse?
        let keepAlive: Bool
        let headOnly: Bool
        let connection: HTTPConnection
        init(keepAlive: Bool, headOnly: Bool, connection: HTTPConnection) {
            self.keepAlive = keepAlive
            self.headOnly = headOnly
            self.connection = connection
        }

        /// The request's answer: written now if every earlier one is (`flush` writes nothing
        /// once the socket is closed).
        func answer(_ response: HTTPResponse) {
            self.response = response
            connection.flush()
        }
    }

    let stream: StreamConnection
    /// The process's one gateway, which outlives every connection (no reference counting).
    unowned(unsafe) let gateway: Gateway
    /// `maxPipelinedRequests` and `maxBufferedOutputBytes`, read once.
    private let pipelineLimit: Int
    private let outputLimit: Int
    @exclusivity(unchecked) private var parser: HTTPRequestParser
    @exclusivity(unchecked) private var slots: [Slot] = []
    @exclusivity(unchecked) private var failed = false
    @exclusivity(unchecked) private var closing = false
    @exclusivity(unchecked) private var requestStartedAt: Int64?
    @exclusivity(unchecked) private var lastActivity: Int64

    init(stream: StreamConnection, gateway: Gateway) {
        self.stream = stream
        self.gateway = gateway
        parser = HTTPRequestParser(limits: gateway.configuration.parserLimits)
        pipelineLimit = gateway.configuration.maxPipelinedRequests
        outputLimit = gateway.configuration.maxBufferedOutputBytes
        lastActivity = monotonicMillis()
        stream.delegate = self
    }

    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        lastActivity = stream.loop.now
        if requestStartedAt == nil { requestStartedAt = lastActivity }
        parser.feed(bytes)
        process()
    }

    /// True while `process` runs: an answer given at once (e.g. `/livez`) flushes from inside
    /// `gateway.handle`, and its `process` call must not recurse — thousands of pipelined
    /// requests would otherwise nest thousands of frames deep.
    @exclusivity(unchecked) private var processing = false

    /// Takes complete requests from the parser while the pipelining depth allows.
    private func process() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        let limit = pipelineLimit
        // No new request is taken while the client leaves more than `outputLimit` of answers
        // unread: memory per connection stays bounded by that plus the answers in flight.
        while !failed && !closing && slots.count < limit && stream.pendingOutputBytes < outputLimit {
            let request: HTTPRequest
            do {
                guard let next = try parser.next() else { break }
                request = next
            } catch {
                fail(HTTPResponse.error(error.status, error.reason, close: true))
                return
            }
            requestStartedAt = parser.hasStartedRequest ? stream.loop.now : nil
            continueSent = false
            let slot = Slot(keepAlive: request.head.keepAlive, headOnly: request.head.method == "HEAD", connection: self)
            slots.append(slot)
            // Captures the slot alone (no context allocated per request).
            gateway.handle(request) { [slot] response in slot.answer(response) }
        }
        if failed || closing { return }
        answerExpectContinue()
        if slots.count >= limit || stream.pendingOutputBytes >= outputLimit { stream.pauseReading() } else { stream.resumeReading() }
    }

    func connectionDidDrainOutput(_ connection: StreamConnection) {
        if !failed && !closing { process() }
    }

    /// Whether `100 Continue` went out for the request whose body is arriving.
    @exclusivity(unchecked) private var continueSent = false

    /// A client that sent `Expect: 100-continue` waits for this before its body (curl does for
    /// bodies over 1 KiB); sent only when no earlier answer is pending, to keep answers in order.
    private func answerExpectContinue() {
        guard let head = parser.headAwaitingBody else { continueSent = false; return }
        guard !continueSent, slots.isEmpty, head.versionMinor >= 1,
              head.header("expect")?.lowercased() == "100-continue" else { return }
        continueSent = true
        stream.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
    }

    /// Answers a framing error after what is already in flight, then closes.
    private func fail(_ answer: HTTPResponse) {
        var response = answer
        // A request that could not be read still gets an id, like every answer.
        response.requestID = gateway.newRequestID()
        failed = true
        stream.pauseReading()
        let slot = Slot(keepAlive: false, headOnly: false, connection: self)
        slot.response = response
        slots.append(slot)
        flush()
    }

    fileprivate func flush() {
        guard !stream.isClosed else { return }
        while let first = slots.first, let response = first.response {
            slots.removeFirst()
            let keepAlive = first.keepAlive && !response.close && !gateway.draining
            response.write(to: stream, keepAlive: keepAlive, headOnly: first.headOnly)
            if !keepAlive {
                closing = true
                slots.removeAll()
                // Linger so a client still sending (e.g. an oversized header) reads the answer.
                stream.closeAfterFlush(lingerMillis: 2000, deadlineMillis: gateway.configuration.writeTimeoutMillis)
                return
            }
        }
        lastActivity = stream.loop.now
        // The client's clock for a partly received request starts once we owe it nothing.
        if slots.isEmpty { requestStartedAt = parser.hasStartedRequest ? lastActivity : nil }
        if !failed && !closing { process() }
    }

    /// Header/body read deadlines and the idle keep-alive timeout (called periodically).
    func checkTimers(now: Int64) {
        guard !stream.isClosed else { return }
        let config = gateway.configuration
        // A client that stops reading its answers is closed (closing connections have their
        // own deadline in `closeAfterFlush`).
        if stream.pendingOutputBytes > 0 && now - stream.lastWriteProgress > config.writeTimeoutMillis {
            stream.close()
            return
        }
        guard !failed, !closing else { return }
        // Read deadlines apply only while the client is the one being waited for.
        if slots.isEmpty, let started = requestStartedAt, parser.hasStartedRequest {
            let limit = parser.isReadingHead ? config.headerReadTimeoutMillis : config.headerReadTimeoutMillis + config.bodyReadTimeoutMillis
            if now - started > limit {
                fail(HTTPResponse.error(408, parser.isReadingHead ? "request header not received in time" : "request body not received in time", close: true))
            }
            return
        }
        if parser.hasStartedRequest { return }
        let idleLimit = gateway.draining ? min(config.idleTimeoutMillis, Gateway.drainIdleMillis) : config.idleTimeoutMillis
        if slots.isEmpty && now - lastActivity > idleLimit {
            stream.close()
        }
    }

    func connectionDidClose(_ connection: StreamConnection, error: SyscallError?) {
        slots.removeAll()
        gateway.connectionClosed(self)
    }
}
