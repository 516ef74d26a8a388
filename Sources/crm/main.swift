#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

let usage = """
usage: crm up      start every service and the gateway (CRM_HOST, CRM_PORT, CRM_DATA_DIR, CRM_TZ,
                   CRM_ADMIN_PHONE, CRM_ADMIN_PASSWORD); Ctrl-C stops them
       crm backup DIR
                   a consistent copy of every service's database (CRM_DATA_DIR) into DIR,
                   taken while the system runs
"""

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "up":
    do {
        try Launcher.fromEnvironment().run()
    } catch {
        StdIO.error("crm: \(error)\n")
        exit(1)
    }
case "backup":
    umask(0o077)
    exit(BackupCommand.run(Array(arguments.dropFirst())))
default:
    StdIO.out(usage)
    exit(arguments.isEmpty || arguments.first == "help" || arguments.first == "--help" ? 0 : 2)
}
