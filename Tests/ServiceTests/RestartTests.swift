#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// Restarting a service under the gateway: clients see at most a slower answer.
final class RestartTests: XCTestCase {
    func testUserServiceRestartKeepsSessionsAndHoldsRequests() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let token = try system.login()
        // Presented first after the restarts, so the gateway has no cached answer for it.
        let untouched = try system.login()
        // Failed logins are counted in users.sqlite: a restart does not reset the lock.
        let phone = "137\(UInt32.random(in: 10_000_000...99_999_999))"
        for _ in 0..<5 {
            XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "wrong-password"]).status, 401)
        }
        let name = "restart-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(try system.post("/api/user/group", json: ["name": .string(name)], token: token).status, 200)

        // SIGTERM: the service drains; the launcher restarts it; requests in between are held.
        let first = try XCTUnwrap(system.childPID("UserService"))
        kill(first, SIGTERM)
        let during = try system.get("/api/user/group", token: token)
        XCTAssertEqual(during.status, 200, during.text)
        let second = try XCTUnwrap(system.waitForRestart("UserService", old: first))

        // SIGKILL: no drain at all; the gateway reconnects and resends.
        kill(second, SIGKILL)
        let write = try system.post("/api/user/group", json: ["name": .string(name + "-after-kill")], token: token)
        XCTAssertEqual(write.status, 200, write.text)
        _ = try XCTUnwrap(system.waitForRestart("UserService", old: second))

        // The session survived both restarts (it lives in users.sqlite), and so did the writes.
        let list = try system.get("/api/user/group", token: untouched)
        XCTAssertEqual(list.status, 200, "the restarted UserService knows the session: \(list.text)")
        let names = (list.json["data"]?.arrayValue ?? []).compactMap { $0["groupName"]?.stringValue }
        XCTAssertTrue(names.contains(name))
        XCTAssertEqual(names.filter { $0 == name + "-after-kill" }.count, 1, "written exactly once")
        // Healthy again once every gateway loop's connection is back: `/healthz` asks every loop,
        // and a loop that carried none of the requests above may still be in its reconnect
        // back-off (≤ 500 ms), reporting the service down until then.
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/healthz").status) == 200 })
        XCTAssertEqual(try system.post("/api/user/login", json: ["phoneNumber": .string(phone), "password": "wrong-password"]).status, 429)
    }

    /// A reader of the launcher's output that goes away (`crm up | head`) does not take the
    /// launcher down with SIGPIPE, which would leave its children running unsupervised: it
    /// still restarts a killed service (and says so, into the closed pipe).
    func testTheLauncherOutlivesAClosedOutput() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        try system.closeOutput()
        let first = try XCTUnwrap(system.childPID("UserService"))
        kill(first, SIGKILL)
        XCTAssertNotNil(system.waitForRestart("UserService", old: first), "the launcher restarted it")
        XCTAssertTrue(system.launcherIsRunning)
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/healthz").status) == 200 })
    }

    func testStoppedServiceMakesHealthz503() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        XCTAssertEqual(try system.get("/healthz").status, 200)
        // Stop the launcher's restarts of one service by replacing it with a stopped process:
        // SIGSTOP keeps the socket open but unanswered — health must notice within its ping timeout.
        let pid = try XCTUnwrap(system.childPID("StatsService"))
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        XCTAssertTrue(SystemHarness.waitForState(pid, "T"), "the service is stopped")
        let health = try system.get("/healthz")
        XCTAssertEqual(health.status, 503, health.text)
        XCTAssertEqual(health.json["services"]?["stats"]?.stringValue, "down")
        XCTAssertEqual(health.json["services"]?["users"]?.stringValue, "up")
        kill(pid, SIGCONT)
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/healthz").status) == 200 })
    }

    func testLauncherKeepsSocketsPrivateAndStopsEveryChild() throws {
        let system = try SystemHarness()
        let runDir = system.dataDir + "/run"
        var info = stat()
        XCTAssertEqual(stat(runDir, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700, "only the owner may reach the service sockets")
        for name in ["users", "customers", "records", "contracts", "stats"] {
            XCTAssertEqual(stat("\(runDir)/\(name)", &info), 0, name)
            XCTAssertEqual(info.st_mode & 0o777, 0o700, "the socket folder of \(name) is the owner's")
            XCTAssertEqual(stat("\(runDir)/\(name)/1.sock", &info), 0, name)
            XCTAssertEqual(info.st_mode & 0o777, 0o600, name)
            XCTAssertEqual(stat("\(system.dataDir)/\(name).sqlite", &info), 0, name)
            XCTAssertEqual(info.st_mode & 0o777, 0o600, "\(name).sqlite holds hashes and digests: owner only")
        }
        let children = ["Gateway", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"].compactMap { system.childPID($0) }
        XCTAssertEqual(children.count, 6)
        // A second launcher on the same data folder is refused.
        let second = Process()
        second.executableURL = URL(fileURLWithPath: SystemHarness.binDir + "/crm")
        second.arguments = ["up"]
        second.environment = ["CRM_DATA_DIR": system.dataDir, "CRM_PORT": String(SystemHarness.freePort())]
        let pipe = Pipe()
        second.standardError = pipe
        second.standardOutput = pipe
        try second.run()
        second.waitUntilExit()
        XCTAssertEqual(second.terminationStatus, 1)
        XCTAssertTrue(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("already running"))
        var control = stat()
        XCTAssertEqual(stat(system.dataDir + "/crm.sock", &control), 0, "the control socket is in the data folder")
        XCTAssertEqual(control.st_mode & 0o777, 0o600, "only the owner may command the launcher")
        // SIGTERM to the launcher stops every child before it exits: none left for the harness to kill.
        XCTAssertEqual(system.stop(), [], "processes the launcher left running")
        for pid in children {
            XCTAssertNotEqual(kill(pid, 0), 0, "child \(pid) is gone")
        }
    }

    /// A launcher killed outright (SIGKILL, a crash) cannot stop its children: each sees its
    /// end of the lifeline close and drains as on SIGTERM — a replacement started by `crm
    /// restart` too — so none keeps the port or a socket, and a new `crm up` on the same data
    /// folder and port starts and serves what was written.
    func testChildrenStopWhenTheLauncherIsKilled() throws {
        let first = try SystemHarness(extraEnvironment: ["CRM_REPLICAS_CUSTOMERS": "2"])
        defer { first.stop() }
        let token = try first.login()
        let name = "lifeline-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(try first.post("/api/user/group", json: ["name": .string(name)], token: token).status, 200)
        let restart = try first.crm(["restart", "stats"])
        XCTAssertEqual(restart.status, 0, restart.output)
        let children = SystemHarness.executables.flatMap { first.childPIDs($0) }
        XCTAssertEqual(children.count, 7, "six processes and a second customers replica")

        first.signalLauncher(SIGKILL)
        XCTAssertTrue(eventually(timeout: 5) { !first.launcherIsRunning })
        let gone = eventually(timeout: 15, interval: 0.1) { children.allSatisfy(SystemHarness.isGone) }
        XCTAssertTrue(gone, "still running after the launcher was killed: \(children.filter { !SystemHarness.isGone($0) })")
        XCTAssertTrue(first.log.contains("the launcher is gone: draining"), first.log)

        let second = try SystemHarness(dataDir: first.dataDir, port: first.port)
        defer { second.stop() }
        let list = try second.get("/api/user/group", token: try second.login())
        XCTAssertEqual(list.status, 200, list.text)
        XCTAssertTrue((list.json["data"]?.arrayValue ?? []).contains { $0["groupName"]?.stringValue == name }, list.text)
    }

    /// A setting a child cannot use fails the same way at every restart: the child exits with
    /// EX_CONFIG (78) and the launcher, instead of restarting it for ever, says which one refused
    /// what, stops every other process and exits 78. A service's setting and the gateway's.
    func testAConfigurationErrorStopsTheSystem() throws {
        for (setting, value) in [("CRM_SQLITE_READERS", "0"), ("CRM_GATEWAY_LOOPS", "0")] {
            let up = try SystemHarness.failingUp([setting: value], timeoutSeconds: 30)
            XCTAssertEqual(up.status, 78, "crm up with \(setting)=\(value) exits with EX_CONFIG:\n\(up.output)")
            let line = up.output.split(separator: "\n").first { $0.hasPrefix("crm: ") && $0.contains("refused its configuration") }
            XCTAssertNotNil(line, up.output)
            XCTAssertTrue(line?.contains(setting) == true, "the launcher names the setting: \(line ?? "")")
            XCTAssertTrue(line?.hasSuffix("; stopping") == true, "\(line ?? "")")
            XCTAssertFalse(up.output.contains("restarting in"), "no restart:\n\(up.output)")
            XCTAssertEqual(up.left, [], "processes left running on its data folder")
        }
    }

    /// The launcher's own settings: refused before anything starts, with 78 as well.
    func testALaunchersBadSettingExitsWithEXConfig() throws {
        for (setting, value) in [("CRM_PORT", "99999"), ("CRM_REPLICAS_CUSTOMERS", "0"), ("CRM_READY_SECONDS", "0"), ("CRM_READY_SECONDS", "241")] {
            let up = try SystemHarness.failingUp([setting: value], timeoutSeconds: 30)
            XCTAssertEqual(up.status, 78, "crm up with \(setting)=\(value):\n\(up.output)")
            XCTAssertTrue(up.output.contains(setting) || up.output.contains("replicas of customers"), up.output)
            XCTAssertEqual(up.left, [], "processes left running on its data folder")
        }
    }

    func testWritesDuringKillsAreNeitherLostNorDoubled() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let token = try system.login()
        let tag = "kill-\(UInt32.random(in: 0...UInt32.max))"
        let results = LockedList<(status: Int, id: Int64?)>()
        let writers = DispatchGroup()
        for worker in 0..<8 {
            DispatchQueue.global().async(group: writers) {
                guard let client = try? system.client() else { return }
                for i in 0..<150 {
                    let body: JSON = ["realName": .string("\(tag)-\(worker)-\(i)")]
                    let response = try? client.request("POST", "/api/customers/customers", body: body.serialized(), contentType: "application/json", token: token)
                    results.append((status: response?.status ?? 0, id: response?.json["data"]?["id"]?.intValue))
                }
            }
        }
        // Kill the service twice while the writers run (no drain: the gateway resends).
        for threshold in [100, 500] {
            XCTAssertTrue(eventually(timeout: 60, interval: 0.001) { results.values.count >= threshold })
            guard let pid = system.childPID("CustomerService") else { return XCTFail("no CustomerService") }
            kill(pid, SIGKILL)
            XCTAssertLessThan(results.values.count, 1200, "killed while writes were still being sent")
            XCTAssertNotNil(system.waitForRestart("CustomerService", old: pid))
        }
        XCTAssertEqual(writers.wait(timeout: .now() + 60), .success)
        let answers = results.values
        XCTAssertEqual(answers.count, 1200)
        XCTAssertEqual(answers.filter { $0.status == 200 }.count, 1200, "every write acknowledged: \(Set(answers.map(\.status)))")
        let ids = answers.compactMap(\.id)
        XCTAssertEqual(Set(ids).count, 1200, "each write got its own row")
        let stored = try system.get("/api/customers/customers?name=\(tag)&count=100&page=1", token: token)
        XCTAssertEqual(stored.json["page_info"]?["total"]?.intValue, 1200, "no write lost, none applied twice")
    }

    func testRecentSessionsStayGoodWhileUserServiceIsUnreachable() throws {
        let system = try SystemHarness()
        defer { system.stop() }
        let token = try system.login()
        XCTAssertEqual(try system.get("/api/customers/customers", token: token).status, 200)
        let pid = try XCTUnwrap(system.childPID("UserService"))
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        XCTAssertTrue(SystemHarness.waitForState(pid, "T"))
        // Past the 1 s trust time, so the fallback answers: waiting it out is the behaviour under test.
        usleep(1_200_000)
        let started = Date()
        let during = try system.get("/api/customers/customers", token: token)
        XCTAssertEqual(during.status, 200, "a session validated a moment ago still works: \(during.text)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 6)
        let unknown = try system.get("/api/customers/customers", token: "never-validated-token")
        XCTAssertEqual(unknown.status, 503, "an unknown token is not let in, and the client may retry: \(unknown.text)")
        XCTAssertTrue(unknown.text.contains("session cannot be checked"), unknown.text)
        kill(pid, SIGCONT)
        XCTAssertEqual(try system.get("/api/customers/customers", token: "never-validated-token").status, 401)
    }
}
