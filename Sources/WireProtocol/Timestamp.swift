#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Times as the API writes them: `YYYY-MM-DD HH:MM:SS` in the server's time zone (`TZ`, which
/// the launcher sets from `CRM_TZ`). Stored as this text, so they sort as strings.
public enum Timestamp {
    public static func now() -> String {
        var t = time(nil)
        if let known = lastNow.withLock({ $0 }), known.second == t { return known.text }
        let text = format(&t)
        lastNow.withLock { $0 = (t, text) }
        return text
    }

    /// The last second `now()` formatted, and its text (a list's default window asks on every
    /// request; formatting costs more than the rest of reading the parameters).
    private static let lastNow = Mutex<(second: time_t, text: String)?>(nil)

    /// `shift(text, seconds:)`, remembering the last answer (the start of a default window,
    /// asked with the same end for a whole second).
    public static func shiftRemembered(_ text: String, seconds: Int64) -> String? {
        if let known = lastShift.withLock({ $0 }), known.seconds == seconds, known.text == text { return known.shifted }
        let shifted = shift(text, seconds: seconds)
        lastShift.withLock { $0 = (text, seconds, shifted) }
        return shifted
    }
    private static let lastShift = Mutex<(text: String, seconds: Int64, shifted: String?)?>(nil)

    public static func format(_ t: inout time_t) -> String {
        var parts = tm()
        localtime_r(&t, &parts)
        return format(parts)
    }

    static func format(_ p: tm) -> String {
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let year = Int(p.tm_year) + 1900
        var y = String(year)
        while y.count < 4 { y = "0" + y }
        return "\(y)-\(two(p.tm_mon + 1))-\(two(p.tm_mday)) \(two(p.tm_hour)):\(two(p.tm_min)):\(two(p.tm_sec))"
    }

    /// Validates `YYYY-MM-DD HH:MM:SS` (or `YYYY-MM-DD` when allowed, meaning 00:00:00) and answers
    /// the normalized full form; nil when the text is not such a time or names an impossible date.
    public static func normalize(_ text: String, dateOnlyAllowed: Bool) -> String? {
        let b = Array(text.utf8)
        guard b.count == 19 || (dateOnlyAllowed && b.count == 10) else { return nil }
        func digits(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let year = digits(0..<4), b[4] == UInt8(ascii: "-"), let month = digits(5..<7),
              b[7] == UInt8(ascii: "-"), let day = digits(8..<10) else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        if b.count == 10 { return text + " 00:00:00" }
        guard b[10] == UInt8(ascii: " "), let hour = digits(11..<13), b[13] == UInt8(ascii: ":"),
              let minute = digits(14..<16), b[16] == UInt8(ascii: ":"), let second = digits(17..<19) else { return nil }
        guard hour < 24, minute < 60, second < 60 else { return nil }
        return text
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// A normalized time moved by `seconds` (local time, across DST as mktime does).
    public static func shift(_ text: String, seconds: Int64) -> String? {
        guard let full = normalize(text, dateOnlyAllowed: true) else { return nil }
        let b = Array(full.utf8)
        func n(_ r: Range<Int>) -> Int32 { r.reduce(0) { $0 * 10 + Int32(b[$1] - 48) } }
        var parts = tm()
        parts.tm_year = n(0..<4) - 1900
        parts.tm_mon = n(5..<7) - 1
        parts.tm_mday = n(8..<10)
        parts.tm_hour = n(11..<13)
        parts.tm_min = n(14..<16)
        parts.tm_sec = n(17..<19)
        parts.tm_isdst = -1
        var t = mktime(&parts)
        t += time_t(seconds)
        return format(&t)
    }
}
