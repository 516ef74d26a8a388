#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import WireProtocol

/// Clients that create and list customers, potential records and contracts through the gateway,
/// each request on a new connection, until stopped; and what they saw. A failure is sorted by
/// where it happened: the connection refused (nobody accepting: must never happen), lost after
/// the request was sent (in flight on a killed gateway: the write's outcome is unknown), or an
/// HTTP error answer.
final class LoadRun: @unchecked Sendable {
    enum Kind: String, CaseIterable, Sendable {
        case customer, potential, contract
        var path: String {
            switch self {
            case .customer: return "/api/customers/customers"
            case .potential: return "/api/record/potential"
            case .contract: return "/api/contract/contract"
            }
        }
    }

    let system: SystemHarness
    let token: String
    let tag: String
    let organization: Int64
    let workers: Int
    private let lock = NSLock()
    private var requestCount = 0
    private var slowestSeconds = 0.0
    private var acked: [Kind: [Int64]] = [:]
    private var unknownOutcome: [Kind: Int] = [:]
    private var lost = 0
    private var refusedCount = 0
    private var errorAnswers: [String] = []
    private let stopFlag = StopFlag()
    private let group = DispatchGroup()

    /// Makes the organization the records and contracts belong to (one per run, so the stored
    /// ones can be counted).
    init(system: SystemHarness, workers: Int = 8) throws {
        self.system = system
        self.workers = workers
        token = try system.login()
        tag = "load-\(UInt32.random(in: 0...UInt32.max))"
        let created = try system.post("/api/customers/organization", json: ["groupName": .string(tag)], token: token)
        guard let id = created.json["data"]?["id"]?.intValue else { throw HarnessError("organization: \(created.text)") }
        organization = id
    }

    func start() {
        for worker in 0..<workers {
            DispatchQueue.global().async(group: group) { [self] in run(worker) }
        }
    }

    /// Stops the clients and waits for them (each finishes the request it is in).
    func stop() {
        stopFlag.set()
        _ = group.wait(timeout: .now() + 120)
    }

    private func run(_ worker: Int) {
        var i = 0
        while !stopFlag.isSet {
            let kind = Kind.allCases[(i / 2 + worker) % Kind.allCases.count]
            let write = i % 2 == 0
            let body: JSON
            switch kind {
            case .customer: body = ["realName": .string("\(tag)-\(worker)-\(i)")]
            case .potential: body = ["organization_id": .int(organization), "director_id": 1, "record_time": .string(Timestamp.now())]
            case .contract: body = ["organization_id": .int(organization), "name": .string("\(tag)-\(worker)-\(i)"), "sign_time": .string(Timestamp.now())]
            }
            let target = kind == .customer ? "\(kind.path)?name=\(tag)&count=5" : "\(kind.path)?organization_id=\(organization)&count=5"
            let started = Date()
            let client: HTTPTestClient
            do {
                client = try system.client()
            } catch {
                lock.withLock { requestCount += 1; refusedCount += 1 }
                i += 1
                continue
            }
            do {
                let response = write
                    ? try client.request("POST", kind.path, body: body.serialized(), contentType: "application/json", token: token)
                    : try client.request("GET", target, token: token)
                let seconds = Date().timeIntervalSince(started)
                lock.withLock {
                    requestCount += 1
                    slowestSeconds = max(slowestSeconds, seconds)
                    if response.status != 200 {
                        errorAnswers.append("\(write ? "POST" : "GET") \(kind.path): \(response.status) \(response.text.prefix(200))")
                    } else if write, let id = response.json["data"]?["id"]?.intValue {
                        acked[kind, default: []].append(id)
                    } else if write {
                        errorAnswers.append("POST \(kind.path) answered 200 without an id: \(response.text.prefix(200))")
                    }
                }
            } catch {
                lock.withLock {
                    requestCount += 1
                    lost += 1
                    if write { unknownOutcome[kind, default: 0] += 1 }
                }
            }
            i += 1
        }
    }

    var requests: Int { lock.withLock { requestCount } }
    var slowest: Double { lock.withLock { slowestSeconds } }
    var refused: Int { lock.withLock { refusedCount } }
    /// Requests whose connection was lost after they were sent.
    var lostInFlight: Int { lock.withLock { lost } }
    var errors: [String] { lock.withLock { errorAnswers } }
    func acknowledged(_ kind: Kind) -> [Int64] { lock.withLock { acked[kind] ?? [] } }
    func unknown(_ kind: Kind) -> Int { lock.withLock { unknownOutcome[kind] ?? 0 } }

    /// Every stored row of `kind` this run made (ids), read page by page.
    func stored(_ kind: Kind) throws -> [Int64] {
        var ids: [Int64] = []
        var page = 1
        while true {
            let target = kind == .customer ? "\(kind.path)?name=\(tag)&count=100&page=\(page)" : "\(kind.path)?organization_id=\(organization)&count=100&page=\(page)"
            let response = try system.get(target, token: token)
            guard response.status == 200, let items = response.json["data"]?.arrayValue else { throw HarnessError("\(target): \(response.text)") }
            ids += items.compactMap { $0["id"]?.intValue }
            if items.count < 100 { return ids }
            page += 1
        }
    }

    /// Asserts that every acknowledged write is stored exactly once, and that beyond them only
    /// writes whose outcome the client could not know are.
    func assertWritesExactlyOnce(file: StaticString = #filePath, line: UInt = #line) throws {
        for kind in Kind.allCases {
            let acks = acknowledged(kind)
            let stored = try self.stored(kind)
            XCTAssertEqual(Set(acks).count, acks.count, "\(kind): each acknowledged write has its own id", file: file, line: line)
            XCTAssertEqual(Set(stored).count, stored.count, "\(kind): no row listed twice", file: file, line: line)
            XCTAssertTrue(Set(acks).isSubset(of: Set(stored)), "\(kind): every acknowledged write is stored (\(Set(acks).subtracting(stored).count) missing)", file: file, line: line)
            XCTAssertLessThanOrEqual(stored.count, acks.count + unknown(kind), "\(kind): nothing stored twice or from nowhere", file: file, line: line)
        }
    }

    var summary: String {
        "requests \(requests), error answers \(errors.count), refused \(refused), lost in flight \(lostInFlight), slowest \(String(format: "%.3f", slowest)) s, "
            + Kind.allCases.map { "\($0.rawValue) writes \(acknowledged($0).count)" }.joined(separator: ", ")
    }
}
