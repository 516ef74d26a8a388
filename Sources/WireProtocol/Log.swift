/// How much is logged (`CRM_LOG_LEVEL`): each level includes the ones after it.
public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warn, error

    var rank: Int {
        switch self {
        case .debug: return 0
        case .info: return 1
        case .warn: return 2
        case .error: return 3
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// One JSON line per event on standard error: `{"time","process","level","msg"}`, plus
/// `request_id` when it concerns a request. Lines never carry passwords, tokens, cookies or
/// `Idempotency-Key` values: callers log routes, ids and statuses, not parameters.
public enum Log {
    nonisolated(unsafe) public static var name = "crm"
    nonisolated(unsafe) public static var level: LogLevel = .info

    public static func enabled(_ wanted: LogLevel) -> Bool { wanted >= level }

    public static func debug(_ message: String, request: String? = nil) { write(.debug, message, request) }
    public static func info(_ message: String, request: String? = nil) { write(.info, message, request) }
    public static func warning(_ message: String, request: String? = nil) { write(.warn, message, request) }
    public static func error(_ message: String, request: String? = nil) { write(.error, message, request) }

    /// The gateway's access line (already a JSON object), at level info.
    public static func access(_ fields: JSONObject) {
        guard enabled(.info) else { return }
        StdIO.error(JSON.object(fields).jsonString)
    }

    /// Reads `CRM_LOG_LEVEL`; nil when it is set to something else than a level (the caller
    /// refuses to start).
    public static func configureFromEnvironment(_ value: String?) -> Bool {
        guard let value, !value.isEmpty else { return true }
        guard let parsed = LogLevel(rawValue: value.lowercased()) else { return false }
        level = parsed
        return true
    }

    private static func write(_ wanted: LogLevel, _ message: String, _ request: String?) {
        guard enabled(wanted) else { return }
        var o = JSONObject([("time", .string(Timestamp.now())), ("process", .string(name)), ("level", .string(wanted.rawValue)), ("msg", .string(message))])
        if let request { o.append("request_id", .string(request)) }
        StdIO.error(JSON.object(o).jsonString)
    }
}
