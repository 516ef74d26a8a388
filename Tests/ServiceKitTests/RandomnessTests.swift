#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ServiceKit

/// Tokens and generated passwords never come from weak randomness: a failing or short source
/// is an error (503), not zero-filled bytes.
final class RandomnessTests: XCTestCase {
    func testFailingRandomSourceThrowsInsteadOfAnsweringZeros() {
        let failing: (UnsafeMutableRawPointer, Int) -> Int = { _, _ in errno = EIO; return -1 }
        XCTAssertThrowsError(try SessionToken.randomBytes(32, fill: failing)) { error in
            XCTAssertEqual((error as? APIError)?.status, 503)
        }
        XCTAssertThrowsError(try SessionToken.randomPassword(length: 12, fill: failing))

        // Gives half, then nothing: a partly filled buffer is never answered.
        var calls = 0
        let short: (UnsafeMutableRawPointer, Int) -> Int = { buffer, length in
            calls += 1
            guard calls == 1 else { return 0 }
            memset(buffer, 0xAB, length / 2)
            return length / 2
        }
        XCTAssertThrowsError(try SessionToken.randomBytes(32, fill: short))

        // Claims more than asked for.
        XCTAssertThrowsError(try SessionToken.randomBytes(8) { _, length in length + 1 })
    }

    func testShortReadsAndInterruptionsAreCompleted() throws {
        var next: UInt8 = 1
        var interrupted = false
        let trickle: (UnsafeMutableRawPointer, Int) -> Int = { buffer, _ in
            if !interrupted { interrupted = true; errno = EINTR; return -1 }
            buffer.storeBytes(of: next, as: UInt8.self)
            next += 1
            return 1
        }
        XCTAssertEqual(try SessionToken.randomBytes(5, fill: trickle), [1, 2, 3, 4, 5])
        XCTAssertEqual(try SessionToken.randomPassword(length: 16).count, 16)
        XCTAssertNotEqual(try SessionToken.generate(), try SessionToken.generate())
    }
}
