#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The gateway's access lines (one JSON object per request, at level info), gathered during one
/// loop iteration and written to standard error with one `write` at its end rather than one per
/// request; a full buffer (64 KiB) is written at once. The time text is made once per second.
/// Loop-thread confined.
final class AccessLog {
    private let loop: EventLoop
    private var buffer: [UInt8] = []
    private var flushScheduled = false
    private var stampSecond: time_t = -1
    private var stamp = ""
    static let flushBytes = 64 * 1024

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// `Timestamp.now()`, formatted once per second.
    var now: String {
        let t = time(nil)
        if t != stampSecond {
            stampSecond = t
            var copy = t
            stamp = Timestamp.format(&copy)
        }
        return stamp
    }

    func append(_ fields: JSONObject) {
        fields.serialize(into: &buffer)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= AccessLog.flushBytes {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            // Timers due now run at the end of this iteration, after the events and tasks.
            loop.schedule(afterMillis: 0) { [weak self] in self?.flush() }
        }
    }

    func flush() {
        flushScheduled = false
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(2, $0.baseAddress.map { $0 + offset }, buffer.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
        buffer.removeAll(keepingCapacity: buffer.capacity <= 4 * AccessLog.flushBytes)
    }
}
