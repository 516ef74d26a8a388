import XCTest

/// A test class that shares one running system (started once per class from the real
/// executables) between its tests.
class SystemTestCase: XCTestCase {
    nonisolated(unsafe) private static var systems: [ObjectIdentifier: SystemHarness] = [:]
    nonisolated(unsafe) private static var failures: [ObjectIdentifier: String] = [:]

    /// Extra environment of the class's system (limits, log level…); none by default.
    class var environment: [String: String] { [:] }

    override class func setUp() {
        super.setUp()
        do {
            systems[ObjectIdentifier(self)] = try SystemHarness(extraEnvironment: environment)
        } catch {
            failures[ObjectIdentifier(self)] = "\(error)"
        }
    }

    override class func tearDown() {
        systems.removeValue(forKey: ObjectIdentifier(self))?.stop()
        super.tearDown()
    }

    /// The running system; a test fails (rather than skips) when it could not start.
    var system: SystemHarness {
        get throws {
            let key = ObjectIdentifier(type(of: self))
            guard let system = Self.systems[key] else {
                throw HarnessError("the system did not start: \(Self.failures[key] ?? "unknown reason")")
            }
            return system
        }
    }
}
