#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The gateway's access lines (one JSON object per request, at level info), gathered during one
/// loop iteration and written to standard error with one `write` at its end rather than one per
/// request; a full buffer (64 KiB) is written at once. Each line is written straight into the
/// buffer (no object built per request); the time text is made once per second, the common
/// methods' and every documented route's text once. Loop-thread confined.
final class AccessLog {
    private let loop: EventLoop
    @exclusivity(unchecked) private var text = JSONText(capacity: AccessLog.flushBytes + 4096)
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var stampSecond: time_t = -1
    /// The current second's time text as a JSON string.
    @exclusivity(unchecked) private var stampJSON: [UInt8] = []
    private static let getJSON = JSON.string("GET").serialized()
    private static let postJSON = JSON.string("POST").serialized()
    /// Written out at the end of the loop iteration that logged (made once: no closure per line).
    private lazy var flushTask: () -> Void = { [unowned self] in self.flush() }

    /// A route as logged: a documented path (its JSON text made once), or the path itself.
    enum Route {
        case documented([UInt8])
        case other(String)
    }
    static let flushBytes = 64 * 1024

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// `Timestamp.now()` as a JSON string in `stampJSON`, formatted once per second.
    private func refreshStamp() {
        let t = time(nil)
        guard t != stampSecond else { return }
        stampSecond = t
        var copy = t
        stampJSON = JSON.string(Timestamp.format(&copy)).serialized()
    }

    /// Appends `{"time","request_id","caller","method","route","status","ms","service","in","out"}`.
    func append(requestID: String, caller: Int64?, method: String, route: Route, status: Int, millis: Int64,
                service: String?, inBytes: Int, outBytes: Int) {
        refreshStamp()
        text.raw("{\"time\":")
        text.raw(stampJSON)
        text.raw(",\"request_id\":")
        text.string(requestID)
        text.raw(",\"caller\":")
        if let caller { text.int(caller) } else { text.null() }
        text.raw(",\"method\":")
        switch method {
        case "GET": text.raw(AccessLog.getJSON)
        case "POST": text.raw(AccessLog.postJSON)
        default: text.string(method)
        }
        text.raw(",\"route\":")
        switch route {
        case .documented(let json): text.raw(json)
        case .other(let path): text.string(path)
        }
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
            loop.atEndOfIteration(flushTask)
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
