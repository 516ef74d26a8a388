#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// Something registered with an event loop for readiness of one descriptor.
/// Called on the loop's thread only.
public protocol EventHandler: AnyObject {
    func handleEvents(_ events: UInt32)
}

/// One epoll loop on its own thread (never Swift's cooperative pool).
///
/// Everything registered with a loop — connections, listeners, timers — is touched only on the
/// loop's thread; other threads hand work over with `execute`. That confinement is what the
/// `@unchecked Sendable` conformances of the types built on it rely on.
///
/// The stored properties of loop-confined types that every request touches are marked
/// `@exclusivity(unchecked)`: only the loop thread touches them and no method keeps an access to
/// one open across a call that can reach it again, so the runtime's per-access exclusivity check
/// (about a fifth of the gateway's instructions per request) bought nothing there.
public final class EventLoop: @unchecked Sendable {
    public typealias Task = @Sendable () -> Void

    private let epfd: Int32
    private let wakeFd: Int32
    private let queue = Mutex<[Task]>([])
    private let stopped = Atomic<Bool>(false)
    /// Handlers by descriptor number (descriptors are small and dense: an array, not a hash).
    @exclusivity(unchecked) private var handlers: [EventHandler?] = []
    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var nextTimerID: UInt64 = 1
    @exclusivity(unchecked) private var cancelledTimers: Set<UInt64> = []
    /// Connections with output queued during this iteration, written once it ends.
    @exclusivity(unchecked) private var pendingFlushes: [StreamConnection] = []
    /// The flushes being run (`runFlushes`), swapped with `pendingFlushes`: neither array is
    /// copied or allocated anew per iteration.
    @exclusivity(unchecked) private var flushing: [StreamConnection] = []
    /// `monotonicMillis()` as of this iteration's wake-up (`now`).
    @exclusivity(unchecked) private var iterationMillis = monotonicMillis()
    private let threadID = Mutex<pthread_t?>(nil)
    public let name: String
    /// The one buffer every `StreamConnection` on this loop receives into. Its bytes are valid
    /// only during a `didRead` call (delegates copy what they keep), and the loop's thread runs
    /// one handler at a time, so a thousand idle connections cost no read buffer of their own.
    let readBuffer: UnsafeMutableRawBufferPointer
    static let readBufferBytes = 64 * 1024

