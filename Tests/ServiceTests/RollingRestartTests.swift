#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// `kill -HUP <crm>` restarts every process in turn; clients see no error meanwhile.
final class RollingRestartTests: XCTestCase {
    func testEveryProcessRestartsWithoutAFailedRequest() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let token = try system.login()
        let names = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]
        let before = Dictionary(uniqueKeysWithValues: names.compactMap { name in system.childPID(name).map { (name, $0) } })
        XCTAssertEqual(before.count, 6)

        let stop = StopFlag()
        let outcomes = LockedList<String>()
        let workers = DispatchGroup()
        for worker in 0..<4 {
            DispatchQueue.global().async(group: workers) {
                var i = 0
                while !stop.isSet {
                    i += 1
                    do {
                        // A new connection for every request: the listener hand-over is exercised too.
                        let client = try system.client()
                        let response: HTTPTestResponse
                        if i % 2 == 0 {
                            response = try client.request("GET", "/api/user/group", token: token)
                        } else {
                            let body: JSON = ["realName": .string("rolling-\(worker)-\(i)")]
                            response = try client.request("POST", "/api/customers/customers", body: body.serialized(), contentType: "application/json", token: token)
                        }
                        outcomes.append(response.status == 200 ? "200" : "\(response.status) \(response.text)")
                    } catch {
                        outcomes.append("error \(error)")
                    }
                }
            }
        }
        XCTAssertTrue(eventually(timeout: 10) { outcomes.values.count >= 8 }, "the workers are sending")
        system.signalLauncher(SIGHUP)
        XCTAssertTrue(eventually(timeout: 60, interval: 0.05) { system.log.contains("crm: restart done") }, system.log)
        let atDone = outcomes.values.count
        XCTAssertTrue(eventually(timeout: 10) { outcomes.values.count >= atDone + 8 }, "requests go on after the restart")
        stop.set()
        XCTAssertEqual(workers.wait(timeout: .now() + 30), .success)

        XCTAssertTrue(system.log.contains("crm: restart done"), system.log)
        for (name, pid) in before {
            let now = system.childPID(name)
            XCTAssertNotNil(now, name)
            XCTAssertNotEqual(now, pid, "\(name) was replaced")
        }
        let all = outcomes.values
        XCTAssertGreaterThan(all.count, 100)
        let failures = all.filter { $0 != "200" }
        XCTAssertEqual(failures, [], "\(failures.count) of \(all.count) requests failed")
    }
}

