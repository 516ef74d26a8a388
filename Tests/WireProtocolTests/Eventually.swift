import Synchronization

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; answers whether it held.
func eventually(timeout: Double = 5, _ condition: () throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(timeout * 1000))
    while clock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// A flag set from any thread (e.g. by a handler, to say a request arrived).
final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
