// libFuzzer target: FrameDecoder (Sources/WireProtocol/FrameDecoder.swift).
// Invariants beyond "no crash":
// - the same bytes fed at once, in two parts, in random chunks (which crosses the 4 KiB
//   compaction threshold on long inputs) and byte by byte give the same frames and the same error;
// - no frame is longer than the limit; without an error, the frames re-encoded with
//   FrameEncoder are exactly the input's prefix and `bufferedByteCount` is the rest;
// - an error stays: later calls throw it again, even after more bytes.

private struct Outcome: Equatable {
    var frames: [[UInt8]] = []
    var error: FrameError?
    var buffered = 0
}

private func decode(_ input: [UInt8], in ranges: [Range<Int>], maxFrameLength: Int) -> Outcome {
    var decoder = FrameDecoder(maxFrameLength: maxFrameLength)
    var outcome = Outcome()
    feeding: for range in ranges {
        if range.count.isMultiple(of: 2) {
            decoder.feed(Array(input[range]))
        } else {
            input[range].withUnsafeBytes { decoder.feed($0) }
        }
        do {
            while let frame = try decoder.nextFrame() {
                invariant(frame.count <= maxFrameLength, "frame of \(frame.count) bytes")
                outcome.frames.append(frame)
            }
        } catch {
            outcome.error = error
            break feeding
        }
    }
    outcome.buffered = decoder.bufferedByteCount
    if let error = outcome.error {
        decoder.feed([0, 0, 0, 0])
        do {
            _ = try decoder.nextFrame()
            invariant(false, "a failed decoder returned a frame")
        } catch {
            invariant(error == outcome.error, "a failed decoder threw \(error), not \(outcome.error!)")
        }
    } else {
        let encoded = outcome.frames.flatMap { FrameEncoder.encode($0) }
        invariant(encoded.count + outcome.buffered == input.count, "\(encoded.count) framed + \(outcome.buffered) buffered != \(input.count)")
        invariant(encoded[...] == input[..<encoded.count], "re-encoded frames differ from the input")
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    let seed = fuzzHash(input)
    // A small limit reaches the "too long" path; the default one the normal path.
    for maxFrameLength in [Int(seed % 300), FrameDecoder.defaultMaxFrameLength] {
        let whole = decode(input, in: [0..<input.count], maxFrameLength: maxFrameLength)
        let split = input.isEmpty ? 0 : Int((seed >> 9) % UInt64(input.count + 1))
        let halves = decode(input, in: [0..<split, split..<input.count], maxFrameLength: maxFrameLength)
        invariant(halves == whole, "split at \(split) differs")
        let chunked = decode(input, in: fuzzChunks(count: input.count, seed: seed), maxFrameLength: maxFrameLength)
        invariant(chunked == whole, "random chunks differ")
        if input.count <= 2048 {
            let bytewise = decode(input, in: input.indices.map { $0..<($0 + 1) }, maxFrameLength: maxFrameLength)
            invariant(bytewise == whole, "byte by byte differs")
        }
    }
    return 0
}
