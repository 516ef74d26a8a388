#if canImport(Glibc)
import Glibc
#endif
import ServiceKit

/// `crm backup DIR`: a consistent copy of every service's database in `CRM_DATA_DIR`, taken
/// while the system runs (SQLite's online backup API, `Backup.copy`), into a new or empty
/// folder DIR as `<service>.sqlite`. Restore: stop the system, put the files back in the
/// data folder (removing any `-wal`/`-shm` beside the old ones), start it. Restore a whole
/// set, not one file: a producer restored alone rewinds the event log its consumers follow.
enum BackupCommand {
    /// Consumers before their producers (events flow users → customers → records, contracts →
    /// stats): each copy of a consumer is taken before the copies of what it follows, so in the
    /// backup set no consumer's event cursor is past its producer's log, and a restored set
    /// simply catches up. (Services not listed here, if any are added, come last.)
    static let order: [ServiceName] = {
        let listed: [ServiceName] = [.stats, .records, .contracts, .customers, .users]
        return listed + ServiceName.allCases.filter { !listed.contains($0) }
    }()

    static func run(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1, let target = arguments.first, !target.hasPrefix("-") else {
            StdIO.error("usage: crm backup DIR   (copies every <service>.sqlite of CRM_DATA_DIR into DIR)")
            return 2
        }
        let data = getenv("CRM_DATA_DIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "./data"
        let names = order.map(\.rawValue).filter { access("\(data)/\($0).sqlite", F_OK) == 0 }
        guard !names.isEmpty else {
            StdIO.error("crm backup: no database in \(data) (set CRM_DATA_DIR to the data folder of the system)")
            return 1
        }
        if mkdir(target, 0o700) != 0 && errno != EEXIST {
            StdIO.error("crm backup: cannot create \(target): \(String(cString: strerror(errno)))")
            return 1
        }
        var failed = false
        for name in names {
            do {
                let pages = try Backup.copy(from: "\(data)/\(name).sqlite", to: "\(target)/\(name).sqlite")
                StdIO.out("\(name): \(target)/\(name).sqlite (\(pages) pages)")
            } catch {
                StdIO.error("crm backup: \(name): \(error)")
                failed = true
            }
        }
        return failed ? 1 : 0
    }
}
