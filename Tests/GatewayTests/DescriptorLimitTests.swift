#if canImport(Glibc)
import Glibc
#endif
@testable import Gateway
import XCTest

/// The gateway raises a low soft open-file limit (e.g. systemd's 1,024) so that
/// `maxConnections`, not the descriptor limit, bounds its clients; it never goes past the hard
/// limit and never lowers the soft one.
final class DescriptorLimitTests: XCTestCase {
    var original = rlimit()

    override func setUpWithError() throws {
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        try XCTSkipIf(original.rlim_max != DescriptorLimit.unlimited && original.rlim_max < 2_048, "hard limit \(original.rlim_max) too low to test")
    }

    override func tearDown() {
        var restored = original
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restored), 0)
    }

    private func setSoft(_ soft: Int) {
        var limit = original
        limit.rlim_cur = rlim_t(soft)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit), 0)
    }

    func testALowSoftLimitIsRaisedToWhatIsNeeded() {
        setSoft(1_024)
        XCTAssertEqual(DescriptorLimit.raise(toAtLeast: 2_000), 2_000)
        XCTAssertEqual(DescriptorLimit.current, 2_000)
    }

    func testAHigherSoftLimitIsKept() {
        setSoft(1_800)
        XCTAssertEqual(DescriptorLimit.raise(toAtLeast: 1_000), 1_800)
        XCTAssertEqual(DescriptorLimit.current, 1_800)
    }

    func testTheHardLimitIsTheCeiling() throws {
        try XCTSkipIf(original.rlim_max == DescriptorLimit.unlimited || original.rlim_max >= rlim_t(Int.max / 2), "no finite hard limit")
        setSoft(1_024)
        let hard = Int(original.rlim_max)
        XCTAssertEqual(DescriptorLimit.raise(toAtLeast: hard + 1_000), hard)
        XCTAssertEqual(DescriptorLimit.current, hard)
    }
}
