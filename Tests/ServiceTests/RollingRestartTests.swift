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
        let fm = FileManager.default
        let bin = try RollingRestartTests.binFolder()
        defer { try? fm.removeItem(atPath: bin) }
        let names = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let before = Dictionary(uniqueKeysWithValues: names.compactMap { name in system.childPID(name).map { (name, $0) } })
        XCTAssertEqual(before.count, 6)
        let oldUsers = try XCTUnwrap(before["UserService"])
        // Should the launcher lose it, it must not outlive the test.
        defer { if !RollingRestartTests.isGone(oldUsers) { kill(oldUsers, SIGKILL) } }

        // A broken new UserService: it counts its runs and fails at once.
        let runs = bin + "/runs"
        try RollingRestartTests.install("echo run >> '\(runs)'\nexit 1", as: "UserService", in: bin)

        system.signalLauncher(SIGHUP)
        XCTAssertTrue(eventually(timeout: 60, interval: 0.05) { system.log.contains("crm: restart done") }, system.log)
        XCTAssertTrue(system.log.contains("crm: the new users#1 exited (status 1) before it settled; the old one keeps running"), system.log)
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
        XCTAssertTrue(eventually(timeout: 20, interval: 0.05) { RollingRestartTests.isGone(oldUsers) }, "the old UserService \(oldUsers) outlived the launcher")
    }

    /// SIGTERM while a replacement is still settling stops it as well as the old process.
    func testStopEndsAReplacementInProgress() throws {
        let fm = FileManager.default
        let bin = try RollingRestartTests.binFolder()
        defer { try? fm.removeItem(atPath: bin) }
        let system = try SystemHarness(binDir: bin)
        defer { system.stop() }
        let oldUsers = try XCTUnwrap(system.childPID("UserService"))
        defer { if !RollingRestartTests.isGone(oldUsers) { kill(oldUsers, SIGKILL) } }

        // A new UserService that would run (and settle) but never serves: its pid tells when it started.
        let pidFile = bin + "/candidate.pid"
        try RollingRestartTests.install("echo $$ > '\(pidFile).tmp'\nmv '\(pidFile).tmp' '\(pidFile)'\nexec sleep 60", as: "UserService", in: bin)

        system.signalLauncher(SIGHUP)
        var candidate: pid_t?
        _ = eventually(timeout: 20, interval: 0.005) {
            candidate = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return candidate != nil
        }
        let started = try XCTUnwrap(candidate, "the replacement started:\n\(system.log)")
        defer { if !RollingRestartTests.isGone(started) { kill(started, SIGKILL) } }
        // Within its 500 ms settle time: both run.
        system.stop()
        _ = eventually(timeout: 20, interval: 0.05) { RollingRestartTests.isGone(oldUsers) && RollingRestartTests.isGone(started) }
        XCTAssertTrue(RollingRestartTests.isGone(started), "the replacement \(started) outlived the launcher")
        XCTAssertTrue(RollingRestartTests.isGone(oldUsers), "the old UserService \(oldUsers) outlived the launcher")
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

    static func binFolder() throws -> String {
        let fm = FileManager.default
        let bin = "/tmp/crm-bin-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try fm.copyItem(atPath: SystemHarness.binDir + "/crm", toPath: bin + "/crm")
        for name in ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"] {
            try fm.createSymbolicLink(atPath: "\(bin)/\(name)", withDestinationPath: "\(SystemHarness.binDir)/\(name)")
        }
        return bin
    }

    /// True when `pid` no longer runs (no such process, or a zombie not yet reaped).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

