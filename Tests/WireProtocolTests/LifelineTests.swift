#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import XCTest
@testable import WireProtocol

/// The launcher's lifeline, both ends in this process.
final class LifelineTests: XCTestCase {
    /// A child's watch fires when no process holds the launcher's end any more, not before.
    func testTheWatchFiresOnceTheLauncherEndCloses() async throws {
        let lifeline = try Lifeline()
        let given = dup(lifeline.given)
        defer { close(given) }
        let lost = Flag()
        let watch = Lifeline.watch(given, queue: DispatchQueue(label: "lifeline-test")) { lost.set() }
        defer { watch.cancel() }
        // Nothing happens while the launcher's end is open: give the watch time to misfire.
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertFalse(lost.isSet)
        close(lifeline.held)
        let fired = await eventually { lost.isSet }
        XCTAssertTrue(fired, "end of file on the child's end")
    }

    /// A child that refuses its configuration sends why; the launcher reads it by the child's pid, once.
    func testAReportReachesTheLauncherByPid() throws {
        let lifeline = try Lifeline()
        setenv(Lifeline.environmentKey, String(lifeline.given), 1)
        defer { unsetenv(Lifeline.environmentKey) }
        Lifeline.report("readers '0' is not a number from 1 to 16")
        XCTAssertNil(lifeline.reason(of: getpid() + 1))
        XCTAssertEqual(lifeline.reason(of: getpid()), "readers '0' is not a number from 1 to 16")
        XCTAssertNil(lifeline.reason(of: getpid()), "answered once")
        unsetenv(Lifeline.environmentKey)
        Lifeline.report("without a lifeline nothing is sent")
        XCTAssertNil(lifeline.reason(of: getpid()))
    }

    /// A child that serves says so; the launcher knows it by the child's pid until the child
    /// exits, and neither kind of record is taken for the other.
    func testReadyReachesTheLauncherByPidUntilForgotten() throws {
        let lifeline = try Lifeline()
        setenv(Lifeline.environmentKey, String(lifeline.given), 1)
        defer { unsetenv(Lifeline.environmentKey) }
        XCTAssertFalse(lifeline.isReady(getpid()))
        Lifeline.ready()
        XCTAssertTrue(lifeline.isReady(getpid()))
        XCTAssertTrue(lifeline.isReady(getpid()), "asked again: still ready")
        XCTAssertFalse(lifeline.isReady(getpid() + 1))
        XCTAssertNil(lifeline.reason(of: getpid()), "ready is no refusal")
        Lifeline.report("a reason")
        XCTAssertEqual(lifeline.reason(of: getpid()), "a reason")
        lifeline.forget(getpid())
        XCTAssertFalse(lifeline.isReady(getpid()), "forgotten at its exit")

        // Records of another shape (an older child's, a stray write) are dropped.
        for junk in ["no newline", "12\nno kind", "x ready\n", "0 ready\n", "\(getpid()) hello\n"] {
            let bytes = Array(junk.utf8)
            XCTAssertEqual(bytes.withUnsafeBytes { send(lifeline.given, $0.baseAddress, $0.count, 0) }, bytes.count)
        }
        XCTAssertFalse(lifeline.isReady(getpid()))
        XCTAssertNil(lifeline.reason(of: getpid()))
        XCTAssertNil(lifeline.reason(of: 12))
    }
}
