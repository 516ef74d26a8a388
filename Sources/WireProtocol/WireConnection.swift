/// Receives messages from a `WireConnection`. Called on the loop's thread.
public protocol WireConnectionDelegate: AnyObject {
    /// The peer's hello arrived and its version matches.
    func wireConnectionDidOpen(_ connection: WireConnection, peer: Hello)
    /// A message after the hello.
    func wireConnection(_ connection: WireConnection, didReceive message: Message)
    /// The connection is gone; `reason` says why when it was not an orderly close.
    func wireConnectionDidClose(_ connection: WireConnection, reason: String?)
}

/// Length-prefixed JSON messages over a stream connection, with the hello handshake.
/// Loop-thread confined.
public final class WireConnection: StreamConnectionDelegate, @unchecked Sendable {
    public let stream: StreamConnection
    public weak var delegate: WireConnectionDelegate?
    public private(set) var peer: Hello?
    private let localHello: Hello
    @exclusivity(unchecked) private var decoder: FrameDecoder
    private var closeReason: String?
    /// Set when the connection ended on a protocol error (ours or one the peer reported): the
    /// requests in flight on it must not be resent, since their frames may be what failed.
    public private(set) var protocolFailure: String?

    public init(stream: StreamConnection, localHello: Hello, maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength) {
        self.stream = stream
        self.localHello = localHello
        self.decoder = FrameDecoder(maxFrameLength: maxFrameLength)
        stream.delegate = self
    }

    public var loop: EventLoop { stream.loop }
    public var isClosed: Bool { stream.isClosed }

    /// Sends the hello. Call once, after `stream.start()` (or once a connect completed).
    public func sendHello() {
        stream.write(Message.hello(localHello).frame())
    }

    public func send(_ message: Message) {
        stream.write(message.frame())
    }

    /// Sends pre-encoded frame bytes (several messages may be concatenated).
    public func sendFrames(_ bytes: [UInt8]) {
        stream.write(bytes)
    }

    public func close() {
        stream.close()
    }

    /// Answers a protocol error with an error frame, then closes.
    private func protocolError(_ reason: String) {
        closeReason = reason
        protocolFailure = reason
        stream.write(Message.error(reason: reason).frame())
        stream.closeAfterFlush()
    }

    public func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        decoder.feed(bytes)
        while !stream.isClosed {
            let payload: [UInt8]
            do {
                guard let next = try decoder.nextFrame() else { return }
                payload = next
            } catch {
                protocolError(error.reason)
                return
            }
            let message: Message
            do {
                message = try Message.decode(payload)
            } catch {
                if peer != nil, let answer = Message.answerInstead(ofUndecodable: payload, reason: error.reason) {
                    delegate?.wireConnection(self, didReceive: .response(answer))
                    continue
                }
                protocolError(error.reason)
                return
            }
            guard let _ = peer else {
                guard case .hello(let hello) = message else {
                    protocolError("the first frame must be a hello")
                    return
                }
                guard hello.version == localHello.version else {
                    protocolError("protocol version \(hello.version) is not supported (this peer speaks \(localHello.version))")
                    return
                }
                peer = hello
                delegate?.wireConnectionDidOpen(self, peer: hello)
                continue
            }
            if case .error(let reason) = message {
                closeReason = "peer reported: \(reason)"
                protocolFailure = closeReason
                stream.close()
                return
            }
            delegate?.wireConnection(self, didReceive: message)
        }
    }

    public func connectionDidClose(_ connection: StreamConnection, error: SyscallError?) {
        let reason = closeReason ?? error.map { "\($0)" }
        delegate?.wireConnectionDidClose(self, reason: reason)
        delegate = nil
    }
}
