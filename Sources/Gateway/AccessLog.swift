#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The gateway's access lines (one JSON object per request, at level info), gathered during one
/// loop iteration and written to standard error with one `write` at its end rather than one per
/// request; a full buffer (64 KiB) is written at once. Each line is written straight into the
/// buffer (no object built per request); the time text is made once per second.
/// Loop-thread confined.
final class AccessLog {
    private let loop: EventLoop
    @exclusivity(unchecked) private var text = JSONText(capacity: AccessLog.flushBytes + 4096)
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var stampSecond: time_t = -1
    @exclusivity(unchecked) private var stamp = ""
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

    /// Appends `{"time","request_id","caller","method","route","status","ms","service","in","out"}`.
    func append(requestID: String, caller: Int64?, method: String, route: String, status: Int, millis: Int64,
                service: String?, inBytes: Int, outBytes: Int) {
        text.raw("{\"time\":")
        text.string(now)
        text.raw(",\"request_id\":")
        text.string(requestID)
        text.raw(",\"caller\":")
        if let caller { text.int(caller) } else { text.null() }
        text.raw(",\"method\":")
        text.string(method)
        text.raw(",\"route\":")
        text.string(route)
        text.raw(",\"status\":")
        text.int(Int64(status))
        text.raw(",\"ms\":")
        text.int(millis)
        text.raw(",\"service\":")
        if let service { text.string(service) } else { text.null() }
        text.raw(",\"in\":")
        text.int(Int64(inBytes))
        text.raw(",\"out\":")
        text.int(Int64(outBytes))
        text.raw("}\n")
        if text.count >= AccessLog.flushBytes {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            // Timers due now run at the end of this iteration, after the events and tasks.
            loop.schedule(afterMillis: 0) { [weak self] in self?.flush() }
        }
    }

    func flush() {
        flushScheduled = false
        text.withBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(2, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
        text.removeAll()
    }
}
