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
}
