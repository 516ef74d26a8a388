import WireProtocol

/// One-line logs to standard error: `<time> <service> <level> <message>`.
public enum Log {
    nonisolated(unsafe) public static var name = "crm"

    public static func info(_ message: String) { write("info", message) }
    public static func warning(_ message: String) { write("warn", message) }
    public static func error(_ message: String) { write("error", message) }

    private static func write(_ level: String, _ message: String) {
        let line = "\(Timestamp.now()) \(name) \(level) \(message)"
        StdIO.error(line)
    }
}
