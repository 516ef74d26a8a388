import XCTest
import ServiceKit
@testable import RecordService
import WireProtocol

/// RecordService's rules in process (`ServiceTester`): defaults, validation, operator rules.
/// The copies are filled directly, as their projections would.
final class RecordRuleTests: XCTestCase {
}
