import XCTest

@testable import WireProtocol

final class FrameDecoderTests: XCTestCase {
    /// Builds a frame by hand (independent of `FrameEncoder`).
    private func frame(_ payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
            + payload
    }

    private func prefix(_ length: UInt32) -> [UInt8] {
        [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
    }

    /// Calls `nextFrame()` until it returns nil.
    private func drain(_ decoder: inout FrameDecoder) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let payload = try decoder.nextFrame() { frames.append(payload) }
        return frames
    }

    /// `completeFrame(in:)` finds a whole frame where it lies and leaves everything else (too
    /// short, over the limit) to the buffer; `isAtFrameStart` says when it may be used.
    func testCompleteFramesAreFoundInPlace() throws {
        var decoder = FrameDecoder(maxFrameLength: 10)
        let stream = frame(Array("abc".utf8)) + frame([]) + frame(Array("0123456789".utf8)) + [0, 0]
        try stream.withUnsafeBytes { bytes in
            var at = 0
            var payloads: [[UInt8]] = []
            while let found = decoder.completeFrame(in: UnsafeRawBufferPointer(rebasing: bytes[at...])) {
                payloads.append(Array(found.payload))
                at += found.end
            }
            XCTAssertEqual(payloads, [Array("abc".utf8), [], Array("0123456789".utf8)])
            XCTAssertEqual(at, stream.count - 2, "the partial prefix is left")
            XCTAssertTrue(decoder.isAtFrameStart)
            decoder.feed(UnsafeRawBufferPointer(rebasing: bytes[at...]))
            XCTAssertFalse(decoder.isAtFrameStart, "a part of a frame is buffered")
            XCTAssertNil(try decoder.nextFrame())
        }
        XCTAssertNil(decoder.completeFrame(in: UnsafeRawBufferPointer(start: nil, count: 0)))
        frame(Array("01234567890".utf8)).withUnsafeBytes { bytes in
            XCTAssertNil(decoder.completeFrame(in: bytes), "over the limit: the buffer decides")
        }
        decoder.feed([0, 3, 0x61, 0x62, 0x63])  // the rest of the buffered [0, 0] prefix, then "abc"
        XCTAssertEqual(try decoder.withNextFrame { Array($0) }, Array("abc".utf8), "read in place from the buffer")
        XCTAssertTrue(decoder.isAtFrameStart)
        decoder.feed(prefix(11))
        XCTAssertThrowsError(try decoder.withNextFrame { Array($0) })
        XCTAssertFalse(decoder.isAtFrameStart, "a failed decoder takes nothing more")
    }

