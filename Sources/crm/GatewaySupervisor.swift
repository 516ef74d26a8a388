#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

/// `crm gateway [Gateway flags]`: only the gateway, supervised the way `crm up` does it — this
/// process holds the port (`CRM_HOST`, `CRM_PORT`) and hands the listener to each gateway it
/// starts, restarts one that dies, and on SIGHUP replaces it without refusing a connection.
/// For a container that runs the gateway alone (docker-compose.yml).
enum GatewaySupervisor {
    static func run(_ arguments: [String]) throws -> Never {
        let (host, port) = try Launcher.address(ProcessInfo.processInfo.environment)
        let readySeconds = try Launcher.readySeconds(ProcessInfo.processInfo.environment)
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // No data folder: the gateway keeps nothing on disk.
        let launcher = Launcher(host: host, port: port, dataDir: "", binDir: URL(fileURLWithPath: exe).deletingLastPathComponent().path)
        let listenFD = try launcher.bindPort()
        var environment = ProcessInfo.processInfo.environment
        environment["CRM_LISTEN_FD"] = nil
        let lifeline = try Lifeline()
        // A gateway that refuses its flags or settings would refuse them again: stop, EX_CONFIG.
        let gateway = Child(service: "gateway", replica: "1", executable: "\(launcher.binDir)/Gateway",
                            arguments: ["--host", launcher.host, "--port", String(launcher.port)] + arguments + ["--listen-fd", "0"],
                            environment: environment, standardInput: listenFD, lifeline: lifeline,
                            readySeconds: readySeconds) { message in
            StdIO.error("crm: \(message); stopping")
            exit(ConfigurationError.exitStatus)
        }
        try gateway.start()
        let sources = Signals.install(stop: { gateway.stop() }, reload: {
            do {
                if let why = try gateway.replace() { StdIO.error("crm: the new gateway did not take over (\(why)); the old one keeps running") }
            } catch {
                StdIO.error("crm: the new gateway did not start: \(error); the old one keeps running")
            }
        })
        withExtendedLifetime(sources) { dispatchMain() }
    }
}
