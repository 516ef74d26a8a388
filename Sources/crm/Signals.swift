#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// How `crm up` and `crm gateway` take their signals: SIGINT and SIGTERM stop (`stop` runs, then
/// the process exits 0), SIGHUP replaces processes in turn (`reload`, on a serial queue of its
/// own, so a second SIGHUP waits for the first replacement to finish).
enum Signals {
    /// Installs the handlers; keep the returned sources alive for as long as they should fire.
    static func install(stop: @escaping @Sendable () -> Void, reload: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                stop()
                exit(0)
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGHUP, SIG_IGN)
        let hangUp = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "crm.reload"))
        hangUp.setEventHandler(handler: reload)
        hangUp.resume()
        sources.append(hangUp)
        return sources
    }
}
