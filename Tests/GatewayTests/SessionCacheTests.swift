@testable import Gateway
import WireProtocol
import XCTest

/// The gateway's session cache with an explicit clock: trust time, the outage fallback window,
/// shared lookups, and revocations that must win over answers already on their way.
final class SessionCacheTests: XCTestCase {
    let alice = Caller(id: 1, role: 2)
    let bob = Caller(id: 2, role: 1)

    func cache() -> SessionCache { SessionCache(ttlMillis: 1_000, staleMillis: 300_000) }

    func vouched(_ caller: Caller) -> Result<Authenticated, AuthFailure> {
        .success(Authenticated(caller: caller, fromFallback: false))
    }

    /// Asks for `token` and answers at `now`, as the gateway does after UserService replied.
    func validate(_ cache: SessionCache, _ token: String, _ caller: Caller, now: Int64) {
        XCTAssertTrue(cache.addWaiter(token) { _ in })
        cache.resolve(token, vouched(caller), now: now)
    }

    func testTrustedForTheTTLThenOnlyStale() {
        let cache = cache()
        validate(cache, "t", alice, now: 10_000)
        XCTAssertEqual(cache.lookup("t", now: 10_000), alice)
        XCTAssertEqual(cache.lookup("t", now: 10_999), alice)
        XCTAssertNil(cache.lookup("t", now: 11_000), "past the trust time UserService is asked again")
        XCTAssertEqual(cache.lookupStale("t", now: 11_000), alice, "but the fallback still knows it")
        XCTAssertEqual(cache.lookupStale("t", now: 309_999), alice)
        XCTAssertNil(cache.lookupStale("t", now: 310_000))
        XCTAssertNil(cache.lookup("other", now: 10_000))
        XCTAssertNil(cache.lookupStale("other", now: 10_000))
    }

    func testStaleWindowIsNeverShorterThanTheTTL() {
        let cache = SessionCache(ttlMillis: 5_000, staleMillis: 1_000)
        XCTAssertEqual(cache.staleMillis, 5_000)
    }

    func testEvictionForgetsOnlyWhatIsPastTheStaleWindow() {
        let cache = cache()
        validate(cache, "old", alice, now: 0)
        validate(cache, "new", bob, now: 200_000)
        cache.evictExpired(now: 300_000)
        XCTAssertEqual(cache.count, 1)
        XCTAssertNil(cache.lookupStale("old", now: 0))
        XCTAssertEqual(cache.lookupStale("new", now: 300_000), bob)
    }

    func testConcurrentLookupsOfOneTokenShareOneQuestion() {
        let cache = cache()
        var answers: [String] = []
        XCTAssertTrue(cache.addWaiter("t") { answers.append("first \((try? $0.get())?.caller.id ?? -1)") }, "the first asks UserService")
        XCTAssertFalse(cache.addWaiter("t") { answers.append("second \((try? $0.get())?.caller.id ?? -1)") }, "the second waits for that answer")
        XCTAssertTrue(cache.addWaiter("u") { _ in answers.append("other token") }, "another token is another question")
        cache.resolve("t", vouched(alice), now: 0)
        XCTAssertEqual(answers, ["first 1", "second 1"], "both answered, in order, by one resolve")
        XCTAssertTrue(cache.addWaiter("t") { _ in }, "once answered, a new lookup asks again")
    }

    func testRefusalsAndFallbackAnswersAreNotCached() {
        let cache = cache()
        XCTAssertTrue(cache.addWaiter("refused") { _ in })
        cache.resolve("refused", .failure(AuthFailure(response: HTTPResponse.error(401, "not logged in"))), now: 0)
        XCTAssertNil(cache.lookupStale("refused", now: 0))

        XCTAssertTrue(cache.addWaiter("fallback") { _ in })
        cache.resolve("fallback", .success(Authenticated(caller: alice, fromFallback: true)), now: 0)
        XCTAssertNil(cache.lookupStale("fallback", now: 0), "a fallback answer must not refresh the entry")

        validate(cache, "forgotten", alice, now: 0)
        cache.forget("forgotten")
        XCTAssertNil(cache.lookupStale("forgotten", now: 0))
        XCTAssertEqual(cache.count, 0)
    }

    func testDropEmployeesForgetsEverySessionOfThoseEmployeesOnly() {
        let cache = cache()
        validate(cache, "a1", alice, now: 0)
        validate(cache, "a2", alice, now: 0)
        validate(cache, "b", bob, now: 0)
        cache.dropEmployees([alice.id])
        XCTAssertNil(cache.lookupStale("a1", now: 0))
        XCTAssertNil(cache.lookupStale("a2", now: 0))
        XCTAssertEqual(cache.lookup("b", now: 0), bob)
        cache.dropEmployees([])
        XCTAssertEqual(cache.lookup("b", now: 0), bob, "an empty drop changes nothing")
    }

    func testAnAnswerToAQuestionAskedBeforeADropIsPassedOnButNotCached() {
        let cache = cache()
        var passedOn: Caller?
        XCTAssertTrue(cache.addWaiter("t") { passedOn = try? $0.get().caller })
        // The revocation arrives while UserService's answer (given before it) is on its way.
        cache.dropEmployees([alice.id])
        cache.resolve("t", vouched(alice), now: 0)
        XCTAssertEqual(passedOn, alice, "the waiting request gets its answer")
        XCTAssertNil(cache.lookupStale("t", now: 0), "but the answer may predate the revocation: not cached")

        // Asked after the drop: cached as usual.
        validate(cache, "t", alice, now: 0)
        XCTAssertEqual(cache.lookup("t", now: 0), alice)
    }

    func testADropOfAnotherEmployeeDoesNotKeepAnAnswerOut() {
        let cache = cache()
        XCTAssertTrue(cache.addWaiter("t") { _ in })
        cache.dropEmployees([bob.id])
        cache.resolve("t", vouched(alice), now: 0)
        XCTAssertEqual(cache.lookup("t", now: 0), alice)
    }

    func testQuestionsAskedBeforeTheDropRecordWasClearedAreNeverCached() {
        let cache = cache()
        XCTAssertTrue(cache.addWaiter("early") { _ in })
        // Past 100,000 dropped employees the record is cleared; what was asked before cannot be
        // checked against it any more, so it is not cached.
        cache.dropEmployees(Set(1_000...100_999))
        cache.dropEmployees([5])
        cache.resolve("early", vouched(alice), now: 0)
        XCTAssertNil(cache.lookupStale("early", now: 0))
        validate(cache, "late", alice, now: 0)
        XCTAssertEqual(cache.lookup("late", now: 0), alice)
    }
}
