@testable import Gateway
import WireProtocol
import XCTest

/// `/healthz` asks every event loop: a service is up only when it answers on each loop (each
/// has its own connections), so the answer does not flap while the loops connect at start.
final class HealthTallyTests: XCTestCase {
    /// The answer once `reports` are in (nil while it is still waiting).
    func answer(loops: Int, _ reports: [(String, Int, Int)]) -> HTTPResponse? {
        var answered: HTTPResponse?
        let tally = HealthTally(names: ["users", "customers"], loops: loops) { answered = $0 }
        for (name, reachable, known) in reports {
            XCTAssertNil(answered, "answered before every loop reported")
            tally.report(name, reachable: reachable, known: known)
        }
        return answered
    }

    func json(_ response: HTTPResponse?) -> JSON? {
        response.flatMap { try? JSONParser.parse($0.body) }
    }

    func testAServiceOneLoopCannotReachIsDown() {
        let response = answer(loops: 2, [("users", 1, 1), ("customers", 2, 2), ("users", 0, 1), ("customers", 1, 3)])
        XCTAssertEqual(response?.status, 503)
        let body = json(response)
        XCTAssertEqual(body?["status"]?.intValue, 1)
        XCTAssertEqual(body?["services"]?["users"]?.stringValue, "down")
        XCTAssertEqual(body?["services"]?["customers"]?.stringValue, "up")
        // The fewest replicas any loop reached, the most sockets any loop knows.
        XCTAssertEqual(body?["replicas"]?["customers"]?["reachable"]?.intValue, 1)
        XCTAssertEqual(body?["replicas"]?["customers"]?["known"]?.intValue, 3)
        XCTAssertEqual(body?["replicas"]?["users"]?["reachable"]?.intValue, 0)
    }

    func testUpWhenEveryLoopReachesEveryService() {
        let response = answer(loops: 2, [("customers", 1, 1), ("users", 1, 1), ("users", 2, 2), ("customers", 1, 1)])
        XCTAssertEqual(response?.status, 200)
        XCTAssertEqual(json(response)?["services"]?["users"]?.stringValue, "up")
        XCTAssertEqual(json(response)?["replicas"]?["users"]?["reachable"]?.intValue, 1)
    }

    func testWaitsForEveryLoop() {
        XCTAssertNil(answer(loops: 3, [("users", 1, 1), ("customers", 1, 1), ("users", 1, 1), ("customers", 1, 1)]))
    }

    /// Past the wait (`finish` called by its timer), a loop that did not report counts as
    /// reaching nothing; the answer is given once, whatever reports come later.
    func testALoopThatDoesNotReportInTimeReachesNothing() {
        var answers: [HTTPResponse] = []
        var finished = 0
        let tally = HealthTally(names: ["users", "customers"], loops: 2) { answers.append($0) }
        tally.onFinish = { finished += 1 }
        for (name, reachable, known) in [("users", 1, 1), ("customers", 2, 2), ("users", 1, 1)] {
            tally.report(name, reachable: reachable, known: known)
        }
        XCTAssertTrue(answers.isEmpty)
        tally.finish()
        tally.report("customers", reachable: 2, known: 2)
        tally.finish()
        XCTAssertEqual(answers.count, 1)
        XCTAssertEqual(finished, 1)
        XCTAssertEqual(answers.first?.status, 503)
        let body = json(answers.first)
        XCTAssertEqual(body?["services"]?["users"]?.stringValue, "up")
        XCTAssertEqual(body?["services"]?["customers"]?.stringValue, "down")
        XCTAssertEqual(body?["replicas"]?["customers"]?["reachable"]?.intValue, 0)
        XCTAssertEqual(body?["replicas"]?["customers"]?["known"]?.intValue, 2)
    }
}