extension RollingRestartTests {
    /// A replacement that fails leaves the old process current, serving and supervised: it is
    /// reported, not restarted in a loop, and stopped with the launcher.
    func testFailedReplacementKeepsTheOldProcess() throws {
        let bin = try binFolder()
        let names = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let before = Dictionary(uniqueKeysWithValues: names.compactMap { name in system.childPID(name).map { (name, $0) } })
        XCTAssertEqual(before.count, 6)
        let oldUsers = try XCTUnwrap(before["UserService"])
        // Should the launcher lose it, it must not outlive the test.
        defer { if !SystemHarness.isGone(oldUsers) { kill(oldUsers, SIGKILL) } }

        // A broken new UserService: it counts its runs and fails at once.
        let runs = bin + "/runs"
        try RollingRestartTests.install("echo run >> '\(runs)'\nexit 1", as: "UserService", in: bin)

        system.signalLauncher(SIGHUP)
        XCTAssertTrue(eventually(timeout: 60, interval: 0.05) { system.log.contains("crm: restart done") }, system.log)
        XCTAssertTrue(system.log.contains("crm: the new users#1 exited (status 1) before it served; the old one keeps running"), system.log)
        XCTAssertTrue(system.log.contains("crm: restart done; still the old users#1"), system.log)

        // Not retried: the restart backoff (100 ms, doubling) would have run it several times by now.
        // A run that does not happen cannot be polled for: the wait is the check.
        usleep(3_000_000)
        let lines = ((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "the broken replacement ran once:\n\(system.log)")

        // The old UserService is still the one serving.
        XCTAssertEqual(system.childPID("UserService"), oldUsers)
        XCTAssertEqual(try system.get("/healthz").status, 200)
        let token = try system.login()
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        // The rest of the rolling restart went on.
        for name in names where name != "UserService" {
            let now = system.childPID(name)
            XCTAssertNotNil(now, name)
            XCTAssertNotEqual(now, before[name], "\(name) was replaced")
        }

        // SIGTERM to the launcher stops it too.
        system.stop()
        XCTAssertTrue(eventually(timeout: 20, interval: 0.05) { SystemHarness.isGone(oldUsers) }, "the old UserService \(oldUsers) outlived the launcher")
    }

    /// A replacement that refuses its configuration (a new build with a stricter setting, say)
    /// does not stop the system, as a refusal at start does: the old process keeps serving and
    /// `crm restart` reports it and fails.
    func testAReplacementThatRefusesItsConfigurationKeepsTheOldProcess() throws {
        let bin = try binFolder()
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let oldStats = try XCTUnwrap(system.childPID("StatsService"))
        try RollingRestartTests.install("echo 'refusing' >&2\nexit 78", as: "StatsService", in: bin)

        let restart = try system.crm(["restart", "stats"])
        XCTAssertEqual(restart.status, 1, restart.output)
        XCTAssertTrue(restart.output.contains("kept the old stats#1: the new stats#1 refused its configuration (exit status 78)"), restart.output)
        XCTAssertTrue(system.log.contains("crm: the new stats#1 refused its configuration (exit status 78); the old one keeps running"), system.log)
        XCTAssertTrue(system.launcherIsRunning)
        XCTAssertEqual(system.childPID("StatsService"), oldStats)
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/healthz").status) == 200 })

        // A replica `crm scale` adds that refuses is dropped, and the scale fails.
        let scale = try system.crm(["scale", "stats=2"])
        XCTAssertEqual(scale.status, 1, scale.output)
        XCTAssertTrue(scale.output.contains("stats#2 refused its configuration (exit status 78); not kept"), scale.output)
        // SIGHUP: the rest of the rolling restart goes on, the old stats stays.
        system.signalLauncher(SIGHUP)
        XCTAssertTrue(eventually(timeout: 60, interval: 0.05) { system.log.contains("crm: restart done") }, system.log)
        XCTAssertTrue(system.log.contains("crm: restart done; still the old stats#1"), system.log)

        XCTAssertTrue(system.launcherIsRunning, system.log)
        XCTAssertEqual(system.childPIDs("StatsService"), [oldStats])
        let status = try system.crm(["status"])
        let statsLines = status.output.split(separator: "\n").filter { $0.hasPrefix("stats ") }
        XCTAssertEqual(statsLines.count, 1, status.output)
        XCTAssertTrue(statsLines.first?.contains("\(oldStats)") == true, status.output)
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/healthz").status) == 200 })
    }

    /// A replacement takes over only once it serves, however long its start takes (the
    /// migrations of a new build on a large file, say): until then the old process runs and
    /// answers. It used to take over after 500 ms of running, and requests waited for the new
    /// socket meanwhile.
    func testAReplacementTakesOverOnlyOnceItServes() throws {
        let fm = FileManager.default
        let bin = try binFolder()
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let token = try system.login()
        let oldUsers = try XCTUnwrap(system.childPID("UserService"))

        // A new UserService that starts only when told to, then runs the real one in its place.
        let pidFile = bin + "/candidate.pid", go = bin + "/go"
        try RollingRestartTests.install("""
            \(RollingRestartTests.recordPID(in: pidFile))
            i=0; while [ ! -f '\(go)' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
            exec '\(SystemHarness.binDir)/UserService' "$@"
            """, as: "UserService", in: bin)
        let restart = LockedList<(status: Int32, output: String)>()
        let restarting = DispatchGroup()
        DispatchQueue.global().async(group: restarting) {
            if let result = try? system.crm(["restart", "users"]) { restart.append(result) }
        }
        let started = try RollingRestartTests.startedPID(pidFile, system)
        defer { if !SystemHarness.isGone(started) { kill(started, SIGKILL) } }

        // Well past the 500 ms after which it used to take over. A stop that does not happen
        // cannot be polled for: the wait is the check.
        usleep(1_500_000)
        XCTAssertFalse(SystemHarness.isGone(oldUsers), "the old UserService was stopped before its replacement served:\n\(system.log)")
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        XCTAssertTrue(restart.values.isEmpty, "the restart is still waiting")

        XCTAssertTrue(fm.createFile(atPath: go, contents: nil))
        XCTAssertEqual(restarting.wait(timeout: .now() + 60), .success, system.log)
        let result = try XCTUnwrap(restart.values.first, system.log)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("restarted users#1"), result.output)
        XCTAssertTrue(eventually(timeout: 20, interval: 0.05) { SystemHarness.isGone(oldUsers) }, "the old UserService drained and exited")
        XCTAssertEqual(system.childPIDs("UserService"), [started])
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
    }