    func testOneByteAtATime() throws {
        let payload = Array(#"{"op":"ping","text":"你好"}"#.utf8)
        let stream = frame(payload)
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        for (index, byte) in stream.enumerated() {
            decoder.feed([byte])
            frames += try drain(&decoder)
            if index < stream.count - 1 {
                XCTAssertTrue(frames.isEmpty, "no frame before the last byte (at \(index))")
                XCTAssertEqual(decoder.bufferedByteCount, index + 1)
            }
        }
        XCTAssertEqual(frames, [payload])
        XCTAssertEqual(decoder.bufferedByteCount, 0)
    }

    func testTwoFramesSplitAtEveryPosition() throws {
        let first = Array(#"{"a":1}"#.utf8)
        let second = Array(#"{"b":"second frame"}"#.utf8)
        let stream = frame(first) + frame(second)

        // Coalesced into one feed.
        var whole = FrameDecoder()
        whole.feed(stream)
        XCTAssertEqual(try drain(&whole), [first, second])

        // Split into two feeds at every position, draining after each feed.
        for split in 0...stream.count {
            var decoder = FrameDecoder()
            decoder.feed(Array(stream[..<split]))
            var frames = try drain(&decoder)
            stream[split...].withUnsafeBytes { decoder.feed($0) }  // the raw-buffer overload
            frames += try drain(&decoder)
            XCTAssertEqual(frames, [first, second], "split at \(split)")
            XCTAssertEqual(decoder.bufferedByteCount, 0)
        }
    }

    func testOversizedLengthThrowsBeforePayload() {
        var decoder = FrameDecoder()
        decoder.feed(prefix(20_000_000))  // only the prefix: no payload has arrived
        XCTAssertThrowsError(try decoder.nextFrame()) { error in
            XCTAssertEqual(error as? FrameError, FrameError(reason: "frame length 20000000 exceeds maximum 16777216"))
        }
        XCTAssertEqual(decoder.bufferedByteCount, 0)
    }

    func testOversizedLengthPartialPrefixWaits() throws {
        var decoder = FrameDecoder()
        decoder.feed([0xFF, 0xFF, 0xFF])
        XCTAssertNil(try decoder.nextFrame())
        decoder.feed([0xFF])
        XCTAssertThrowsError(try decoder.nextFrame()) { error in
            XCTAssertEqual((error as? FrameError)?.reason, "frame length 4294967295 exceeds maximum 16777216")
        }
    }

    func testCustomMaximum() throws {
        var decoder = FrameDecoder(maxFrameLength: 10)
        XCTAssertEqual(decoder.maxFrameLength, 10)
        let ten = [UInt8](repeating: 0x41, count: 10)
        decoder.feed(frame(ten))
        XCTAssertEqual(try decoder.nextFrame(), ten)
        decoder.feed(prefix(11))
        XCTAssertThrowsError(try decoder.nextFrame()) { error in
            XCTAssertEqual((error as? FrameError)?.reason, "frame length 11 exceeds maximum 10")
        }
        XCTAssertEqual(FrameDecoder.defaultMaxFrameLength, 16_777_216)
    }

    func testDefaultMaximumIsInclusive() throws {
        var decoder = FrameDecoder()
        decoder.feed(prefix(UInt32(FrameDecoder.defaultMaxFrameLength)))
        XCTAssertNil(try decoder.nextFrame(), "a frame of exactly the maximum is accepted and awaited")
    }

    func testZeroLengthFrame() throws {
        var decoder = FrameDecoder()
        decoder.feed(prefix(0) + frame([0x7B, 0x7D]) + prefix(0))
        XCTAssertEqual(try decoder.nextFrame(), [])
        XCTAssertEqual(try decoder.nextFrame(), [0x7B, 0x7D])
        XCTAssertEqual(try decoder.nextFrame(), [])
        XCTAssertNil(try decoder.nextFrame())
    }

    func testErrorIsSticky() throws {
        var decoder = FrameDecoder(maxFrameLength: 4)
        let good = frame([1, 2, 3])
        decoder.feed(good + prefix(5) + [1, 2, 3, 4, 5] + good)
        // Frames before the bad prefix are still delivered.
        XCTAssertEqual(try decoder.nextFrame(), [1, 2, 3])
        let expected = FrameError(reason: "frame length 5 exceeds maximum 4")
        for _ in 0..<3 {
            XCTAssertThrowsError(try decoder.nextFrame()) { error in
                XCTAssertEqual(error as? FrameError, expected)
            }
        }
        decoder.feed(good)  // ignored after failure
        XCTAssertEqual(decoder.bufferedByteCount, 0)
        XCTAssertThrowsError(try decoder.nextFrame()) { error in
            XCTAssertEqual(error as? FrameError, expected)
        }
    }

    func testEncoderOutputDecodesBack() throws {
        let json: JSON = ["op": "customer.create", "id": 42, "name": "赵六 😀", "tags": ["a", "b"], "score": 2.5, "vip": true]
        let encoded = FrameEncoder.encode(json)
        let serialized = json.serialized()
        XCTAssertEqual(Array(encoded[..<4]), prefix(UInt32(serialized.count)))
        XCTAssertEqual(Array(encoded[4...]), serialized)

        let payload = Array("hello".utf8)
        XCTAssertEqual(FrameEncoder.encode(payload), [0, 0, 0, 5] + payload)
        XCTAssertEqual(FrameEncoder.encode([]), [0, 0, 0, 0])

        var decoder = FrameDecoder()
        decoder.feed(encoded + FrameEncoder.encode(payload))
        let decoded = try XCTUnwrap(try decoder.nextFrame())
        XCTAssertEqual(try JSONParser.parse(decoded), json)
        XCTAssertEqual(try decoder.nextFrame(), payload)
        XCTAssertNil(try decoder.nextFrame())

        // A length needing all four prefix bytes.
        let big = [UInt8](repeating: 0x20, count: 0x01_02_03)
        XCTAssertEqual(Array(FrameEncoder.encode(big)[..<4]), [0x00, 0x01, 0x02, 0x03])
    }

    func testThousandFramesInOneBuffer() throws {
        var stream: [UInt8] = []
        var expected: [[UInt8]] = []
        for index in 0..<1_000 {
            let payload = JSON.object(["seq": .int(Int64(index)), "pad": .string(String(repeating: "x", count: index % 37))])
                .serialized()
            expected.append(payload)
            stream += frame(payload)
        }
        var decoder = FrameDecoder()
        decoder.feed(stream)
        XCTAssertEqual(try drain(&decoder), expected)
        XCTAssertEqual(decoder.bufferedByteCount, 0)
    }

    func testSmallChunksAcrossCompaction() throws {
        // Enough data that the consumed prefix crosses the compaction threshold many times.
        var stream: [UInt8] = []
        var expected: [[UInt8]] = []
        for index in 0..<400 {
            let payload = [UInt8](repeating: UInt8(index % 251), count: 50 + index % 90)
            expected.append(payload)
            stream += frame(payload)
        }
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + 7, stream.count)
            decoder.feed(Array(stream[offset..<end]))
            // Drain only every few chunks so unread bytes pile up.
            if offset % 3 == 0 || end == stream.count { frames += try drain(&decoder) }
            offset = end
        }
        frames += try drain(&decoder)
        XCTAssertEqual(frames, expected)
        XCTAssertEqual(decoder.bufferedByteCount, 0)
    }
}
