#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CCrypt
import CLibCrypto
import Dispatch
import Synchronization

/// Session tokens: 32 bytes from the system's secure generator, sent base64url, stored as SHA-256.
public enum SessionToken {
    /// A new token; 503 when the system cannot supply secure randomness.
    public static func generate() throws(APIError) -> String {
        base64url(try randomBytes(32))
    }

    /// The digest stored instead of the token.
    public static func digest(_ token: String) -> [UInt8] {
        sha256(Array(token.utf8))
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                if let method = sha256Method, EVP_Digest(input.baseAddress, input.count, output.baseAddress, nil, method, nil) == 1 { return }
                _ = SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return out
    }

    /// SHA-256 looked up in OpenSSL's providers once: the one-shot `SHA256()` fetches it by name
    /// at every call, a third of the digest of a request's fingerprint. A fetched method is
    /// immutable and may be used from any thread (OpenSSL's threading rules); nil when the
    /// lookup failed, and `SHA256()` is used as before. Never freed or changed after this.
    private nonisolated(unsafe) static let sha256Method: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `count` bytes from getrandom(2). Fails closed: an error or a source that stops giving
    /// bytes is a 503, never a partly zero-filled (predictable) result.
    public static func randomBytes(_ count: Int) throws(APIError) -> [UInt8] {
        try randomBytes(count) { buffer, length in getrandom(buffer, length, 0) }
    }

    /// `randomBytes` from `fill`, which acts like getrandom(2): writes up to `length` bytes and
    /// answers how many, or -1 with `errno` set (EINTR is retried). Injectable for tests.
    static func randomBytes(_ count: Int, fill: (UnsafeMutableRawPointer, Int) -> Int) throws(APIError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let remaining = count - filled
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return fill(base + filled, remaining)
            }
            if n > 0 && n <= remaining {
                filled += n
            } else if !(n < 0 && errno == EINTR) {
                throw randomnessFailed
            }
        }
        return bytes
    }

    static let randomnessFailed = APIError.unavailable("the system's secure random number generator is not available; try again later")

    public static func base64url(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], table[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)]]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A random password of letters and digits (for bootstrap and new employees); 503 when
    /// the system cannot supply secure randomness.
    public static func randomPassword(length: Int = 16) throws(APIError) -> String {
        try randomPassword(length: length) { buffer, count in getrandom(buffer, count, 0) }
    }

    /// `randomPassword` drawing from `fill` (as in `randomBytes(_:fill:)`).
    static func randomPassword(length: Int, fill: (UnsafeMutableRawPointer, Int) -> Int) throws(APIError) -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789".utf8)
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.count
        var out: [UInt8] = []
        while out.count < length {
            for b in try randomBytes(length * 2, fill: fill) where out.count < length && Int(b) < limit {
                out.append(alphabet[Int(b) % alphabet.count])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Password hashing with libcrypt (yescrypt `$y$` at its default cost). Hashing is slow on
/// purpose (~18 ms, 16 MiB), so it runs on its own queue with at most `concurrency` at once and
/// at most `maxQueued` waiting; past that callers get 503 instead of exhausting memory.
public final class PasswordHasher: Sendable {
    public static let shared = PasswordHasher()

    private let queue = DispatchQueue(label: "crm.password", attributes: .concurrent)
    private let slots: DispatchSemaphore
    private let admitted = Mutex<Int>(0)
    private let maxQueued: Int

    public init(concurrency: Int = 2, maxQueued: Int = 64) {
        slots = DispatchSemaphore(value: concurrency)
        self.maxQueued = maxQueued
    }

    /// A new hash of `password` with a fresh salt.
    public func hash(_ password: String) async throws(APIError) -> String {
        let result: String? = try await run { PasswordHasher.hashNow(password) }
        guard let result else { throw .internal("password hashing failed") }
        return result
    }

    /// True when `password` matches `storedHash` (compared in constant time).
    public func verify(_ password: String, against storedHash: String) async throws(APIError) -> Bool {
        try await run { PasswordHasher.verifyNow(password, storedHash) }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws(APIError) -> T {
        let accepted = admitted.withLock { count -> Bool in
            guard count < maxQueued else { return false }
            count += 1
            return true
        }
        guard accepted else { throw .unavailable("too many password checks at once; try again shortly") }
        return await withCheckedContinuation { continuation in
            queue.async { [self] in
                slots.wait()
                let value = body()
                slots.signal()
                admitted.withLock { $0 -= 1 }
                continuation.resume(returning: value)
            }
        }
    }

    /// Hashes synchronously on the calling thread: for start-up only, never on a request path.
    public static func hashNow(_ password: String) -> String? {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$y$", 0, nil, 0, &setting, Int32(setting.count)) != nil else { return nil }
        return cryptNow(password, setting)
    }

    static func verifyNow(_ password: String, _ stored: String) -> Bool {
        guard let computed = cryptNow(password, stored.utf8CString.map { $0 }) else { return false }
        let a = Array(computed.utf8), b = Array(stored.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private static func cryptNow(_ password: String, _ setting: [CChar]) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let out = crypt_r(password, setting, data) else { return nil }
        let text = String(cString: out)
        // libxcrypt answers a string starting with '*' on failure.
        guard !text.hasPrefix("*") else { return nil }
        return text
    }
}
