#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// The gateway's time and connection limits, with small values so the test is quick.
final class GatewayLimitTests: XCTestCase {
    func testSlowClientsIdleConnectionsAndConnectionCap() throws {
        let system = try SystemHarness(extraEnvironment: [
            "CRM_HEADER_TIMEOUT_MS": "400", "CRM_BODY_TIMEOUT_MS": "400", "CRM_IDLE_TIMEOUT_MS": "800", "CRM_MAX_CONNECTIONS": "6",
        ])
        defer { system.stop() }

        // A client trickling its header gets 408 and the connection closes.
        do {
            let slow = try system.client()
            slow.sendRaw("GET /livez HTTP/1.1\r\nHost: x\r\n")
            let timedOut = try slow.readResponse()
            XCTAssertEqual(timedOut.status, 408)
            XCTAssertEqual(timedOut.header("Connection"), "close")
            XCTAssertTrue(slow.isClosedByServer())

            // Same for a body that never completes.
            let slowBody = try system.client()
            slowBody.sendRaw("POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"phone")
            XCTAssertEqual(try slowBody.readResponse().status, 408)

            // An idle keep-alive connection is closed after the idle timeout, after serving requests.
            let idle = try system.client()
            XCTAssertEqual(try idle.request("GET", "/livez").status, 200)
            XCTAssertTrue(idle.isClosedByServer())
        }
        XCTAssertTrue(try eventually(timeout: 5) { try system.metric("crm_http_connections") == 1 },
                      "the clients above are closed: only the metrics request's own connection is left")

        // Past the cap, new connections are refused with 503; the open ones keep working.
        var open: [HTTPTestClient] = []
        for _ in 0..<6 {
            let c = try system.client()
            XCTAssertEqual(try c.request("GET", "/livez").status, 200)
            open.append(c)
        }
        let extra = try system.client()
        let refused = try extra.readResponse()
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(try open[0].request("GET", "/livez").status, 200)
        open.removeAll()
        XCTAssertTrue(eventually(timeout: 5) { (try? system.get("/livez").status) == 200 }, "room again once connections close")
    }
}
