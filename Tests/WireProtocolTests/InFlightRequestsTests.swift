@testable import WireProtocol
import XCTest

/// The table of a client's requests in flight, against a `Dictionary` doing the same.
final class InFlightRequestsTests: XCTestCase {
    private func request() -> WireClient.Pending {
        WireClient.Pending(WireRequest(method: "GET", path: "/x", params: JSONObject(), caller: nil, requestID: "r", deadline: 0),
                           holdMillis: 1000, defaultTimeoutMillis: 1000) { _ in }
    }

    func testAgreesWithADictionary() {
        var generator = SystemRandomNumberGenerator()
        var table = InFlightRequests()
        var reference: [UInt64: WireClient.Pending] = [:]
        var nextID: UInt64 = 1
        for step in 0..<20_000 {
            // Mostly sequential ids answered in any order, as a client's are; sometimes ids far
            // apart, or one already there, or one never sent.
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll < 5 || reference.isEmpty {
                let id = roll == 0 ? UInt64.random(in: 1...UInt64.max, using: &generator) : nextID
                nextID += 1
                let pending = request()
                table.insert(pending, id: id)
                reference[id] = pending
            } else if roll < 9 {
                let id = roll == 8 ? nextID + 7 : reference.keys.randomElement(using: &generator) ?? 0
                XCTAssertTrue(table.remove(id: id) === reference.removeValue(forKey: id), "step \(step): id \(id)")
            } else {
                let limit = nextID - min(nextID, UInt64.random(in: 0...20, using: &generator))
                let taken = table.removeAll { id, _ in id > limit }
                let expected = reference.filter { $0.key > limit }
                for id in expected.keys { reference[id] = nil }
                XCTAssertEqual(Set(taken.map(ObjectIdentifier.init)), Set(expected.values.map(ObjectIdentifier.init)), "step \(step)")
            }
            XCTAssertEqual(table.count, reference.count)
        }
        // Everything left is still found, then nothing is.
        for (id, pending) in reference { XCTAssertTrue(table.remove(id: id) === pending) }
        XCTAssertTrue(table.isEmpty)
        XCTAssertTrue(table.removeAll().isEmpty)
    }

    func testRemoveAllTakesEverything() {
        var table = InFlightRequests()
        let requests = (1...100).map { _ in request() }
        for (offset, pending) in requests.enumerated() { table.insert(pending, id: UInt64(offset + 1) * 16) }
        XCTAssertEqual(table.count, 100)
        XCTAssertEqual(Set(table.removeAll().map(ObjectIdentifier.init)), Set(requests.map(ObjectIdentifier.init)))
        XCTAssertTrue(table.isEmpty)
        XCTAssertNil(table.remove(id: 16))
    }
}
