// Shared by every fuzz target (compiled into each one; see scripts/fuzz.sh).

/// The fuzzer's input as an array.
func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A deterministic 64-bit hash of the input (FNV-1a): chooses split points and chunk sizes,
/// so a crash reproduces from the input file alone.
func fuzzHash(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}

/// Chunk lengths covering `count` bytes, drawn from `seed` (1…64 bytes each, sometimes larger).
func fuzzChunks(count: Int, seed: UInt64) -> [Range<Int>] {
    var state = seed | 1
    var ranges: [Range<Int>] = []
    var start = 0
    while start < count {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        let length = state % 8 == 0 ? Int((state >> 8) % 4096) + 1 : Int((state >> 8) % 64) + 1
        let end = min(count, start + length)
        ranges.append(start..<end)
        start = end
    }
    return ranges
}

/// Stops the run with a message libFuzzer reports as a crash (the input is saved).
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant violated: \(message())") }
}
