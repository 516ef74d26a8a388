#if canImport(Glibc)
import Glibc
#endif

/// A setting a process cannot run with (a flag or variable out of range, malformed, missing).
/// Such a process exits with `exitStatus`, EX_CONFIG of sysexits.h, and `crm up` does not
/// restart it — the same settings would fail the same way — but stops the whole system and
/// says why. Any other failure at start (a socket in use, a database that cannot be opened)
/// exits 1 and is restarted with backoff, since it may pass.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// EX_CONFIG.
    public static let exitStatus: Int32 = 78

    public var description: String
    public init(_ description: String) { self.description = description }

    /// The exit status of a process that failed to start with `error`.
    public static func exitStatus(for error: Error) -> Int32 {
        error is ConfigurationError ? exitStatus : 1
    }

    /// Exits after a failed start (the caller has logged it): with `exitStatus` for a
    /// configuration error, sending its text to the launcher first (`Lifeline.report`), else 1.
    public static func exit(startFailure error: Error) -> Never {
        let status = exitStatus(for: error)
        if status == exitStatus { Lifeline.report("\(error)") }
        Glibc.exit(status)
    }
}
