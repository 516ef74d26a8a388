#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

let usage = """
usage: crm up [--replicas NAME=N[,NAME=N…]]
                        start every service (N replicas each, default 1; or CRM_REPLICAS_<NAME>)
                        and the gateway (CRM_HOST, CRM_PORT, CRM_DATA_DIR, CRM_TZ, CRM_ADMIN_PHONE,
                        CRM_ADMIN_PASSWORD); Ctrl-C stops them
       crm status       every process of the launcher on CRM_DATA_DIR: service, replica, pid,
                        uptime, restarts, state
       crm restart NAME restart a service (replica by replica, without a failed request) or the gateway;
                        each new process takes over once it serves (within CRM_READY_SECONDS, default 120)
       crm scale NAME=N run N replicas of a service from now on
       crm backup DIR   a consistent copy of every service's database (CRM_DATA_DIR) into DIR,
                        taken while the system runs
       crm gateway [FLAGS]
                        only the gateway (FLAGS as Gateway's), holding the port (CRM_HOST, CRM_PORT)
                        across its restarts; SIGHUP replaces it without refusing a connection
exit status of crm up and crm gateway: 0 stopped, 1 could not start, 78 (EX_CONFIG) a setting
to change: its own (CRM_PORT, CRM_READY_SECONDS, --replicas) or one a child refused (the launcher stopped
everything instead of restarting it)
"""

// A closed stdout or stderr (`crm up | head`, a log collector that went away) must not kill the
// launcher — it would leave its children running unsupervised, the gateway holding the port:
// writes then fail with EPIPE and are dropped instead.
signal(SIGPIPE, SIG_IGN)

let arguments = Array(CommandLine.arguments.dropFirst())
let dataDir = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CRM_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./data").standardizedFileURL.path
switch (arguments.first, arguments.count) {
case ("up", _):
    do {
        try Launcher.fromEnvironment(arguments: Array(arguments.dropFirst())).run()
    } catch {
        // A setting to change (CRM_PORT, --replicas) exits 78 like a child's; anything else 1.
        StdIO.error("crm: \(error)\n")
        exit(ConfigurationError.exitStatus(for: error))
    }
case ("backup", _):
    umask(0o077)
    exit(BackupCommand.run(Array(arguments.dropFirst())))
case ("gateway", _):
    do {
        try GatewaySupervisor.run(Array(arguments.dropFirst()))
    } catch {
        StdIO.error("crm: \(error)\n")
        exit(ConfigurationError.exitStatus(for: error))
    }
case ("status", 1):
    exit(ControlClient.run("status", dataDir: dataDir))
case ("restart", 2), ("scale", 2):
    exit(ControlClient.run(arguments.joined(separator: " "), dataDir: dataDir))
default:
    StdIO.out(usage)
    exit(arguments.isEmpty || arguments.first == "help" || arguments.first == "--help" ? 0 : 2)
}
