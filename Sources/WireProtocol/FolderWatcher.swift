#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Calls `onChange` on the loop soon after a file appears in, disappears from or is replaced in
/// a folder (inotify), and every `rescanMillis` anyway: the folder may not exist yet, and a
/// missed event (a full inotify queue, a file system without inotify) must not hide a replica
/// for long. Loop-thread confined.
public final class FolderWatcher: EventHandler, @unchecked Sendable {
    public let path: String
    public let loop: EventLoop
    private let onChange: () -> Void
    private let rescanMillis: Int64
    private var fd: Int32 = -1
    private var watching = false
    private var stopped = false

    public init(path: String, loop: EventLoop, rescanMillis: Int64 = 1_000, onChange: @escaping () -> Void) {
        self.path = path
        self.loop = loop
        self.rescanMillis = rescanMillis
        self.onChange = onChange
    }

    /// Starts watching (loop thread) and calls `onChange` once at once.
    public func start() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd >= 0 {
            do { try loop.register(fd: fd, events: EPOLLIN.rawValue, handler: self) } catch { Glibc.close(fd); fd = -1 }
        }
        addWatch()
        onChange()
        schedule()
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        if fd >= 0 {
            loop.unregister(fd: fd)
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Watches the folder once it exists (again after it was removed).
    private func addWatch() {
        guard fd >= 0, !watching else { return }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF)
        watching = inotify_add_watch(fd, path, mask) >= 0
    }

    private func schedule() {
        loop.schedule(afterMillis: rescanMillis) { [weak self] in
            guard let self, !self.stopped else { return }
            self.addWatch()
            self.onChange()
            self.schedule()
        }
    }

    public func handleEvents(_ events: UInt32) {
        // The events only say that something changed: the owner rescans the folder.
        var buffer = [UInt8](repeating: 0, count: 4096)
        var removedSelf = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let (mask, nameLength) = buffer.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self), raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                }
                if mask & UInt32(IN_DELETE_SELF | IN_IGNORED) != 0 { removedSelf = true }
                offset += MemoryLayout<inotify_event>.size + Int(nameLength)
            }
        }
        if removedSelf { watching = false; addWatch() }
        onChange()
    }
}
