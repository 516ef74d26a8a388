#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit (RLIMIT_NOFILE). Many systems start processes with a soft limit
/// of 1,024 (systemd's default) under a much higher hard limit: left there, the gateway would
/// stop accepting a little under 1,000 clients (the listener pauses on EMFILE and clients wait in
/// the backlog) although `maxConnections` allows 4,096. The gateway raises its soft limit at
/// start, as far as the hard limit allows, so that `maxConnections` is the limit that applies.
enum DescriptorLimit {
    /// Descriptors the gateway uses besides its clients: standard streams, epoll, eventfd, the
    /// listener, the access log, and a few connections per service replica.
    static let reserve = 256

    /// RLIM_INFINITY (all bits set; Glibc's macro does not import as an unsigned value).
    static let unlimited = rlim_t.max

    /// Raises the soft limit to at least `needed` descriptors when the hard limit allows, else
    /// to the hard limit. Never lowers it. Answers the soft limit in force afterwards.
    @discardableResult
    static func raise(toAtLeast needed: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let wanted = rlim_t(max(needed, 0))
        guard limit.rlim_cur != DescriptorLimit.unlimited, limit.rlim_cur < wanted else { return clamp(limit.rlim_cur) }
        let target = limit.rlim_max == DescriptorLimit.unlimited ? wanted : min(wanted, limit.rlim_max)
        guard target > limit.rlim_cur else { return clamp(limit.rlim_cur) }
        var raised = limit
        raised.rlim_cur = target
        return clamp(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 ? target : limit.rlim_cur)
    }

    /// The soft limit now in force.
    static var current: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return clamp(limit.rlim_cur)
    }

    private static func clamp(_ value: rlim_t) -> Int { value >= rlim_t(Int.max) ? Int.max : Int(value) }
}
