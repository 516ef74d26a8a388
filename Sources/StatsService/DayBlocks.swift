/// Calendar days as numbers and the dyadic blocks of days the statistics keep totals for.
///
/// A day is the date part of a time as the API writes it (`YYYY-MM-DD`, server time zone), so
/// no zone arithmetic is needed: day numbers count days from 1970-01-01 of the proleptic
/// Gregorian calendar. Level `L` groups days into blocks of 2^L aligned days (`day >> L`); any
/// range of whole days is the union of at most about 2 × `maxLevel` blocks plus a run of
/// top-level blocks, so a window's totals read a few dozen block rows per organization
/// whatever its length.
enum DayBlocks {
    /// Blocks of up to 2^10 = 1,024 days (about 2.8 years).
    static let maxLevel = 10
    static let levels = 0...maxLevel

    /// The day number of a time's (or a date's) date part; nil when it is not `YYYY-MM-DD…`.
    static func day(_ time: String) -> Int64? {
        let b = Array(time.utf8.prefix(10))
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in range {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// `YYYY-MM-DD` of a day number (civil_from_days).
    static func date(_ number: Int64) -> String {
        let z = number + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let text = String(v)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// A normalized time (`YYYY-MM-DD HH:MM:SS`) as one integer, `YYYYMMDDhhmmss`: ordered like
    /// the text, compared and summed without a string per row.
    static func stamp(_ time: String) -> Int64? {
        let b = Array(time.utf8)
        guard b.count == 19 else { return nil }
        var v: Int64 = 0
        for (i, byte) in b.enumerated() where ![4, 7, 10, 13, 16].contains(i) {
            guard byte >= 48 && byte <= 57 else { return nil }
            v = v * 10 + Int64(byte - 48)
        }
        return v
    }

    /// The first moment of a day, as a stamp.
    static func stamp(day: Int64) -> Int64 {
        stamp(date(day) + " 00:00:00") ?? 0
    }

    /// `YYYY-MM-DD HH:MM:SS` of a stamp.
    static func time(_ stamp: Int64) -> String {
        var digits = Array(String(stamp).utf8)
        while digits.count < 14 { digits.insert(UInt8(ascii: "0"), at: 0) }
        var text: [UInt8] = []
        for (i, digit) in digits.enumerated() {
            switch i {
            case 4, 6: text.append(UInt8(ascii: "-"))
            case 8: text.append(UInt8(ascii: " "))
            case 10, 12: text.append(UInt8(ascii: ":"))
            default: break
            }
            text.append(digit)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The days of block `block` at `level`: first and last day number.
    static func days(level: Int, block: Int64) -> (first: Int64, last: Int64) {
        (block << Int64(level), ((block + 1) << Int64(level)) - 1)
    }

    /// The blocks covering the whole days `first…last` exactly, as runs of consecutive blocks
    /// of one level, from the earliest: each step takes the largest aligned block that starts
    /// at the next uncovered day and ends inside the range.
    static func cover(_ first: Int64, _ last: Int64) -> [(level: Int, from: Int64, to: Int64)] {
        var runs: [(level: Int, from: Int64, to: Int64)] = []
        var next = first
        while next <= last {
            var level = 0
            while level < maxLevel {
                let size = Int64(1) << Int64(level + 1)
                guard next & (size - 1) == 0, next + size - 1 <= last else { break }
                level += 1
            }
            let block = next >> Int64(level)
            if let previous = runs.last, previous.level == level, previous.to + 1 == block {
                runs[runs.count - 1].to = block
            } else {
                runs.append((level, block, block))
            }
            next += Int64(1) << Int64(level)
        }
        return runs
    }
}