    public init(name: String) throws(SyscallError) {
        self.name = name
        epfd = try syscallChecked("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        let efd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if efd < 0 {
            let code = errno
            close(epfd)
            throw SyscallError(call: "eventfd", errno: code)
        }
        wakeFd = efd
        readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: EventLoop.readBufferBytes, alignment: 16)
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.fd = wakeFd
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFd, &ev)
    }

    deinit {
        readBuffer.deallocate()
        close(wakeFd)
        close(epfd)
    }

    /// Starts a loop on a new thread of its own and returns it.
    public static func start(name: String) throws(SyscallError) -> EventLoop {
        let loop = try EventLoop(name: name)
        // A plain pthread (not Foundation's Thread): keeps Foundation out of every service binary.
        let context = Unmanaged.passRetained(loop).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let loop = Unmanaged<EventLoop>.fromOpaque(raw).takeRetainedValue()
            _ = crm_set_thread_name(String(loop.name.prefix(15)))
            loop.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<EventLoop>.fromOpaque(context).release()
            throw SyscallError(call: "pthread_create", errno: rc)
        }
        pthread_detach(thread)
        return loop
    }

    /// True on the loop's own thread.
    public var inEventLoop: Bool {
        guard let owner = threadID.withLock({ $0 }) else { return false }
        return pthread_equal(owner, pthread_self()) != 0
    }

    /// Stops a debug build (tests) when called off the loop's thread: state confined to the loop
    /// (`StreamConnection`'s buffers, marked `@unchecked Sendable` and without exclusivity
    /// checks) is checked at run time rather than trusted, as NIO's `assertInEventLoop` does.
    /// Costs nothing in release builds.
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "called off the event loop's thread", file: file, line: line)
    }

    /// The monotonic clock in milliseconds as of this iteration's wake-up, for per-request
    /// bookkeeping (a connection's last activity, a request's duration, write progress): read
    /// once per iteration instead of once per use, as nginx caches its time. It lags the clock
    /// by at most the iteration's own work. Loop thread only.
    public var now: Int64 {
        assertInEventLoop()
        return iterationMillis
    }

    /// Runs `task` on the loop's thread, soon.
    public func execute(_ task: @escaping Task) {
        // Only the task that makes the queue non-empty wakes the loop: the loop takes the whole
        // queue at once, so later ones ride on that wake-up (one eventfd write per batch of
        // answers, not one per answer).
        let wasEmpty = queue.withLock { queue -> Bool in
            queue.append(task)
            return queue.count == 1
        }
        guard wasEmpty else { return }
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    /// Stops the loop after the current iteration.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    // MARK: Registration (loop thread only)

    public func register(fd: Int32, events: UInt32, handler: EventHandler) throws(SyscallError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        try syscallChecked("epoll_ctl") { epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) }
        let slot = Int(fd)
        if slot >= handlers.count { handlers.append(contentsOf: repeatElement(nil, count: max(slot + 1, 2 * handlers.count) - handlers.count)) }
        handlers[slot] = handler
    }

    public func modify(fd: Int32, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        _ = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    public func unregister(fd: Int32) {
        var ev = epoll_event()
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev)
        if fd >= 0 && Int(fd) < handlers.count { handlers[Int(fd)] = nil }
    }

    // MARK: Timers (loop thread only)

    /// Runs `task` on the loop after `millis`; returns an id for `cancelTimer`.
    @discardableResult
    public func schedule(afterMillis millis: Int64, _ task: @escaping () -> Void) -> UInt64 {
        let id = nextTimerID
        nextTimerID += 1
        timers.push(TimerEntry(deadline: monotonicMillis() + max(0, millis), id: id, task: task))
        return id
    }

    public func cancelTimer(_ id: UInt64) {
        cancelledTimers.insert(id)
    }

    // MARK: Output batching (loop thread only)

    /// Output buffers already sent, kept for the next writes (`StreamConnection.write(reserving:_:)`):
    /// at most `spareBufferCount` of them, each of at most `spareBufferBytes` capacity.
    @exclusivity(unchecked) private var spareOutputBuffers: [[UInt8]] = []
    static let spareBufferCount = 64
    static let spareBufferBytes = 32 * 1024

    /// How many spare buffers the loop holds (tests).
    var spareOutputBufferCount: Int { spareOutputBuffers.count }

    /// An empty buffer with room for at least `minimumCapacity` bytes, a spare one if there is.
    func takeOutputBuffer(minimumCapacity: Int) -> [UInt8] {
        var buffer = spareOutputBuffers.popLast() ?? []
        buffer.reserveCapacity(max(minimumCapacity, 4096))
        return buffer
    }

    /// Keeps a sent buffer's storage for `takeOutputBuffer`, within the bounds above.
    func recycleOutputBuffer(_ buffer: inout [UInt8]) {
        guard spareOutputBuffers.count < EventLoop.spareBufferCount, buffer.capacity <= EventLoop.spareBufferBytes else { return }
        buffer.removeAll(keepingCapacity: true)
        spareOutputBuffers.append(buffer)
        buffer = []
    }

    /// Writes `connection`'s queued output at the end of this iteration (once however many
    /// frames or answers were queued in it), before the loop waits again.
    func flushAtEndOfIteration(_ connection: StreamConnection) {
        pendingFlushes.append(connection)
    }

    /// Runs the queued flushes; a flush's callbacks may queue more (a drained connection takes
    /// its next pipelined requests), which run here too, for a bounded number of rounds.
    private func runFlushes() {
        var rounds = 0
        while !pendingFlushes.isEmpty && rounds < 16 {
            rounds += 1
            swap(&flushing, &pendingFlushes)
            for connection in flushing { connection.flushDeferred() }
            flushing.removeAll(keepingCapacity: true)
        }
    }

    /// Work for the end of this iteration, after the output flushes (e.g. writing out what the
    /// iteration logged): run once per iteration, however many requests it handled.
    @exclusivity(unchecked) private var endOfIteration: [() -> Void] = []

    /// Runs `task` at the end of this iteration (loop thread only).
    public func atEndOfIteration(_ task: @escaping () -> Void) {
        endOfIteration.append(task)
    }

    private func runEndOfIteration() {
        guard !endOfIteration.isEmpty else { return }
        let due = endOfIteration
        endOfIteration.removeAll(keepingCapacity: true)
        for task in due { task() }
    }

    // MARK: The loop

    /// Runs until `stop()`; blocks the calling thread.
    public func run() {
        threadID.withLock { $0 = pthread_self() }
        let maxEvents = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        while !stopped.load(ordering: .acquiring) {
            let timeout = nextTimeout()
            let n = epoll_wait(epfd, events, Int32(maxEvents), timeout)
            iterationMillis = monotonicMillis()
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<Int(n) {
                let fd = events[i].data.fd
                if fd == wakeFd {
                    var value: UInt64 = 0
                    _ = read(wakeFd, &value, 8)
                    continue
                }
                if fd >= 0 && Int(fd) < handlers.count { handlers[Int(fd)]?.handleEvents(events[i].events) }
            }
            runTasks()
            runTimers()
            runFlushes()
            runEndOfIteration()
        }
    }

    private func runTasks() {
        // Tasks queued by tasks run in the next round, so one flood cannot starve I/O.
        let tasks = queue.withLock { q -> [Task] in
            let taken = q
            q.removeAll(keepingCapacity: true)
            return taken
        }
        for task in tasks { task() }
    }

    private func runTimers() {
        let now = monotonicMillis()
        while let top = timers.peek(), top.deadline <= now {
            _ = timers.pop()
            if cancelledTimers.remove(top.id) != nil { continue }
            top.task()
        }
        if timers.isEmpty { cancelledTimers.removeAll() }
    }

    private func nextTimeout() -> Int32 {
        if !pendingFlushes.isEmpty || !endOfIteration.isEmpty || queue.withLock({ !$0.isEmpty }) { return 0 }
        guard let top = timers.peek() else { return 1000 }
        let wait = top.deadline - monotonicMillis()
        return Int32(max(0, min(wait, 1000)))
    }
}

struct TimerEntry {
    var deadline: Int64
    var id: UInt64
    var task: () -> Void
}

/// A binary min-heap of timers by deadline (then id, for FIFO among equals).
struct TimerHeap {
    private var items: [TimerEntry] = []
    var isEmpty: Bool { items.isEmpty }
    func peek() -> TimerEntry? { items.first }

    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].deadline != items[b].deadline ? items[a].deadline < items[b].deadline : items[a].id < items[b].id
    }

    mutating func push(_ entry: TimerEntry) {
        items.append(entry)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !less(child, parent) { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> TimerEntry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && less(left, smallest) { smallest = left }
            if right < items.count && less(right, smallest) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
