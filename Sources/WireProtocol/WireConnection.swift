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
        // Frames that arrived whole are read where they lie; only what is left is buffered.
        var rest = bytes
        if decoder.isAtFrameStart {
            while !stream.isClosed, let frame = decoder.completeFrame(in: rest) {
                let received = decodeFrame(frame.payload)
                rest = UnsafeRawBufferPointer(rebasing: rest[frame.end...])
                guard handle(received) else { return }
            }
        }
        decoder.feed(rest)
        while !stream.isClosed {
            let received: Received
            do {
                guard let next = try decoder.withNextFrame({ decodeFrame($0) }) else { return }
                received = next
            } catch {
                protocolError(error.reason)
                return
            }
            guard handle(received) else { return }
        }
    }

    /// A frame's payload as read: a message, the answer a broken response frame gets instead,
    /// or the protocol error it is.
    private enum Received {
        case message(Message)
        case answer(WireResponse)
        case failed(String)
    }

    private func decodeFrame(_ payload: UnsafeBufferPointer<UInt8>) -> Received {
        switch Message.decode(inPlace: payload, checkingBody: Message.checksBodies) {
        case .success(let message):
            return .message(message)
        case .failure(let error):
            if peer != nil, let answer = Message.answerInstead(ofUndecodable: payload, reason: error.reason) { return .answer(answer) }
            return .failed(error.reason)
        }
    }

    /// Acts on one frame; false when the connection reads no further.
    private func handle(_ received: Received) -> Bool {
        let message: Message
        switch received {
        case .answer(let answer):
            delegate?.wireConnection(self, didReceive: .response(answer))
            return true
        case .failed(let reason):
            protocolError(reason)
            return false
        case .message(let decoded):
            message = decoded
        }
        guard let _ = peer else {
            guard case .hello(let hello) = message else {
                protocolError("the first frame must be a hello")
                return false
            }
            guard hello.version == localHello.version else {
                protocolError("protocol version \(hello.version) is not supported (this peer speaks \(localHello.version))")
                return false
            }
            peer = hello
            delegate?.wireConnectionDidOpen(self, peer: hello)
            return true
        }
        if case .error(let reason) = message {
            closeReason = "peer reported: \(reason)"
            protocolFailure = closeReason
            stream.close()
            return false
        }
        delegate?.wireConnection(self, didReceive: message)
        return true
    }

    public func connectionDidClose(_ connection: StreamConnection, error: SyscallError?) {
        let reason = closeReason ?? error.map { "\($0)" }
        delegate?.wireConnectionDidClose(self, reason: reason)
        delegate = nil
    }
}