    /// A replacement that binds the replica's socket path and dies before it takes over leaves
    /// the path to nobody; the launcher has the old process bind it again, so the service stays
    /// reachable. (It was unreachable until the next restart.) A replica `crm scale` adds that
    /// does the same is dropped with its socket file.
    func testAFailedReplacementThatTookTheSocketPathLeavesTheOldOneReachable() throws {
        let fm = FileManager.default
        let bin = try binFolder()
        let system = try SystemHarness(extraEnvironment: ["CRM_READY_SECONDS": "3"], binDir: bin)
        defer { system.stop() }
        let token = try system.login()
        let oldUsers = try XCTUnwrap(system.childPID("UserService"))
        // A new UserService that runs the real one beside itself (its `ready` names another
        // pid, so it never counts as serving), waits until that one has bound its replica's
        // socket path, kills it and fails.
        let runs = bin + "/runs"
        try RollingRestartTests.install("""
            echo run >> '\(runs)'
            prev=; for a in "$@"; do case "$prev" in --socket-dir) dir=$a;; --replica) replica=$a;; esac; prev=$a; done
            socket="$dir/$replica.sock"
            before=$(stat -c %i "$socket" 2>/dev/null)
            '\(SystemHarness.binDir)/UserService' "$@" &
            real=$!
            i=0; while [ "$(stat -c %i "$socket" 2>/dev/null)" = "$before" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            kill -9 $real
            exit 1
            """, as: "UserService", in: bin)

        let restart = try system.crm(["restart", "users"])
        XCTAssertEqual(restart.status, 1, restart.output)
        XCTAssertTrue(restart.output.contains("kept the old users#1: the new users#1 exited (status 1) before it served"), restart.output)
        XCTAssertEqual(((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n").count, 1)
        XCTAssertTrue(eventually(timeout: 20, interval: 0.05) { system.log.contains("was no longer this process's socket") }, system.log)
        XCTAssertEqual(system.childPIDs("UserService"), [oldUsers])
        XCTAssertTrue(eventually(timeout: 20, interval: 0.1) { (try? system.get("/api/user/group", token: token).status) == 200 },
                      "the old UserService is reachable again:\n\(system.log)")

        // The same as a new replica: restarted as it keeps failing, never serving, dropped.
        let scale = try system.crm(["scale", "users=2"])
        XCTAssertEqual(scale.status, 1, scale.output)
        XCTAssertTrue(scale.output.contains("users#2 did not serve within 3 s (CRM_READY_SECONDS); not kept"), scale.output)
        XCTAssertFalse(fm.fileExists(atPath: system.dataDir + "/run/users/2.sock"), "the dropped replica's socket file is removed")
        XCTAssertTrue(fm.fileExists(atPath: system.dataDir + "/run/users/1.sock"))
        XCTAssertEqual(system.childPIDs("UserService"), [oldUsers])
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
    }

    /// An old process that does not exit on SIGTERM (wedged) is killed after the stop grace
    /// once its replacement took over: the restart ends, and the next operation can run. It
    /// used to wait for it for ever, holding every later restart, scale and SIGHUP.
    func testAnOldProcessThatIgnoresSIGTERMIsKilledAfterTheGrace() throws {
        let fm = FileManager.default
        let bin = try binFolder()
        // The first UserService: a shell that ignores SIGTERM and runs the real one in the
        // foreground (the launcher signals the shell, which neither exits nor passes it on).
        let pidFile = bin + "/old.pid"
        try RollingRestartTests.install("""
            \(RollingRestartTests.recordPID(in: pidFile))
            trap '' TERM
            '\(SystemHarness.binDir)/UserService' "$@"
            """, as: "UserService", in: bin)
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let wedged = try RollingRestartTests.startedPID(pidFile, system)
        defer { if !SystemHarness.isGone(wedged) { kill(wedged, SIGKILL) } }
        let token = try system.login()
        // The next one is the real executable.
        try fm.removeItem(atPath: bin + "/UserService")
        try fm.createSymbolicLink(atPath: bin + "/UserService", withDestinationPath: SystemHarness.binDir + "/UserService")

        let restart = try system.crm(["restart", "users"])
        XCTAssertEqual(restart.status, 0, restart.output)
        XCTAssertTrue(restart.output.contains("restarted users#1"), restart.output)
        XCTAssertTrue(SystemHarness.isGone(wedged), "the old process was killed")
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        // The launcher takes operations again.
        let status = try system.crm(["status"])
        XCTAssertEqual(status.status, 0, status.output)
    }

    /// A replacement, or a replica `crm scale` adds, that does not serve within
    /// `CRM_READY_SECONDS` is stopped and reported; the old process keeps serving.
    func testANewProcessThatDoesNotServeInTimeIsNotKept() throws {
        let bin = try binFolder()
        let system = try SystemHarness(extraEnvironment: ["CRM_READY_SECONDS": "2"], binDir: bin)
        defer { system.stop() }
        let token = try system.login()
        let oldUsers = try XCTUnwrap(system.childPID("UserService"))
        // Runs, never serves; each run leaves its pid.
        let pids = bin + "/pids"
        try RollingRestartTests.install("echo $$ >> '\(pids)'\nexec sleep 60", as: "UserService", in: bin)

        let restart = try system.crm(["restart", "users"])
        XCTAssertEqual(restart.status, 1, restart.output)
        XCTAssertTrue(restart.output.contains("kept the old users#1: the new users#1 did not serve within 2 s (CRM_READY_SECONDS)"), restart.output)
        let scale = try system.crm(["scale", "users=2"])
        XCTAssertEqual(scale.status, 1, scale.output)
        XCTAssertTrue(scale.output.contains("users#2 did not serve within 2 s (CRM_READY_SECONDS); not kept"), scale.output)

        let started = ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
        XCTAssertEqual(started.count, 2, system.log)
        for pid in started {
            XCTAssertTrue(eventually(timeout: 20, interval: 0.05) { SystemHarness.isGone(pid) }, "the new process \(pid) was stopped")
        }
        XCTAssertEqual(system.childPIDs("UserService"), [oldUsers])
        XCTAssertEqual(try system.get("/api/user/group", token: token).status, 200)
        let status = try system.crm(["status"])
        XCTAssertEqual(status.output.split(separator: "\n").filter { $0.hasPrefix("users ") }.count, 1, status.output)
    }

    /// SIGTERM while a replacement is still starting stops it as well as the old process.
    func testStopEndsAReplacementInProgress() throws {
        let bin = try binFolder()
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let oldUsers = try XCTUnwrap(system.childPID("UserService"))
        defer { if !SystemHarness.isGone(oldUsers) { kill(oldUsers, SIGKILL) } }

        // A new UserService that would run (and settle) but never serves: its pid tells when it started.
        let pidFile = bin + "/candidate.pid"
        try RollingRestartTests.install("\(RollingRestartTests.recordPID(in: pidFile))\nexec sleep 60", as: "UserService", in: bin)

        system.signalLauncher(SIGHUP)
        let started = try RollingRestartTests.startedPID(pidFile, system)
        defer { if !SystemHarness.isGone(started) { kill(started, SIGKILL) } }
        // It never serves, so it is still waited for: both run.
        system.stop()
        _ = eventually(timeout: 20, interval: 0.05) { SystemHarness.isGone(oldUsers) && SystemHarness.isGone(started) }
        XCTAssertTrue(SystemHarness.isGone(started), "the replacement \(started) outlived the launcher")
        XCTAssertTrue(SystemHarness.isGone(oldUsers), "the old UserService \(oldUsers) outlived the launcher")
    }

    /// A script line that leaves the script's pid in `file`, written whole (never read half-written).
    static func recordPID(in file: String) -> String {
        "echo $$ > '\(file).tmp'; mv '\(file).tmp' '\(file)'"
    }

    /// The pid a script left with `recordPID(in:)`, once it has (an error after 20 s).
    static func startedPID(_ file: String, _ system: SystemHarness) throws -> pid_t {
        var pid: pid_t?
        _ = eventually(timeout: 20, interval: 0.005) {
            pid = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return pid != nil
        }
        return try XCTUnwrap(pid, "the replacement started:\n\(system.log)")
    }

    /// A temporary folder to run `crm` from: a copy of it (it starts the executables beside
    /// its real path, /proc/self/exe) and links to the other executables.
    /// Puts a shell script in place of executable `name` in `bin`.
    static func install(_ script: String, as name: String, in bin: String) throws {
        let path = bin + "/" + name
        try FileManager.default.removeItem(atPath: path)
        try "#!/bin/sh\n\(script)\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard chmod(path, 0o755) == 0 else { throw HarnessError("cannot make \(path) executable") }
    }

    /// A folder of this build's executables (links, the launcher copied) that a test may
    /// replace one of; removed after the test.
    func binFolder() throws -> String {
        let fm = FileManager.default
        let bin = "/tmp/crm-bin-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: bin, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: bin) }
        try fm.copyItem(atPath: SystemHarness.binDir + "/crm", toPath: bin + "/crm")
        for name in ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"] {
            try fm.createSymbolicLink(atPath: "\(bin)/\(name)", withDestinationPath: "\(SystemHarness.binDir)/\(name)")
        }
        return bin
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

