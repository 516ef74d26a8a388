/// A framing violation, e.g. "frame length 20000000 exceeds maximum 16777216".
public struct FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// Splits a byte stream into frames: a 4-byte big-endian unsigned length N, then N
/// payload bytes (a UTF-8 JSON object; a zero-length payload is returned as empty and
/// left for the envelope layer to reject).
///
/// Usage: `feed` whatever the socket delivered, then call `nextFrame()` until it
/// returns nil. Bytes are kept in one buffer with a read index that is compacted when
/// the consumed prefix grows large, so feeding one byte at a time stays linear.
public struct FrameDecoder: Sendable {
    public static let defaultMaxFrameLength = 16 * 1024 * 1024

    private enum State: Sendable {
        case waitingForLength
        case waitingForPayload(length: Int)
        case failed(FrameError)
    }

    /// Largest accepted payload length in bytes.
    public let maxFrameLength: Int

    private var state: State = .waitingForLength
    private var buffer: [UInt8] = []
    private var readIndex = 0

    /// Keep at most this much capacity around once the buffer drains.
    private static let retainedCapacity = 64 * 1024
    /// Compact only when at least this many consumed bytes sit at the front.
    private static let compactionThreshold = 4 * 1024

    public init(maxFrameLength: Int = FrameDecoder.defaultMaxFrameLength) {
        self.maxFrameLength = max(0, maxFrameLength)
    }

    /// Bytes received but not yet returned in a frame (including the length prefix of a
    /// frame still waiting for its payload).
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Appends received bytes. Ignored once the decoder has failed.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if case .failed = state { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Appends received bytes. Ignored once the decoder has failed.
    public mutating func feed(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if case .failed = state { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame payload (without the length prefix), or nil when more
    /// bytes are needed. Throws as soon as a length prefix above `maxFrameLength` is
    /// seen, before any of that payload is required; the error is sticky and every
    /// later call throws it again.
    public mutating func nextFrame() throws(FrameError) -> [UInt8]? {
        try withNextFrame { Array($0) }
    }

    /// `nextFrame()` without copying the payload: `body` reads it where it lies in the buffer
    /// (valid only during the call) and its result is returned.
    public mutating func withNextFrame<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) throws(FrameError) -> R? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .waitingForLength:
                guard bufferedByteCount >= 4 else { return nil }
                let length = FrameDecoder.lengthPrefix(buffer, at: readIndex)
                guard length <= maxFrameLength else {
                    let error = FrameError(reason: "frame length \(length) exceeds maximum \(maxFrameLength)")
                    state = .failed(error)
                    buffer = []
                    readIndex = 0
                    throw error
                }
                state = .waitingForPayload(length: length)
            case .waitingForPayload(let length):
                // The prefix stays buffered until its payload is complete.
                guard bufferedByteCount - 4 >= length else { return nil }
                let payloadStart = readIndex + 4
                let result = buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[payloadStart..<(payloadStart + length)])) }
                readIndex = payloadStart + length
                state = .waitingForLength
                if readIndex == buffer.count {
                    buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
                    readIndex = 0
                }
                return result
            }
        }
    }

    /// Nothing buffered and no error: the next bytes received start a frame.
    public var isAtFrameStart: Bool {
        guard case .waitingForLength = state else { return false }
        return readIndex == buffer.count
    }

    /// The first frame of `bytes` when it is complete there and of an accepted length: its
    /// payload, read where it lies, and where the frame ends. Nil when the frame is incomplete
    /// or too long: feed the bytes then (`nextFrame` decides). For bytes received when
    /// `isAtFrameStart`: a frame that arrives whole (the usual case) is not copied into the
    /// buffer and out again.
    public func completeFrame(in bytes: UnsafeRawBufferPointer) -> (payload: UnsafeBufferPointer<UInt8>, end: Int)? {
        guard bytes.count >= 4 else { return nil }
        let length = FrameDecoder.lengthPrefix(bytes, at: 0)
        guard length <= maxFrameLength, bytes.count - 4 >= length else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[4..<(4 + length)]).assumingMemoryBound(to: UInt8.self)
        return (payload, 4 + length)
    }

    /// The big-endian length prefix at `index` of `bytes` (four bytes there).
    @inline(__always)
    private static func lengthPrefix<Bytes: RandomAccessCollection>(_ bytes: Bytes, at index: Int) -> Int where Bytes.Element == UInt8, Bytes.Index == Int {
        Int(bytes[index]) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
    }

    /// Drops the consumed prefix when it is large and at least half the buffer, so the
    /// cost of moving the unread bytes is amortized over the bytes consumed.
    private mutating func compactIfWorthwhile() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
            readIndex = 0
        } else if readIndex >= Self.compactionThreshold && readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}

/// Builds frames: a 4-byte big-endian length followed by the payload.
public enum FrameEncoder {
    /// Bytes of the length prefix.
    public static let headerLength = 4

    /// The length prefix followed by `payload`. The payload must be shorter than 4 GiB.
    public static func encode(_ payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        frame.reserveCapacity(payload.count + 4)
        appendPrefix(payload.count, to: &frame)
        frame.append(contentsOf: payload)
        return frame
    }

    /// Serializes `json` straight after a reserved 4-byte prefix, then patches the length in.
    public static func encode(_ json: JSON) -> [UInt8] {
        var frame: [UInt8] = [0, 0, 0, 0]
        json.serialize(into: &frame)
        patchPrefix(&frame)
        return frame
    }

    /// Writes the payload length into the 4 bytes reserved at the start of `frame`.
    static func patchPrefix(_ frame: inout [UInt8]) {
        patchPrefix(&frame, payloadLength: frame.count - 4)
    }

    /// Writes `payloadLength` into the 4 bytes reserved at the start of `frame` (a frame whose
    /// payload is not all in `frame`).
    static func patchPrefix(_ frame: inout [UInt8], payloadLength: Int) {
        let length = lengthField(payloadLength)
        frame[0] = UInt8(truncatingIfNeeded: length >> 24)
        frame[1] = UInt8(truncatingIfNeeded: length >> 16)
        frame[2] = UInt8(truncatingIfNeeded: length >> 8)
        frame[3] = UInt8(truncatingIfNeeded: length)
    }

    private static func appendPrefix(_ count: Int, to frame: inout [UInt8]) {
        let length = lengthField(count)
        frame.append(UInt8(truncatingIfNeeded: length >> 24))
        frame.append(UInt8(truncatingIfNeeded: length >> 16))
        frame.append(UInt8(truncatingIfNeeded: length >> 8))
        frame.append(UInt8(truncatingIfNeeded: length))
    }

    private static func lengthField(_ count: Int) -> UInt32 {
        precondition(count <= Int(UInt32.max), "frame payload of \(count) bytes does not fit a 32-bit length")
        return UInt32(count)
    }
}
